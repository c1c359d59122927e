"""Gate Promotion: record how each deployment ended, then let the lifecycle decide what
comes next: the automatic deployments of the phases the release has now reached, or a
stop to wait for a manual promotion."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field

from shiplane.domain.lifecycle import automatic_environments, reachable_phases
from shiplane.domain.models import (
    Deployment,
    DeploymentStatus,
    DeploymentUnit,
    Diagnosis,
    OutcomeStatus,
    TriggeredBy,
    TriggerKind,
    UnitResult,
)
from shiplane.observability import logger, metrics
from shiplane.ports import ConfigStore, DeploymentStore, ReleaseStore
from shiplane.services.planning import phases_for, plan_automatic
from shiplane.validation import parse


@dataclass
class GateDependencies:
    config: ConfigStore
    releases: ReleaseStore
    deployments: DeploymentStore
    now: Callable[[], datetime]


class GateRequest(BaseModel):
    outcomes: list[UnitResult]


class DeploymentSummary(BaseModel):
    deployment_id: str
    project: str
    release: str
    environment: str
    tenant: str
    status: DeploymentStatus
    reason: str


class GateResult(BaseModel):
    finished: list[DeploymentSummary] = Field(default_factory=list)
    units: list[DeploymentUnit] = Field(default_factory=list)
    failed: bool = False
    waiting_for: list[str] = Field(default_factory=list, description="manual environments")


def gate_promotion(payload: object, deps: GateDependencies) -> GateResult:
    request = parse(GateRequest, payload, "Gate Promotion request")
    by_deployment: dict[tuple[str, str], list[UnitResult]] = {}
    for result in request.outcomes:
        by_deployment.setdefault((result.project, result.deployment_id), []).append(result)

    gate = GateResult()
    for (project, deployment_id), results in by_deployment.items():
        deployment = deps.deployments.get_deployment(project, deployment_id)
        status, reason, diagnosis = _aggregate(results)
        first_time = deps.deployments.finish_deployment(deployment, status, reason, diagnosis)
        if first_time:
            deps.deployments.add_timeline(project, deployment_id, f"deployment {status}: {reason}")
            metrics.add_metric(name=f"Deployment{status.title()}", unit="Count", value=1)
        gate.finished.append(
            DeploymentSummary(
                deployment_id=deployment_id,
                project=project,
                release=deployment.release,
                environment=deployment.environment,
                tenant=deployment.tenant,
                status=status,
                reason=reason,
            )
        )
        if status is DeploymentStatus.FAILED:
            gate.failed = True
            continue
        units, waiting = _next_phase(deployment, deps)
        gate.units.extend(units)
        gate.waiting_for.extend(waiting)
    logger.info(
        "gate evaluated",
        extra={"next_units": len(gate.units), "failed": gate.failed, "waiting": gate.waiting_for},
    )
    return gate


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
            failures.append(f"{result.target}: {_error_text(result.error)}")
    if failures:
        return DeploymentStatus.FAILED, "; ".join(failures), diagnosis
    targets = ", ".join(sorted({r.target for r in results}))
    return DeploymentStatus.SUCCEEDED, f"deployed to {targets}", diagnosis


def _error_text(error: dict | None) -> str:
    """The state machine's caught error: {"Error": name, "Cause": Lambda error JSON}."""
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
    return f"{name}: {message}" if message else name


def _next_phase(
    deployment: Deployment, deps: GateDependencies
) -> tuple[list[DeploymentUnit], list[str]]:
    release = deps.releases.get_release(deployment.project, deployment.release)
    if release is None:
        return [], []
    phases = phases_for(deps.config, release)
    succeeded = deps.deployments.succeeded_environments(
        release.project, release.version, deployment.tenant
    )
    claimed = deps.deployments.claimed_environments(
        release.project, release.version, deployment.tenant
    )
    environments = automatic_environments(phases, succeeded, claimed)
    trigger = TriggeredBy(
        kind=TriggerKind.PROMOTION, by=f"lifecycle after {deployment.environment}"
    )
    units: list[DeploymentUnit] = []
    targets = deps.config.list_targets()
    for planned in plan_automatic(
        release, environments, deployment.tenant, trigger, targets, deps.now
    ):
        # The claim makes promotion idempotent: a re-run gate starts nothing twice.
        if deps.deployments.create_deployments([planned.deployment], ["claim"]):
            units.extend(planned.units)
    waiting = [
        entry.environment
        for phase in reachable_phases(phases, succeeded)
        for entry in phase.environments
        if entry.environment not in succeeded | claimed | set(environments)
    ]
    return units, waiting
