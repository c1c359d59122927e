"""Where every release stands: projects x environments (x tenants), the dashboard's
data. Read-only; one pass over each project's records."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from shiplane.domain.drift import DriftReport, DriftStatus
from shiplane.domain.lifecycle import effective_phases
from shiplane.domain.models import (
    UNTENANTED,
    Deployment,
    Environment,
    Lifecycle,
    Project,
    Tenant,
    TenantedMode,
)
from shiplane.ports import Approval


class StatusReader(Protocol):
    def list_projects(self) -> list[Project]: ...
    def list_environments(self) -> list[Environment]: ...
    def list_tenants(self) -> list[Tenant]: ...
    def get_lifecycle(self, name: str) -> Lifecycle: ...
    def list_deployments(self, project: str) -> list[Deployment]: ...
    def list_current(self, project: str) -> list[dict[str, Any]]: ...
    def list_approvals(self, project: str) -> list[Approval]: ...


@dataclass(frozen=True)
class StatusDependencies:
    store: StatusReader
    now: Callable[[], datetime]
    # (project) -> {(environment, tenant): ["what drifted", ...]}; None: no drift data.
    drift: Callable[[str], dict[tuple[str, str], list[str]]] | None = None


class LatestDeployment(BaseModel):
    id: str
    release: str
    status: str
    mode: str
    created_at: datetime
    finished_at: datetime | None = None
    reason: str = ""


class Cell(BaseModel):
    """One project in one environment for one tenant."""

    environment: str
    current_release: str | None = Field(default=None, description="what runs there now")
    latest: LatestDeployment | None = Field(
        default=None, description="the most recent deployment there, whatever its outcome"
    )
    awaiting_approval: bool = False
    queued: int = Field(default=0, description="deployments waiting for this slot")
    drift: list[str] = Field(default_factory=list, description="what differs from the release")


class Row(BaseModel):
    tenant: str
    cells: list[Cell]


class PendingApproval(BaseModel):
    deployment_id: str
    release: str
    environment: str
    tenant: str
    requested_at: str = ""


class ProjectStatus(BaseModel):
    name: str
    tenanted_mode: str
    environments: list[str]
    rows: list[Row]
    pending_approvals: list[PendingApproval]


class Status(BaseModel):
    generated_at: datetime
    projects: list[ProjectStatus]


def project_environments(
    project: Project, environments: list[Environment], lifecycle_of: Callable[[str], Lifecycle]
) -> list[str]:
    """Every environment the project's lifecycles (its own and its channels') reach, in
    the order the environments are defined."""
    names = [project.lifecycle] + [c.lifecycle for c in project.channels if c.lifecycle]
    reached = {
        entry.environment
        for name in dict.fromkeys(names)
        for phase in effective_phases(lifecycle_of(name), environments)
        for entry in phase.environments
    }
    return [e.name for e in environments if e.name in reached]


def project_status(
    project: Project,
    environments: list[Environment],
    tenants: list[Tenant],
    deps: StatusDependencies,
    lifecycles: dict[str, Lifecycle],
) -> ProjectStatus:
    store = deps.store

    def lifecycle_of(name: str) -> Lifecycle:
        if name not in lifecycles:
            lifecycles[name] = store.get_lifecycle(name)
        return lifecycles[name]

    names = project_environments(project, environments, lifecycle_of)
    rows_for: list[tuple[str, set[str]]] = []
    if project.tenanted_mode is not TenantedMode.TENANTED:
        rows_for.append((UNTENANTED, set(names)))
    if project.tenanted_mode is not TenantedMode.UNTENANTED:
        for tenant in sorted(tenants, key=lambda t: t.name):
            connected = set(tenant.projects.get(project.name, []))
            if connected:
                rows_for.append((tenant.name, connected))

    latest: dict[tuple[str, str], Deployment] = {}
    queued: dict[tuple[str, str], int] = {}
    for deployment in sorted(store.list_deployments(project.name), key=lambda d: d.created_at):
        key = (deployment.environment, deployment.tenant)
        if deployment.status.value == "SKIPPED":
            continue
        latest[key] = deployment
        if deployment.status.value == "QUEUED":
            queued[key] = queued.get(key, 0) + 1
    pending = [a for a in store.list_approvals(project.name) if a.status == "PENDING"]
    waiting = {a.deployment_id for a in pending}
    drift = deps.drift(project.name) if deps.drift else {}
    # What runs where: one query for the project, not one read per cell.
    running = {
        (str(c["environment"]), str(c["tenant"])): str(c["release"])
        for c in store.list_current(project.name)
    }

    rows = []
    for tenant, connected in rows_for:
        cells = []
        for environment in names:
            if environment not in connected:
                continue
            key = (environment, tenant)
            last = latest.get(key)
            cells.append(
                Cell(
                    environment=environment,
                    current_release=running.get(key),
                    latest=LatestDeployment(
                        id=last.id,
                        release=last.release,
                        status=last.status.value,
                        mode=last.mode.value,
                        created_at=last.created_at,
                        finished_at=last.finished_at,
                        reason=last.reason[:300],
                    )
                    if last
                    else None,
                    awaiting_approval=bool(last and last.id in waiting),
                    queued=queued.get(key, 0),
                    drift=drift.get(key, []),
                )
            )
        rows.append(Row(tenant=tenant, cells=cells))
    return ProjectStatus(
        name=project.name,
        tenanted_mode=project.tenanted_mode.value,
        environments=names,
        rows=rows,
        pending_approvals=[
            PendingApproval(
                deployment_id=a.deployment_id,
                release=a.release,
                environment=a.environment,
                tenant=a.tenant,
                requested_at=a.requested_at,
            )
            for a in pending
        ],
    )


def drift_by_cell(reports: Iterable[DriftReport]) -> dict[tuple[str, str], list[str]]:
    """The last drift checks as the grid shows them: what drifted, per environment and
    tenant (a check that could not look says so)."""
    cells: dict[tuple[str, str], list[str]] = {}
    for report in sorted(reports, key=lambda r: r.target):
        if report.status is DriftStatus.IN_SYNC:
            continue
        found = cells.setdefault((report.environment, report.tenant), [])
        if report.status is DriftStatus.UNKNOWN:
            found.append(f"{report.target}: drift unknown ({'; '.join(report.differences)})")
        else:
            found.extend(f"{report.target}: {difference}" for difference in report.differences)
    return cells


def status(deps: StatusDependencies, project: str | None = None) -> Status:
    store = deps.store
    environments = store.list_environments()
    tenants = store.list_tenants()
    lifecycles: dict[str, Lifecycle] = {}
    projects = [p for p in store.list_projects() if project is None or p.name == project]
    return Status(
        generated_at=deps.now(),
        projects=[project_status(p, environments, tenants, deps, lifecycles) for p in projects],
    )
