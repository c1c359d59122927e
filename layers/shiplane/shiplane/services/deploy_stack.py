"""Deploy Stack: create or update the unit's service stack, then let the state machine
wait on its task token. The token is stored under the stack *before* the change, so no
event can arrive unclaimed; the deployment-events function completes it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pydantic import BaseModel, Field

from shiplane.domain.models import CloudFormationStep, DeploymentUnit, Outcome, OutcomeStatus
from shiplane.domain.naming import client_request_token, service_name
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
from shiplane.services.outcomes import capture_outputs, outcome_from_stack
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
    stack = ctx.gateway.describe_stack(ctx.stack_name)
    if _adopt_own_operation(ctx, deps, stack, parameters, wait):
        return
    existing = _clear_dead_state(ctx, deps, role, stack)
    operation = "create" if existing is None else "update"
    wait = replace(
        wait,
        client_request_token=operation_token(unit, operation),
        stack_id=existing.stack_id if existing else "",
    )
    deps.waits.put_wait(wait)
    try:
        if existing is None:
            ctx.gateway.create_stack(
                ctx.stack_name,
                template,
                parameters,
                tags,
                role,
                capabilities=capabilities,
                client_request_token=wait.client_request_token,
            )
            action = "creating"
        elif (
            ctx.gateway.update_stack(
                ctx.stack_name,
                template,
                parameters,
                tags,
                role,
                capabilities=capabilities,
                client_request_token=wait.client_request_token,
            )
            is None
        ):
            _finish_unchanged(deps, wait, unchanged, ctx, existing)
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


def operation_token(unit: DeploymentUnit, operation: str) -> str:
    return client_request_token(unit.deployment_id, unit.step, unit.target, operation)


def _adopt_own_operation(
    ctx: UnitContext,
    deps: DeployDependencies,
    stack: StackState | None,
    parameters: dict[str, str],
    wait: StackWait,
) -> bool:
    """An earlier attempt of this step started the stack operation that is running now
    (and failed after starting it): wait on that operation instead of failing or
    fighting it. It is ours when it carries one of this unit's ClientRequestTokens; when
    CloudFormation names no token, when it runs exactly this unit's parameters."""
    if stack is None or not stack.in_progress or "ROLLBACK" in stack.status:
        return False
    running = ctx.gateway.stack_operation_token(ctx.stack_name)
    ours = {operation_token(ctx.unit, op) for op in ("create", "update")}
    if running not in ours and (running is not None or stack.parameters != parameters):
        return False
    wait = replace(
        wait,
        # Its events carry the token it was started with: none if CloudFormation names none.
        client_request_token=running or "",
        stack_id=stack.stack_id,
    )
    deps.waits.put_wait(wait)
    deps.deployments.add_timeline(
        ctx.unit.project,
        ctx.unit.deployment_id,
        f"{ctx.unit.target}: stack {ctx.stack_name} is {stack.status} by this deployment's "
        "earlier attempt: waiting for it",
    )
    logger.info("stack operation adopted", extra={"stack": ctx.stack_name, "token": running})
    # It may have ended before the wait was stored, its events unclaimed: look once more.
    now = ctx.gateway.describe_stack(ctx.stack_name)
    if now is None or not now.in_progress:
        _decide_now(deps, wait, ctx, now)
    return True


def _decide_now(
    deps: DeployDependencies,
    wait: StackWait,
    ctx: UnitContext,
    stack: StackState | None,
    outcome: Outcome | None = None,
) -> None:
    """Settle a stored wait from the stack and service as they are now: complete its token,
    or (the rollout still going) leave it to ECS's events."""
    outcome = outcome or outcome_from_stack(ctx.gateway, wait, ctx.stack_name, stack)
    if outcome is None:
        service = ctx.gateway.describe_service(wait.cluster, wait.service) if wait.service else None
        deps.waits.mark_stack_complete(
            wait.stack_key, wait.task_token, service.deployment_id if service else ""
        )
        return
    if outcome.status is OutcomeStatus.SUCCEEDED:
        capture_outputs(ctx.gateway, deps.deployments, wait, ctx.stack_name)
    else:
        deps.deployments.add_failed_unit(
            wait.project, wait.deployment_id, f"{wait.step or 'step'} on {wait.target}"
        )
    deps.waits.delete_wait(wait.stack_key, wait.task_token)
    deps.tokens.succeed(wait.task_token, outcome.model_dump(mode="json"))


def _clear_dead_state(
    ctx: UnitContext, deps: DeployDependencies, role: str, stack: StackState | None
) -> StackState | None:
    """The stack as it is, once it can take a change; StackBusyError while it cannot."""
    if stack is None:
        return None
    note = None
    if stack.in_progress:
        raise StackBusyError(f"stack {ctx.stack_name} is {stack.status}: waiting for it")
    if stack.status in DELETE_AND_RETRY:
        ctx.gateway.delete_stack(
            ctx.stack_name, client_request_token=operation_token(ctx.unit, "delete")
        )
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


def _finish_unchanged(
    deps: DeployDependencies,
    wait: StackWait,
    reason: str,
    ctx: UnitContext,
    stack: StackState,
) -> None:
    """Nothing to update: the stack matches. For a service that is not yet the end of it
    (an earlier attempt of this step may have started the rollout, or ECS rolled it back):
    what the service runs decides."""
    if wait.service:
        outcome = outcome_from_stack(ctx.gateway, wait, ctx.stack_name, stack)
        if outcome is None or outcome.status is not OutcomeStatus.SUCCEEDED:
            _decide_now(deps, wait, ctx, stack, outcome)
            return
    _finish_now(deps, wait, reason, ctx)


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
