"""Convert an `ecs-service` step into an equivalent `cloudformation` step (DESIGN §1.4):
as a read-only export, or as an in-place replacement of the step in its project."""

from __future__ import annotations

from typing import Any, Protocol

import yaml
from pydantic import BaseModel

from shiplane.domain.models import (
    CloudFormationStep,
    Configuration,
    EcsServiceStep,
    Environment,
    Lifecycle,
    Project,
    Target,
    Tenant,
)
from shiplane.errors import ConfigurationError
from shiplane.rendering.convert import convert_step, converted_project
from shiplane.services.apply_configuration import check_configuration


class ConfigReader(Protocol):
    def get_project(self, name: str) -> Project: ...


class ConfigReadWriter(ConfigReader, Protocol):
    def save_configuration(self, config: Configuration) -> None: ...
    def list_environments(self) -> list[Environment]: ...
    def get_lifecycle(self, name: str) -> Lifecycle: ...
    def list_targets(self) -> list[Target]: ...
    def list_tenants(self) -> list[Tenant]: ...
    def list_projects(self) -> list[Project]: ...


class ConvertResult(BaseModel):
    project: str
    step: str
    converted: CloudFormationStep
    yaml: str
    """The converted step as a step document (what a configuration file holds)."""


def step_document(step: CloudFormationStep) -> dict[str, Any]:
    return step.model_dump(mode="json", exclude_defaults=False)


def _ecs_step(project: Project, step_name: str) -> EcsServiceStep:
    try:
        step = project.step(step_name)
    except KeyError:
        raise ConfigurationError(
            f"project {project.name!r} has no step {step_name!r} "
            f"(its steps: {', '.join(s.name for s in project.steps)})",
            field=f"projects.{project.name}.steps",
        ) from None
    if not isinstance(step, EcsServiceStep):
        raise ConfigurationError(
            f"project {project.name!r}: step {step_name!r} is a {step.type} step; only an "
            "ecs-service step can be converted",
            field=f"projects.{project.name}.steps.{step_name}.type",
        )
    return step


def export_converted(project_name: str, step_name: str, config: ConfigReader) -> ConvertResult:
    """Read-only: the converted step; nothing is written."""
    project = config.get_project(project_name)
    converted = convert_step(_ecs_step(project, step_name), project)
    text = yaml.safe_dump(step_document(converted), sort_keys=False, width=100)
    return ConvertResult(project=project.name, step=step_name, converted=converted, yaml=text)


def replace_with_converted(
    project_name: str, step_name: str, config_store: ConfigReadWriter
) -> ConvertResult:
    """In place: the project's step replaced by its conversion, saved through the
    configuration store (checked like an applied configuration first). Releases created
    before keep their snapshot of the original step."""
    project = config_store.get_project(project_name)
    _ecs_step(project, step_name)
    replaced = converted_project(project, step_name)
    projects = [replaced if p.name == project.name else p for p in config_store.list_projects()]
    lifecycles: dict[str, Lifecycle] = {}
    for p in projects:
        for name in [p.lifecycle, *(c.lifecycle for c in p.channels if c.lifecycle)]:
            if name not in lifecycles:
                lifecycles[name] = config_store.get_lifecycle(name)
    config = Configuration(
        environments=config_store.list_environments(),
        lifecycles=list(lifecycles.values()),
        targets=config_store.list_targets(),
        projects=projects,
        tenants=config_store.list_tenants(),
    )
    check_configuration(config)
    config_store.save_configuration(config)
    converted = replaced.step(step_name)
    assert isinstance(converted, CloudFormationStep)
    text = yaml.safe_dump(step_document(converted), sort_keys=False, width=100)
    return ConvertResult(project=project.name, step=step_name, converted=converted, yaml=text)
