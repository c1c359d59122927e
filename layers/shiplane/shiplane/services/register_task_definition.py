"""Register Task Definition: render the step's task definition for one unit (images
pinned by digest) and register it in the target's account."""

from __future__ import annotations

from dataclasses import dataclass

from shiplane.domain.models import DeploymentUnit
from shiplane.observability import logger
from shiplane.ports import ConfigStore, DeploymentStore, ReleaseStore, TargetGateways
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


def register_task_definition(payload: object, deps: RegisterDependencies) -> DeploymentUnit:
    unit = parse(DeploymentUnit, payload, "deployment unit")
    ctx = load_unit(unit, deps.config, deps.releases, deps.gateways)
    settings = evaluate_step(
        ctx.release, ctx.step, unit.environment, ctx.tenant, ctx.target, unit.deployment_id
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
