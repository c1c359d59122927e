"""Record Deployment: how one deployment ended — from its units' outcomes, or from the
approval or slot wait that stopped it — recorded once; then its slot goes to the next
deployment in line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from shiplane.domain.models import (
    DeploymentStatus,
    DeploymentTask,
    Diagnosis,
    OutcomeStatus,
    UnitResult,
)
from shiplane.observability import metrics
from shiplane.services.approvals import REJECTED_ERROR
from shiplane.services.slots import SlotDependencies, release_and_wake
from shiplane.validation import parse


class RecordRequest(DeploymentTask):
    results: list[UnitResult] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    slot: dict[str, Any] | None = None


class DeploymentSummary(BaseModel):
    deployment_id: str
    project: str
    release: str
    environment: str
    tenant: str
    status: DeploymentStatus
    reason: str


@dataclass
class RecordDependencies(SlotDependencies):
    pass


def record_deployment(payload: object, deps: RecordDependencies) -> DeploymentSummary:
    request = parse(RecordRequest, payload, "Record Deployment request")
    deployment = deps.deployments.get_deployment(request.project, request.deployment_id)
    status, reason, diagnosis = _conclude(request)
    if deps.deployments.finish_deployment(deployment, status, reason, diagnosis):
        deps.deployments.add_timeline(
            request.project, request.deployment_id, f"deployment {status}: {reason}"
        )
        metrics.add_metric(name=f"Deployment{status.title()}", unit="Count", value=1)
    woken = release_and_wake(deployment, deps)
    if woken:
        deps.deployments.add_timeline(
            request.project, request.deployment_id, f"slot handed to deployment {woken}"
        )
    return DeploymentSummary(
        deployment_id=request.deployment_id,
        project=request.project,
        release=request.release,
        environment=request.environment,
        tenant=request.tenant,
        status=status,
        reason=reason,
    )


def _conclude(request: RecordRequest) -> tuple[DeploymentStatus, str, Diagnosis]:
    if request.slot and request.slot.get("duplicate_of"):
        twin = request.slot["duplicate_of"]
        return (
            DeploymentStatus.SKIPPED,
            f"duplicate: deployment {twin} of release {request.release} is queued or running "
            f"in {request.environment}/{request.tenant}; ask for mode redeploy to deploy it "
            "again",
            Diagnosis(),
        )
    if request.slot and request.slot.get("superseded_by"):
        newer = request.slot["superseded_by"]
        return (
            DeploymentStatus.SKIPPED,
            f"superseded: release {newer} is already deployed to {request.environment}",
            Diagnosis(),
        )
    if request.error is not None:
        name = str(request.error.get("Error", "Error"))
        text = error_text(request.error)
        if name == REJECTED_ERROR:
            return DeploymentStatus.REJECTED, text, Diagnosis()
        if name == "States.Timeout":
            return (
                DeploymentStatus.FAILED,
                "timed out waiting for an approval or for the deployment slot",
                Diagnosis(),
            )
        return DeploymentStatus.FAILED, text, Diagnosis()
    return _aggregate(request.results)


def _aggregate(results: list[UnitResult]) -> tuple[DeploymentStatus, str, Diagnosis]:
    failures: list[str] = []
    diagnosis = Diagnosis()
    for result in results:
        if result.outcome is not None and result.outcome.status is OutcomeStatus.SUCCEEDED:
            continue
        if result.outcome is not None:
            failures.append(f"{result.target}: {result.outcome.reason}")
            d = result.outcome.diagnosis
            diagnosis.stopped_tasks += d.stopped_tasks
            diagnosis.service_events += d.service_events
            diagnosis.stack_events += d.stack_events
        else:
            failures.append(f"{result.target}: {error_text(result.error)}")
    if not results:
        return DeploymentStatus.FAILED, "the deployment had no units", diagnosis
    if failures:
        return DeploymentStatus.FAILED, "; ".join(failures), diagnosis
    targets = ", ".join(sorted({r.target for r in results}))
    return DeploymentStatus.SUCCEEDED, f"deployed to {targets}", diagnosis


def error_text(error: dict[str, Any] | None) -> str:
    """The state machine's caught error: {"Error": name, "Cause": Lambda error JSON or text}."""
    if not error:
        return "the unit ended without an outcome"
    name = str(error.get("Error", "Error"))
    cause = str(error.get("Cause", ""))
    try:
        message = json.loads(cause).get("errorMessage", cause)
    except (ValueError, AttributeError):
        message = cause
    if name == "States.Timeout":
        return "timed out waiting for the rollout"
    if name == REJECTED_ERROR:
        return message or "rejected"
    return f"{name}: {message}" if message else name


def note_unit_failure(payload: object, deps: RecordDependencies) -> None:
    """A unit ended in error (not through a rollout outcome): the deployment's later units
    must not deploy."""
    unit = parse(UnitResult, payload, "failed unit")
    deps.deployments.add_failed_unit(
        unit.project, unit.deployment_id, f"{unit.step} on {unit.target}"
    )
