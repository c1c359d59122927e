"""Settle Execution: a deploy-pipeline execution that failed, timed out or was aborted
leaves no deployment behind it. Every deployment it was running that has not ended is
recorded FAILED with the execution's reason, its queue place is given up (the task token
there died with the execution), and its slot is handed to the next deployment in line.

Driven by Step Functions' "Execution Status Change" events. Safe to repeat: a second
delivery finds every deployment ended and every slot already handed on.

Step Functions sends those events best effort, so a scheduled sweep (`sweep_executions`)
is the backstop: every execution given deployments is listed as live when they are
written; the sweep asks Step Functions how each one ended (oldest first, within the
invocation's time) and settles those that are no longer running the same way. An
execution that ended while a deployment of it had not (whatever its status) is settled
too: nothing would ever end that deployment otherwise."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pydantic import BaseModel, Field

from shiplane.domain.models import DeploymentStatus, Diagnosis
from shiplane.domain.requests import ExecutionStatusChangeEvent
from shiplane.observability import logger, metrics
from shiplane.ports import ExecutionLookup, LiveExecutionStore
from shiplane.services.slots import SlotDependencies, release_and_wake
from shiplane.validation import parse

ENDED_BADLY = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


@dataclass
class SettleDependencies(SlotDependencies):
    live: LiveExecutionStore
    executions: ExecutionLookup


class SettleResult(BaseModel):
    execution: str
    status: str
    ended: list[str] = Field(default_factory=list, description="deployments recorded FAILED")
    slot_handed_to: list[str] = Field(default_factory=list)
    message: str = ""


def settle_execution(payload: object, deps: SettleDependencies) -> SettleResult:
    event = parse(ExecutionStatusChangeEvent, payload, "Step Functions execution status event")
    detail = event.detail
    if detail.status not in ENDED_BADLY:
        return SettleResult(
            execution=detail.name,
            status=detail.status,
            message=f"execution {detail.name} is {detail.status}: nothing to settle",
        )
    return _settle(detail.name, detail.status, detail.error, detail.cause, deps)


class SweepResult(BaseModel):
    checked: int = 0
    running: int = 0
    settled: list[SettleResult] = Field(default_factory=list)
    left_for_next_sweep: int = Field(0, description="not checked: the invocation's time ran out")
    message: str = ""


def sweep_executions(deps: SettleDependencies, seconds: float | None = None) -> SweepResult:
    """Settle every live execution that has ended; after `seconds` the rest is left to the
    next sweep."""
    deadline = None if seconds is None else time.monotonic() + seconds
    result = SweepResult()
    live = deps.live.live_executions()
    for position, execution in enumerate(live):  # oldest first
        if deadline is not None and time.monotonic() > deadline:
            result.left_for_next_sweep = len(live) - position
            break
        result.checked += 1
        outcome = deps.executions.outcome(deps.executions.execution_arn(execution.name))
        if outcome is None:  # expired (90 days) or never started: its deployments are orphans
            settled = _settle(execution.name, "LOST", None, None, deps)
        elif outcome.status == "RUNNING":
            result.running += 1
            continue
        else:
            settled = _settle(execution.name, outcome.status, outcome.error, outcome.cause, deps)
        if settled.ended or settled.slot_handed_to:
            result.settled.append(settled)
    if result.settled:
        logger.warning(
            "sweep settled executions whose status event never came",
            extra={"executions": [s.execution for s in result.settled]},
        )
    result.message = (
        f"{result.checked} execution(s) checked, {result.running} running, "
        f"{len(result.settled)} settled"
    )
    return result


def _settle(
    name: str, status: str, error: str | None, cause: str | None, deps: SettleDependencies
) -> SettleResult:
    result = SettleResult(execution=name, status=status)
    reason = _reason(name, status, error, cause)
    for deployment in deps.deployments.deployments_of_execution(name):
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
    # Last: a crash before this leaves it listed, and the next sweep finishes the work.
    deps.live.forget_execution(name)
    if result.ended:
        metrics.add_metric(name="DeploymentsSettled", unit="Count", value=len(result.ended))
    logger.info(
        "execution settled", extra={"execution": name, "status": status, "ended": result.ended}
    )
    result.message = f"execution {name} {status}: {len(result.ended)} deployment(s) ended"
    return result


def _reason(name: str, status: str, error: str | None, cause: str | None) -> str:
    what = {
        "FAILED": "failed",
        "TIMED_OUT": "timed out",
        "ABORTED": "was aborted",
        "SUCCEEDED": "ended without ending it",
        "PENDING_REDRIVE": "failed (pending redrive)",
        "LOST": "is unknown to Step Functions",
    }.get(status, f"ended {status}")
    why = ": ".join(part for part in (error, (cause or "")[:500]) if part)
    return f"its pipeline execution {name} {what}" + (f" ({why})" if why else "")
