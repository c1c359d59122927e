"""Deployments asked for through the API.

Deploy (or redeploy), promote (by default to the next environment the lifecycle allows)
and rollback (by default to the last good release before the current one) each become
the pipeline's `deploy` action, after the very checks Resolve Release will make, so a
refusal is an answer naming the field rather than a failed execution. Cancel stops a
deployment that waits or runs, records who and why, and hands its slot on."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shiplane.domain.models import (
    NAME_PATTERN,
    UNTENANTED,
    Deployment,
    DeploymentStatus,
    Diagnosis,
    Project,
    Release,
)
from shiplane.domain.naming import requested_deployment_id
from shiplane.domain.requests import DeployAction
from shiplane.errors import ConflictError, InvalidRequestError, NotFoundError, ShiplaneError
from shiplane.observability import logger, metrics
from shiplane.ports import ApprovalStore, ConfigStore, DeploymentStore, ReleaseStore
from shiplane.services.planning import World, phases_for, tenants_for
from shiplane.services.release_requests import project_of
from shiplane.services.resolve_release import RequestReaders, check_requested_deployment
from shiplane.services.slots import SlotDependencies, release_and_wake

CANCELLED_ERROR = "DeploymentCancelled"
EXECUTION_NAME_LIMIT = 80

TenantField = Field(default=UNTENANTED, min_length=1, max_length=40)


@dataclass
class DeploymentRequestDependencies:
    config: ConfigStore
    releases: ReleaseStore
    deployments: DeploymentStore

    @property
    def readers(self) -> RequestReaders:
        return RequestReaders(self.config, self.releases, self.deployments)


# ----------------------------------------------------------------------------- bodies


class DeployRequest(BaseModel):
    """`mode: deploy` deploys a release that does not run there yet; `mode: redeploy`
    deploys the running release again (`release` may then be left out)."""

    model_config = ConfigDict(extra="forbid")

    release: str | None = Field(default=None, min_length=1, max_length=128)
    environment: str = Field(pattern=NAME_PATTERN)
    tenant: str = TenantField
    mode: Literal["deploy", "redeploy"] = "deploy"


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    release: str = Field(min_length=1, max_length=128)
    environment: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="default: the next environment the lifecycle allows",
    )
    tenant: str = TenantField


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: str = Field(pattern=NAME_PATTERN)
    tenant: str = TenantField
    release: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="default: the last release that succeeded there before the current one",
    )


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=1000, description="why (recorded)")


# ----------------------------------------------------------------------------- actions


def deploy_action(
    project_name: str, request: DeployRequest, who: str, deps: DeploymentRequestDependencies
) -> DeployAction:
    project = project_of(deps.config, project_name)
    check_environment(deps.config, request.environment, "body.environment")
    check_tenant(deps.config, request.tenant)
    current = deps.deployments.get_current(project.name, request.environment, request.tenant)
    running = str(current["release"]) if current else None
    where = f"{request.environment}/{request.tenant}"
    if request.mode == "redeploy":
        if running is None:
            raise ConflictError(
                f"nothing runs in {where} to redeploy: use mode deploy", field="body.mode"
            )
        if request.release is not None and request.release != running:
            raise ConflictError(
                f"release {running} runs in {where}, not {request.release}: a redeploy "
                "deploys the running release again (use mode deploy)",
                field="body.release",
            )
        release = running
    else:
        if request.release is None:
            raise InvalidRequestError("release is required with mode deploy", field="body.release")
        if request.release == running:
            raise ConflictError(
                f"release {running} runs in {where} already: use mode redeploy to deploy it again",
                field="body.mode",
            )
        release = request.release
    action = _checked(project, release, request.environment, request.tenant, who, deps)
    return action.model_copy(update={"mode": request.mode})


def promote_action(
    project_name: str, request: PromoteRequest, who: str, deps: DeploymentRequestDependencies
) -> DeployAction:
    project = project_of(deps.config, project_name)
    release = _release(deps.releases, project.name, request.release)
    check_tenant(deps.config, request.tenant)
    if request.environment is None:
        environment = next_environment(project, release, request.tenant, deps)
    else:
        environment = request.environment
        check_environment(deps.config, environment, "body.environment")
    return _checked(project, release.version, environment, request.tenant, who, deps)


def next_environment(
    project: Project, release: Release, tenant: str, deps: DeploymentRequestDependencies
) -> str:
    """The first environment of the release's lifecycle (that the tenant goes to) where it
    has neither succeeded nor is being deployed. Whether the lifecycle allows it yet is
    checked after, so that a refusal names the phase to complete first."""
    world = World.load(deps.config)
    succeeded = deps.deployments.succeeded_environments(project.name, release.version, tenant)
    active = {
        d.environment
        for d in deps.deployments.list_deployments(project.name)
        if d.release == release.version and d.tenant == tenant and not d.status.finished
    }
    for phase in phases_for(deps.config, release):
        for entry in phase.environments:
            environment = entry.environment
            if environment in succeeded or environment in active:
                continue
            if tenant in tenants_for(project, release, world, environment):
                return environment
    raise ConflictError(
        f"release {release.version} has reached every environment of its lifecycle"
        + (f" for tenant {tenant!r}" if tenant != UNTENANTED else "")
        + (f" (being deployed to: {', '.join(sorted(active))})" if active else ""),
        field="body.environment",
    )


def rollback_action(
    project_name: str, request: RollbackRequest, who: str, deps: DeploymentRequestDependencies
) -> DeployAction:
    project = project_of(deps.config, project_name)
    check_environment(deps.config, request.environment, "body.environment")
    check_tenant(deps.config, request.tenant)
    where = f"{request.environment}/{request.tenant}"
    current = deps.deployments.get_current(project.name, request.environment, request.tenant)
    if current is None:
        raise ConflictError(
            f"nothing runs in {where}: nothing to roll back", field="body.environment"
        )
    release = request.release or previous_release(
        deps.deployments.list_deployments(project.name),
        request.environment,
        request.tenant,
        str(current["release"]),
    )
    if release is None:
        raise ConflictError(
            f"no release succeeded in {where} before {current['release']}: nothing to roll back to",
            field="body.release",
        )
    if release == current["release"]:
        raise ConflictError(
            f"release {release} runs in {where} already: a rollback deploys an earlier one "
            "(redeploy it with POST /deployments, mode redeploy)",
            field="body.release",
        )
    return _checked(project, release, request.environment, request.tenant, who, deps)


def previous_release(
    deployments: Sequence[Deployment], environment: str, tenant: str, current: str
) -> str | None:
    """The release that last succeeded in `environment`/`tenant` other than `current`."""
    good = [
        d
        for d in deployments
        if d.environment == environment
        and d.tenant == tenant
        and d.status is DeploymentStatus.SUCCEEDED
        and d.release != current
    ]
    if not good:
        return None
    return max(good, key=lambda d: (d.finished_at or d.created_at, d.created_at)).release


def _checked(
    project: Project,
    release: str,
    environment: str,
    tenant: str,
    who: str,
    deps: DeploymentRequestDependencies,
) -> DeployAction:
    action = DeployAction(
        action="deploy",
        project=project.name,
        release=release,
        environment=environment,
        tenant=tenant,
        requested_by=who,
        via="api",
    )
    try:
        check_requested_deployment(action, deps.readers)
    except ShiplaneError as exc:
        raise in_body(exc, "environment") from None
    return action


def in_body(exc: ShiplaneError, default: str) -> ShiplaneError:
    """A service error with its field named as the API names it (`body.<field>`)."""
    field = exc.details.get("field") or default
    if not str(field).startswith(("body.", "path.", "query.", "header.")):
        field = f"body.{field}"
    exc.details["field"] = field
    return exc


def _release(releases: ReleaseStore, project: str, version: str) -> Release:
    release = releases.get_release(project, version)
    if release is None:
        raise NotFoundError(f"project {project!r} has no release {version!r}", field="body.release")
    return release


def check_environment(config: ConfigStore, environment: str, field: str) -> None:
    known = [e.name for e in config.list_environments()]
    if environment not in known:
        raise NotFoundError(
            f"environment {environment!r} does not exist (environments: {', '.join(known)})",
            field=field,
        )


def check_tenant(config: ConfigStore, tenant: str) -> None:
    if tenant == UNTENANTED:
        return
    try:
        config.get_tenant(tenant)
    except NotFoundError:
        raise NotFoundError(f"tenant {tenant!r} does not exist", field="body.tenant") from None


# ----------------------------------------------------------------------------- idempotency


def execution_name(
    kind: str, project: str, idempotency_key: str | None, body: Any, salt: str = ""
) -> str:
    """The pipeline execution's name for an API request: the same for the same request,
    so that a retried call starts nothing twice (Step Functions refuses a name twice).

    With an `Idempotency-Key` the key alone decides. Without one, the body does, together
    with `salt` — what has finished where the request acts — so that a retry while the
    first call's work runs is the same request, and the same body after it ended is a new
    one (a redeploy next week is not a retry)."""
    basis = f"key:{idempotency_key}" if idempotency_key else f"body:{_canonical(body)}|{salt}"
    digest = hashlib.sha256(f"{project}|{kind}|{basis}".encode()).hexdigest()[:20]
    return f"api-{kind}-{project}-{digest}"[:EXECUTION_NAME_LIMIT]


def _canonical(body: Any) -> str:
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json", exclude_unset=True)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)


def last_finished(
    deployments: Sequence[Deployment],
    environment: str | None = None,
    tenant: str | None = None,
    release: str | None = None,
) -> str:
    """The id of the deployment that finished last among those matching (for `salt`)."""
    done = [
        d
        for d in deployments
        if d.status.finished
        and (environment is None or d.environment == environment)
        and (tenant is None or d.tenant == tenant)
        and (release is None or d.release == release)
    ]
    if not done:
        return ""
    return max(done, key=lambda d: (d.finished_at or d.created_at, d.id)).id


def deployment_id_of(action: DeployAction, execution: str) -> str:
    """The id Resolve Release will give the deployment (known before it exists)."""
    return requested_deployment_id(
        action.project, action.release, action.environment, action.tenant, execution
    )


# ----------------------------------------------------------------------------- cancel


class Pipeline(Protocol):
    def execution_arn(self, name: str) -> str: ...
    def stop(self, execution_arn: str, error: str, cause: str) -> bool: ...


@dataclass
class CancelDependencies(SlotDependencies):
    approvals: ApprovalStore
    pipeline: Pipeline


class CancelResult(BaseModel):
    deployment_id: str
    previous_status: DeploymentStatus
    status: DeploymentStatus
    reason: str
    execution_arn: str | None = None
    execution_stopped: bool = False
    also_cancelled: list[str] = Field(
        default_factory=list,
        description="other deployments of the same execution, which stopped with it",
    )
    slot_handed_to: list[str] = Field(
        default_factory=list, description="queued deployments that now proceed"
    )


def cancel_deployment(
    project: str, deployment_id: str, who: str, why: str, deps: CancelDependencies
) -> CancelResult:
    """Stop a deployment that waits for approval, is queued, or runs: its execution is
    stopped (with the execution's other unfinished deployments, which are recorded
    cancelled too), it is recorded CANCELLED with who and why, and its slot or queue
    place goes to the next deployment in line."""
    deployment = _deployment(deps, project, deployment_id)
    if deployment.status.finished:
        return _free_finished_holder(deployment, who, deps)
    reason = f"cancelled by {who}" + (f": {why}" if why else "")
    result = CancelResult(
        deployment_id=deployment.id,
        previous_status=deployment.status,
        status=DeploymentStatus.CANCELLED,
        reason=reason,
    )
    siblings: list[Deployment] = []
    if deployment.execution:
        arn = deps.pipeline.execution_arn(deployment.execution)
        result.execution_arn = arn
        siblings = [
            d
            for d in deps.deployments.list_deployments(project)
            if d.execution == deployment.execution
            and d.id != deployment.id
            and not d.status.finished
        ]
        result.execution_stopped = deps.pipeline.stop(arn, CANCELLED_ERROR, reason)
    elif deployment.status is DeploymentStatus.DEPLOYING:
        raise ConflictError(
            f"deployment {deployment.id} runs in an execution Shiplane did not record: "
            "stop it from the Step Functions console",
            field="path.deployment_id",
        )
    if not deps.deployments.finish_deployment(
        deployment, DeploymentStatus.CANCELLED, reason, Diagnosis()
    ):
        _refuse_finished(_deployment(deps, project, deployment_id))  # it ended meanwhile
    deps.deployments.add_timeline(project, deployment.id, f"deployment CANCELLED: {reason}")
    ended = [deployment]
    for other in siblings:
        because = f"{reason} (stopped with deployment {deployment.id}, same execution)"
        if deps.deployments.finish_deployment(
            other, DeploymentStatus.CANCELLED, because, Diagnosis()
        ):
            deps.deployments.add_timeline(project, other.id, f"deployment CANCELLED: {because}")
            result.also_cancelled.append(other.id)
            ended.append(other)
    for each in ended:
        woken = _free(each, who, reason, deps)
        if woken:
            deps.deployments.add_timeline(project, each.id, f"slot handed to deployment {woken}")
            result.slot_handed_to.append(woken)
    metrics.add_metric(name="DeploymentCancelled", unit="Count", value=len(ended))
    logger.info(
        "deployment cancelled",
        extra={"deployment": deployment.id, "also": result.also_cancelled},
    )
    return result


def _free_finished_holder(
    deployment: Deployment, who: str, deps: CancelDependencies
) -> CancelResult:
    """A finished deployment that still holds its slot (its execution died before it
    could hand it on) blocks everyone behind it: cancelling it frees the slot and keeps
    its recorded end. A finished deployment that holds nothing cannot be cancelled."""
    where = (deployment.project, deployment.environment, deployment.tenant)
    if deps.slots.slot_holder(*where) != deployment.id:
        _refuse_finished(deployment)
    woken = release_and_wake(deployment, deps)
    reason = f"slot freed by {who}: the deployment had ended {deployment.status.value}"
    deps.deployments.add_timeline(deployment.project, deployment.id, reason)
    logger.info("slot of a finished deployment freed", extra={"deployment": deployment.id})
    return CancelResult(
        deployment_id=deployment.id,
        previous_status=deployment.status,
        status=deployment.status,
        reason=reason,
        slot_handed_to=[woken] if woken else [],
    )


def _deployment(deps: CancelDependencies, project: str, deployment_id: str) -> Deployment:
    try:
        return deps.deployments.get_deployment(project, deployment_id)
    except NotFoundError:
        raise NotFoundError(
            f"project {project!r} has no deployment {deployment_id!r}",
            field="path.deployment_id",
        ) from None


def _refuse_finished(deployment: Deployment) -> None:
    if deployment.status.finished:
        raise ConflictError(
            f"deployment {deployment.id} has finished already ({deployment.status.value}): "
            "only a deployment that waits, is queued or runs can be cancelled",
            field="path.deployment_id",
            status=deployment.status.value,
        )


def _free(deployment: Deployment, who: str, reason: str, deps: CancelDependencies) -> str | None:
    """Leave no trace of the cancelled deployment in the waits: its pending approval is
    closed (rejected, saying so), its queue entry removed, its slot handed on. The waits'
    task tokens are failed too: without a stopped execution that moves it on to record
    the end; with one, Step Functions answers that the token is gone (no harm done)."""
    approval = deps.approvals.get_approval(deployment.project, deployment.id)
    if approval is not None and approval.status == "PENDING":
        # Decided meanwhile: nothing is pending either way.
        with contextlib.suppress(ShiplaneError):
            deps.approvals.decide_approval(deployment.project, deployment.id, False, who, reason)
        if approval.task_token:
            deps.tokens.fail(approval.task_token, CANCELLED_ERROR, reason)
    where = (deployment.project, deployment.environment, deployment.tenant)
    for entry in deps.slots.queued(*where):
        if entry.deployment_id == deployment.id:
            deps.slots.dequeue(deployment.project, entry.key)
            deps.tokens.fail(entry.task_token, CANCELLED_ERROR, reason)
    return release_and_wake(deployment, deps)
