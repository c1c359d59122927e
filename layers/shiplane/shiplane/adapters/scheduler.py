"""EventBridge Scheduler: the one-time schedules of scheduled deployments.

A schedule's target is the Step Functions `StartExecution` universal target
(`arn:aws:scheduler:::aws-sdk:sfn:startExecution`) rather than the templated state
machine target: only the universal target lets the schedule name the execution, and a
named execution is what makes a retried fire start nothing twice."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from shiplane.adapters.throttling import THROTTLING_CODES
from shiplane.domain.schedules import at_expression
from shiplane.errors import ConfigurationError, InvalidRequestError, ThrottledError


def start_execution_target(state_machine_arn: str) -> str:
    partition = (
        state_machine_arn.split(":", 2)[1] if state_machine_arn.startswith("arn:") else "aws"
    )
    return f"arn:{partition}:scheduler:::aws-sdk:sfn:startExecution"


class EventBridgeScheduler:
    """One-time schedules in Shiplane's schedule group, fired as `role_arn`."""

    def __init__(self, group_name: str, role_arn: str, client: Any = None) -> None:
        self.group_name = group_name
        self.role_arn = role_arn
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("scheduler")
        return self._client

    def _translate(self, exc: ClientError, what: str) -> Exception:
        code = exc.response["Error"]["Code"]
        message = exc.response["Error"].get("Message", code)
        if code in THROTTLING_CODES:
            return ThrottledError(f"{what}: throttled")
        if code == "ValidationException":
            return InvalidRequestError(f"{what}: {message}")
        if code == "ResourceNotFoundException":
            return ConfigurationError(
                f"{what}: schedule group {self.group_name!r} does not exist ({message})"
            )
        return exc

    def create_pipeline_start(
        self,
        name: str,
        at: datetime,
        state_machine_arn: str,
        execution_name: str,
        payload: dict[str, Any],
        description: str = "",
    ) -> bool:
        if not self.group_name or not self.role_arn:
            raise ConfigurationError(
                "scheduled deployments are not configured (SCHEDULE_GROUP_NAME, SCHEDULER_ROLE_ARN)"
            )
        start = {
            "StateMachineArn": state_machine_arn,
            "Name": execution_name,
            "Input": json.dumps(payload),
        }
        try:
            self.client.create_schedule(
                Name=name,
                GroupName=self.group_name,
                ScheduleExpression=at_expression(at),
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                State="ENABLED",
                Description=description[:512],
                Target={
                    "Arn": start_execution_target(state_machine_arn),
                    "RoleArn": self.role_arn,
                    "Input": json.dumps(start),
                    "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConflictException":
                return False
            raise self._translate(exc, f"create schedule {name}") from exc
        return True

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.get_schedule(Name=name, GroupName=self.group_name))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise self._translate(exc, f"get schedule {name}") from exc

    def delete(self, name: str) -> bool:
        try:
            self.client.delete_schedule(Name=name, GroupName=self.group_name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return False
            raise self._translate(exc, f"delete schedule {name}") from exc
        return True
