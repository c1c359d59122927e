"""The ports the services depend on. Adapters implement them with boto3; tests with
in-memory fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from shiplane.domain.audit import AuditRecord
from shiplane.domain.drift import DriftReport
from shiplane.domain.health import TargetActivity, TargetHealth
from shiplane.domain.models import (
    Configuration,
    Deployment,
    DeploymentStatus,
    Diagnosis,
    Environment,
    Lifecycle,
    Project,
    Release,
    Target,
    Tenant,
)
from shiplane.domain.schedules import ScheduledDeployment, ScheduleStatus
from shiplane.domain.variables import Variable

# ----------------------------------------------------------------------------- state


@dataclass(frozen=True)
class StackWait:
    """A deployment waiting on a stack: the task token to complete, and what to check."""

    stack_key: str  # account#region#stack name
    task_token: str
    deployment_id: str
    project: str
    target: str
    cluster: str
    service: str
    task_definition_arn: str
    stack_complete: bool = False
    step: str = ""  # the step whose stack this is (its outputs are recorded under it)
    # What identifies the operation waited on: events of any other operation (an older
    # one's late failure, a deleted stack of the same name, an older ECS deployment) are
    # not about this wait. Empty: not known (yet).
    client_request_token: str = ""
    stack_id: str = ""
    ecs_deployment_id: str = ""  # the service's PRIMARY deployment, once the stack completed


class ConfigStore(Protocol):
    def save_configuration(self, config: Configuration) -> None: ...
    def list_environments(self) -> list[Environment]: ...
    def get_lifecycle(self, name: str) -> Lifecycle: ...
    def get_project(self, name: str) -> Project: ...
    def list_targets(self) -> list[Target]: ...
    def get_target(self, name: str) -> Target: ...
    def projects_for_repository(self, repository: str) -> list[str]: ...
    def list_tenants(self) -> list[Tenant]: ...
    def get_tenant(self, name: str) -> Tenant:
        """One tenant by name (NotFoundError if none): never the whole list for one."""
        ...

    def list_projects(self) -> list[Project]: ...


@dataclass(frozen=True)
class StoredResource:
    """A configuration resource as stored: its data, its ETag and its place in the order
    of its kind (environments are ordered; every kind keeps the order it was given in)."""

    kind: str  # keys.CONFIG_KINDS: ENVIRONMENT, LIFECYCLE, TARGET, PROJECT, TENANT
    name: str
    data: dict[str, Any]
    etag: str
    position: Decimal


@dataclass(frozen=True)
class ConfigWrite:
    """One change of a configuration resource, guarded by the ETag it was read with."""

    kind: str
    name: str
    data: dict[str, Any] | None  # None deletes the resource
    etag: str = ""  # the ETag of `data`
    position: Decimal = Decimal(0)
    expected_etag: str | None = None  # None: the resource must not exist yet
    repositories_added: tuple[str, ...] = ()  # a project's repository index
    repositories_removed: tuple[str, ...] = ()


class ConfigResourceStore(Protocol):
    """Configuration resources one at a time, each write audited in the same transaction."""

    def list_config(self, kind: str) -> list[StoredResource]: ...
    def get_config(self, kind: str, name: str) -> StoredResource | None: ...
    def write_config(self, writes: Sequence[ConfigWrite], audit: Sequence[AuditRecord]) -> None: ...


class ReleaseStore(Protocol):
    def get_release(self, project: str, version: str) -> Release | None: ...
    def create_release(
        self, release: Release, deployments: Sequence[Deployment], claims: Sequence[str]
    ) -> bool:
        """Atomically write a release with its first deployments and their claims.
        False if the release exists already (nothing written)."""
        ...

    def list_releases(self, project: str) -> list[Release]: ...
    def next_release_sequence(self, project: str) -> int: ...
    def update_release_variables(
        self, project: str, version: str, variables: Sequence[Variable]
    ) -> None: ...
    def delete_release(self, project: str, version: str) -> None: ...


class DeploymentStore(Protocol):
    def get_deployment(self, project: str, deployment_id: str) -> Deployment: ...
    def list_deployments(self, project: str) -> list[Deployment]: ...
    def deployments_of_execution(self, execution: str) -> list[Deployment]:
        """Every deployment the pipeline execution of that name was given to run."""
        ...

    def claimed_places(self, project: str, release: str) -> set[tuple[str, str]]:
        """(environment, tenant) of every automatic deployment of the release claimed."""
        ...

    def create_deployments(self, deployments: Sequence[Deployment], claims: Sequence[str]) -> bool:
        """Atomically write deployments with their claims; False if a claim is taken."""
        ...

    def mark_deploying(
        self, project: str, deployment_id: str, target: str, **fields: Any
    ) -> None: ...

    def finish_deployment(
        self,
        deployment: Deployment,
        status: DeploymentStatus,
        reason: str,
        diagnosis: Diagnosis,
    ) -> bool:
        """Record the end of a deployment once; False if it had already finished."""
        ...

    def record_step_outputs(
        self, project: str, deployment_id: str, step: str, outputs: dict[str, str]
    ) -> None:
        """A cloudformation step's stack outputs, for the later steps of the deployment."""
        ...

    def add_timeline(self, project: str, deployment_id: str, message: str) -> None: ...
    def add_failed_unit(self, project: str, deployment_id: str, unit: str) -> None: ...
    def succeeded_environments(self, project: str, release: str, tenant: str) -> set[str]: ...
    def get_current(self, project: str, environment: str, tenant: str) -> dict[str, Any] | None: ...
    def claimed_environments(self, project: str, release: str, tenant: str) -> set[str]: ...


class WaitStore(Protocol):
    def put_wait(self, wait: StackWait) -> None: ...
    def get_wait(self, stack_key: str) -> StackWait | None: ...
    def stack_key_for_service(self, service_key: str) -> str | None: ...
    def mark_stack_complete(
        self, stack_key: str, task_token: str, ecs_deployment_id: str = ""
    ) -> None: ...
    def delete_wait(self, stack_key: str, task_token: str) -> bool: ...


@dataclass(frozen=True)
class QueuedDeployment:
    key: str
    deployment_id: str
    task_token: str


@dataclass(frozen=True)
class LiveExecution:
    name: str
    since: str  # ISO 8601, when it was given its first deployments


class LiveExecutionStore(Protocol):
    """Pipeline executions given deployments and not yet seen to end (the sweep's list)."""

    def live_executions(self) -> list[LiveExecution]:
        """Oldest first."""
        ...

    def forget_execution(self, execution: str) -> None: ...


@dataclass(frozen=True)
class ExecutionOutcome:
    status: str  # RUNNING / SUCCEEDED / FAILED / TIMED_OUT / ABORTED / PENDING_REDRIVE
    error: str | None = None
    cause: str | None = None


class ExecutionLookup(Protocol):
    def execution_arn(self, name: str) -> str: ...
    def outcome(self, execution_arn: str) -> ExecutionOutcome | None:
        """None when Step Functions does not know the execution (never started, expired)."""
        ...


class SlotStore(Protocol):
    """One running deployment per project/environment/tenant; the others queue."""

    def try_acquire_slot(
        self, project: str, environment: str, tenant: str, deployment_id: str
    ) -> bool: ...
    def release_slot(
        self, project: str, environment: str, tenant: str, deployment_id: str
    ) -> bool: ...
    def slot_holder(self, project: str, environment: str, tenant: str) -> str | None: ...
    def enqueue(
        self, project: str, environment: str, tenant: str, deployment_id: str, task_token: str
    ) -> str: ...
    def queued(self, project: str, environment: str, tenant: str) -> list[QueuedDeployment]: ...
    def dequeue(self, project: str, key: str) -> None: ...


@dataclass(frozen=True)
class Approval:
    project: str
    deployment_id: str
    release: str
    environment: str
    tenant: str
    status: str  # PENDING / APPROVED / REJECTED
    task_token: str = ""
    decided_by: str = ""
    note: str = ""
    requested_at: str = ""
    decided_at: str = ""


class ApprovalStore(Protocol):
    def request_approval(self, deployment: Deployment, task_token: str) -> Approval: ...
    def decide_approval(
        self, project: str, deployment_id: str, approved: bool, by: str, note: str
    ) -> Approval: ...
    def get_approval(self, project: str, deployment_id: str) -> Approval | None: ...
    def list_approvals(self, project: str) -> list[Approval]: ...


class SecretStore(Protocol):
    """Where sensitive values live (SSM SecureString); Shiplane keeps only references."""

    def put_secret(self, name: str, value: str) -> str: ...
    def delete_secret(self, reference: str) -> None: ...


# ----------------------------------------------------------------------------- AWS


@dataclass(frozen=True)
class StackState:
    stack_id: str
    status: str
    status_reason: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def in_progress(self) -> bool:
        return self.status.endswith("_IN_PROGRESS")


@dataclass(frozen=True)
class ServiceState:
    task_definition_arn: str
    rollout_state: str  # of the PRIMARY deployment: IN_PROGRESS / COMPLETED / FAILED
    rollout_reason: str = ""
    running_count: int = 0
    desired_count: int = 0
    events: tuple[str, ...] = ()
    deployment_id: str = ""  # the PRIMARY deployment's id (ecs-svc/...)


@dataclass(frozen=True)
class ResourceChange:
    """One resource of a change set: what CloudFormation would do to it."""

    action: str  # Add / Modify / Remove / Import / Dynamic
    logical_id: str
    resource_type: str
    replacement: str = ""  # True / False / Conditional ("" when CloudFormation says nothing)


class TargetGateway(Protocol):
    """What Shiplane does in a target account, through the assumed deploy role."""

    def register_task_definition(self, definition: dict[str, Any]) -> str: ...
    def describe_stack(self, stack_name: str) -> StackState | None: ...
    def create_stack(
        self,
        stack_name: str,
        template: dict[str, Any],
        parameters: dict[str, str],
        tags: dict[str, str],
        role_arn: str,
        *,
        capabilities: Sequence[str] = (),
        client_request_token: str | None = None,
    ) -> str: ...
    def update_stack(
        self,
        stack_name: str,
        template: dict[str, Any],
        parameters: dict[str, str],
        tags: dict[str, str],
        role_arn: str,
        *,
        capabilities: Sequence[str] = (),
        client_request_token: str | None = None,
    ) -> str | None:
        """The stack id, or None when CloudFormation says there is nothing to update."""
        ...

    def delete_stack(self, stack_name: str, client_request_token: str | None = None) -> None: ...
    def stack_operation_token(self, stack_name: str) -> str | None:
        """The ClientRequestToken of the stack's latest operation (from its newest stack
        event), None when CloudFormation does not say."""
        ...

    def continue_update_rollback(self, stack_name: str, role_arn: str) -> None: ...
    def stack_failure_events(self, stack_name: str, limit: int = 10) -> list[str]: ...
    def describe_service(self, cluster: str, service: str) -> ServiceState | None: ...
    def stopped_task_reasons(self, cluster: str, family: str, limit: int = 10) -> list[str]: ...
    def describe_task_definition(self, arn: str) -> dict[str, Any]:
        """The task definition as ECS describes it (tags not included)."""
        ...

    def preview_stack_update(
        self,
        stack_name: str,
        template: dict[str, Any],
        parameters: dict[str, str],
        role_arn: str,
    ) -> list[ResourceChange]:
        """What an update of an existing stack would change, through a change set that is
        created, described and deleted again; [] when nothing would change."""
        ...


class TargetGateways(Protocol):
    def for_target(self, target: Target, deployment_id: str) -> TargetGateway: ...


class ClusterGateway(Protocol):
    def cluster_status(self, cluster: str) -> str | None:
        """The cluster's status (ACTIVE, INACTIVE, ...), or None if it does not exist."""
        ...


class ClusterGateways(Protocol):
    """Reaches a target's account (assuming its role) to look at its cluster."""

    def for_target(self, target: Target, deployment_id: str) -> ClusterGateway: ...


class TargetHealthStore(Protocol):
    def record_target_event(self, account: str, region: str, at: datetime) -> None: ...
    def record_target_deployment(self, account: str, region: str, at: datetime) -> None: ...
    def target_activity(self, account: str, region: str) -> TargetActivity: ...
    def save_target_health(self, health: TargetHealth) -> None: ...
    def get_target_health(self, target: str) -> TargetHealth | None: ...


class ImageRegistry(Protocol):
    def image_digest(self, repository: str, tag: str) -> str | None: ...
    def latest_tag(self, repository: str) -> tuple[str, str] | None:
        """(tag, digest) of the most recently pushed tagged image."""
        ...

    def tags(self, repository: str) -> list[tuple[str, str]]:
        """Every (tag, digest) of the repository."""
        ...


class TaskTokens(Protocol):
    def succeed(self, task_token: str, output: dict[str, Any]) -> bool: ...
    def fail(self, task_token: str, error: str, cause: str) -> bool: ...


class Clock(Protocol):
    def now(self) -> Any: ...


# ----------------------------------------------------------------------------- schedules


class PipelineExecutions(Protocol):
    """Starts deploy-pipeline executions by name (a name used before starts nothing)."""

    def execution_arn(self, name: str) -> str: ...
    def start(self, name: str, payload: dict[str, Any]) -> tuple[str, bool]: ...
    def status(self, execution_arn: str) -> str | None: ...


class OneTimeScheduler(Protocol):
    """One-time EventBridge Scheduler schedules that start a pipeline execution."""

    def create_pipeline_start(
        self,
        name: str,
        at: datetime,
        state_machine_arn: str,
        execution_name: str,
        payload: dict[str, Any],
        description: str = "",
    ) -> bool:
        """False when a schedule of that name exists already (a retried create)."""
        ...

    def delete(self, name: str) -> bool:
        """False when there was no such schedule (it fired, or was deleted)."""
        ...


class ScheduleStore(Protocol):
    def put_schedule(self, schedule: ScheduledDeployment) -> bool:
        """Write a new schedule; False when one with its id exists."""
        ...

    def get_schedule(self, schedule_id: str) -> ScheduledDeployment | None: ...
    def list_schedules(self) -> list[ScheduledDeployment]: ...
    def update_schedule(self, schedule: ScheduledDeployment, expected: ScheduleStatus) -> bool:
        """Replace a schedule whose stored status is still `expected`; False otherwise."""
        ...


@dataclass(frozen=True)
class PushedImage:
    repository: str
    tag: str
    digest: str
    pushed_at: datetime
    registry_id: str = ""


class ImageHistory(Protocol):
    def pushed_since(self, repository: str, since: datetime) -> list[PushedImage]:
        """Tagged images pushed at or after `since`, one entry per tag."""
        ...


class CurrentDeployments(Protocol):
    def list_current(self, project: str) -> list[dict[str, Any]]:
        """What runs where: one CURRENT item per environment/tenant of the project."""
        ...


class DriftStore(Protocol):
    def save_drift(self, report: DriftReport) -> None: ...
    def list_drift(self, project: str) -> list[DriftReport]: ...
