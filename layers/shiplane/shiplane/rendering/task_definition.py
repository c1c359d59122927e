"""The `ecs-service` step's task definition, rendered for one deployment: images pinned
by digest, Shiplane's tags, environment-specific family."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shiplane.domain.models import DeploymentUnit, EcsServiceStep, Release
from shiplane.domain.naming import task_family
from shiplane.errors import ConfigurationError


@dataclass
class ContainerSettings:
    """A container's values after variable substitution: plain environment, secrets (ECS
    `valueFrom`, never plain) and the command."""

    environment: list[dict[str, str]] = field(default_factory=list)
    secrets: list[dict[str, str]] = field(default_factory=list)
    command: list[str] | None = None


def shiplane_tags(unit: DeploymentUnit) -> dict[str, str]:
    return {
        "shiplane:project": unit.project,
        "shiplane:release": unit.release,
        "shiplane:environment": unit.environment,
        "shiplane:tenant": unit.tenant,
        "shiplane:deployment": unit.deployment_id,
    }


def render_task_definition(
    step: EcsServiceStep,
    release: Release,
    unit: DeploymentUnit,
    settings: Mapping[str, ContainerSettings] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `ecs.register_task_definition`. `settings` carries the
    substituted environment, secrets and command; without it values are taken as written."""
    containers = []
    for container in step.task.containers:
        image = release.images.get(container.image)
        if image is None:
            raise ConfigurationError(
                f"release {release.version} has no image for repository {container.image!r} "
                f"(container {container.name!r} of step {step.name!r})",
                field=f"steps.{step.name}.task.containers.{container.name}.image",
            )
        given = (settings or {}).get(container.name) or ContainerSettings(
            environment=[{"name": k, "value": v} for k, v in sorted(container.environment.items())],
            command=list(container.command) if container.command else None,
        )
        rendered: dict[str, Any] = {
            "name": container.name,
            "image": image.image,
            "essential": container.essential,
            "portMappings": [
                {"containerPort": p.container_port, "protocol": p.protocol}
                for p in container.port_mappings
            ],
            "environment": list(given.environment),
        }
        if given.secrets:
            rendered["secrets"] = list(given.secrets)
        if container.cpu is not None:
            rendered["cpu"] = container.cpu
        if container.memory is not None:
            rendered["memory"] = container.memory
        if given.command:
            rendered["command"] = list(given.command)
        containers.append(rendered)

    definition: dict[str, Any] = {
        "family": task_family(step.task.family, unit.environment, unit.tenant),
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(step.task.cpu),
        "memory": str(step.task.memory),
        "runtimePlatform": {
            "cpuArchitecture": step.task.cpu_architecture,
            "operatingSystemFamily": "LINUX",
        },
        "containerDefinitions": containers,
        "tags": [{"key": k, "value": v} for k, v in shiplane_tags(unit).items()],
    }
    if step.task.task_role_arn:
        definition["taskRoleArn"] = step.task.task_role_arn
    if step.task.execution_role_arn:
        definition["executionRoleArn"] = step.task.execution_role_arn
    return definition
