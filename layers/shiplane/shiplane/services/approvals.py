"""Approvals: a deployment to an environment that requires one waits on a task token
until a person approves or rejects it (with a note, and who)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from shiplane.domain.models import DeploymentTask
from shiplane.observability import logger, metrics
from shiplane.ports import Approval, ApprovalStore, DeploymentStore, TaskTokens
from shiplane.validation import parse

REJECTED_ERROR = "ApprovalRejectedError"


@dataclass
class ApprovalDependencies:
    deployments: DeploymentStore
    approvals: ApprovalStore
    tokens: TaskTokens


class RequestApprovalRequest(BaseModel):
    task: DeploymentTask
    task_token: str = Field(min_length=1)


class Decision(BaseModel):
    project: str = Field(min_length=1)
    deployment_id: str = Field(min_length=1)
    approve: bool
    by: str = Field(min_length=1, max_length=256, description="who decides")
    note: str = Field(default="", max_length=2000)


def request_approval(payload: object, deps: ApprovalDependencies) -> Approval:
    request = parse(RequestApprovalRequest, payload, "Request Approval request")
    task, token = request.task, request.task_token
    deployment = deps.deployments.get_deployment(task.project, task.deployment_id)
    approval = deps.approvals.request_approval(deployment, token)
    if approval.status == "APPROVED":
        deps.tokens.succeed(token, {"approved_by": approval.decided_by, "note": approval.note})
    elif approval.status == "REJECTED":
        deps.tokens.fail(token, REJECTED_ERROR, _rejection(approval))
    else:
        deps.deployments.add_timeline(
            task.project,
            task.deployment_id,
            f"waiting for approval to deploy to {task.environment}",
        )
        metrics.add_metric(name="ApprovalRequested", unit="Count", value=1)
    return approval


def decide_approval(payload: object, deps: ApprovalDependencies) -> Approval:
    decision = parse(Decision, payload, "approval decision")
    approval = deps.approvals.decide_approval(
        decision.project, decision.deployment_id, decision.approve, decision.by, decision.note
    )
    if decision.approve:
        deps.tokens.succeed(
            approval.task_token, {"approved_by": decision.by, "note": decision.note}
        )
        message = f"approved by {decision.by}" + (f": {decision.note}" if decision.note else "")
    else:
        deps.tokens.fail(approval.task_token, REJECTED_ERROR, _rejection(approval))
        message = f"rejected by {decision.by}" + (f": {decision.note}" if decision.note else "")
    deps.deployments.add_timeline(decision.project, decision.deployment_id, message)
    logger.info(
        "approval decided",
        extra={"deployment": decision.deployment_id, "approve": decision.approve},
    )
    return approval


def _rejection(approval: Approval) -> str:
    return f"rejected by {approval.decided_by}" + (f": {approval.note}" if approval.note else "")
