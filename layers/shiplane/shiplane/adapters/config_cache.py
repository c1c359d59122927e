"""Configuration read once per invocation: a use case asks for the environments, targets
or a lifecycle several times; within one invocation the answer cannot change enough to
matter, and across invocations nothing is kept (an `apply` is seen at once)."""

from __future__ import annotations

from typing import Any

from shiplane.domain.models import Configuration, Environment, Lifecycle, Project, Target, Tenant
from shiplane.ports import ConfigStore


class InvocationConfig:
    """A ConfigStore that memoizes the reads of another, for one invocation."""

    def __init__(self, store: ConfigStore) -> None:
        self._store = store
        self._memo: dict[tuple[str, str], Any] = {}

    def _read(self, what: str, name: str, read: Any) -> Any:
        key = (what, name)
        if key not in self._memo:
            self._memo[key] = read()
        return self._memo[key]

    def save_configuration(self, config: Configuration) -> None:
        self._memo.clear()
        self._store.save_configuration(config)

    def list_environments(self) -> list[Environment]:
        return list(self._read("environments", "", self._store.list_environments))

    def list_targets(self) -> list[Target]:
        return list(self._read("targets", "", self._store.list_targets))

    def list_tenants(self) -> list[Tenant]:
        return list(self._read("tenants", "", self._store.list_tenants))

    def get_tenant(self, name: str) -> Tenant:
        result: Tenant = self._read("tenant", name, lambda: self._store.get_tenant(name))
        return result

    def list_projects(self) -> list[Project]:
        return list(self._read("projects", "", self._store.list_projects))

    def get_lifecycle(self, name: str) -> Lifecycle:
        result: Lifecycle = self._read("lifecycle", name, lambda: self._store.get_lifecycle(name))
        return result

    def get_project(self, name: str) -> Project:
        result: Project = self._read("project", name, lambda: self._store.get_project(name))
        return result

    def get_target(self, name: str) -> Target:
        result: Target = self._read("target", name, lambda: self._store.get_target(name))
        return result

    def projects_for_repository(self, repository: str) -> list[str]:
        return list(
            self._read(
                "repository", repository, lambda: self._store.projects_for_repository(repository)
            )
        )
