"""Turning a release and a lifecycle into deployments and their units of work; shared by
Resolve Release (a new release, an explicit request) and Gate Promotion (the next phase)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shiplane.domain.lifecycle import effective_phases
from shiplane.domain.models import (
    UNTENANTED,
    CloudFormationStep,
    Deployment,
    DeploymentMode,
    DeploymentStatus,
    DeploymentTask,
    DeploymentUnit,
    Environment,
    Phase,
    Project,
    Release,
    Step,
    Target,
    Tenant,
    TriggeredBy,
)
from shiplane.domain.naming import automatic_deployment_id, stack_name
from shiplane.domain.targets import select_targets
from shiplane.domain.tenants import deployment_tenants
from shiplane.errors import NotFoundError
from shiplane.ports import ConfigStore, DeploymentStore


@dataclass(frozen=True)
class Planned:
    deployment: Deployment
    task: DeploymentTask


@dataclass(frozen=True)
class World:
    """The configuration a plan is made against, read once."""

    environments: list[Environment]
    targets: list[Target]
    tenants: list[Tenant]

    @classmethod
    def load(cls, config: ConfigStore) -> World:
        return cls(config.list_environments(), config.list_targets(), config.list_tenants())

    def tenant(self, name: str) -> Tenant | None:
        if name == UNTENANTED:
            return None
        for tenant in self.tenants:
            if tenant.name == name:
                return tenant
        raise NotFoundError(f"tenant {name!r} does not exist", tenant=name)

    def requires_approval(self, environment: str) -> bool:
        return any(e.name == environment and e.requires_approval for e in self.environments)


def phases_for(config: ConfigStore, release: Release) -> list[Phase]:
    return effective_phases(config.get_lifecycle(release.lifecycle), config.list_environments())


def tenants_for(project: Project, release: Release, world: World, environment: str) -> list[str]:
    return deployment_tenants(project, project.channel(release.channel), world.tenants, environment)


def plan_deployment(
    release: Release,
    environment: str,
    tenant: str,
    deployment_id: str,
    triggered_by: TriggeredBy,
    world: World,
    now: datetime,
    mode: DeploymentMode = DeploymentMode.DEPLOY,
    execution: str = "",
) -> Planned:
    units: list[DeploymentUnit] = []
    tenant_config = world.tenant(tenant)
    # Step by step, in the process's order (a later step may use an earlier one's
    # outputs); the inner Map runs them one at a time, in this order.
    for step in release.process:
        targets = select_targets(world.targets, environment, step.target_role, tenant_config)
        for target in sorted(targets, key=lambda t: t.name):
            units.append(
                DeploymentUnit(
                    deployment_id=deployment_id,
                    project=release.project,
                    release=release.version,
                    environment=environment,
                    tenant=tenant,
                    target=target.name,
                    step=step.name,
                    stack_name=unit_stack_name(step, release.project, environment, tenant),
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
        targets=sorted({u.target for u in units}),
        execution=execution,
        created_at=now,
    )
    task = DeploymentTask(
        deployment_id=deployment_id,
        project=release.project,
        release=release.version,
        environment=environment,
        tenant=tenant,
        requires_approval=world.requires_approval(environment),
        units=units,
    )
    return Planned(deployment=deployment, task=task)


def plan_automatic(
    project: Project,
    release: Release,
    environments: Sequence[str],
    tenants: Sequence[str] | None,
    triggered_by: TriggeredBy,
    world: World,
    now: Callable[[], datetime],
    execution: str = "",
) -> list[Planned]:
    """The automatic deployments of `environments`, for `tenants` (None: every tenant the
    release goes to in that environment), run by the pipeline execution `execution`."""
    planned = []
    for environment in environments:
        candidates = tenants_for(project, release, world, environment)
        for tenant in candidates if tenants is None else [t for t in tenants if t in candidates]:
            planned.append(
                plan_deployment(
                    release,
                    environment,
                    tenant,
                    automatic_deployment_id(release.project, release.version, environment, tenant),
                    triggered_by,
                    world,
                    now(),
                    execution=execution,
                )
            )
    return planned


def unit_stack_name(step: Step, project: str, environment: str, tenant: str) -> str:
    """The step's own stack name (a cloudformation step may set one), else the
    deterministic `shiplane-{project}-{step}-{environment}-{tenant}`."""
    if isinstance(step, CloudFormationStep) and step.stack_name:
        return step.stack_name
    return stack_name(project, step.name, environment, tenant)


def resumable(planned: Planned, execution: str, deployments: DeploymentStore) -> bool:
    """True when `planned` was written already by this same execution and has not started:
    an earlier attempt of the step wrote it and failed before handing it on (a retry after
    a committed write). Its task must be handed on now, or it would stay QUEUED forever.
    Written by another execution, it is that execution's to run."""
    if not execution:
        return False
    try:
        stored = deployments.get_deployment(planned.deployment.project, planned.deployment.id)
    except NotFoundError:
        return False
    return stored.execution == execution and stored.status is DeploymentStatus.QUEUED
