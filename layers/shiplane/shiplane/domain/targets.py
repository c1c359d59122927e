"""Which targets a step deploys to in an environment, for a tenant (or untenanted)."""

from __future__ import annotations

from collections.abc import Sequence

from shiplane.domain.models import Target, Tenant
from shiplane.domain.tenants import target_serves
from shiplane.errors import ConfigurationError


def select_targets(
    targets: Sequence[Target], environment: str, role: str, tenant: Tenant | None = None
) -> list[Target]:
    chosen = [
        t
        for t in targets
        if environment in t.environments and role in t.roles and target_serves(t, tenant)
    ]
    if not chosen:
        whom = f" for tenant {tenant.name!r}" if tenant else ""
        raise ConfigurationError(
            f"no target in environment {environment!r} has the role {role!r}{whom}",
            environment=environment,
            role=role,
        )
    return sorted(chosen, key=lambda t: t.name)
