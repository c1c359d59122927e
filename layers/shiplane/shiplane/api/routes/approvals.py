"""Approvals: the pending ones across projects, a project's, and the decision (approve or
reject, with a note; who is the IAM caller)."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from shiplane.api.context import audit_record, caller
from shiplane.api.deps import deps
from shiplane.api.errors import responses
from shiplane.api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, paginate
from shiplane.api.work import ProjectName
from shiplane.errors import ConflictError, NotFoundError
from shiplane.ports import Approval
from shiplane.services.approvals import ApprovalDependencies, decide_approval
from shiplane.services.release_requests import project_of

router = Router()

ApprovalStatus = Literal["PENDING", "APPROVED", "REJECTED"]
DeploymentId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9-]+$", description="a deployment")
]


class ApprovalView(BaseModel):
    """An approval as the API shows it (never its task token)."""

    project: str
    deployment_id: str
    release: str
    environment: str
    tenant: str
    status: ApprovalStatus
    decided_by: str = ""
    note: str = ""
    requested_at: str = ""
    decided_at: str = ""

    @classmethod
    def of(cls, approval: Approval) -> ApprovalView:
        return cls(
            project=approval.project,
            deployment_id=approval.deployment_id,
            release=approval.release,
            environment=approval.environment,
            tenant=approval.tenant,
            status=approval.status,
            decided_by=approval.decided_by,
            note=approval.note,
            requested_at=approval.requested_at,
            decided_at=approval.decided_at,
        )


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000, description="why (recorded)")


def _key(approval: ApprovalView) -> str:
    return f"{approval.requested_at}#{approval.project}#{approval.deployment_id}"


@router.get(
    "/approvals",
    tags=["approvals"],
    summary="Pending approvals of every project, the longest waiting first",
    responses=responses(422),
)
def list_pending(
    limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[ApprovalView]:
    store = deps(router).store
    pending = [
        ApprovalView.of(a)
        for project in store.list_projects()
        for a in store.list_approvals(project.name)
        if a.status == "PENDING"
    ]
    page, following = paginate(pending, _key, cursor, limit)
    return Page[ApprovalView](items=page, next_cursor=following)


@router.get(
    "/projects/<name>/approvals",
    tags=["approvals"],
    summary="A project's approvals, the oldest first",
    responses=responses(404, 422),
)
def list_project_approvals(
    name: ProjectName,
    status: Annotated[ApprovalStatus | None, Query()] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ApprovalView]:
    store = deps(router).store
    project_of(store, name)
    found = [
        ApprovalView.of(a)
        for a in store.list_approvals(name)
        if status is None or a.status == status
    ]
    page, following = paginate(found, _key, cursor, limit)
    return Page[ApprovalView](items=page, next_cursor=following)


def _decide(name: str, deployment_id: str, approve: bool, note: str) -> ApprovalView:
    d = deps(router)
    project_of(d.store, name)
    current = d.store.get_approval(name, deployment_id)
    if current is None:
        raise NotFoundError(
            f"deployment {deployment_id!r} of project {name!r} awaits no approval",
            field="path.deployment_id",
        )
    if current.status != "PENDING":
        raise ConflictError(
            f"deployment {deployment_id!r} was already {current.status.lower()} by "
            f"{current.decided_by or 'someone'}",
            field="path.deployment_id",
            status=current.status,
        )
    decided = decide_approval(
        {
            "project": name,
            "deployment_id": deployment_id,
            "approve": approve,
            "by": caller(router),
            "note": note,
        },
        ApprovalDependencies(deployments=d.store, approvals=d.store, tokens=d.tokens),
    )
    view = ApprovalView.of(decided)
    d.store.put_audit(
        audit_record(
            router,
            f"project/{name}/approval/{deployment_id}",
            before=ApprovalView.of(current),
            after=view,
        )
    )
    return view


DECIDE = responses(400, 404, 409, 422)


@router.post(
    "/projects/<name>/approvals/<deployment_id>/approve",
    tags=["approvals"],
    summary="Approve a deployment waiting for approval",
    responses=DECIDE,
)
def approve(
    name: ProjectName,
    deployment_id: DeploymentId,
    body: Annotated[DecisionRequest | None, Body()] = None,
) -> ApprovalView:
    return _decide(name, deployment_id, True, body.note if body else "")


@router.post(
    "/projects/<name>/approvals/<deployment_id>/reject",
    tags=["approvals"],
    summary="Reject a deployment waiting for approval (it is recorded REJECTED)",
    responses=DECIDE,
)
def reject(
    name: ProjectName,
    deployment_id: DeploymentId,
    body: Annotated[DecisionRequest | None, Body()] = None,
) -> ApprovalView:
    return _decide(name, deployment_id, False, body.note if body else "")
