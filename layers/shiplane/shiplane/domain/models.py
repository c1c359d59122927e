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
    cloudformation_role_arn: str | None = Field(default=None, pattern=ROLE_ARN_PATTERN)
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


class PortMapping(Model):
    container_port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"


class Container(Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")
    image: str = Field(
        min_length=2,
        max_length=256,
        description="package reference: an ECR repository name, without a tag",
    )
    essential: bool = True
    cpu: int | None = Field(default=None, ge=0)
    memory: int | None = Field(default=None, ge=4)
    port_mappings: list[PortMapping] = Field(default_factory=list)
    environment: dict[str, str] = Field(default_factory=dict)
    command: list[str] | None = None

    @field_validator("image")
    @classmethod
    def _no_tag(cls, value: str) -> str:
        if ":" in value or "@" in value:
            raise ValueError(
                f"image {value!r} must be a repository name without tag or digest: "
                "the tag is chosen when the release is created"
            )
        return value


class TaskSpec(Model):
    family: str = Field(pattern=r"^[A-Za-z0-9_-]{1,200}$")
    cpu: int = Field(default=256)
    memory: int = Field(default=512)
    cpu_architecture: Literal["X86_64", "ARM64"] = "X86_64"
    task_role_arn: str | None = Field(default=None, pattern=ROLE_ARN_PATTERN)
    execution_role_arn: str | None = Field(default=None, pattern=ROLE_ARN_PATTERN)
    containers: list[Container] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _unique_containers(self) -> TaskSpec:
        names = [c.name for c in self.containers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"container name(s) used more than once: {', '.join(duplicates)}")
        return self


class ServiceSpec(Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")
    desired_count: int = Field(default=1, ge=0)
    minimum_healthy_percent: int = Field(default=100, ge=0, le=100)
    maximum_percent: int = Field(default=200, ge=100, le=400)
    circuit_breaker_rollback: bool = True
    enable_execute_command: bool = False


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

    @property
    def repositories(self) -> list[str]:
        return sorted({c.image for c in self.task.containers})


Step = EcsServiceStep

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
    steps: list[Step] = Field(min_length=1, max_length=1)
    tenanted_mode: TenantedMode = TenantedMode.UNTENANTED
    channels: list[Channel] = Field(default_factory=list)
    variables: list[Variable] = Field(default_factory=list)

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


# --------------------------------------------------------------------------- deployments


class DeploymentStatus(StrEnum):
    QUEUED = "QUEUED"
    DEPLOYING = "DEPLOYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    SKIPPED = "SKIPPED"

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
    reason: str = ""
    diagnosis: Diagnosis = Field(default_factory=Diagnosis)
    timeline: list[TimelineEntry] = Field(default_factory=list)
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
