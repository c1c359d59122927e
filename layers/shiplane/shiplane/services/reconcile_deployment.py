"""Reconcile Deployment: the wait timed out (events lost, or a rollout slower than the
step allows). One check of the stack and the service decides; nothing is left waiting."""

from __future__ import annotations

from dataclasses import dataclass

from shiplane.domain.models import (
    CloudFormationStep,
    DeploymentUnit,
    Diagnosis,
    Outcome,
    OutcomeStatus,
)
from shiplane.domain.naming import service_name
from shiplane.ports import (
    ConfigStore,
    DeploymentStore,
    ReleaseStore,
    StackWait,
    TargetGateways,
    WaitStore,
)
from shiplane.services.outcomes import capture_outputs, diagnose, outcome_from_stack
from shiplane.services.units import load_unit
from shiplane.validation import parse


@dataclass
class ReconcileDependencies:
    config: ConfigStore
    releases: ReleaseStore
    deployments: DeploymentStore
    waits: WaitStore
    gateways: TargetGateways


def reconcile_deployment(payload: object, deps: ReconcileDependencies) -> Outcome:
    unit = parse(DeploymentUnit, payload, "deployment unit")
    ctx = load_unit(unit, deps.config, deps.releases, deps.gateways)
    stored = deps.waits.get_wait(ctx.stack_key)
    wait = stored or StackWait(
        stack_key=ctx.stack_key,
        task_token="",
        deployment_id=unit.deployment_id,
        project=unit.project,
        target=unit.target,
        cluster=ctx.target.cluster,
        service=""
        if isinstance(ctx.step, CloudFormationStep)
        else service_name(ctx.step.service.name, unit.tenant),
        task_definition_arn=unit.task_definition_arn or "",
        step=unit.step,
    )
    stack = ctx.gateway.describe_stack(ctx.stack_name)
    outcome = outcome_from_stack(ctx.gateway, wait, ctx.stack_name, stack)
    if outcome is not None and outcome.status is OutcomeStatus.SUCCEEDED:
        capture_outputs(ctx.gateway, deps.deployments, wait, ctx.stack_name)
    if outcome is None:
        status = stack.status if stack else "missing"
        outcome = Outcome(
            status=OutcomeStatus.FAILED,
            reason=f"timed out after {unit.wait_timeout_seconds}s: stack {ctx.stack_name} is "
            f"still {status} and the service has not reached a steady state",
            stack_status=status,
            task_definition_arn=unit.task_definition_arn,
            diagnosis=diagnose(ctx.gateway, wait, ctx.stack_name) if stack else Diagnosis(),
        )
    if stored is not None:
        deps.waits.delete_wait(ctx.stack_key, stored.task_token)
    if outcome.status is OutcomeStatus.FAILED:
        deps.deployments.add_failed_unit(
            unit.project, unit.deployment_id, f"{unit.step} on {unit.target}"
        )
    deps.deployments.add_timeline(
        unit.project,
        unit.deployment_id,
        f"{unit.target}: wait timed out; reconciled as {outcome.status}: {outcome.reason}",
    )
    return outcome
