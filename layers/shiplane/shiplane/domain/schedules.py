"""Scheduled deployments ("deploy release X to prod at 02:00 UTC") and the recurring
schedule arithmetic the jobs share. Pure: no AWS, no clock (callers pass `now`)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from shiplane.domain.base import Model
from shiplane.domain.models import NAME_PATTERN, UNTENANTED


class ScheduleStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    FIRED = "fired"


class ScheduleRequest(Model):
    """POST /schedules: deploy `release` of `project` to `environment` at `at` (UTC)."""

    project: str = Field(pattern=NAME_PATTERN)
    release: str = Field(min_length=1, max_length=128)
    environment: str = Field(pattern=NAME_PATTERN)
    tenant: str = Field(default=UNTENANTED, pattern=NAME_PATTERN)
    at: datetime = Field(description="when, UTC (an offset is converted; none means UTC)")

    @field_validator("at")
    @classmethod
    def _utc_seconds(cls, value: datetime) -> datetime:
        # EventBridge Scheduler's at() has second granularity and no offset.
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC).replace(microsecond=0)
        except OverflowError:
            raise ValueError("at is out of range") from None


class ScheduledDeployment(Model):
    id: str
    project: str
    release: str
    environment: str
    tenant: str = UNTENANTED
    at: datetime
    status: ScheduleStatus = ScheduleStatus.SCHEDULED
    schedule_name: str = Field(description="the EventBridge Scheduler schedule's name")
    execution_name: str = Field(description="the deploy pipeline execution it starts")
    execution_arn: str = ""
    execution_status: str | None = Field(
        default=None, description="RUNNING / SUCCEEDED / FAILED ... once it has fired"
    )
    created_at: datetime
    created_by: str = ""
    cancelled_at: datetime | None = None
    cancelled_by: str = ""
    fired_at: datetime | None = None

    def same_request(self, request: ScheduleRequest) -> bool:
        return (self.project, self.release, self.environment, self.tenant, self.at) == (
            request.project,
            request.release,
            request.environment,
            request.tenant,
            request.at,
        )


def schedule_id(request: ScheduleRequest, idempotency_key: str | None = None) -> str:
    """The same id for a retried call: from the `Idempotency-Key` header when there is
    one, otherwise from the request itself."""
    if idempotency_key:
        basis = f"key:{idempotency_key}"
    else:
        basis = "body:" + json.dumps(request.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(basis.encode()).hexdigest()[:20]


def schedule_name(schedule_id: str) -> str:
    return f"deploy-{schedule_id}"


def execution_name(schedule_id: str) -> str:
    """A retried fire starts the pipeline under the same name: Step Functions starts
    nothing twice (and Resolve Release derives the deployment id from it)."""
    return f"schedule-{schedule_id}"


def deploy_action(schedule: ScheduledDeployment) -> dict[str, Any]:
    """The pipeline input: the documented `deploy` action (domain.requests.DeployAction)."""
    return {
        "action": "deploy",
        "project": schedule.project,
        "release": schedule.release,
        "environment": schedule.environment,
        "tenant": schedule.tenant,
        "requested_by": f"schedule {schedule.id} ({schedule.created_by or 'unknown'})",
    }


def at_expression(at: datetime) -> str:
    """EventBridge Scheduler's one-time expression (read in UTC)."""
    return f"at({at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})"


_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def parse_at(expression: str) -> datetime | None:
    """The moment of an `at(...)` expression (UTC), or None for another kind."""
    match = _AT.match(expression.strip())
    if match is None:
        return None
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)


def parse_rate(expression: str) -> timedelta | None:
    """The period of a `rate(...)` expression, or None for another kind."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    value, unit = int(match.group(1)), match.group(2).rstrip("s")
    if value < 1:
        return None
    return timedelta(seconds=value * _UNITS[unit])
