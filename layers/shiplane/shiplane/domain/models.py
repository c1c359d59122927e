"""The release model: configuration (environments, lifecycles, targets, projects) and
the records Shiplane keeps (releases, deployments, units of work, outcomes).

Pure pydantic; no AWS, no environment.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from shiplane.domain.base import Model
from shiplane.domain.cfn_template import (
    TemplateParseError,
    declared_parameters,
    parse_template,
    strings_in,
)
from shiplane.domain.variables import Variable
from shiplane.domain.versions import VersionRule

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
UNTENANTED = "untenanted"
ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$"


# --------------------------------------------------------------------------- configuration


TAG_PATTERN = r"^[^/#]{1,64}/[^/#]{1,64}$"
TenantTag = Annotated[str, Field(pattern=TAG_PATTERN, description="'Set/Tag'")]


class TenantedMode(StrEnum):
    UNTENANTED = "untenanted"
    TENANTED = "tenanted"
    BOTH = "both"


class Environment(Model):
    name: Name
    description: str = ""
    requires_approval: bool = False


class Trigger(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class PhaseEnvironment(Model):
    environment: Name
    trigger: Trigger = Trigger.MANUAL


class Phase(Model):
    name: str = Field(min_length=1, max_length=64)
    environments: list[PhaseEnvironment] = Field(min_length=1)
    minimum_environments: int | None = Field(default=None, ge=1)
    optional: bool = False
    retention_keep: int | None = Field(
        default=None, ge=1, description="releases to keep among those that reached this phase"
    )

    @model_validator(mode="after")
    def _minimum_fits(self) -> Phase:
        if self.minimum_environments and self.minimum_environments > len(self.environments):
            raise ValueError(
                f"phase {self.name!r}: minimum_environments={self.minimum_environments} "
                f"but the phase lists only {len(self.environments)} environment(s)"
            )
        return self


class Lifecycle(Model):
    name: Name
    phases: list[Phase] = Field(default_factory=list)
    retention_keep: int | None = Field(default=None, ge=1, description="None keeps every release")

    @model_validator(mode="after")
    def _environments_once(self) -> Lifecycle:
        seen: set[str] = set()
        for phase in self.phases:
            for entry in phase.environments:
                if entry.environment in seen:
                    raise ValueError(
                        f"lifecycle {self.name!r}: environment {entry.environment!r} "
                        "appears in more than one phase"
                    )
                seen.add(entry.environment)
        return self


class Target(Model):
    """One ECS cluster, reached by assuming a deploy role (with an external ID)."""

    name: Name
    environments: list[Name] = Field(min_length=1)
    roles: list[Name] = Field(min_length=1, description="target roles (tags) steps aim at")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    cluster: str = Field(min_length=1, max_length=255)
    deploy_role_arn: str = Field(pattern=ROLE_ARN_PATTERN)
    external_id: str | None = Field(default=None, min_length=2, max_length=1224)
    cloudformation_role_arn: str | None = Field(
        default=None,
        pattern=ROLE_ARN_PATTERN,
        description="the role CloudFormation runs this target's stacks as; default: the "
        "bootstrap's execution role, {deploy role name}-cfn-exec in the deploy role's account",
    )
    subnets: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$")]] = Field(
        min_length=1, max_length=16, description="default awsvpc subnets"
    )
    security_groups: list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$")]] = Field(
        default_factory=list, max_length=5
    )
    assign_public_ip: bool = False
    tenanted_mode: TenantedMode = TenantedMode.UNTENANTED
    tenants: list[Name] = Field(default_factory=list, description="empty: any tenant")
    tenant_tags: list[TenantTag] = Field(default_factory=list)

    @property
    def account_id(self) -> str:
        return self.deploy_role_arn.split(":")[4]

    @property
    def stack_role_arn(self) -> str:
        """The role every stack operation names as RoleARN: never none, or CloudFormation
        would act as the deploy role, which may not create services."""
        return self.cloudformation_role_arn or bootstrap_execution_role_arn(self.deploy_role_arn)


# bootstrap/target-account.yaml lets its roles pass only roles named so to ECS.
TASK_ROLE_PREFIX = "shiplane-task-"
# ... and pass CloudFormation only its execution role or roles named so.
STACK_ROLE_PREFIX = "shiplane-stack-"
# bootstrap/target-account.yaml names its CloudFormation execution role after the deploy
# role: RoleName ${DeployRoleName}-cfn-exec.
EXECUTION_ROLE_SUFFIX = "-cfn-exec"


def bootstrap_execution_role_arn(deploy_role_arn: str) -> str:
    """The bootstrap's execution role in the account of `deploy_role_arn`."""
    prefix, _, resource = deploy_role_arn.partition(":role/")
    return f"{prefix}:role/{resource.rsplit('/', 1)[-1]}{EXECUTION_ROLE_SUFFIX}"


# Fargate's task sizes: cpu units -> the memory (MiB) each allows.
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
SECRET_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:(ssm:[a-z0-9-]+:[0-9]{12}:parameter/.+"
    r"|secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+)$"
)
SecretArn = Annotated[
    str, Field(pattern=SECRET_ARN_PATTERN, description="SSM parameter or Secrets Manager ARN")
]
CONTAINER_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"
TARGET_GROUP_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:"
    r"targetgroup/[A-Za-z0-9-]+/[0-9a-f]+$"
)
RESERVED_TAG_PREFIXES = ("shiplane:", "aws:")


class PortMapping(Model):
    container_port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    name: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    app_protocol: Literal["http", "http2", "grpc"] | None = None


class HealthCheck(Model):
    command: list[str] = Field(min_length=2, description='["CMD", ...] or ["CMD-SHELL", "..."]')
    interval: int = Field(default=30, ge=5, le=300, description="seconds")
    timeout: int = Field(default=5, ge=2, le=120, description="seconds")
    retries: int = Field(default=3, ge=1, le=10)
    start_period: int = Field(default=0, ge=0, le=300, description="seconds")

    @field_validator("command")
    @classmethod
    def _runs_something(cls, value: list[str]) -> list[str]:
        if value[0] not in ("CMD", "CMD-SHELL"):
            raise ValueError(
                f"health_check.command must start with 'CMD' or 'CMD-SHELL', not {value[0]!r}"
            )
        return value


class DependencyCondition(StrEnum):
    START = "START"
    COMPLETE = "COMPLETE"
    SUCCESS = "SUCCESS"
    HEALTHY = "HEALTHY"


class ContainerDependency(Model):
    container_name: str = Field(pattern=CONTAINER_NAME_PATTERN)
    condition: DependencyCondition = DependencyCondition.START


class LogConfiguration(Model):
    """An explicit log configuration (replaces the automatic CloudWatch one)."""

    log_driver: Literal["awslogs", "splunk", "awsfirelens"]
    options: dict[str, str] = Field(default_factory=dict)
    secret_options: dict[str, SecretArn] = Field(default_factory=dict)


class Ulimit(Model):
    name: Literal[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ]
    soft_limit: int = Field(ge=0)
    hard_limit: int = Field(ge=0)

    @model_validator(mode="after")
    def _soft_below_hard(self) -> Ulimit:
        if self.soft_limit > self.hard_limit:
            raise ValueError(
                f"ulimits.{self.name}: soft_limit {self.soft_limit} exceeds "
                f"hard_limit {self.hard_limit}"
            )
        return self


class MountPoint(Model):
    source_volume: str = Field(min_length=1, max_length=255)
    container_path: str = Field(pattern=r"^/.*")
    read_only: bool = False


class Container(Model):
    name: str = Field(pattern=CONTAINER_NAME_PATTERN)
    image: str = Field(
        min_length=2,
        max_length=256,
        description="package reference: an ECR repository name, without a tag",
    )
    essential: bool = True
    cpu: int | None = Field(default=None, ge=0)
    memory: int | None = Field(default=None, ge=6, description="hard limit, MiB")
    memory_reservation: int | None = Field(default=None, ge=6, description="soft limit, MiB")
    port_mappings: list[PortMapping] = Field(default_factory=list)
    environment: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, SecretArn] = Field(
        default_factory=dict, description="variable name -> SSM / Secrets Manager ARN"
    )
    health_check: HealthCheck | None = None
    command: list[str] | None = None
    entry_point: list[str] | None = None
    working_directory: str | None = Field(default=None, pattern=r"^/.*")
    depends_on: list[ContainerDependency] = Field(default_factory=list)
    log_configuration: LogConfiguration | None = Field(
        default=None, description="explicit logging; without it, the task's `logging` applies"
    )
    readonly_root_filesystem: bool | None = None
    ulimits: list[Ulimit] = Field(default_factory=list)
    mount_points: list[MountPoint] = Field(default_factory=list)

    @field_validator("image")
    @classmethod
    def _no_tag(cls, value: str) -> str:
        if ":" in value or "@" in value:
            raise ValueError(
                f"image {value!r} must be a repository name without tag or digest: "
                "the tag is chosen when the release is created"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Container:
        where = f"container {self.name!r}"
        both = sorted(set(self.environment) & set(self.secrets))
        if both:
            raise ValueError(
                f"{where}: {', '.join(both)} given in both environment and secrets: a secret "
                "never travels as plain environment"
            )
        if self.memory and self.memory_reservation and self.memory_reservation > self.memory:
            raise ValueError(
                f"{where}: memory_reservation {self.memory_reservation} exceeds memory "
                f"{self.memory}"
            )
        ports = [(p.container_port, p.protocol) for p in self.port_mappings]
        repeated = sorted(
            {f"{port}/{proto}" for port, proto in ports if ports.count((port, proto)) > 1}
        )
        if repeated:
            raise ValueError(f"{where}: port_mappings repeat {', '.join(repeated)}")
        limits = [u.name for u in self.ulimits]
        if len(set(limits)) != len(limits):
            raise ValueError(f"{where}: ulimits name the same limit more than once")
        paths = [m.container_path for m in self.mount_points]
        if len(set(paths)) != len(paths):
            raise ValueError(f"{where}: mount_points use the same container_path twice")
        return self

    @property
    def uses_secrets(self) -> bool:
        return bool(
            self.secrets or (self.log_configuration and self.log_configuration.secret_options)
        )


class EfsVolume(Model):
    file_system_id: str = Field(pattern=r"^fs-[0-9a-f]{8}([0-9a-f]{9})?$")
    root_directory: str = Field(default="/", pattern=r"^/.*")
    transit_encryption: bool = True
    transit_encryption_port: int | None = Field(default=None, ge=1, le=65535)
    access_point_id: str | None = Field(default=None, pattern=r"^fsap-[0-9a-f]{8}([0-9a-f]{9})?$")
    iam_authorization: bool = False

    @model_validator(mode="after")
    def _efs_rules(self) -> EfsVolume:
        # ECS's own rules, checked here so they fail before anything is registered.
        if self.access_point_id and self.root_directory != "/":
            raise ValueError(
                "efs.root_directory must be '/' (or omitted) with an access_point_id: "
                "the access point sets the directory"
            )
        if (self.access_point_id or self.iam_authorization) and not self.transit_encryption:
            raise ValueError(
                "efs.transit_encryption must be on with an access_point_id or iam_authorization"
            )
        if self.transit_encryption_port and not self.transit_encryption:
            raise ValueError("efs.transit_encryption_port needs efs.transit_encryption")
        return self


class Volume(Model):
    """A task volume: EFS, or (without `efs`) task-scoped storage shared by its containers."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")
    efs: EfsVolume | None = None


class LoggingSpec(Model):
    """Automatic logging: every container without an explicit `log_configuration` logs
    with awslogs to `/shiplane/{project}/{environment}`, a log group the service stack owns.
    Off by default (ECS needs the task execution role to write the logs)."""

    mode: Literal["automatic", "none"] = "none"
    retention_days: Literal[
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    ] = 30


class TaskSpec(Model):
    family: str = Field(pattern=r"^[A-Za-z0-9_-]{1,200}$")
    cpu: int = Field(default=256)
    memory: int = Field(default=512)
    cpu_architecture: Literal["X86_64", "ARM64"] = "X86_64"
    operating_system_family: Literal["LINUX"] = "LINUX"
    task_role_arn: str | None = Field(
        default=None,
        pattern=ROLE_ARN_PATTERN,
        description="must be a role named shiplane-task-* (the only roles the target "
        "account's bootstrap roles may pass to ECS)",
    )
    execution_role_arn: str | None = Field(
        default=None,
        pattern=ROLE_ARN_PATTERN,
        description="must be a role named shiplane-task-*; the bootstrap creates "
        "shiplane-task-execution (ECR pulls, logs, Shiplane's sensitive values)",
    )
    containers: list[Container] = Field(min_length=1, max_length=10)
    volumes: list[Volume] = Field(default_factory=list)
    logging: LoggingSpec = Field(default_factory=LoggingSpec)
    tags: dict[str, str] = Field(default_factory=dict, description="added to Shiplane's own")

    @model_validator(mode="after")
    def _unique_containers(self) -> TaskSpec:
        names = [c.name for c in self.containers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"container name(s) used more than once: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _fargate_size(self) -> TaskSpec:
        valid = FARGATE_MEMORY.get(self.cpu)
        if valid is None:
            raise ValueError(
                f"task.cpu={self.cpu} is not a Fargate size: use one of "
                f"{', '.join(str(c) for c in FARGATE_MEMORY)}"
            )
        if self.memory not in valid:
            raise ValueError(
                f"task.cpu={self.cpu} with task.memory={self.memory} is not a Fargate "
                f"combination: with cpu {self.cpu}, memory is one of "
                f"{', '.join(str(m) for m in valid)}"
            )
        cpu = sum(c.cpu or 0 for c in self.containers)
        if cpu > self.cpu:
            raise ValueError(f"the containers' cpu ({cpu}) exceeds task.cpu ({self.cpu})")
        memory = sum(c.memory or c.memory_reservation or 0 for c in self.containers)
        if memory > self.memory:
            raise ValueError(
                f"the containers' memory ({memory} MiB) exceeds task.memory ({self.memory})"
            )
        return self

    @model_validator(mode="after")
    def _references(self) -> TaskSpec:
        by_name = {c.name: c for c in self.containers}
        volumes = [v.name for v in self.volumes]
        repeated = sorted({v for v in volumes if volumes.count(v) > 1})
        if repeated:
            raise ValueError(f"task.volumes: name(s) used more than once: {', '.join(repeated)}")
        seen_ports: dict[tuple[int, str], str] = {}
        for container in self.containers:
            where = f"containers.{container.name}"
            for mount in container.mount_points:
                if mount.source_volume not in volumes:
                    raise ValueError(
                        f"{where}.mount_points: source_volume {mount.source_volume!r} is not "
                        f"one of task.volumes ({', '.join(volumes) or 'none declared'})"
                    )
            for dependency in container.depends_on:
                other = by_name.get(dependency.container_name)
                if other is None or other is container:
                    raise ValueError(
                        f"{where}.depends_on: container_name {dependency.container_name!r} is "
                        f"not another container of the task ({', '.join(by_name)})"
                    )
                if dependency.condition == DependencyCondition.HEALTHY and not other.health_check:
                    raise ValueError(
                        f"{where}.depends_on: condition HEALTHY needs a health_check on "
                        f"container {other.name!r}"
                    )
                if (
                    dependency.condition
                    in (DependencyCondition.COMPLETE, DependencyCondition.SUCCESS)
                    and other.essential
                ):
                    raise ValueError(
                        f"{where}.depends_on: condition {dependency.condition.value} waits for "
                        f"container {other.name!r} to exit, so it must have essential: false"
                    )
            for port in container.port_mappings:
                # awsvpc: the containers of a task share one network namespace.
                key = (port.container_port, port.protocol)
                if key in seen_ports:
                    raise ValueError(
                        f"{where}.port_mappings: {port.container_port}/{port.protocol} is "
                        f"already mapped by container {seen_ports[key]!r}"
                    )
                seen_ports[key] = container.name
        if not any(c.essential for c in self.containers):
            raise ValueError("task.containers: at least one container must be essential")
        return self

    @model_validator(mode="after")
    def _execution_role(self) -> TaskSpec:
        needs = [c.name for c in self.containers if c.uses_secrets]
        if needs and not self.execution_role_arn:
            raise ValueError(
                f"task.execution_role_arn is required: container(s) {', '.join(needs)} "
                "receive secrets, which ECS fetches with the task execution role"
            )
        if self.automatic_logging_containers and not self.execution_role_arn:
            raise ValueError(
                "task.execution_role_arn is required with task.logging.mode 'automatic': "
                "ECS writes the logs with the task execution role"
            )
        awslogs = [
            c.name
            for c in self.containers
            if c.log_configuration and c.log_configuration.log_driver == "awslogs"
        ]
        if awslogs and not self.execution_role_arn:
            raise ValueError(
                f"task.execution_role_arn is required: container(s) {', '.join(awslogs)} "
                "log with awslogs, which needs the task execution role on Fargate"
            )
        return self

    @field_validator("tags")
    @classmethod
    def _user_tags(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_tags(value, "task.tags")

    @property
    def automatic_logging_containers(self) -> list[Container]:
        if self.logging.mode != "automatic":
            return []
        return [c for c in self.containers if c.log_configuration is None]


def _check_tags(value: dict[str, str], where: str) -> dict[str, str]:
    if len(value) > 40:
        raise ValueError(f"{where}: at most 40 tags (Shiplane adds its own)")
    for key, text in value.items():
        if not 1 <= len(key) <= 128 or len(text) > 256:
            raise ValueError(f"{where}: tag {key!r}: keys are 1-128, values 0-256 characters")
        if key.lower().startswith(RESERVED_TAG_PREFIXES):
            raise ValueError(
                f"{where}: tag {key!r} uses a reserved prefix ({', '.join(RESERVED_TAG_PREFIXES)})"
            )
    return value


class LoadBalancer(Model):
    """An existing target group the service registers a container's port with."""

    target_group_arn: str = Field(pattern=TARGET_GROUP_ARN_PATTERN)
    container_name: str = Field(pattern=CONTAINER_NAME_PATTERN)
    container_port: int = Field(ge=1, le=65535)


class NetworkSpec(Model):
    """Overrides of the target's network defaults; what is left out comes from the target."""

    subnets: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$")]] | None = (
        Field(default=None, min_length=1, max_length=16)
    )
    security_groups: (
        list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$")]] | None
    ) = Field(default=None, max_length=5)
    assign_public_ip: bool | None = None


class ServiceSpec(Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")
    desired_count: int = Field(default=1, ge=0)
    minimum_healthy_percent: int = Field(default=100, ge=0, le=100)
    maximum_percent: int = Field(default=200, ge=100, le=400)
    circuit_breaker_rollback: bool = True
    health_check_grace_period_seconds: int | None = Field(default=None, ge=0, le=2147483647)
    load_balancers: list[LoadBalancer] = Field(default_factory=list, max_length=5)
    network: NetworkSpec | None = None
    platform_version: str = Field(default="LATEST", pattern=r"^(LATEST|\d+\.\d+\.\d+)$")
    enable_execute_command: bool = False
    tags: dict[str, str] = Field(default_factory=dict, description="added to Shiplane's own")
    propagate_tags: Literal["SERVICE", "TASK_DEFINITION", "NONE"] = "SERVICE"

    @field_validator("tags")
    @classmethod
    def _user_tags(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_tags(value, "service.tags")


class WaitSpec(Model):
    mode: Literal["complete", "none"] = "complete"
    timeout_seconds: int = Field(default=1800, ge=60, le=86400)


class EcsServiceStep(Model):
    name: Name
    type: Literal["ecs-service"] = "ecs-service"
    target_role: Name
    task: TaskSpec
    service: ServiceSpec
    wait: WaitSpec = Field(default_factory=WaitSpec)

    @model_validator(mode="after")
    def _load_balancers_reach_a_port(self) -> EcsServiceStep:
        containers = {c.name: c for c in self.task.containers}
        for index, balancer in enumerate(self.service.load_balancers):
            where = f"service.load_balancers.{index}"
            container = containers.get(balancer.container_name)
            if container is None:
                raise ValueError(
                    f"{where}: container_name {balancer.container_name!r} (container_port "
                    f"{balancer.container_port}) is not a container of the task "
                    f"({', '.join(containers)})"
                )
            ports = [p.container_port for p in container.port_mappings if p.protocol == "tcp"]
            if balancer.container_port not in ports:
                raise ValueError(
                    f"{where}: container {container.name!r} does not expose container_port "
                    f"{balancer.container_port} (its tcp port_mappings: "
                    f"{', '.join(map(str, ports)) or 'none'})"
                )
        return self

    @property
    def repositories(self) -> list[str]:
        return sorted({c.image for c in self.task.containers})


PACKAGE_REFERENCE = re.compile(r"#\{\s*Shiplane\.Package\[([^\]]*)\]", re.IGNORECASE)


class PackageReference(Model):
    """An image a `cloudformation` step's template refers to: its tag is chosen when the
    release is created; the template uses `#{Shiplane.Package[NAME].Image}` (or .Tag,
    .Digest, .Repository), directly or through a parameter value."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    repository: str = Field(min_length=2, max_length=256, description="an ECR repository name")

    @field_validator("repository")
    @classmethod
    def _no_tag(cls, value: str) -> str:
        if ":" in value or "@" in value:
            raise ValueError(
                f"packages: repository {value!r} must be a name without tag or digest: "
                "the tag is chosen when the release is created"
            )
        return value


class CloudFormationStep(Model):
    """A raw CloudFormation template (YAML with the short tags, or JSON), deployed as one
    stack per environment/tenant. Variables are substituted into the parsed template."""

    name: Name
    type: Literal["cloudformation"] = "cloudformation"
    target_role: Name
    template: str = Field(min_length=1, max_length=1_000_000, description="YAML or JSON text")
    stack_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$",
        description="default: shiplane-{project}-{step}-{environment}-{tenant}",
    )
    parameters: dict[str, str] = Field(default_factory=dict, description="values may use #{...}")
    capabilities: list[
        Literal["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    ] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict, description="added to Shiplane's own")
    role_arn: str | None = Field(
        default=None,
        pattern=ROLE_ARN_PATTERN,
        description="CloudFormation's execution role; default the target's. A role of "
        "your own must be named shiplane-stack-* (the only roles besides the bootstrap's "
        "execution role that the deploy role may pass to CloudFormation)",
    )
    packages: list[PackageReference] = Field(default_factory=list)
    wait: WaitSpec = Field(default_factory=WaitSpec)

    @field_validator("tags")
    @classmethod
    def _user_tags(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_tags(value, "tags")

    @model_validator(mode="after")
    def _template_fits(self) -> CloudFormationStep:
        where = f"step {self.name!r}"
        try:
            parsed = parse_template(self.template)
        except TemplateParseError as exc:
            raise ValueError(f"{where}: template does not parse: {exc}") from exc
        declared = declared_parameters(parsed)
        unknown = sorted(set(self.parameters) - declared)
        if unknown:
            raise ValueError(
                f"{where}: parameters {', '.join(unknown)} not declared by the template "
                f"(its Parameters: {', '.join(sorted(declared)) or 'none'})"
            )
        names = [p.name.lower() for p in self.packages]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{where}: packages: name(s) used twice: {', '.join(repeated)}")
        texts = [*strings_in(parsed), *self.parameters.values()]
        used = {m.strip().lower() for text in texts for m in PACKAGE_REFERENCE.findall(text)}
        unused = [p.name for p in self.packages if p.name.lower() not in used]
        if unused:
            raise ValueError(
                f"{where}: packages {', '.join(unused)} not used: refer to them in the "
                "template or a parameter value as #{Shiplane.Package[NAME].Image} (or .Tag, "
                ".Digest)"
            )
        undeclared = sorted(used - set(names))
        if undeclared:
            raise ValueError(
                f"{where}: the template refers to package(s) {', '.join(undeclared)} that "
                "the step's packages do not declare"
            )
        return self

    def parsed_template(self) -> dict[str, Any]:
        return parse_template(self.template)

    @property
    def repositories(self) -> list[str]:
        return sorted({p.repository for p in self.packages})


Step = Annotated[EcsServiceStep | CloudFormationStep, Field(discriminator="type")]

DEFAULT_CHANNEL = "default"


class Channel(Model):
    name: Name
    lifecycle: Name | None = Field(default=None, description="overrides the project's")
    rules: list[VersionRule] = Field(default_factory=list)
    auto_create_releases: bool = True
    tenant_tags: list[TenantTag] = Field(
        default_factory=list, description="deploy only to tenants with these tags"
    )


class Project(Model):
    name: Name
    lifecycle: Name
    steps: list[Step] = Field(min_length=1, max_length=20, description="deployed in order")
    tenanted_mode: TenantedMode = TenantedMode.UNTENANTED
    channels: list[Channel] = Field(default_factory=list)
    variables: list[Variable] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_steps(self) -> Project:
        names = [s.name for s in self.steps]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"steps: name(s) used more than once: {', '.join(repeated)}")
        return self

    @model_validator(mode="after")
    def _default_channel(self) -> Project:
        names = [c.name for c in self.channels]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"channel(s) defined more than once: {', '.join(repeated)}")
        if DEFAULT_CHANNEL not in names:
            self.channels.append(Channel(name=DEFAULT_CHANNEL))
        return self

    def channel(self, name: str) -> Channel:
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)

    @property
    def repositories(self) -> list[str]:
        return sorted({repo for step in self.steps for repo in step.repositories})

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


class Tenant(Model):
    """A customer or deployment slot. Its variables are live: read at deployment time."""

    name: Name
    tags: list[TenantTag] = Field(default_factory=list)
    projects: dict[Name, list[Name]] = Field(
        default_factory=dict, description="project -> connected environments"
    )
    variables: list[Variable] = Field(default_factory=list)


class Configuration(Model):
    """A whole configuration document (what `shiplane apply` writes)."""

    environments: list[Environment] = Field(min_length=1)
    lifecycles: list[Lifecycle] = Field(min_length=1)
    targets: list[Target] = Field(default_factory=list)
    projects: list[Project] = Field(default_factory=list)
    tenants: list[Tenant] = Field(default_factory=list)


# --------------------------------------------------------------------------- releases


class ImageRef(Model):
    """A package reference resolved at release time, pinned by digest."""

    repository: str
    registry: str = Field(description="<account>.dkr.ecr.<region>.amazonaws.com")
    tag: str
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")

    @property
    def image(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


class TriggerKind(StrEnum):
    ECR_PUSH = "ecr-push"
    CONSOLE = "console"
    API = "api"
    SCHEDULE = "schedule"
    PROMOTION = "promotion"


class TriggeredBy(Model):
    kind: TriggerKind
    by: str = Field(default="", description="an execution name, a principal, a rule")


class Release(Model):
    project: Name
    version: str = Field(min_length=1, max_length=128)
    sequence: int = Field(default=0, ge=0, description="creation order within the project")
    channel: str = DEFAULT_CHANNEL
    images: dict[str, ImageRef] = Field(description="keyed by repository")
    process: list[Step] = Field(description="snapshot of the deployment process")
    variables: list[Variable] = Field(
        default_factory=list, description="snapshot of the project variables (secrets by reference)"
    )
    lifecycle: Name
    created_at: datetime
    created_by: TriggeredBy
    first_deployments: int | None = Field(
        default=None,
        ge=0,
        description="automatic deployments planned when it was created (written in batches: "
        "fewer claims than this means a writer stopped between two)",
    )


# --------------------------------------------------------------------------- deployments


class DeploymentStatus(StrEnum):
    QUEUED = "QUEUED"
    DEPLOYING = "DEPLOYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self not in (DeploymentStatus.QUEUED, DeploymentStatus.DEPLOYING)


class DeploymentMode(StrEnum):
    DEPLOY = "deploy"
    REDEPLOY = "redeploy"
    ROLLBACK = "rollback"


class Diagnosis(Model):
    stopped_tasks: list[str] = Field(default_factory=list)
    service_events: list[str] = Field(default_factory=list)
    stack_events: list[str] = Field(default_factory=list)


class TimelineEntry(Model):
    at: datetime
    message: str


class Deployment(Model):
    id: str
    project: Name
    release: str
    environment: Name
    tenant: str = UNTENANTED
    mode: DeploymentMode = DeploymentMode.DEPLOY
    triggered_by: TriggeredBy
    status: DeploymentStatus = DeploymentStatus.QUEUED
    targets: list[str] = Field(default_factory=list)
    task_definition_arns: dict[str, str] = Field(default_factory=dict, description="by target")
    stacks: dict[str, str] = Field(default_factory=dict, description="stack name by target")
    outputs: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="stack outputs of cloudformation steps, by step"
    )
    reason: str = ""
    diagnosis: Diagnosis = Field(default_factory=Diagnosis)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    failed_units: list[str] = Field(
        default_factory=list, description="units that failed: later units are not deployed"
    )
    execution: str = Field(
        default="", description="the name of the deploy pipeline execution that runs it"
    )
    redeploy: bool = Field(
        default=False,
        description="a redeploy asked for explicitly: runs even while the same release is "
        "queued or running there (otherwise it is a duplicate)",
    )
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class DeploymentUnit(Model):
    """One deployment on one target for one step: what the state machine's Map iterates."""

    model_config = ConfigDict(extra="ignore")  # the state machine adds `outcome` / `error`

    deployment_id: str
    project: Name
    release: str
    environment: Name
    tenant: str = UNTENANTED
    target: Name
    step: Name
    task_definition_arn: str | None = None
    stack_name: str | None = None
    wait_timeout_seconds: int = 1800
    requires_approval: bool = False


class DeploymentTask(Model):
    """One deployment as the state machine carries it: the outer Map's item."""

    model_config = ConfigDict(extra="ignore")  # the state machine adds slot / results / error

    deployment_id: str
    project: Name
    release: str
    environment: Name
    tenant: str = UNTENANTED
    requires_approval: bool = False
    units: list[DeploymentUnit] = Field(min_length=1)


class OutcomeStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class Outcome(Model):
    """How a unit ended: the result of Deploy Stack (or of its reconciliation)."""

    model_config = ConfigDict(extra="ignore")

    status: OutcomeStatus
    reason: str = ""
    stack_status: str = ""
    task_definition_arn: str | None = None
    diagnosis: Diagnosis = Field(default_factory=Diagnosis)


class UnitResult(DeploymentUnit):
    """A unit after the Map iteration: with an outcome, or with the error that stopped it."""

    outcome: Outcome | None = None
    error: dict[str, Any] | None = None
    slot: dict[str, Any] | None = None


def sanitize_stack_part(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", value).strip("-") or "x"
