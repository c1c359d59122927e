"""Deciding how a unit ended from what CloudFormation and ECS say, and gathering the
diagnosis of a failure. Shared by the events function and the reconciliation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from shiplane.domain.models import Diagnosis, Outcome, OutcomeStatus
from shiplane.errors import ThrottledError
from shiplane.observability import logger
from shiplane.ports import DeploymentStore, ServiceState, StackState, StackWait, TargetGateway

T = TypeVar("T")

SUCCESS_STATUSES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE"})
FAILURE_STATUSES = frozenset(
    {
        "CREATE_FAILED",
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "UPDATE_ROLLBACK_COMPLETE",
        "UPDATE_ROLLBACK_FAILED",
        "UPDATE_FAILED",
        "DELETE_COMPLETE",
        "DELETE_FAILED",
    }
)


def family_of(task_definition_arn: str) -> str:
    return task_definition_arn.rsplit("/", 1)[-1].split(":", 1)[0]


def diagnose(gateway: TargetGateway, wait: StackWait, stack_name: str) -> Diagnosis:
    """What the target says about a failure. A part that cannot be read (denied, gone)
    says so in its place: the failure is recorded either way, never lost to its
    diagnosis. Throttling is raised, so that the event is delivered again."""
    stack_events = _read(lambda: gateway.stack_failure_events(stack_name), "stack events")
    if not wait.service:  # a cloudformation step: the stack's events tell it all
        return Diagnosis(stack_events=stack_events)
    family = family_of(wait.task_definition_arn)
    service = _read(lambda: gateway.describe_service(wait.cluster, wait.service), "service")
    if isinstance(service, list):  # could not be read: the note says why
        service_events = service
    else:
        service_events = list(service.events) if service else []
    return Diagnosis(
        stopped_tasks=_read(
            lambda: gateway.stopped_task_reasons(wait.cluster, family), "stopped tasks"
        ),
        service_events=service_events,
        stack_events=stack_events,
    )


def _read(read: Callable[[], T], what: str) -> T | list[str]:
    try:
        return read()
    except ThrottledError:
        raise
    except Exception as exc:
        logger.warning("diagnosis incomplete", extra={"part": what, "error": str(exc)})
        return [f"could not read the {what}: {exc}"]


def decide(
    gateway: TargetGateway,
    wait: StackWait,
    stack_name: str,
    stack_status: str,
    reason: str = "",
    service: ServiceState | None = None,
) -> Outcome | None:
    """The outcome, or None while the rollout is still going. A wait without a service
    (a cloudformation step's stack) is judged by the stack's status alone. `service`: the
    service as just described, if the caller has it (saves a call)."""
    if stack_status in SUCCESS_STATUSES and not wait.service:
        return Outcome(
            status=OutcomeStatus.SUCCEEDED,
            reason=f"stack {stack_name} {stack_status}",
            stack_status=stack_status,
        )
    if stack_status in SUCCESS_STATUSES:
        service = service or gateway.describe_service(wait.cluster, wait.service)
        if service is None:
            return _failed(gateway, wait, stack_name, stack_status, "the service does not exist")
        if service.task_definition_arn != wait.task_definition_arn:
            return _failed(
                gateway,
                wait,
                stack_name,
                stack_status,
                f"the stack completed but the service runs {service.task_definition_arn}, "
                f"not {wait.task_definition_arn} (ECS rolled back)",
            )
        if service.rollout_state == "FAILED":
            return _failed(
                gateway,
                wait,
                stack_name,
                stack_status,
                f"the ECS deployment failed: {service.rollout_reason}",
            )
        if service.rollout_state == "IN_PROGRESS":
            return None
        return Outcome(
            status=OutcomeStatus.SUCCEEDED,
            reason=f"stack {stack_status}, service steady on the new task definition",
            stack_status=stack_status,
            task_definition_arn=wait.task_definition_arn,
        )
    if stack_status in FAILURE_STATUSES:
        why = f"stack {stack_name} ended {stack_status}" + (f": {reason}" if reason else "")
        return _failed(gateway, wait, stack_name, stack_status, why)
    return None


def capture_outputs(
    gateway: TargetGateway, deployments: DeploymentStore, wait: StackWait, stack_name: str
) -> dict[str, str]:
    """A succeeded cloudformation step's stack outputs, recorded on the deployment so
    that later steps can use them as `#{Shiplane.Step[STEP].Output[KEY]}`."""
    if wait.service or not wait.step:
        return {}
    stack = gateway.describe_stack(stack_name)
    outputs = dict(stack.outputs) if stack else {}
    deployments.record_step_outputs(wait.project, wait.deployment_id, wait.step, outputs)
    return outputs


def _failed(
    gateway: TargetGateway, wait: StackWait, stack_name: str, stack_status: str, reason: str
) -> Outcome:
    diagnosis = diagnose(gateway, wait, stack_name)
    first_cause = next(iter(diagnosis.stack_events or diagnosis.stopped_tasks), "")
    return Outcome(
        status=OutcomeStatus.FAILED,
        reason=reason + (f" — {first_cause}" if first_cause and first_cause not in reason else ""),
        stack_status=stack_status,
        task_definition_arn=wait.task_definition_arn,
        diagnosis=diagnosis,
    )


def outcome_from_stack(
    gateway: TargetGateway, wait: StackWait, stack_name: str, stack: StackState | None
) -> Outcome | None:
    if stack is None:
        return _failed(gateway, wait, stack_name, "DELETE_COMPLETE", "the stack does not exist")
    return decide(gateway, wait, stack_name, stack.status, stack.status_reason)
