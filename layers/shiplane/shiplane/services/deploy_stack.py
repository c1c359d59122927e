"""Deploy Stack: create or update the unit's service stack, then let the state machine
wait on its task token. The token is stored under the stack *before* the change, so no
event can arrive unclaimed; the deployment-events function completes it."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from shiplane.domain.models import CloudFormationStep, DeploymentUnit, Outcome, OutcomeStatus
from shiplane.domain.naming import service_name
from shiplane.errors import InvalidRequestError, StackBusyError, StackDeadError
from shiplane.observability import logger
from shiplane.ports import (
    ConfigStore,
    DeploymentStore,
    ReleaseStore,
    StackState,
    StackWait,
    TargetGateways,
    TaskTokens,
    WaitStore,
)
from shiplane.rendering.cloudformation_step import render_cloudformation_step
from shiplane.rendering.service_stack import render_service_stack
from shiplane.rendering.task_definition import shiplane_tags
from shiplane.services.evaluation import unit_lookup
from shiplane.services.outcomes import capture_outputs
from shiplane.services.units import UnitContext, load_unit
from shiplane.validation import parse

# A failed first create leaves a stack that can only be deleted; CloudFormation deletes
# it quickly and the retried Deploy Stack then creates it afresh.
DELETE_AND_RETRY = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"})


@dataclass
class DeployDependencies:
    config: ConfigStore
    releases: ReleaseStore
    deployments: DeploymentStore
    waits: WaitStore
    gateways: TargetGateways
    tokens: TaskTokens


class DeployStackRequest(BaseModel):
    unit: DeploymentUnit
    task_token: str = Field(min_length=1)


def deploy_stack(payload: object, deps: DeployDependencies) -> None:
    request = parse(DeployStackRequest, payload, "Deploy Stack request")
    unit = request.unit
    ctx = load_unit(unit, deps.config, deps.releases, deps.gateways)
    step = ctx.step
    if isinstance(step, CloudFormationStep):
        # Rendered (and refused) before anything changes: a bad value leaves no stack.
        outputs = deps.deployments.get_deployment(unit.project, unit.deployment_id).outputs
        lookup = unit_lookup(
            ctx.release,
            step,
            unit.environment,
            ctx.tenant,
            ctx.target,
            unit.deployment_id,
            step_outputs=outputs,
        )
        rendered = render_cloudformation_step(step, lookup)
        template, parameters = rendered.template, rendered.parameters
        tags = {**step.tags, **shiplane_tags(unit)}
        role = step.role_arn or ctx.target.stack_role_arn
        capabilities: list[str] = list(step.capabilities)
        service = ""
        unchanged = "no changes: the stack already matches the template and parameters"
        deps.deployments.mark_deploying(
            unit.project, unit.deployment_id, unit.target, stacks=ctx.stack_name
        )
    else:
        if not unit.task_definition_arn:
            raise InvalidRequestError("the unit has no task_definition_arn: register it first")
        template = render_service_stack(
            step, ctx.target, unit.tenant, project=unit.project, environment=unit.environment
        )
        parameters = {"TaskDefinitionArn": unit.task_definition_arn}
        tags = shiplane_tags(unit)
        role = ctx.target.stack_role_arn
        capabilities = []
        service = service_name(step.service.name, unit.tenant)
        unchanged = "no changes: the stack already runs this task definition"
    existing = _clear_dead_state(ctx, deps, role)

    wait = StackWait(
        stack_key=ctx.stack_key,
        task_token=request.task_token,
        deployment_id=unit.deployment_id,
        project=unit.project,
        target=unit.target,
        cluster=ctx.target.cluster,
        service=service,
        task_definition_arn=unit.task_definition_arn or "",
        step=unit.step,
    )
    deps.waits.put_wait(wait)
    try:
        if existing is None:
            ctx.gateway.create_stack(
                ctx.stack_name, template, parameters, tags, role, capabilities=capabilities
            )
            action = "creating"
        elif (
            ctx.gateway.update_stack(
                ctx.stack_name, template, parameters, tags, role, capabilities=capabilities
            )
            is None
        ):
            _finish_now(deps, wait, unchanged, ctx)
            return
        else:
            action = "updating"
    except Exception:
        deps.waits.delete_wait(wait.stack_key, wait.task_token)
        raise
    deps.deployments.add_timeline(
        unit.project, unit.deployment_id, f"{unit.target}: {action} stack {ctx.stack_name}"
    )
    logger.info("stack change started", extra={"stack": ctx.stack_name, "action": action})
    if step.wait.mode == "none":
        _finish_now(deps, wait, "the step does not wait for the rollout")


def _clear_dead_state(ctx: UnitContext, deps: DeployDependencies, role: str) -> StackState | None:
    """The stack as it is, once it can take a change; StackBusyError while it cannot."""
    stack = ctx.gateway.describe_stack(ctx.stack_name)
    if stack is None:
        return None
    note = None
    if stack.in_progress:
        raise StackBusyError(f"stack {ctx.stack_name} is {stack.status}: waiting for it")
    if stack.status in DELETE_AND_RETRY:
        ctx.gateway.delete_stack(ctx.stack_name)
        note = f"stack {ctx.stack_name} was {stack.status} (a failed create): deleting it"
    elif stack.status == "UPDATE_ROLLBACK_FAILED":
        ctx.gateway.continue_update_rollback(ctx.stack_name, role)
        note = f"stack {ctx.stack_name} was UPDATE_ROLLBACK_FAILED: continuing the rollback"
    elif stack.status == "DELETE_FAILED":
        raise StackDeadError(
            f"stack {ctx.stack_name} is DELETE_FAILED: {stack.status_reason or 'see its events'}; "
            "delete it by hand, then redeploy"
        )
    if note:
        deps.deployments.add_timeline(ctx.unit.project, ctx.unit.deployment_id, note)
        raise StackBusyError(note)
    return stack


def _finish_now(
    deps: DeployDependencies, wait: StackWait, reason: str, ctx: UnitContext | None = None
) -> None:
    outcome = Outcome(
        status=OutcomeStatus.SUCCEEDED,
        reason=reason,
        task_definition_arn=wait.task_definition_arn or None,
    )
    if ctx is not None:
        # Unchanged stack: its outputs are those of the last update, ready now.
        capture_outputs(ctx.gateway, deps.deployments, wait, ctx.stack_name)
    deps.waits.delete_wait(wait.stack_key, wait.task_token)
    deps.tokens.succeed(wait.task_token, outcome.model_dump(mode="json"))
