"""Target health check (scheduled): for every target, can Shiplane assume its deploy
role, is its cluster there and ACTIVE, and are its CloudFormation and ECS events reaching
Shiplane. The result is stored per target; Register Task Definition refuses a target
whose last check failed, so a deployment to it fails fast with the reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from shiplane.domain.health import (
    EVENTS_NOT_ARRIVING,
    HealthStatus,
    TargetHealth,
    events_not_arriving,
)
from shiplane.domain.models import Target
from shiplane.errors import TargetUnavailableError, TransientError
from shiplane.observability import logger, metrics
from shiplane.ports import ClusterGateways, ConfigStore, TargetHealthStore

# The session name of a health check's role assumption (there is no deployment to name).
HEALTH_CHECK_SESSION = "health-check"


@dataclass
class HealthDependencies:
    config: ConfigStore
    health: TargetHealthStore
    gateways: ClusterGateways
    now: Callable[[], datetime]


class HealthReport(BaseModel):
    checked: list[TargetHealth]
    skipped: dict[str, str]  # target → why it was not checked this time (transient)


def check_targets(deps: HealthDependencies) -> HealthReport:
    checked, skipped = [], {}
    for target in deps.config.list_targets():
        try:
            health = check_target(target, deps)
        except TransientError as exc:
            # Throttling says nothing about the target: keep its last result.
            skipped[target.name] = exc.message
            continue
        deps.health.save_target_health(health)
        checked.append(health)
        if not health.healthy:
            metrics.add_metric(name="TargetUnhealthy", unit="Count", value=1)
            logger.warning(
                "target unhealthy", extra={"target": target.name, "reasons": health.reasons}
            )
    return HealthReport(checked=checked, skipped=skipped)


def check_target(target: Target, deps: HealthDependencies) -> TargetHealth:
    now = deps.now()
    reasons = []
    try:
        gateway = deps.gateways.for_target(target, HEALTH_CHECK_SESSION)
    except TargetUnavailableError as exc:
        cause = exc.details.get("cause", exc.message)
        reasons.append(f"cannot assume role {target.deploy_role_arn}: {cause}")
    else:
        try:
            status = gateway.cluster_status(target.cluster)
        except TargetUnavailableError as exc:
            reasons.append(exc.message)
        else:
            if status is None:
                reasons.append(
                    f"cluster {target.cluster} does not exist in account "
                    f"{target.account_id} ({target.region})"
                )
            elif status != "ACTIVE":
                reasons.append(f"cluster {target.cluster} is {status}, not ACTIVE")
    if events_not_arriving(deps.health.target_activity(target.account_id, target.region), now):
        reasons.append(EVENTS_NOT_ARRIVING)
    return TargetHealth(
        target=target.name,
        status=HealthStatus.UNHEALTHY if reasons else HealthStatus.HEALTHY,
        reasons=reasons,
        checked_at=now,
    )
