"""Settle Execution: a deploy-pipeline execution that failed, timed out or was aborted
leaves no deployment behind it. Every deployment it was running that has not ended is
recorded FAILED with the execution's reason, its queue place is given up (the task token
there died with the execution), and its slot is handed to the next deployment in line.

Driven by Step Functions' "Execution Status Change" events. Safe to repeat: a second
delivery finds every deployment ended and every slot already handed on."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from shiplane.domain.models import DeploymentStatus, Diagnosis
from shiplane.domain.requests import ExecutionStatusChangeEvent
from shiplane.observability import logger, metrics
from shiplane.services.slots import SlotDependencies, release_and_wake
from shiplane.validation import parse

ENDED_BADLY = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


@dataclass
class SettleDependencies(SlotDependencies):
    pass


class SettleResult(BaseModel):
    execution: str
    status: str
    ended: list[str] = Field(default_factory=list, description="deployments recorded FAILED")
    slot_handed_to: list[str] = Field(default_factory=list)
    message: str = ""


def settle_execution(payload: object, deps: SettleDependencies) -> SettleResult:
    event = parse(ExecutionStatusChangeEvent, payload, "Step Functions execution status event")
    detail = event.detail
    result = SettleResult(execution=detail.name, status=detail.status)
    if detail.status not in ENDED_BADLY:
        result.message = f"execution {detail.name} is {detail.status}: nothing to settle"
        return result
    reason = _reason(detail.name, detail.status, detail.error, detail.cause)
    for deployment in deps.deployments.deployments_of_execution(detail.name):
        if not deployment.status.finished and deps.deployments.finish_deployment(
            deployment, DeploymentStatus.FAILED, reason, Diagnosis()
        ):
            deps.deployments.add_timeline(
                deployment.project, deployment.id, f"deployment FAILED: {reason}"
            )
            result.ended.append(deployment.id)
        where = (deployment.project, deployment.environment, deployment.tenant)
        for entry in deps.slots.queued(*where):
            if entry.deployment_id == deployment.id:
                deps.slots.dequeue(deployment.project, entry.key)
        woken = release_and_wake(deployment, deps)
        if woken and woken != deployment.id:
            deps.deployments.add_timeline(
                deployment.project, deployment.id, f"slot handed to deployment {woken}"
            )
            result.slot_handed_to.append(woken)
    if result.ended:
        metrics.add_metric(name="DeploymentsSettled", unit="Count", value=len(result.ended))
    logger.info(
        "execution settled",
        extra={"execution": detail.name, "status": detail.status, "ended": result.ended},
    )
    result.message = (
        f"execution {detail.name} {detail.status}: {len(result.ended)} deployment(s) ended"
    )
    return result


def _reason(name: str, status: str, error: str | None, cause: str | None) -> str:
    what = {"FAILED": "failed", "TIMED_OUT": "timed out", "ABORTED": "was aborted"}[status]
    why = ": ".join(part for part in (error, (cause or "")[:500]) if part)
    return f"its pipeline execution {name} {what}" + (f" ({why})" if why else "")
