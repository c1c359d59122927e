"""Resolve Release: an ECR push (or an explicit request) becomes a release and the
deployments the lifecycle allows now. Idempotent: the release and each automatic
deployment are written with conditions, together, or not at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field, ValidationError

from shiplane.domain.lifecycle import automatic_environments, check_deployable
from shiplane.domain.models import (
    UNTENANTED,
    DeploymentMode,
    DeploymentUnit,
    ImageRef,
    Project,
    Release,
    TriggeredBy,
    TriggerKind,
)
from shiplane.domain.naming import requested_deployment_id
from shiplane.domain.requests import (
    DeployAction,
    EcrPushEvent,
    ResolveReleaseRequest,
    parse_pipeline_input,
)
from shiplane.errors import InvalidRequestError, NotFoundError
from shiplane.observability import logger, metrics
from shiplane.ports import ConfigStore, DeploymentStore, ImageRegistry, ReleaseStore
from shiplane.services.planning import phases_for, plan_automatic, plan_deployment
from shiplane.validation import describe, parse


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
    created: bool


class ResolveResult(BaseModel):
    releases: list[ReleaseRef] = Field(default_factory=list)
    units: list[DeploymentUnit] = Field(default_factory=list)
    message: str = ""


def resolve_release(payload: object, deps: ResolveDependencies) -> ResolveResult:
    request = parse(ResolveReleaseRequest, payload, "Resolve Release request")
    pipeline_input = _parse_input(request)
    if isinstance(pipeline_input, DeployAction):
        return _requested_deployment(pipeline_input, request.execution, deps)
    return _image_pushed(pipeline_input, request.execution, deps)


def _parse_input(request: ResolveReleaseRequest) -> EcrPushEvent | DeployAction:
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
    projects = deps.config.projects_for_repository(repository)
    if not projects:
        logger.info("no project uses the pushed repository", extra={"repository": repository})
        metrics.add_metric(name="PushWithoutProject", unit="Count", value=1)
        return ResolveResult(message=f"no project uses repository {repository!r}")

    registry = f"{event.account}.dkr.ecr.{event.region}.amazonaws.com"
    trigger = TriggeredBy(kind=TriggerKind.ECR_PUSH, by=f"{repository}:{tag} ({execution})")
    result = ResolveResult()
    for name in projects:
        project = deps.config.get_project(name)
        if repository not in project.repositories:
            continue
        outcome = _release_for_push(project, registry, repository, tag, digest, trigger, deps)
        if outcome is None:
            continue
        ref, units = outcome
        result.releases.append(ref)
        result.units.extend(units)
    result.message = (
        f"{sum(r.created for r in result.releases)} release(s) created, "
        f"{len(result.units)} unit(s) to deploy"
    )
    return result


def _release_for_push(
    project: Project,
    registry: str,
    repository: str,
    tag: str,
    digest: str,
    trigger: TriggeredBy,
    deps: ResolveDependencies,
) -> tuple[ReleaseRef, list[DeploymentUnit]] | None:
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
        return ReleaseRef(project=project.name, version=version, created=False), []

    images = {
        repository: ImageRef(repository=repository, registry=registry, tag=tag, digest=digest)
    }
    for other in project.repositories:
        if other == repository:
            continue
        latest = deps.registry.latest_tag(other)
        if latest is None:
            logger.warning(
                "cannot create a release: a repository of the project has no image",
                extra={"project": project.name, "repository": other},
            )
            return None
        images[other] = ImageRef(
            repository=other, registry=registry, tag=latest[0], digest=latest[1]
        )

    release = Release(
        project=project.name,
        version=version,
        images=images,
        process=project.steps,
        lifecycle=project.lifecycle,
        created_at=deps.now(),
        created_by=trigger,
    )
    phases = phases_for(deps.config, release)
    environments = automatic_environments(phases, succeeded=set(), claimed=set())
    planned = plan_automatic(
        release, environments, UNTENANTED, trigger, deps.config.list_targets(), deps.now
    )
    created = deps.releases.create_release(
        release, [p.deployment for p in planned], ["claim" for _ in planned]
    )
    if not created:  # a concurrent delivery of the same push won the race
        return ReleaseRef(project=project.name, version=version, created=False), []
    logger.info(
        "release created",
        extra={"project": project.name, "release": version, "environments": environments},
    )
    metrics.add_metric(name="ReleaseCreated", unit="Count", value=1)
    return (
        ReleaseRef(project=project.name, version=version, created=True),
        [unit for p in planned for unit in p.units],
    )


# ----------------------------------------------------------------------------- requests


def _requested_deployment(
    action: DeployAction, execution: str, deps: ResolveDependencies
) -> ResolveResult:
    release = deps.releases.get_release(action.project, action.release)
    if release is None:
        raise NotFoundError(
            f"project {action.project!r} has no release {action.release!r}",
            project=action.project,
            release=action.release,
        )
    phases = phases_for(deps.config, release)
    succeeded = deps.deployments.succeeded_environments(
        release.project, release.version, action.tenant
    )
    check_deployable(phases, action.environment, succeeded)

    mode = _mode(release, action, deps)
    deployment_id = requested_deployment_id(
        release.project, release.version, action.environment, action.tenant, execution
    )
    trigger = TriggeredBy(
        kind=TriggerKind.CONSOLE, by=action.requested_by or f"execution {execution}"
    )
    planned = plan_deployment(
        release,
        action.environment,
        action.tenant,
        deployment_id,
        trigger,
        deps.config.list_targets(),
        deps.now(),
        mode,
    )
    if not deps.deployments.create_deployments([planned.deployment], [""]):
        return ResolveResult(message=f"deployment {deployment_id} was already requested")
    ref = ReleaseRef(project=release.project, version=release.version, created=False)
    return ResolveResult(
        releases=[ref],
        units=planned.units,
        message=f"{mode.value} of {release.version} to {action.environment} requested",
    )


def _mode(release: Release, action: DeployAction, deps: ResolveDependencies) -> DeploymentMode:
    current = [
        d
        for d in deps.deployments.list_deployments(release.project)
        if d.environment == action.environment
        and d.tenant == action.tenant
        and d.status.value == "SUCCEEDED"
    ]
    if not current:
        return DeploymentMode.DEPLOY
    latest = max(current, key=lambda d: d.finished_at or d.created_at)
    if latest.release == release.version:
        return DeploymentMode.REDEPLOY
    current_release = deps.releases.get_release(release.project, latest.release)
    if current_release is not None and current_release.created_at > release.created_at:
        return DeploymentMode.ROLLBACK
    return DeploymentMode.DEPLOY
