"""Deployment events: CloudFormation "Stack Status Change" and ECS "Deployment State
Change" events become task-token callbacks. No polling: this is how Deploy Stack's wait
ends. Events arrive at least once and in any order; completing a token twice is harmless
(the second call finds it gone)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel

from shiplane.domain.models import Outcome, OutcomeStatus
from shiplane.domain.naming import service_key, stack_key
from shiplane.domain.requests import EcsDeploymentEvent, StackStatusChangeEvent
from shiplane.observability import logger, metrics
from shiplane.ports import (
    ConfigStore,
    DeploymentStore,
    StackWait,
    TargetGateway,
    TargetGateways,
    TargetHealthStore,
    TaskTokens,
    WaitStore,
)
from shiplane.services.outcomes import (
    FAILURE_STATUSES,
    SUCCESS_STATUSES,
    capture_outputs,
    decide,
)
from shiplane.validation import parse


@dataclass
class EventsDependencies:
    config: ConfigStore
    deployments: DeploymentStore
    waits: WaitStore
    gateways: TargetGateways
    tokens: TaskTokens
    # None: arrivals are not recorded (the target health check then cannot tell)
    health: TargetHealthStore | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


class EventResult(BaseModel):
    handled: bool
    message: str
    outcome: Outcome | None = None


def handle_deployment_event(payload: dict, deps: EventsDependencies) -> EventResult:
    source = payload.get("source") if isinstance(payload, dict) else None
    model = EcsDeploymentEvent if source == "aws.ecs" else StackStatusChangeEvent
    event = parse(model, payload, f"{source or 'unknown'} event")
    if isinstance(event, StackStatusChangeEvent):
        return _stack_event(event, deps)
    return _ecs_event(event, deps)


def _stack_event(event: StackStatusChangeEvent, deps: EventsDependencies) -> EventResult:
    # arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID
    arn = event.detail.stack_id
    _, _, _, region, account, resource = arn.split(":", 5)
    _record_arrival(deps, account, region)
    stack_name = resource.split("/")[1]
    key = stack_key(account, region, stack_name)
    wait = deps.waits.get_wait(key)
    status = event.detail.status_details.status
    if wait is None:
        return EventResult(handled=False, message=f"no deployment waits on stack {stack_name}")
    stale = _stale_stack_event(event, wait)
    if stale:
        return _ignored(wait, f"stack {stack_name} {status}: {stale}")
    deps.deployments.add_timeline(
        wait.project, wait.deployment_id, f"{wait.target}: stack {stack_name} {status}"
    )
    if status not in SUCCESS_STATUSES | FAILURE_STATUSES:
        return EventResult(handled=True, message=f"stack {stack_name} {status}: still waiting")
    gateway = deps.gateways.for_target(deps.config.get_target(wait.target), wait.deployment_id)
    service = None
    if wait.service and status in SUCCESS_STATUSES:
        service = gateway.describe_service(wait.cluster, wait.service)
    reason = event.detail.status_details.status_reason
    outcome = decide(gateway, wait, stack_name, status, reason, service)
    if outcome is None:
        if status.endswith("_COMPLETE"):
            # From now on ECS decides, and only events of this rollout count.
            ecs_id = service.deployment_id if service else ""
            deps.waits.mark_stack_complete(key, wait.task_token, ecs_id)
        return EventResult(handled=True, message=f"stack {stack_name} {status}: still waiting")
    return _complete(deps, key, wait, outcome, gateway)


def _stale_stack_event(event: StackStatusChangeEvent, wait: StackWait) -> str:
    """Why the event is about another stack operation than the one waited on ("" if it
    is not): another stack of the same name (deleted and re-created), or another operation
    of this stack (an older update's late failure). CloudFormation gives every event of an
    operation started with a ClientRequestToken that token, so when the wait recorded one,
    an event without it (or with another) belongs to another operation. Only a wait that
    knows no token (it adopted an operation started without one) is judged by the stack id
    alone."""
    if wait.stack_id and event.detail.stack_id != wait.stack_id:
        return f"from stack {event.detail.stack_id}, not {wait.stack_id}"
    token = event.detail.client_request_token
    if wait.client_request_token and token != wait.client_request_token:
        return f"from operation {token or '(no token)'}, not {wait.client_request_token}"
    return ""


def _ignored(wait: StackWait, why: str) -> EventResult:
    logger.info("stale event ignored", extra={"deployment": wait.deployment_id, "why": why})
    metrics.add_metric(name="StaleEventIgnored", unit="Count", value=1)
    return EventResult(handled=False, message=f"ignored, not the operation waited on: {why}")


def _ecs_event(event: EcsDeploymentEvent, deps: EventsDependencies) -> EventResult:
    # arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/SERVICE
    arn = event.resources[0] if event.resources else ""
    parts = arn.split(":", 5)
    if len(parts) < 6 or not parts[5].startswith("service/"):
        return EventResult(handled=False, message=f"not a service event: {arn!r}")
    _, _, _, region, account, resource = parts
    _record_arrival(deps, account, region)
    _, cluster, service = resource.split("/", 2)
    key = deps.waits.stack_key_for_service(service_key(account, region, cluster, service))
    wait = deps.waits.get_wait(key) if key else None
    if key is None or wait is None:
        return EventResult(handled=False, message=f"no deployment waits on service {service}")
    name, reason = event.detail.event_name, event.detail.reason
    ecs_id = event.detail.deployment_id
    if wait.ecs_deployment_id and ecs_id and ecs_id != wait.ecs_deployment_id:
        return _ignored(wait, f"ECS {name} of deployment {ecs_id}, not {wait.ecs_deployment_id}")
    deps.deployments.add_timeline(
        wait.project, wait.deployment_id, f"{wait.target}: ECS {name}: {reason}".rstrip(": ")
    )
    # CloudFormation's terminal status decides; ECS decides only when the stack has
    # already reported complete while the rollout was still going.
    if not wait.stack_complete or name == "SERVICE_DEPLOYMENT_IN_PROGRESS":
        return EventResult(handled=True, message=f"service {service}: {name}")
    gateway = deps.gateways.for_target(deps.config.get_target(wait.target), wait.deployment_id)
    stack_name = key.split("#", 2)[2]
    outcome = decide(gateway, wait, stack_name, "UPDATE_COMPLETE")
    if outcome is None:
        return EventResult(handled=True, message=f"service {service}: still rolling out")
    return _complete(deps, key, wait, outcome)


def _record_arrival(deps: EventsDependencies, account: str, region: str) -> None:
    """Any event from a target account shows its forwarding works (the health check
    reads this); one small write per event."""
    if deps.health is not None:
        deps.health.record_target_event(account, region, deps.now())


def _complete(
    deps: EventsDependencies,
    key: str,
    wait: StackWait,
    outcome: Outcome,
    gateway: TargetGateway | None = None,
) -> EventResult:
    if gateway is not None and outcome.status is OutcomeStatus.SUCCEEDED:
        # Before the token: the next step may start as soon as it is completed.
        capture_outputs(gateway, deps.deployments, wait, key.split("#", 2)[2])
    if outcome.status is OutcomeStatus.FAILED:
        # Before the token too: the deployment's later units must see it and not deploy.
        deps.deployments.add_failed_unit(
            wait.project, wait.deployment_id, f"{wait.step or 'step'} on {wait.target}"
        )
    delivered = deps.tokens.succeed(wait.task_token, outcome.model_dump(mode="json"))
    deps.waits.delete_wait(key, wait.task_token)
    metrics.add_metric(name=f"Rollout{outcome.status.title()}", unit="Count", value=1)
    logger.info(
        "deployment wait completed",
        extra={"stack_key": key, "status": outcome.status, "delivered": delivered},
    )
    return EventResult(
        handled=delivered,
        message=f"{outcome.status}: {outcome.reason}"
        + ("" if delivered else " (token already completed)"),
        outcome=outcome,
    )
