"""AWS services acting with a role: Step Functions' interpreter as the state machine's role,
EventBridge Scheduler's targets as the schedule's role, EventBridge's deliveries as the
rule target's role (or under the function's resource-based policy).

moto's interpreter invokes Lambda tasks through a boto3 client of its own; this patch runs
each such call inside an `Invocation` of the execution's role (from the context object's
`Execution.RoleArn`), so the request is signed, and authorized, as that role. The
scheduler starts its targets in-process (no request is made): `authorize_service_call`
makes the check AWS makes before it would deliver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._patching import Patches
from ..invocation import Invocation, running
from .middleware import ENFORCEMENT
from .policy import _as_list, action_matches, arn_matches, condition_holds, load_document
from .roles import Denial, authorize


def _execution_role(env: Any) -> tuple[str, str]:
    context = env.states.context_object.context_object_data
    execution = context.get("Execution", {})
    machine = str(context.get("StateMachine", {}).get("Name", ""))
    return str(execution.get("RoleArn", "")), machine


class StateMachineRole:
    """Patch the interpreter's Lambda integration to act as the state machine's role."""

    def __init__(self) -> None:
        self._patches = Patches()

    def install(self) -> None:
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
            lambda_eval_utils,
        )

        original = lambda_eval_utils.execute_lambda_function_integration

        def execute(env: Any, *args: Any, **kwargs: Any) -> Any:
            role, machine = _execution_role(env)
            if not role:
                return original(env, *args, **kwargs)
            # The execution's name is not in the session name: Step Functions signs with a
            # session of the machine's role, whose name AWS chooses.
            acting = Invocation(function_name=f"states-{machine}", role_arn=role, service="states")
            with running(acting):
                return original(env, *args, **kwargs)

        self._patches.replace(lambda_eval_utils, "execute_lambda_function_integration", execute)

    def uninstall(self) -> None:
        self._patches.undo()


def authorize_service_call(
    role_arn: str, action: str, resource: str, session: str = "scheduler"
) -> Denial | None:
    """A service's call made with `role_arn` (no request goes over the wire); None when
    IAM is off or the role allows it."""
    if not ENFORCEMENT.enabled or not role_arn:
        return None
    return authorize(_as_session(role_arn, session), action, resource)


def _as_session(role_arn: str, session: str) -> str:
    account = role_arn.split(":")[4]
    name = role_arn.rsplit("/", 1)[-1]
    return f"arn:aws:sts::{account}:assumed-role/{name}/{session}"


def check_event_delivery(rule_arn: str, target: Mapping[str, Any]) -> None:
    """Raise PermissionError when EventBridge may not deliver to `target` as AWS decides:
    a state machine is started with the target's role (which must allow
    states:StartExecution); a function is invoked under its resource-based policy (which
    must allow events.amazonaws.com for this rule)."""
    if not ENFORCEMENT.enabled:
        return
    arn = str(target["Arn"])
    service = arn.split(":")[2]
    denial: Denial | None = None
    if service == "states":
        role = str(target.get("RoleArn") or "")
        denial = (
            authorize(_as_session(role, "events"), "states:StartExecution", arn)
            if role
            else Denial("events.amazonaws.com", "states:StartExecution", arn, "no RoleArn")
        )
    elif (
        service == "lambda"
        and _function_exists(arn)  # a missing function fails the call itself (NO_RESOURCE)
        and not _function_policy_allows(arn, rule_arn)
    ):
        denial = Denial(
            "events.amazonaws.com",
            "lambda:InvokeFunction",
            arn,
            f"the resource-based policy of {arn} does not allow events.amazonaws.com "
            f"to invoke it for {rule_arn}",
        )
    if denial is not None:
        ENFORCEMENT.record(denial)
        raise PermissionError(f"AccessDenied: {denial.message}")


def _function_exists(function_arn: str) -> bool:
    from moto.awslambda.utils import get_backend as lambda_backend

    parts = function_arn.split(":")
    try:
        lambda_backend(parts[4], parts[3]).get_function(parts[6])
    except Exception:
        return False
    return True


def _function_policy_allows(function_arn: str, rule_arn: str) -> bool:
    from moto.awslambda.utils import get_backend as lambda_backend

    parts = function_arn.split(":")
    account, region, name = parts[4], parts[3], parts[6]
    try:
        # moto answers GetPolicy's wire shape: {"Policy": "<the document>", "RevisionId"}
        wire = load_document(lambda_backend(account, region).get_policy(name, None))
        document = load_document(wire["Policy"])
    except Exception:  # no policy at all: nothing allows the service
        return False
    context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": rule_arn.split(":")[4]}
    allowed = False
    for statement in _as_list(document.get("Statement")):
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if principal != "*" and "events.amazonaws.com" not in services:
            continue
        if not any(
            action_matches(str(a), "lambda:InvokeFunction")
            for a in _as_list(statement.get("Action"))
        ):
            continue
        resources = _as_list(statement.get("Resource", "*"))
        if not any(arn_matches(str(r), function_arn) for r in resources):
            continue
        conditions = dict(statement.get("Condition") or {})
        if not all(condition_holds(op, keys, context) for op, keys in conditions.items()):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
