"""A project's deployments: list, deploy / redeploy, promote, rollback (each starts the
deploy pipeline and answers 202), get one with its timeline and diagnosis, cancel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, Field

from shiplane.api.context import audit_record, caller
from shiplane.api.deps import ApiDependencies, deps
from shiplane.api.errors import responses
from shiplane.api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, paginate
from shiplane.api.routes.approvals import ApprovalView
from shiplane.api.work import Accepted, IdempotencyKey, ProjectName, accepted
from shiplane.domain.models import (
    Deployment,
    DeploymentMode,
    DeploymentStatus,
    TriggeredBy,
)
from shiplane.domain.requests import DeployAction
from shiplane.errors import NotFoundError
from shiplane.services.deployment_requests import (
    CancelDependencies,
    CancelRequest,
    CancelResult,
    DeploymentRequestDependencies,
    DeployRequest,
    PromoteRequest,
    RollbackRequest,
    cancel_deployment,
    deploy_action,
    deployment_id_of,
    execution_name,
    last_finished,
    promote_action,
    rollback_action,
)
from shiplane.services.release_requests import project_of

router = Router()

DeploymentId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9-]+$", description="a deployment")
]


class DeploymentSummary(BaseModel):
    id: str
    project: str
    release: str
    environment: str
    tenant: str
    mode: DeploymentMode
    status: DeploymentStatus
    triggered_by: TriggeredBy
    reason: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def of(cls, deployment: Deployment) -> DeploymentSummary:
        return cls.model_validate(deployment.model_dump(include=set(cls.model_fields)))


class DeploymentDetail(Deployment):
    execution_arn: str | None = Field(default=None, description="the pipeline execution")
    approval: ApprovalView | None = Field(
        default=None, description="when its environment requires one"
    )


def _requests(d: ApiDependencies) -> DeploymentRequestDependencies:
    return DeploymentRequestDependencies(config=d.store, releases=d.store, deployments=d.store)


def _start(
    kind: str,
    project: str,
    body: BaseModel,
    idempotency_key: str | None,
    salt: Callable[[], str],
    resolve: Callable[[], DeployAction],
) -> Response[Accepted]:
    """Start the pipeline for a deployment request, once: a request seen before (the same
    execution name) is answered as it was, without checking or starting anything again."""
    d = deps(router)
    execution = execution_name(kind, project, idempotency_key, body, salt())
    arn = d.pipeline.execution_arn(execution)
    previous = d.pipeline.describe(arn)
    if previous is not None:
        action, started = DeployAction.model_validate(previous["input"]), False
    else:
        action = resolve()
        arn, started = d.pipeline.start(execution, action.model_dump(mode="json"))
    deployment_id = deployment_id_of(action, execution)
    if started:
        d.store.put_audit(
            audit_record(router, f"project/{project}/deployment/{deployment_id}", after=action)
        )
    return accepted(
        Accepted(
            execution_arn=arn,
            started=started,
            project=project,
            release=action.release,
            environment=action.environment,
            tenant=action.tenant,
            deployment_id=deployment_id,
            poll=f"/projects/{project}/deployments/{deployment_id}",
        )
    )


@router.get(
    "/projects/<name>/deployments",
    tags=["deployments"],
    summary="A project's deployments, newest first",
    responses=responses(404, 422),
)
def list_deployments(
    name: ProjectName,
    environment: Annotated[str | None, Query(max_length=40)] = None,
    tenant: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[DeploymentStatus | None, Query()] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[DeploymentSummary]:
    d = deps(router)
    project_of(d.store, name)
    matching = [
        x
        for x in d.store.list_deployments(name)
        if (environment is None or x.environment == environment)
        and (tenant is None or x.tenant == tenant)
        and (status is None or x.status is status)
    ]
    page, following = paginate(
        matching, lambda x: f"{x.created_at.isoformat()}#{x.id}", cursor, limit, newest_first=True
    )
    return Page[DeploymentSummary](
        items=[DeploymentSummary.of(x) for x in page], next_cursor=following
    )


WORK = responses(400, 404, 409, 422, ok=202, ok_description="Accepted: the pipeline started")


@router.post(
    "/projects/<name>/deployments",
    tags=["deployments"],
    summary="Deploy a release to an environment (mode deploy), or the running one again "
    "(mode redeploy)",
    responses=WORK,
)
def create_deployment(
    name: ProjectName,
    body: Annotated[DeployRequest, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[Accepted]:
    d = deps(router)
    return _start(
        "deploy",
        name,
        body,
        idempotency_key,
        lambda: last_finished(d.store.list_deployments(name), body.environment, body.tenant),
        lambda: deploy_action(name, body, caller(router), _requests(d)),
    )


@router.post(
    "/projects/<name>/promote",
    tags=["deployments"],
    summary="Promote a release to the next environment the lifecycle allows (or a named one)",
    description="409 LifecycleViolation, naming the phase to complete first, when the "
    "lifecycle does not allow it yet.",
    responses=WORK,
)
def promote(
    name: ProjectName,
    body: Annotated[PromoteRequest, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[Accepted]:
    d = deps(router)
    return _start(
        "promote",
        name,
        body,
        idempotency_key,
        lambda: last_finished(
            d.store.list_deployments(name), body.environment, body.tenant, body.release
        ),
        lambda: promote_action(name, body, caller(router), _requests(d)),
    )


@router.post(
    "/projects/<name>/rollback",
    tags=["deployments"],
    summary="Deploy the last release that succeeded before the current one (or a named one)",
    responses=WORK,
)
def rollback(
    name: ProjectName,
    body: Annotated[RollbackRequest, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[Accepted]:
    d = deps(router)
    return _start(
        "rollback",
        name,
        body,
        idempotency_key,
        lambda: last_finished(d.store.list_deployments(name), body.environment, body.tenant),
        lambda: rollback_action(name, body, caller(router), _requests(d)),
    )


@router.get(
    "/projects/<name>/deployments/<deployment_id>",
    tags=["deployments"],
    summary="One deployment: targets, task definitions, stacks, timeline, diagnosis",
    responses=responses(404, 422),
)
def get_deployment(name: ProjectName, deployment_id: DeploymentId) -> DeploymentDetail:
    d = deps(router)
    project_of(d.store, name)
    try:
        deployment = d.store.get_deployment(name, deployment_id)
    except NotFoundError:
        raise NotFoundError(
            f"project {name!r} has no deployment {deployment_id!r}", field="path.deployment_id"
        ) from None
    approval = d.store.get_approval(name, deployment_id)
    return DeploymentDetail(
        **deployment.model_dump(),
        execution_arn=d.pipeline.execution_arn(deployment.execution)
        if deployment.execution
        else None,
        approval=ApprovalView.of(approval) if approval is not None else None,
    )


@router.post(
    "/projects/<name>/deployments/<deployment_id>/cancel",
    tags=["deployments"],
    summary="Cancel a deployment that waits for approval, is queued, or runs",
    description="Its execution is stopped, it is recorded CANCELLED with who and why, and "
    "the next deployment queued for its environment proceeds. 409 when it has finished.",
    responses=responses(404, 409, 422),
)
def cancel(
    name: ProjectName,
    deployment_id: DeploymentId,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> CancelResult:
    d = deps(router)
    project_of(d.store, name)
    reason = body.reason if body is not None else ""
    result = cancel_deployment(
        name,
        deployment_id,
        caller(router),
        reason,
        CancelDependencies(
            deployments=d.store,
            releases=d.store,
            slots=d.store,
            tokens=d.tokens,
            approvals=d.store,
            pipeline=d.pipeline,
        ),
    )
    d.store.put_audit(
        audit_record(
            router,
            f"project/{name}/deployment/{deployment_id}",
            before={"status": result.previous_status.value},
            after=result,
        )
    )
    return result
