"""Turning a release and a lifecycle into deployments and their units of work; shared by
Resolve Release (a new release, an explicit request) and Gate Promotion (the next phase)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shiplane.domain.lifecycle import effective_phases
from shiplane.domain.models import (
    Deployment,
    DeploymentMode,
    DeploymentUnit,
    Phase,
    Release,
    Target,
    TriggeredBy,
)
from shiplane.domain.naming import automatic_deployment_id, stack_name
from shiplane.domain.targets import select_targets
from shiplane.ports import ConfigStore


@dataclass(frozen=True)
class Planned:
    deployment: Deployment
    units: list[DeploymentUnit]


def phases_for(config: ConfigStore, release: Release) -> list[Phase]:
    return effective_phases(config.get_lifecycle(release.lifecycle), config.list_environments())


def plan_deployment(
    release: Release,
    environment: str,
    tenant: str,
    deployment_id: str,
    triggered_by: TriggeredBy,
    targets: Sequence[Target],
    now: datetime,
    mode: DeploymentMode = DeploymentMode.DEPLOY,
) -> Planned:
    units: list[DeploymentUnit] = []
    target_names: list[str] = []
    for step in release.process:
        for target in select_targets(targets, environment, step.target_role):
            target_names.append(target.name)
            units.append(
                DeploymentUnit(
                    deployment_id=deployment_id,
                    project=release.project,
                    release=release.version,
                    environment=environment,
                    tenant=tenant,
                    target=target.name,
                    step=step.name,
                    stack_name=stack_name(release.project, step.name, environment, tenant),
                    wait_timeout_seconds=step.wait.timeout_seconds,
                )
            )
    deployment = Deployment(
        id=deployment_id,
        project=release.project,
        release=release.version,
        environment=environment,
        tenant=tenant,
        mode=mode,
        triggered_by=triggered_by,
        targets=sorted(set(target_names)),
        created_at=now,
    )
    return Planned(deployment=deployment, units=units)


def plan_automatic(
    release: Release,
    environments: Sequence[str],
    tenant: str,
    triggered_by: TriggeredBy,
    targets: Sequence[Target],
    now: Callable[[], datetime],
) -> list[Planned]:
    return [
        plan_deployment(
            release,
            environment,
            tenant,
            automatic_deployment_id(release.project, release.version, environment, tenant),
            triggered_by,
            targets,
            now(),
        )
        for environment in environments
    ]
