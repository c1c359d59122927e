"""Retention (an EventBridge schedule): keep N releases per project as the lifecycle —
or the furthest phase a release reached — says. Never delete a release that is current
in any environment/tenant, the one before it there (the rollback target), or one with a
deployment still going."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from shiplane.domain.lifecycle import effective_phases
from shiplane.domain.models import Deployment, DeploymentStatus, Release
from shiplane.observability import logger, metrics
from shiplane.ports import ConfigStore, DeploymentStore, ReleaseStore


@dataclass
class RetentionDependencies:
    config: ConfigStore
    releases: ReleaseStore
    deployments: DeploymentStore


class RetentionResult(BaseModel):
    deleted: dict[str, list[str]] = Field(default_factory=dict)
    protected: dict[str, list[str]] = Field(default_factory=dict)


def protected_releases(deployments: list[Deployment]) -> set[str]:
    """Current and previous release of every environment/tenant, and any in flight."""
    keep: set[str] = set()
    history: dict[tuple[str, str], list[str]] = {}
    for d in sorted(deployments, key=lambda d: d.finished_at or d.created_at):
        if not d.status.finished:
            keep.add(d.release)
        if d.status is DeploymentStatus.SUCCEEDED:
            runs = history.setdefault((d.environment, d.tenant), [])
            if not runs or runs[-1] != d.release:
                runs.append(d.release)
    for runs in history.values():
        keep.update(runs[-2:])
    return keep


def apply_retention(event: Any, deps: RetentionDependencies) -> RetentionResult:
    only = event.get("project") if isinstance(event, dict) else None
    result = RetentionResult()
    environments = deps.config.list_environments()
    for project in deps.config.list_projects():
        if only and project.name != only:
            continue
        releases = sorted(
            deps.releases.list_releases(project.name), key=lambda r: r.sequence, reverse=True
        )
        deployments = deps.deployments.list_deployments(project.name)
        keep = protected_releases(deployments)
        deleted: list[str] = []
        for position, release in enumerate(releases, start=1):
            limit = _keep_for(release, deployments, deps, environments)
            if limit is None or position <= limit or release.version in keep:
                continue
            deps.releases.delete_release(project.name, release.version)
            deleted.append(release.version)
        if deleted:
            result.deleted[project.name] = deleted
            metrics.add_metric(name="ReleasesDeleted", unit="Count", value=len(deleted))
            logger.info("retention applied", extra={"project": project.name, "deleted": deleted})
        result.protected[project.name] = sorted(keep)
    return result


def _keep_for(
    release: Release,
    deployments: list[Deployment],
    deps: RetentionDependencies,
    environments: list[Any],
) -> int | None:
    lifecycle = deps.config.get_lifecycle(release.lifecycle)
    reached = {
        d.environment
        for d in deployments
        if d.release == release.version and d.status is DeploymentStatus.SUCCEEDED
    }
    furthest = None
    for phase in effective_phases(lifecycle, environments):
        if any(e.environment in reached for e in phase.environments):
            furthest = phase
    if furthest is not None and furthest.retention_keep is not None:
        return furthest.retention_keep
    return lifecycle.retention_keep
