"""Variable management: sensitive values stored by reference, and a release's variable
snapshot refreshed from the project ("update variable snapshot")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shiplane.domain.models import Release
from shiplane.domain.variables import Variable, VariableScope
from shiplane.errors import NotFoundError
from shiplane.observability import logger
from shiplane.ports import ConfigStore, ReleaseStore, SecretStore
from shiplane.services.planning import World, phases_for
from shiplane.services.release_checks import check_release_variables


def secret_name(project: str, variable: str, scope_label: str = "") -> str:
    """`/shiplane/<project>/<variable>[/<scope>]`: one parameter per value."""
    parts = ["shiplane", project, variable] + ([scope_label] if scope_label else [])
    return "/" + "/".join(re.sub(r"[^A-Za-z0-9_.\-]", "-", p) for p in parts)


def store_sensitive_value(
    project: str,
    name: str,
    value: str,
    secrets: SecretStore,
    scope: VariableScope | None = None,
    scope_label: str = "",
) -> Variable:
    """Write the value to SSM and return the variable that refers to it (no value)."""
    reference = secrets.put_secret(secret_name(project, name, scope_label), value)
    logger.info("sensitive value stored", extra={"project": project, "variable": name})
    return Variable(name=name, sensitive=True, secret_ref=reference, scope=scope or VariableScope())


@dataclass
class SnapshotDependencies:
    config: ConfigStore
    releases: ReleaseStore


def update_variable_snapshot(project: str, version: str, deps: SnapshotDependencies) -> Release:
    """Refresh a release's variables from the project — and nothing else: images and the
    process stay as they were snapshotted."""
    release = deps.releases.get_release(project, version)
    if release is None:
        raise NotFoundError(f"project {project!r} has no release {version!r}")
    current = deps.config.get_project(project)
    refreshed = release.model_copy(update={"variables": current.variables})
    check_release_variables(
        current, refreshed, phases_for(deps.config, refreshed), World.load(deps.config)
    )
    deps.releases.update_release_variables(project, version, current.variables)
    return refreshed
