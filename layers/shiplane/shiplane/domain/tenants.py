"""Tenants: tag filters, and who a deployment of a release to an environment is for."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shiplane.domain.models import (
    UNTENANTED,
    Channel,
    Project,
    Target,
    Tenant,
    TenantedMode,
)


def tags_match(required: Iterable[str], tags: Iterable[str]) -> bool:
    """A tenant matches a tag filter when, for every tag set the filter names, it has at
    least one of the filter's tags in that set (OR within a set, AND across sets)."""
    by_set: dict[str, set[str]] = {}
    for tag in required:
        by_set.setdefault(tag.split("/", 1)[0], set()).add(tag)
    owned = set(tags)
    return all(owned & wanted for wanted in by_set.values())


def deployment_tenants(
    project: Project, channel: Channel, tenants: Sequence[Tenant], environment: str
) -> list[str]:
    """The tenants (or `untenanted`) a release of `project` in `channel` deploys to in
    `environment`, in a stable order."""
    chosen: list[str] = []
    if project.tenanted_mode in (TenantedMode.UNTENANTED, TenantedMode.BOTH):
        chosen.append(UNTENANTED)
    if project.tenanted_mode in (TenantedMode.TENANTED, TenantedMode.BOTH):
        for tenant in sorted(tenants, key=lambda t: t.name):
            if environment not in tenant.projects.get(project.name, []):
                continue
            if channel.tenant_tags and not tags_match(channel.tenant_tags, tenant.tags):
                continue
            chosen.append(tenant.name)
    return chosen


def target_serves(target: Target, tenant: Tenant | None) -> bool:
    """Whether a target takes deployments for this tenant (None: untenanted)."""
    if tenant is None:
        return target.tenanted_mode in (TenantedMode.UNTENANTED, TenantedMode.BOTH)
    if target.tenanted_mode is TenantedMode.UNTENANTED:
        return False
    if not target.tenants and not target.tenant_tags:
        return True
    return tenant.name in target.tenants or (
        bool(target.tenant_tags) and tags_match(target.tenant_tags, tenant.tags)
    )
