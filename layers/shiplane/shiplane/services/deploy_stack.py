"""Deploy Stack: create or update the unit's service stack, then let the state machine
wait on its task token. The token is stored under the stack *before* the change, so no
event can arrive unclaimed; the deployment-events function completes it."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from shiplane.domain.models import DeploymentUnit, Outcome, OutcomeStatus
from shiplane.domain.naming import service_name
from shiplane.errors import InvalidRequestError, StackBusyError, StackDeadError
from shiplane.observability import logger
from shiplane.ports import (
    ConfigStore,
    DeploymentStore,
    ReleaseStore,
    StackWait,
    TargetGateways,
    TaskTokens,
    WaitStore,
)
from shiplane.rendering.service_stack import render_service_stack
from shiplane.rendering.task_definition import shiplane_tags
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
    if not unit.task_definition_arn:
        raise InvalidRequestError("the unit has no task_definition_arn: register it first")
    ctx = load_unit(unit, deps.config, deps.releases, deps.gateways)
    _clear_dead_state(ctx, deps)

    template = render_service_stack(
        ctx.step, ctx.target, unit.tenant, project=unit.project, environment=unit.environment
    )
    parameters = {"TaskDefinitionArn": unit.task_definition_arn}
    tags = shiplane_tags(unit)
    wait = StackWait(
        stack_key=ctx.stack_key,
        task_token=request.task_token,
        deployment_id=unit.deployment_id,
        project=unit.project,
        target=unit.target,
        cluster=ctx.target.cluster,
        service=service_name(ctx.step.service.name, unit.tenant),
        task_definition_arn=unit.task_definition_arn,
    )
    deps.waits.put_wait(wait)
    role = ctx.target.cloudformation_role_arn
    try:
        if ctx.gateway.describe_stack(ctx.stack_name) is None:
            ctx.gateway.create_stack(ctx.stack_name, template, parameters, tags, role)
            action = "creating"
        elif ctx.gateway.update_stack(ctx.stack_name, template, parameters, tags, role) is None:
            _finish_now(deps, wait, "no changes: the stack already runs this task definition")
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
    if ctx.step.wait.mode == "none":
        _finish_now(deps, wait, "the step does not wait for the rollout")


def _clear_dead_state(ctx: UnitContext, deps: DeployDependencies) -> None:
    stack = ctx.gateway.describe_stack(ctx.stack_name)
    if stack is None:
        return
    note = None
    if stack.in_progress:
        raise StackBusyError(f"stack {ctx.stack_name} is {stack.status}: waiting for it")
    if stack.status in DELETE_AND_RETRY:
        ctx.gateway.delete_stack(ctx.stack_name)
        note = f"stack {ctx.stack_name} was {stack.status} (a failed create): deleting it"
    elif stack.status == "UPDATE_ROLLBACK_FAILED":
        ctx.gateway.continue_update_rollback(ctx.stack_name, ctx.target.cloudformation_role_arn)
        note = f"stack {ctx.stack_name} was UPDATE_ROLLBACK_FAILED: continuing the rollback"
    elif stack.status == "DELETE_FAILED":
        raise StackDeadError(
            f"stack {ctx.stack_name} is DELETE_FAILED: {stack.status_reason or 'see its events'}; "
            "delete it by hand, then redeploy"
        )
    if note:
        deps.deployments.add_timeline(ctx.unit.project, ctx.unit.deployment_id, note)
        raise StackBusyError(note)


def _finish_now(deps: DeployDependencies, wait: StackWait, reason: str) -> None:
    outcome = Outcome(
        status=OutcomeStatus.SUCCEEDED,
        reason=reason,
        task_definition_arn=wait.task_definition_arn,
    )
    deps.waits.delete_wait(wait.stack_key, wait.task_token)
    deps.tokens.succeed(wait.task_token, outcome.model_dump(mode="json"))
