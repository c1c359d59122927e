"""Which targets a step deploys to in an environment."""

from __future__ import annotations

from collections.abc import Sequence

from shiplane.domain.models import Target
from shiplane.errors import ConfigurationError


def select_targets(targets: Sequence[Target], environment: str, role: str) -> list[Target]:
    chosen = [t for t in targets if environment in t.environments and role in t.roles]
    if not chosen:
        raise ConfigurationError(
            f"no target in environment {environment!r} has the role {role!r}",
            environment=environment,
            role=role,
        )
    return sorted(chosen, key=lambda t: t.name)
