"""Completing the state machine's task tokens."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

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
            raise
        return True
