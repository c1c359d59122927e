"""What a person sees of Shiplane: the status table and live progress, read from the
Shiplane table (the same records the API will serve)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import Deployment, DeploymentStatus

STATUS_STYLE = {
    DeploymentStatus.QUEUED: "yellow",
    DeploymentStatus.DEPLOYING: "cyan",
    DeploymentStatus.SUCCEEDED: "green",
    DeploymentStatus.FAILED: "bold red",
    DeploymentStatus.REJECTED: "magenta",
    DeploymentStatus.SKIPPED: "dim",
    DeploymentStatus.CANCELLED: "dim magenta",
}


def short_task_definition(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if arn else "-"


def status_rows(store: DynamoStore, project: str) -> list[dict[str, str]]:
    """One row per environment/tenant/release: its latest deployment of that release."""
    environments = [e.name for e in store.list_environments()]
    latest: dict[tuple[str, str, str], Deployment] = {}
    for deployment in store.list_deployments(project):
        latest[(deployment.environment, deployment.tenant, deployment.release)] = deployment
    rows = []
    for (environment, tenant, release), deployment in sorted(
        latest.items(),
        key=lambda kv: (
            environments.index(kv[0][0]) if kv[0][0] in environments else 99,
            kv[0][1],
            kv[1].created_at,
        ),
    ):
        current = store.get_current(project, environment, tenant)
        running = current is not None and current["release"] == release
        rows.append(
            {
                "environment": environment,
                "tenant": tenant,
                "release": release,
                "status": deployment.status.value + (" (current)" if running else ""),
                "mode": deployment.mode.value,
                "task_definition": ", ".join(
                    short_task_definition(a) for a in deployment.task_definition_arns.values()
                )
                or "-",
                "reason": deployment.reason,
            }
        )
    return rows


def status_table(store: DynamoStore, project: str) -> Table:
    table = Table(title=f"Project {project}", header_style="bold")
    for column in ("environment", "release", "status", "task definition", "reason"):
        table.add_column(column, overflow="fold")
    for row in status_rows(store, project):
        style = STATUS_STYLE[DeploymentStatus(row["status"].split()[0])]
        table.add_row(
            row["environment"] + ("" if row["tenant"] == "untenanted" else f"/{row['tenant']}"),
            row["release"],
            f"[{style}]{row['status']}[/]",
            row["task_definition"],
            row["reason"][:90],
        )
    return table


class Follower:
    """Prints each deployment's new timeline entries and status changes as they happen."""

    def __init__(self, store: DynamoStore, console: Console, projects: list[str]) -> None:
        self.store = store
        self.console = console
        self.projects = projects
        self._seen: dict[str, int] = {}
        self._status: dict[str, DeploymentStatus] = {}

    def poll(self) -> None:
        for project in self.projects:
            for deployment in self.store.list_deployments(project):
                self._show(deployment)

    def _show(self, d: Deployment) -> None:
        label = f"[bold]{d.project} {d.release}[/] → [bold]{d.environment}[/]"
        if d.tenant != "untenanted":
            label += f"/{d.tenant}"
        if d.id not in self._status:
            self.console.print(
                f"  {label}: deployment {d.id} queued ({d.mode.value}, "
                f"by {d.triggered_by.kind.value}: {d.triggered_by.by})",
                soft_wrap=True,
            )
        seen = self._seen.get(d.id, 0)
        for entry in d.timeline[seen:]:
            text = re.sub(r"arn:aws:ecs:[^ ]*:task-definition/", "task definition ", entry.message)
            self.console.print(f"  {label}: {text}", highlight=False, soft_wrap=True)
        self._seen[d.id] = len(d.timeline)
        self._status[d.id] = d.status

    def follow(self, until: Callable[[], bool], timeout: float, interval: float = 0.25) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if until():
                self.poll()
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"still busy after {timeout:.0f} s")
            time.sleep(interval)


def deployments_by_status(store: DynamoStore, project: str) -> dict[str, Any]:
    return {d.id: d.status.value for d in store.list_deployments(project)}
