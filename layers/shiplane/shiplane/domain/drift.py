"""Drift: what runs in a target differs from what Shiplane deployed there.

The comparison is pure: the live ECS service and task definition (as ECS describes
them) against the deployment's recorded task definition and the release snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from shiplane.domain.base import Model
from shiplane.domain.models import UNTENANTED


class DriftStatus(StrEnum):
    IN_SYNC = "in_sync"
    DRIFTED = "drifted"
    UNKNOWN = "unknown"  # the check could not look (target unreachable...)


class DriftReport(Model):
    """One cell of the dashboard: project x environment x tenant, on one target."""

    project: str
    environment: str
    tenant: str = UNTENANTED
    target: str
    release: str
    deployment_id: str
    status: DriftStatus
    differences: list[str] = Field(default_factory=list, description="what drifted, readable")
    checked_at: datetime

    @property
    def drifted(self) -> bool:
        return self.status is DriftStatus.DRIFTED


def _containers(definition: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("name")): c for c in definition.get("containerDefinitions", [])}


def _text(value: Any) -> str:
    return "unset" if value in (None, "") else str(value)


def task_definition_differences(
    expected: Mapping[str, Any], live: Mapping[str, Any], where: str = ""
) -> list[str]:
    """What differs between two task definitions, as ECS describes them: container
    images, cpu/memory (task and containers), environment variable names."""
    prefix = f"{where}: " if where else ""
    found: list[str] = []
    for field in ("cpu", "memory"):
        if _text(expected.get(field)) != _text(live.get(field)):
            found.append(
                f"{prefix}task {field} is {_text(live.get(field))}, "
                f"deployed {_text(expected.get(field))}"
            )
    want, have = _containers(expected), _containers(live)
    for name in sorted(set(want) - set(have)):
        found.append(f"{prefix}container {name} is missing")
    for name in sorted(set(have) - set(want)):
        found.append(f"{prefix}container {name} was added")
    for name in sorted(set(want) & set(have)):
        w, h = want[name], have[name]
        if w.get("image") != h.get("image"):
            found.append(
                f"{prefix}container {name} image is {h.get('image')}, deployed {w.get('image')}"
            )
        for field in ("cpu", "memory", "memoryReservation"):
            if _text(w.get(field)) != _text(h.get(field)):
                found.append(
                    f"{prefix}container {name} {field} is {_text(h.get(field))}, "
                    f"deployed {_text(w.get(field))}"
                )
        w_env = {e.get("name") for e in w.get("environment", [])}
        h_env = {e.get("name") for e in h.get("environment", [])}
        if w_env != h_env:
            added, removed = sorted(h_env - w_env), sorted(w_env - h_env)
            parts = ([f"added {', '.join(map(str, added))}"] if added else []) + (
                [f"removed {', '.join(map(str, removed))}"] if removed else []
            )
            found.append(f"{prefix}container {name} environment {'; '.join(parts)}")
    return found


def image_differences(
    pinned: Mapping[str, str], live: Mapping[str, Any], where: str = ""
) -> list[str]:
    """Containers whose live image is not the release's image pinned by digest.
    `pinned` maps a container name to `registry/repository@digest`."""
    prefix = f"{where}: " if where else ""
    have = _containers(live)
    found = []
    for name, image in sorted(pinned.items()):
        container = have.get(name)
        if container is not None and container.get("image") != image:
            found.append(
                f"{prefix}container {name} runs {container.get('image')}, release pins {image}"
            )
    return found
