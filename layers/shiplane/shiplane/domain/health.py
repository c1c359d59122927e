"""Target health: what a check found, and when missing events mean broken forwarding."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field

from shiplane.domain.base import Model

EVENTS_NOT_ARRIVING = (
    "events are not arriving (check the forwarding rule from bootstrap/target-account.yaml)"
)
# A deployment this recent may not have produced its first event yet.
EVENT_GRACE = timedelta(minutes=10)
EVENT_WINDOW = timedelta(hours=24)


class HealthStatus(StrEnum):
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"


class TargetHealth(Model):
    target: str
    status: HealthStatus
    reasons: list[str] = Field(default_factory=list)
    checked_at: datetime

    @property
    def healthy(self) -> bool:
        return self.status is HealthStatus.HEALTHY


class TargetActivity(Model):
    """Per target account and region: the last CloudFormation/ECS event Shiplane received,
    and the last time a deployment to it started."""

    last_event_at: datetime | None = None
    last_deployment_at: datetime | None = None


def events_not_arriving(activity: TargetActivity, now: datetime) -> bool:
    """True when the account had a deployment in the last 24 hours (old enough to have
    emitted events) and no event has arrived since that deployment started."""
    deployed = activity.last_deployment_at
    if deployed is None or not now - EVENT_WINDOW <= deployed <= now - EVENT_GRACE:
        return False
    return activity.last_event_at is None or activity.last_event_at < deployed
