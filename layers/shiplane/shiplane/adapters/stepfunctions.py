"""Completing the state machine's task tokens."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from shiplane.adapters.throttling import is_throttling
from shiplane.errors import ThrottledError
from shiplane.ports import ExecutionOutcome

_GONE = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


class SfnTaskTokens:
    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("stepfunctions")
        return self._client

    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        """False when the token is already completed or expired (an event arrived twice)."""
        return self._call("send_task_success", taskToken=task_token, output=json.dumps(output))

    def fail(self, task_token: str, error: str, cause: str) -> bool:
        return self._call(
            "send_task_failure", taskToken=task_token, error=error[:256], cause=cause[:32768]
        )

    def _call(self, operation: str, **kwargs: Any) -> bool:
        try:
            getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _GONE:
                return False
            if is_throttling(exc):
                # SendTaskSuccess is throttled per account (3,000 burst, 500/s): the state
                # machine retries the calling step, which completes the token again.
                raise ThrottledError(f"Step Functions {operation} throttled") from exc
            raise
        return True


class SfnPipeline:
    """Starts and stops executions of the deploy pipeline (the API and the schedules)."""

    def __init__(self, state_machine_arn: str, client: Any = None) -> None:
        self.state_machine_arn = state_machine_arn
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("stepfunctions")
        return self._client

    def execution_arn(self, name: str) -> str:
        return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"

    def start(self, name: str, payload: dict[str, Any]) -> tuple[str, bool]:
        """(execution ARN, started now). A name used before is the same request again:
        nothing new starts (Step Functions keeps names unique for 90 days)."""
        try:
            response = self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return self.execution_arn(name), False
            raise
        return str(response["executionArn"]), True

    def stop(self, execution_arn: str, error: str, cause: str) -> bool:
        """False when the execution had already finished (or never existed)."""
        try:
            self.client.stop_execution(
                executionArn=execution_arn, error=error[:256], cause=cause[:32768]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"ExecutionDoesNotExist", "ValidationException"}:
                return False
            raise
        return True

    def describe(self, execution_arn: str) -> dict[str, Any] | None:
        """The execution's status and input (a parsed document), None when it does not
        exist."""
        try:
            response = self.client.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
        return {"status": str(response["status"]), "input": json.loads(response["input"])}

    def outcome(self, execution_arn: str) -> ExecutionOutcome | None:
        try:
            response = self.client.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            if is_throttling(exc):
                raise ThrottledError("Step Functions DescribeExecution throttled") from exc
            raise
        return ExecutionOutcome(
            status=str(response["status"]), error=response.get("error"), cause=response.get("cause")
        )

    def status(self, execution_arn: str) -> str | None:
        """RUNNING / SUCCEEDED / FAILED / TIMED_OUT / ABORTED, or None when unknown."""
        outcome = self.outcome(execution_arn)
        return outcome.status if outcome else None
