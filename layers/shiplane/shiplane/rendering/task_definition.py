"""The `ecs-service` step's task definition, rendered for one deployment: images pinned
by digest, Shiplane's tags, environment-specific family."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shiplane.domain.models import (
    Container,
    DeploymentUnit,
    EcsServiceStep,
    PortMapping,
    Release,
    Volume,
)
from shiplane.domain.naming import log_group_name, task_family
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
    *,
    region: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `ecs.register_task_definition`. `settings` carries the
    substituted environment, secrets and command; without it values are taken as written.
    `region` (the target's) is needed by automatic logging only."""
    task = step.task
    automatic = {c.name for c in task.automatic_logging_containers}
    if automatic and not region:
        raise ConfigurationError(
            f"step {step.name!r}: automatic logging needs the target's region",
            field=f"steps.{step.name}.task.logging",
        )
    log_group = log_group_name(unit.project, unit.environment, unit.tenant)
    containers = []
    for container in task.containers:
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
        rendered = _container(container, image.image, given)
        if container.name in automatic:
            rendered["logConfiguration"] = {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group,
                    "awslogs-region": str(region),
                    "awslogs-stream-prefix": container.name,
                },
            }
        containers.append(rendered)

    tags = {**task.tags, **shiplane_tags(unit)}
    definition: dict[str, Any] = {
        "family": task_family(task.family, unit.environment, unit.tenant),
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(task.cpu),
        "memory": str(task.memory),
        "runtimePlatform": {
            "cpuArchitecture": task.cpu_architecture,
            "operatingSystemFamily": task.operating_system_family,
        },
        "containerDefinitions": containers,
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }
    if task.task_role_arn:
        definition["taskRoleArn"] = task.task_role_arn
    if task.execution_role_arn:
        definition["executionRoleArn"] = task.execution_role_arn
    if task.volumes:
        definition["volumes"] = [_volume(v) for v in task.volumes]
    return definition


def _container(container: Container, image: str, given: ContainerSettings) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "name": container.name,
        "image": image,
        "essential": container.essential,
        "portMappings": [_port(p) for p in container.port_mappings],
        "environment": list(given.environment),
    }
    # Secrets reach ECS as `valueFrom` references only: sensitive variables (resolved by
    # evaluation) and the ARNs the step names directly.
    secrets = [
        *given.secrets,
        *({"name": k, "valueFrom": v} for k, v in sorted(container.secrets.items())),
    ]
    if secrets:
        rendered["secrets"] = secrets
    optional: dict[str, Any] = {
        "cpu": container.cpu,
        "memory": container.memory,
        "memoryReservation": container.memory_reservation,
        "command": list(given.command) if given.command else None,
        "entryPoint": list(container.entry_point) if container.entry_point else None,
        "workingDirectory": container.working_directory,
        "readonlyRootFilesystem": container.readonly_root_filesystem,
    }
    rendered.update({k: v for k, v in optional.items() if v is not None})
    if container.health_check:
        check = container.health_check
        rendered["healthCheck"] = {
            "command": list(check.command),
            "interval": check.interval,
            "timeout": check.timeout,
            "retries": check.retries,
            "startPeriod": check.start_period,
        }
    if container.depends_on:
        rendered["dependsOn"] = [
            {"containerName": d.container_name, "condition": d.condition.value}
            for d in container.depends_on
        ]
    if container.log_configuration:
        logs = container.log_configuration
        rendered["logConfiguration"] = {"logDriver": logs.log_driver, "options": dict(logs.options)}
        if logs.secret_options:
            rendered["logConfiguration"]["secretOptions"] = [
                {"name": k, "valueFrom": v} for k, v in sorted(logs.secret_options.items())
            ]
    if container.ulimits:
        rendered["ulimits"] = [
            {"name": u.name, "softLimit": u.soft_limit, "hardLimit": u.hard_limit}
            for u in container.ulimits
        ]
    if container.mount_points:
        rendered["mountPoints"] = [
            {
                "sourceVolume": m.source_volume,
                "containerPath": m.container_path,
                "readOnly": m.read_only,
            }
            for m in container.mount_points
        ]
    return rendered


def _port(port: PortMapping) -> dict[str, Any]:
    rendered: dict[str, Any] = {"containerPort": port.container_port, "protocol": port.protocol}
    if port.name:
        rendered["name"] = port.name
    if port.app_protocol:
        rendered["appProtocol"] = port.app_protocol
    return rendered


def _volume(volume: Volume) -> dict[str, Any]:
    rendered: dict[str, Any] = {"name": volume.name}
    if volume.efs:
        efs = volume.efs
        config: dict[str, Any] = {
            "fileSystemId": efs.file_system_id,
            "transitEncryption": "ENABLED" if efs.transit_encryption else "DISABLED",
        }
        if not efs.access_point_id:
            config["rootDirectory"] = efs.root_directory
        if efs.transit_encryption_port:
            config["transitEncryptionPort"] = efs.transit_encryption_port
        if efs.access_point_id or efs.iam_authorization:
            auth: dict[str, Any] = {"iam": "ENABLED" if efs.iam_authorization else "DISABLED"}
            if efs.access_point_id:
                auth["accessPointId"] = efs.access_point_id
            config["authorizationConfig"] = auth
        rendered["efsVolumeConfiguration"] = config
    return rendered
