"""Gate Promotion: let the lifecycle decide what comes after the deployments that just
finished — the automatic deployments of the phases each release has now reached (per
tenant), or a stop to wait for a manual promotion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field

from shiplane.domain.lifecycle import automatic_environments, reachable_phases
from shiplane.domain.models import DeploymentStatus, DeploymentTask, TriggeredBy, TriggerKind
from shiplane.observability import logger
from shiplane.ports import ConfigStore, DeploymentStore, ReleaseStore
from shiplane.services.planning import (
    World,
    phases_for,
    plan_automatic,
    resumable,
    tenants_for,
)
from shiplane.services.record_deployment import DeploymentSummary
from shiplane.validation import parse


@dataclass
class GateDependencies:
    config: ConfigStore
    releases: ReleaseStore
    deployments: DeploymentStore
    now: Callable[[], datetime]


class GateRequest(BaseModel):
    finished: list[DeploymentSummary]
    execution: str = Field(default="", description="the execution that runs the next phase")


class GateResult(BaseModel):
    finished: list[DeploymentSummary] = Field(default_factory=list)
    deployments: list[DeploymentTask] = Field(default_factory=list)
    failed: bool = False
    waiting_for: list[str] = Field(default_factory=list, description="manual environments")


def gate_promotion(payload: object, deps: GateDependencies) -> GateResult:
    request = parse(GateRequest, payload, "Gate Promotion request")
    gate = GateResult(finished=request.finished)
    world: World | None = None
    for summary in request.finished:
        if summary.status in (DeploymentStatus.FAILED, DeploymentStatus.REJECTED):
            gate.failed = True
        if summary.status is not DeploymentStatus.SUCCEEDED:
            continue
        world = world or World.load(deps.config)
        tasks, waiting = _next_phase(summary, world, deps, request.execution)
        gate.deployments.extend(tasks)
        gate.waiting_for.extend(w for w in waiting if w not in gate.waiting_for)
    logger.info(
        "gate evaluated",
        extra={
            "next": len(gate.deployments),
            "failed": gate.failed,
            "waiting": gate.waiting_for,
        },
    )
    return gate


def _next_phase(
    summary: DeploymentSummary, world: World, deps: GateDependencies, execution: str
) -> tuple[list[DeploymentTask], list[str]]:
    release = deps.releases.get_release(summary.project, summary.release)
    if release is None:
        return [], []
    project = deps.config.get_project(summary.project)
    phases = phases_for(deps.config, release)
    tenant = summary.tenant
    succeeded = deps.deployments.succeeded_environments(release.project, release.version, tenant)
    claimed = deps.deployments.claimed_environments(release.project, release.version, tenant)
    environments = automatic_environments(phases, succeeded, claimed)
    # Claimed already, maybe by an earlier attempt of this same gate that failed after
    # its write: those are planned again, and started only if that is what happened.
    reclaimable = [e for e in automatic_environments(phases, succeeded, ()) if e in claimed]
    trigger = TriggeredBy(kind=TriggerKind.PROMOTION, by=f"lifecycle after {summary.environment}")
    tasks: list[DeploymentTask] = []
    for planned in plan_automatic(
        project, release, environments, [tenant], trigger, world, deps.now, execution
    ):
        # The claim makes promotion idempotent: a re-run gate starts nothing twice.
        if deps.deployments.create_deployments([planned.deployment], ["claim"]):
            tasks.append(planned.task)
    for planned in plan_automatic(
        project, release, reclaimable, [tenant], trigger, world, deps.now, execution
    ):
        if resumable(planned, execution, deps.deployments):
            tasks.append(planned.task)
    waiting = [
        entry.environment
        for phase in reachable_phases(phases, succeeded)
        for entry in phase.environments
        if entry.environment not in succeeded | claimed | set(environments)
        and tenant in tenants_for(project, release, world, entry.environment)
    ]
    return tasks, waiting
