"""AWS services acting with a role: Step Functions' interpreter as the state machine's role,
EventBridge Scheduler's targets as the schedule's role.

moto's interpreter invokes Lambda tasks through a boto3 client of its own; this patch runs
each such call inside an `Invocation` of the execution's role (from the context object's
`Execution.RoleArn`), so the request is signed, and authorized, as that role. The
scheduler starts its targets in-process (no request is made): `authorize_service_call`
makes the check AWS makes before it would deliver.
"""

from __future__ import annotations

from typing import Any

from .._patching import Patches
from ..invocation import Invocation, running
from .middleware import ENFORCEMENT
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
            with running(Invocation(function_name=f"states-{machine}", role_arn=role)):
                return original(env, *args, **kwargs)

        self._patches.replace(lambda_eval_utils, "execute_lambda_function_integration", execute)

    def uninstall(self) -> None:
        self._patches.undo()


def authorize_service_call(role_arn: str, action: str, resource: str) -> Denial | None:
    """A service's call made with `role_arn` (no request goes over the wire); None when
    IAM is off or the role allows it."""
    if not ENFORCEMENT.enabled or not role_arn:
        return None
    return authorize(_as_session(role_arn), action, resource)


def _as_session(role_arn: str) -> str:
    account = role_arn.split(":")[4]
    name = role_arn.rsplit("/", 1)[-1]
    return f"arn:aws:sts::{account}:assumed-role/{name}/scheduler"
