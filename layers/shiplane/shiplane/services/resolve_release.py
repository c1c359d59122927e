"""Resolve Release: an ECR push (or an explicit request) becomes a release in the channel
that accepts the tag, and the deployments the lifecycle allows now. Idempotent: the
release and each automatic deployment are written with conditions, together, or not at
all."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field, ValidationError

from shiplane.domain.lifecycle import automatic_environments, check_deployable
from shiplane.domain.models import (
    DeploymentMode,
    DeploymentStatus,
    DeploymentTask,
    ImageRef,
    Project,
    Release,
    TriggeredBy,
    TriggerKind,
)
from shiplane.domain.naming import requested_deployment_id
from shiplane.domain.ordering import is_newer
from shiplane.domain.requests import (
    CreateReleaseAction,
    DeployAction,
    EcrPushEvent,
    ResolveReleaseRequest,
    parse_pipeline_input,
)
from shiplane.domain.versions import Version, VersionRule, channel_accepts, parse_version
from shiplane.errors import InvalidRequestError, LifecycleViolationError, NotFoundError
from shiplane.observability import logger, metrics
from shiplane.ports import ConfigStore, DeploymentStore, ImageRegistry, ReleaseStore
from shiplane.services.planning import (
    Planned,
    World,
    phases_for,
    plan_automatic,
    plan_deployment,
    resumable,
    tenants_for,
)
from shiplane.services.release_checks import check_release_variables
from shiplane.validation import describe, parse

# Automatic deployments written per DynamoDB transaction: each writes three items (the
# deployment, its execution's index entry, its claim), under DynamoDB's 100 per transaction.
DEPLOYMENTS_PER_TRANSACTION = 30


@dataclass
class ResolveDependencies:
    config: ConfigStore
    releases: ReleaseStore
    deployments: DeploymentStore
    registry: ImageRegistry
    now: Callable[[], datetime]


class ReleaseRef(BaseModel):
    project: str
    version: str
    channel: str = ""
    created: bool


class ResolveResult(BaseModel):
    releases: list[ReleaseRef] = Field(default_factory=list)
    deployments: list[DeploymentTask] = Field(default_factory=list)
    message: str = ""


def resolve_release(payload: object, deps: ResolveDependencies) -> ResolveResult:
    request = parse(ResolveReleaseRequest, payload, "Resolve Release request")
    pipeline_input = _parse_input(request)
    if isinstance(pipeline_input, DeployAction):
        return _requested_deployment(pipeline_input, request.execution, deps)
    if isinstance(pipeline_input, CreateReleaseAction):
        return _requested_release(pipeline_input, request.execution, deps)
    return _image_pushed(pipeline_input, request.execution, deps)


def _parse_input(
    request: ResolveReleaseRequest,
) -> EcrPushEvent | DeployAction | CreateReleaseAction:
    try:
        return parse_pipeline_input(request.input)
    except ValidationError as exc:
        kind = "action" if "action" in request.input else "ECR push event"
        raise InvalidRequestError(f"invalid {kind}: {describe(exc)}") from None


# ----------------------------------------------------------------------------- ECR push


def _image_pushed(event: EcrPushEvent, execution: str, deps: ResolveDependencies) -> ResolveResult:
    detail = event.detail
    repository, tag, digest = detail.repository_name, detail.image_tag, detail.image_digest
    if detail.action_type != "PUSH" or detail.result != "SUCCESS":
        return ResolveResult(message=f"ignored ECR {detail.action_type}/{detail.result}")
    if not tag:
        # A push by digest has no tag to read as a version, so it cannot become a release
        # (for a repository a project uses or not): the tagged push that follows will.
        logger.info("push without a tag ignored", extra={"repository": repository})
        metrics.add_metric(name="PushWithoutTag", unit="Count", value=1)
        return ResolveResult(message=f"ignored a push by digest to {repository!r} (no tag)")
    projects = deps.config.projects_for_repository(repository)
    if not projects:
        logger.info("no project uses the pushed repository", extra={"repository": repository})
        metrics.add_metric(name="PushWithoutProject", unit="Count", value=1)
        return ResolveResult(message=f"no project uses repository {repository!r}")

    registry = f"{event.account}.dkr.ecr.{event.region}.amazonaws.com"
    trigger = TriggeredBy(kind=TriggerKind.ECR_PUSH, by=f"{repository}:{tag} ({execution})")
    result = ResolveResult()
    notes: list[str] = []
    for name in projects:
        project = deps.config.get_project(name)
        if repository not in project.repositories:
            continue
        channel, why = _channel_for(project, repository, tag)
        if channel is None:
            logger.info(
                "no channel accepts the tag", extra={"project": name, "tag": tag, "why": why}
            )
            metrics.add_metric(name="TagWithoutChannel", unit="Count", value=1)
            notes.append(f"{name}: no channel accepts {tag!r} ({why})")
            continue
        outcome = _release_for_push(
            project, channel, registry, repository, tag, digest, trigger, deps, execution
        )
        if outcome is None:
            continue
        ref, tasks = outcome
        result.releases.append(ref)
        result.deployments.extend(tasks)
    created = [f"{r.project} {r.version} ({r.channel})" for r in result.releases if r.created]
    summary = f"release(s) created: {', '.join(created)}" if created else "no release created"
    result.message = "; ".join(
        [summary, *notes, f"{len(result.deployments)} deployment(s) to start"]
    )
    return result


def _channel_for(project: Project, repository: str, tag: str) -> tuple[str | None, str]:
    """The channel a pushed tag lands in: the first channel with automatic release
    creation whose rules accept it, channels with rules before those without (so that a
    hotfix channel takes `1.3.0-hotfix.1` before a rule-less default channel would)."""
    candidates = [c for c in project.channels if c.auto_create_releases]
    ordered = [c for c in candidates if c.rules] + [c for c in candidates if not c.rules]
    refusals = []
    for channel in ordered:
        accepted, reason = channel_accepts(channel.rules, repository, tag)
        if accepted:
            return channel.name, reason
        refusals.append(f"{channel.name}: {reason}")
    return None, "; ".join(refusals) or "no channel creates releases automatically"


def _release_for_push(
    project: Project,
    channel_name: str,
    registry: str,
    repository: str,
    tag: str,
    digest: str,
    trigger: TriggeredBy,
    deps: ResolveDependencies,
    execution: str,
) -> tuple[ReleaseRef, list[DeploymentTask]] | None:
    version = tag
    existing = deps.releases.get_release(project.name, version)
    if existing is not None:
        pinned = existing.images.get(repository)
        if pinned is not None and pinned.digest != digest:
            logger.warning(
                "tag moved: the release keeps its pinned digest",
                extra={
                    "project": project.name,
                    "release": version,
                    "pinned": pinned.digest,
                    "pushed": digest,
                },
            )
            metrics.add_metric(name="TagMoved", unit="Count", value=1)
        ref = ReleaseRef(
            project=project.name, version=version, channel=existing.channel, created=False
        )
        return ref, _resumed(project, existing, trigger, deps, execution)

    channel = project.channel(channel_name)
    images = {
        repository: ImageRef(repository=repository, registry=registry, tag=tag, digest=digest)
    }
    for other in project.repositories:
        if other == repository:
            continue
        chosen = image_for_channel(deps.registry, other, channel.rules)
        if chosen is None:
            logger.warning(
                "cannot create a release: a repository of the project has no acceptable image",
                extra={"project": project.name, "repository": other},
            )
            return None
        images[other] = ImageRef(
            repository=other, registry=registry, tag=chosen[0], digest=chosen[1]
        )

    release = build_release(project, channel.name, version, images, trigger, deps.config, deps.now)
    return _create_release(project, release, trigger, deps, execution)


def build_release(
    project: Project,
    channel_name: str,
    version: str,
    images: dict[str, ImageRef],
    trigger: TriggeredBy,
    config: ConfigStore,
    now: Callable[[], datetime],
) -> Release:
    """A new release of `project` (not written): the images given, the process and the
    variables snapshotted now; refused if its variables do not resolve where it goes."""
    channel = project.channel(channel_name)
    release = Release(
        project=project.name,
        version=version,
        channel=channel.name,
        images=images,
        process=project.steps,
        variables=project.variables,
        lifecycle=channel.lifecycle or project.lifecycle,
        created_at=now(),
        created_by=trigger,
    )
    check_release_variables(project, release, phases_for(config, release), World.load(config))
    return release


def _create_release(
    project: Project,
    release: Release,
    trigger: TriggeredBy,
    deps: ResolveDependencies,
    execution: str,
) -> tuple[ReleaseRef, list[DeploymentTask]]:
    """Write the release with its first automatic deployments (all or nothing)."""
    phases = phases_for(deps.config, release)
    world = World.load(deps.config)
    release = release.model_copy(
        update={"sequence": deps.releases.next_release_sequence(project.name)}
    )
    environments = automatic_environments(phases, succeeded=set(), claimed=set())
    planned = plan_automatic(
        project, release, environments, None, trigger, world, deps.now, execution
    )
    release = release.model_copy(update={"first_deployments": len(planned)})
    # The release and the first batch of its deployments in one transaction; the rest in
    # batches (a retry, or a duplicate delivery, writes what is missing: see _resumed).
    first, rest = planned[:DEPLOYMENTS_PER_TRANSACTION], planned[DEPLOYMENTS_PER_TRANSACTION:]
    created = deps.releases.create_release(
        release, [p.deployment for p in first], ["claim" for _ in first]
    )
    ref = ReleaseRef(
        project=project.name, version=release.version, channel=release.channel, created=created
    )
    if not created:  # a concurrent delivery, or an earlier attempt of this step, wrote it
        return ref, _resumed(project, release, trigger, deps, execution)
    logger.info(
        "release created",
        extra={"project": project.name, "release": release.version, "channel": release.channel},
    )
    metrics.add_metric(name="ReleaseCreated", unit="Count", value=1)
    return ref, [p.task for p in first] + [p.task for p in _write_in_batches(rest, deps)]


def _write_in_batches(planned: Sequence[Planned], deps: ResolveDependencies) -> list[Planned]:
    """Write the planned automatic deployments, DEPLOYMENTS_PER_TRANSACTION at a time, each
    with its claim; the ones another execution claimed first are left to it. The planned
    deployments this call wrote, in order."""
    written: list[Planned] = []
    for start in range(0, len(planned), DEPLOYMENTS_PER_TRANSACTION):
        batch = planned[start : start + DEPLOYMENTS_PER_TRANSACTION]
        if deps.deployments.create_deployments(
            [p.deployment for p in batch], ["claim" for _ in batch]
        ):
            written += batch
            continue
        for one in batch:  # a claim of the batch is taken: the others one by one
            if deps.deployments.create_deployments([one.deployment], ["claim"]):
                written.append(one)
    return written


def _resumed(
    project: Project,
    release: Release,
    trigger: TriggeredBy,
    deps: ResolveDependencies,
    execution: str,
) -> list[DeploymentTask]:
    """The release's first automatic deployments that an earlier attempt of this same
    execution wrote but never handed on (it failed after the write): the retry resumes
    them. Another execution's (a duplicate push) are left to it. Those no execution has
    written yet (the writer stopped between two batches) are written now."""
    unstarted = {
        d.id
        for d in deps.deployments.deployments_of_execution(execution)
        if d.status is DeploymentStatus.QUEUED and d.release == release.version
    }
    claimed = deps.deployments.claimed_places(project.name, release.version)
    complete = release.first_deployments is not None and len(claimed) >= release.first_deployments
    if not unstarted and complete:  # the usual case (a duplicate delivery): nothing to do
        return []
    phases = phases_for(deps.config, release)
    environments = automatic_environments(phases, succeeded=set(), claimed=set())
    planned = plan_automatic(
        project, release, environments, None, trigger, World.load(deps.config), deps.now, execution
    )
    unwritten = [
        p for p in planned if (p.deployment.environment, p.deployment.tenant) not in claimed
    ]
    written = {p.deployment.id for p in _write_in_batches(unwritten, deps)}
    tasks = [p.task for p in planned if p.deployment.id in unstarted | written]
    if tasks:
        logger.info(
            "resumed deployments written by an earlier attempt",
            extra={"project": project.name, "release": release.version, "count": len(tasks)},
        )
        metrics.add_metric(name="DeploymentsResumed", unit="Count", value=len(tasks))
    return tasks


def _requested_release(
    action: CreateReleaseAction, execution: str, deps: ResolveDependencies
) -> ResolveResult:
    """A release asked for through the API, its images chosen and pinned already: created
    exactly like a push's, with the same first automatic deployments."""
    project = deps.config.get_project(action.project)
    try:
        project.channel(action.channel)
    except KeyError:
        raise NotFoundError(
            f"project {project.name!r} has no channel {action.channel!r}", field="channel"
        ) from None
    missing = sorted(set(project.repositories) - set(action.images))
    if missing:
        raise InvalidRequestError(
            f"release {action.version} of {project.name!r} names no image for {', '.join(missing)}",
            field="images",
        )
    existing = deps.releases.get_release(project.name, action.version)
    trigger = TriggeredBy(
        kind=TriggerKind.API,
        by=f"{action.requested_by or 'api'} (execution {execution})",
    )
    if existing is not None:
        ref = ReleaseRef(
            project=project.name, version=action.version, channel=existing.channel, created=False
        )
        resumed = _resumed(project, existing, trigger, deps, execution)
        return ResolveResult(
            releases=[ref],
            deployments=resumed,
            message=f"release {action.version} exists already"
            + (f"; {len(resumed)} deployment(s) resumed" if resumed else ""),
        )
    images = {repo: image for repo, image in action.images.items() if repo in project.repositories}
    release = build_release(
        project, action.channel, action.version, images, trigger, deps.config, deps.now
    )
    ref, tasks = _create_release(project, release, trigger, deps, execution)
    state = "created" if ref.created else "exists already"
    return ResolveResult(
        releases=[ref],
        deployments=tasks,
        message=f"release {action.version} ({action.channel}) {state}; "
        f"{len(tasks)} deployment(s) to start",
    )


def image_for_channel(
    registry: ImageRegistry, repository: str, rules: Sequence[VersionRule]
) -> tuple[str, str] | None:
    """For the project's other repositories: the highest version the channel accepts, or
    the newest image when the channel has no rule for that repository."""
    if not any(rule.package == repository for rule in rules):
        return registry.latest_tag(repository)
    best: tuple[Version, str, str] | None = None
    for tag, digest in registry.tags(repository):
        accepted, _ = channel_accepts(rules, repository, tag)
        version = parse_version(tag)
        if accepted and version is not None and (best is None or version > best[0]):
            best = (version, tag, digest)
    return (best[1], best[2]) if best else None


# ----------------------------------------------------------------------------- requests


@dataclass
class RequestReaders:
    """What checking a requested deployment reads (the API has no use for a registry)."""

    config: ConfigStore
    releases: ReleaseStore
    deployments: DeploymentStore


@dataclass(frozen=True)
class RequestedDeployment:
    """A requested deployment that the lifecycle allows, and what it would be."""

    release: Release
    project: Project
    world: World
    mode: DeploymentMode


def check_requested_deployment(
    action: DeployAction, deps: ResolveDependencies | RequestReaders
) -> RequestedDeployment:
    """Everything that decides whether a requested deployment may run, checked before
    anything is written: the release exists, the tenant is one it goes to there, and the
    lifecycle allows the environment (the error names the incomplete phase)."""
    release = deps.releases.get_release(action.project, action.release)
    if release is None:
        raise NotFoundError(
            f"project {action.project!r} has no release {action.release!r}",
            project=action.project,
            release=action.release,
            field="release",
        )
    project = deps.config.get_project(action.project)
    world = World.load(deps.config)
    phases = phases_for(deps.config, release)
    if action.tenant not in tenants_for(project, release, world, action.environment):
        raise LifecycleViolationError(
            f"release {release.version} of {project.name!r} does not deploy to "
            f"{action.environment!r} for tenant {action.tenant!r} (tenant not connected, or "
            "the channel or project tenancy excludes it)",
            environment=action.environment,
            tenant=action.tenant,
            field="tenant",
        )
    succeeded = deps.deployments.succeeded_environments(
        release.project, release.version, action.tenant
    )
    check_deployable(phases, action.environment, succeeded)
    return RequestedDeployment(release, project, world, _mode(release, action, deps))


def trigger_of(action: DeployAction, execution: str) -> TriggeredBy:
    kind = {"api": TriggerKind.API, "schedule": TriggerKind.SCHEDULE}.get(
        action.via, TriggerKind.CONSOLE
    )
    return TriggeredBy(kind=kind, by=action.requested_by or f"execution {execution}")


def _requested_deployment(
    action: DeployAction, execution: str, deps: ResolveDependencies
) -> ResolveResult:
    checked = check_requested_deployment(action, deps)
    release, world, mode = checked.release, checked.world, checked.mode
    deployment_id = requested_deployment_id(
        release.project, release.version, action.environment, action.tenant, execution
    )
    planned = plan_deployment(
        release,
        action.environment,
        action.tenant,
        deployment_id,
        trigger_of(action, execution),
        world,
        deps.now(),
        mode,
        execution=execution,
    )
    if action.mode == "redeploy":
        deployment = planned.deployment.model_copy(update={"redeploy": True})
        planned = Planned(deployment=deployment, task=planned.task)
    if not deps.deployments.create_deployments([planned.deployment], [""]) and not resumable(
        planned, execution, deps.deployments
    ):
        return ResolveResult(message=f"deployment {deployment_id} was already requested")
    ref = ReleaseRef(
        project=release.project, version=release.version, channel=release.channel, created=False
    )
    return ResolveResult(
        releases=[ref],
        deployments=[planned.task],
        message=f"{mode.value} of {release.version} to {action.environment} requested",
    )


def _mode(
    release: Release, action: DeployAction, deps: ResolveDependencies | RequestReaders
) -> DeploymentMode:
    current = deps.deployments.get_current(release.project, action.environment, action.tenant)
    if current is None:
        return DeploymentMode.DEPLOY
    if current["release"] == release.version:
        return DeploymentMode.REDEPLOY
    current_release = deps.releases.get_release(release.project, current["release"])
    if current_release is not None and is_newer(current_release, release):
        return DeploymentMode.ROLLBACK
    return DeploymentMode.DEPLOY
