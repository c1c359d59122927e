"""Register Task Definition: render the step's task definition for one unit (images
pinned by digest) and register it in the target's account."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shiplane.domain.models import CloudFormationStep, DeploymentUnit
from shiplane.errors import EarlierStepFailedError, TargetUnavailableError
from shiplane.observability import logger
from shiplane.ports import (
    ConfigStore,
    DeploymentStore,
    ReleaseStore,
    TargetGateways,
    TargetHealthStore,
)
from shiplane.rendering.task_definition import render_task_definition
from shiplane.services.evaluation import evaluate_step
from shiplane.services.units import load_unit
from shiplane.validation import parse


@dataclass
class RegisterDependencies:
    config: ConfigStore
    releases: ReleaseStore
    deployments: DeploymentStore
    gateways: TargetGateways
    # None: target health is neither consulted nor fed (tests of other concerns)
    health: TargetHealthStore | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def register_task_definition(payload: object, deps: RegisterDependencies) -> DeploymentUnit:
    unit = parse(DeploymentUnit, payload, "deployment unit")
    deployment = deps.deployments.get_deployment(unit.project, unit.deployment_id)
    if deployment.failed_units:
        # Units run in step order: what comes after a failure is not deployed.
        raise EarlierStepFailedError(
            f"{unit.step} on {unit.target} not deployed: {', '.join(deployment.failed_units)} "
            "failed earlier in this deployment"
        )
    _refuse_unhealthy_target(unit.target, deps)
    ctx = load_unit(unit, deps.config, deps.releases, deps.gateways)
    if deps.health is not None:
        # What the health check compares with the events seen: a deployment started here.
        deps.health.record_target_deployment(ctx.target.account_id, ctx.target.region, deps.now())
    if isinstance(ctx.step, CloudFormationStep):
        return unit  # no task definition: Deploy Stack renders the template
    outputs = deployment.outputs
    settings = evaluate_step(
        ctx.release,
        ctx.step,
        unit.environment,
        ctx.tenant,
        ctx.target,
        unit.deployment_id,
        step_outputs=outputs,
    )
    definition = render_task_definition(
        ctx.step, ctx.release, unit, settings, region=ctx.target.region
    )
    arn = ctx.gateway.register_task_definition(definition)
    deps.deployments.mark_deploying(
        unit.project,
        unit.deployment_id,
        unit.target,
        task_definition_arns=arn,
        stacks=ctx.stack_name,
    )
    deps.deployments.add_timeline(
        unit.project, unit.deployment_id, f"{unit.target}: registered {arn}"
    )
    logger.info("task definition registered", extra={"arn": arn, "target": unit.target})
    return unit.model_copy(update={"task_definition_arn": arn, "stack_name": ctx.stack_name})


def _refuse_unhealthy_target(target: str, deps: RegisterDependencies) -> None:
    """Fail fast on a target whose last health check failed (never checked: healthy),
    before assuming its role or rendering anything."""
    health = deps.health.get_target_health(target) if deps.health is not None else None
    if health is None or health.healthy:
        return
    raise TargetUnavailableError(
        f"target {target!r} is unhealthy: {'; '.join(health.reasons)} "
        f"(health check at {health.checked_at.isoformat()})",
        target=target,
        reasons=health.reasons,
    )
