"""Drift detection (scheduled): for every project/environment/tenant's current
deployment, compare what runs in each target with what Shiplane deployed there.

Through the target gateway: the live ECS service (task definition ARN, desired count)
and the live task definition (images, cpu/memory, environment names) against the
deployment's recorded task definition and the release snapshot (images pinned by
digest, the step's desired count). The result is stored per project / environment /
tenant / target, so the dashboard can say "drifted: <what>" per cell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shiplane.domain.drift import (
    DriftReport,
    DriftStatus,
    image_differences,
    task_definition_differences,
)
from shiplane.domain.models import UNTENANTED, EcsServiceStep, Release, Target
from shiplane.domain.naming import service_name, task_family
from shiplane.errors import TargetUnavailableError, TransientError
from shiplane.observability import logger, metrics
from shiplane.ports import (
    ConfigStore,
    CurrentDeployments,
    DeploymentStore,
    DriftStore,
    ReleaseStore,
    TargetGateway,
    TargetGateways,
)

# The session name of a drift check's role assumption (there is no deployment to name).
DRIFT_CHECK_SESSION = "drift-check"


@dataclass
class DriftDependencies:
    config: ConfigStore
    releases: ReleaseStore
    deployments: DeploymentStore
    current: CurrentDeployments
    drift: DriftStore
    gateways: TargetGateways
    now: Callable[[], datetime]


class DriftResult(BaseModel):
    checked: int = 0
    drifted: list[str] = Field(default_factory=list, description="project/env/tenant/target")
    unknown: list[str] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict, description="cell → why not now")


def detect_drift(event: Any, deps: DriftDependencies) -> DriftResult:
    only = event.get("project") if isinstance(event, dict) else None
    targets = {t.name: t for t in deps.config.list_targets()}
    result = DriftResult()
    for project in deps.config.list_projects():
        if only and project.name != only:
            continue
        busy = {
            (d.environment, d.tenant)
            for d in deps.deployments.list_deployments(project.name)
            if not d.status.finished
        }
        for current in deps.current.list_current(project.name):
            environment = str(current["environment"])
            tenant = str(current.get("tenant") or UNTENANTED)
            cell = f"{project.name}/{environment}/{tenant}"
            if (environment, tenant) in busy:
                # A rollout in progress is not drift: look again next time.
                result.skipped[cell] = "a deployment is in progress"
                continue
            release = deps.releases.get_release(project.name, str(current["release"]))
            if release is None:
                result.skipped[cell] = f"release {current['release']} no longer exists"
                continue
            arns: dict[str, str] = dict(current.get("task_definition_arns") or {})
            for target_name, recorded in sorted(arns.items()):
                key = f"{cell}/{target_name}"
                try:
                    differences = _check_target(
                        targets.get(target_name), release, environment, tenant, recorded, deps
                    )
                    status = DriftStatus.DRIFTED if differences else DriftStatus.IN_SYNC
                except TransientError as exc:
                    result.skipped[key] = exc.message  # keep the last result
                    continue
                except TargetUnavailableError as exc:
                    status, differences = DriftStatus.UNKNOWN, [exc.message]
                report = DriftReport(
                    project=project.name,
                    environment=environment,
                    tenant=tenant,
                    target=target_name,
                    release=release.version,
                    deployment_id=str(current.get("deployment_id", "")),
                    status=status,
                    differences=differences,
                    checked_at=deps.now(),
                )
                deps.drift.save_drift(report)
                result.checked += 1
                if status is DriftStatus.DRIFTED:
                    result.drifted.append(key)
                    logger.warning("drift detected", extra={"cell": key, "what": differences})
                elif status is DriftStatus.UNKNOWN:
                    result.unknown.append(key)
    if result.drifted:
        metrics.add_metric(name="DriftDetected", unit="Count", value=len(result.drifted))
    return result


def _check_target(
    target: Target | None,
    release: Release,
    environment: str,
    tenant: str,
    recorded_arn: str,
    deps: DriftDependencies,
) -> list[str]:
    if target is None:
        raise TargetUnavailableError("the target is no longer configured")
    gateway = deps.gateways.for_target(target, DRIFT_CHECK_SESSION)
    differences: list[str] = []
    for step in release.process:
        if isinstance(step, EcsServiceStep) and step.target_role in target.roles:
            differences += _check_service(
                gateway, target, step, release, environment, tenant, recorded_arn
            )
    return differences


def _family(arn: str) -> str:
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def _check_service(
    gateway: TargetGateway,
    target: Target,
    step: EcsServiceStep,
    release: Release,
    environment: str,
    tenant: str,
    recorded_arn: str,
) -> list[str]:
    service = service_name(step.service.name, tenant)
    where = f"service {service}"
    live = gateway.describe_service(target.cluster, service)
    if live is None:
        return [f"{where} is missing from cluster {target.cluster}"]
    found: list[str] = []
    if live.desired_count != step.service.desired_count:
        found.append(
            f"{where}: desired count is {live.desired_count}, deployed {step.service.desired_count}"
        )
    # The deployment records one task definition per target: the step's when its
    # family matches; another step on the same target is held to the release's images.
    expected = (
        recorded_arn
        if _family(recorded_arn) == task_family(step.task.family, environment, tenant)
        else None
    )
    if expected is not None and live.task_definition_arn == expected:
        return found  # task definitions are immutable: same ARN, same definition
    live_definition = gateway.describe_task_definition(live.task_definition_arn)
    if expected is None:
        pinned = {
            c.name: release.images[c.image].image
            for c in step.task.containers
            if c.image in release.images
        }
        return found + image_differences(pinned, live_definition, where)
    found.append(
        f"{where}: task definition is {live.task_definition_arn.rsplit('/', 1)[-1]}, "
        f"deployed {expected.rsplit('/', 1)[-1]}"
    )
    recorded = gateway.describe_task_definition(expected)
    return found + task_definition_differences(recorded, live_definition, where)
