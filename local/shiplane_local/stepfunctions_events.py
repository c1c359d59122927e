"""Step Functions' "Execution Status Change" events, as AWS sends them to EventBridge.

AWS puts one event (source `aws.states`) on the default bus each time an execution of a
Standard state machine changes status: RUNNING when it starts, then SUCCEEDED, FAILED,
TIMED_OUT or ABORTED. moto's interpreter sends none, so Shiplane's settle-execution
function (which ends the deployments of a dead execution and frees their slots) never ran
unless a test emitted the event by hand. `ExecutionStatusEvents` patches moto's execution
(start, and the worker's `terminated` callback) to emit them through the local cloud's
`emit_event`, so fault plans on `aws.states` apply.

It also makes StopExecution behave as AWS's: moto's interpreter, stopped while a task
waits on its task token, went on waiting for good (the execution never ended), and moto
dropped the stop's `error` and `cause`; now the execution ends ABORTED with them.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.stepfunctions.exceptions import ExecutionDoesNotExist
from moto.stepfunctions.parser.api import ExecutionStatus, StateMachineType
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    Execution,
    SyncExecution,
)
from moto.stepfunctions.responses import StepFunctionResponse

from ._patching import Patches
from .activity import Activity

log = logging.getLogger("shiplane_local")

DETAIL_TYPE = "Step Functions Execution Status Change"


def _millis(when: dt.datetime | None) -> int | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def _text(value: Any) -> str | None:
    import json

    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def status_event(execution: Execution, status: str | None = None) -> dict[str, Any]:
    """The event for the execution's status (its current one unless `status` names it),
    in AWS's documented shape (start and stop dates in epoch milliseconds; input and output
    as JSON text; error and cause only for a failed one)."""
    current = execution.exec_status
    value = status or getattr(current, "value", current) or "RUNNING"
    ended = value != "RUNNING"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.states",
        "account": execution.account_id,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": execution.region_name,
        "resources": [execution.exec_arn],
        "detail": {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": value,
            "startDate": _millis(execution.start_date),
            "stopDate": _millis(execution.stop_date) if ended else None,
            "input": _text(execution.execution_input),
            "output": _text(execution.output) if value == "SUCCEEDED" else None,
            "inputDetails": {"included": True},
            "outputDetails": {"included": True} if value == "SUCCEEDED" else None,
            "error": execution.error if ended and value != "SUCCEEDED" else None,
            "cause": execution.cause if ended and value != "SUCCEEDED" else None,
            "redriveCount": 0,
            "redriveDate": None,
            "redriveStatus": "REDRIVABLE"
            if value in ("FAILED", "TIMED_OUT", "ABORTED")
            else ("NOT_REDRIVABLE"),
            "redriveStatusReason": (
                "Execution is RUNNING and cannot be redriven"
                if value == "RUNNING"
                else "Execution is SUCCEEDED and cannot be redriven"
                if value == "SUCCEEDED"
                else None
            ),
        },
    }


def _standard(execution: Execution) -> bool:
    # AWS sends these events for Standard workflows only (Express ones have none).
    if isinstance(execution, SyncExecution):
        return False
    kind = getattr(execution, "sm_type", None) or getattr(
        getattr(execution, "state_machine", None), "sm_type", None
    )
    return kind != StateMachineType.EXPRESS


class ExecutionStatusEvents:
    """Patch moto's Step Functions executions to emit AWS's status-change events."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], activity: Activity) -> None:
        self._emit = emit
        self._activity = activity
        self._patches = Patches()

    def install(self) -> None:
        events = self
        original_start = Execution.start
        original_terminated = BaseExecutionWorkerCommunication.terminated
        original_reflect = BaseExecutionWorkerCommunication._reflect_execution_status

        def start(execution: Execution) -> None:
            original_start(execution)
            # RUNNING, even when a short program has already ended on its worker thread.
            if _standard(execution):
                events._send(execution, "RUNNING")

        def reflect(comm: BaseExecutionWorkerCommunication) -> None:
            original_reflect(comm)
            execution = comm.execution
            stopped = getattr(execution, "shiplane_stopped", None)
            if stopped is None:
                return
            # Stopped by StopExecution: AWS ends it ABORTED with the stop's error and cause.
            # moto's interrupted task may have ended the program with its own error first
            # (States.Timeout from the wait it was woken from).
            execution.exec_status = ExecutionStatus.ABORTED
            execution.error, execution.cause = stopped

        def terminated(comm: BaseExecutionWorkerCommunication) -> None:
            # Counted busy until the event is on its way: wait_idle never sees a gap
            # between the execution ending and its event's delivery.
            with events._activity.busy("execution status event"):
                original_terminated(comm)
                if _standard(comm.execution):
                    events._send(comm.execution)

        original_stop = Execution.stop

        def stop(
            execution: Execution, stop_date: dt.datetime, error: str | None, cause: str | None
        ) -> None:
            if execution.exec_status == ExecutionStatus.RUNNING:
                execution.shiplane_stopped = (error or None, cause or None)
            original_stop(execution, stop_date, error, cause)
            # moto's stop leaves a task waiting on its task token (or a callback) waiting
            # for good: wake every waiter, so the stopped program ends (ABORTED).
            worker = execution.exec_worker
            pool = getattr(getattr(worker, "env", None), "callback_pool_manager", None)
            for endpoint in list(getattr(pool, "_pool", {}).values()):
                endpoint.interrupt_all()

        def stop_execution(response: StepFunctionResponse) -> ActionResult:
            # moto drops StopExecution's error and cause; AWS records them.
            arn = response._get_param("executionArn")
            backend = response.stepfunction_backend
            backend._validate_execution_arn(arn)
            machine = backend._get_state_machine_for_execution(arn)
            execution = next((x for x in machine.executions if x.execution_arn == arn), None)
            if execution is None:
                raise ExecutionDoesNotExist("Execution Does Not Exist: '" + arn + "'")
            stopped = utcnow()
            execution.stop(
                stop_date=stopped,
                error=response._get_param("error") or "",
                cause=response._get_param("cause") or "",
            )
            return ActionResult({"stopDate": execution.stop_date or stopped})

        self._patches.replace(StepFunctionResponse, "stop_execution", stop_execution)
        self._patches.replace(Execution, "start", start)
        self._patches.replace(Execution, "stop", stop)
        self._patches.replace(BaseExecutionWorkerCommunication, "terminated", terminated)
        self._patches.replace(
            BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect
        )

    def _send(self, execution: Execution, status: str | None = None) -> None:
        try:
            event = status_event(execution, status)
        except Exception:  # never break an execution over its event
            log.exception("execution status event for %s not built", execution.exec_arn)
            return
        log.info("execution %s %s", execution.name, event["detail"]["status"])
        self._emit(event)

    def uninstall(self) -> None:
        self._patches.undo()
