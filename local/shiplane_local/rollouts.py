"""Simulated ECS rollouts behind moto's CloudFormation, as AWS performs them.

moto (5.2.5) creates and updates stacks synchronously, leaves every ECS deployment
``IN_PROGRESS`` forever, emits no events and never rolls back. Shiplane waits on the
events AWS sends and relies on the circuit breaker, so `RolloutSimulator` patches moto:

* ``CloudFormationBackend.create_stack`` / ``update_stack`` / ``execute_change_set``:
  a change that gives an ``AWS::ECS::Service`` a new task definition (or creates the
  service) keeps the stack ``*_IN_PROGRESS`` and the service's PRIMARY deployment
  ``IN_PROGRESS`` for ``delay_seconds``; then the rollout completes, or - when an
  essential container's ECR image carries the annotation
  ``org.shiplane.local/crash: "true"`` - fails through the circuit breaker: stopped
  tasks, service events, the service back on its previous task definition and the stack
  rolled back (``UPDATE_ROLLBACK_COMPLETE`` / ``ROLLBACK_COMPLETE``).
  A further update of a stack that is in progress is refused as AWS refuses it.
* ``CloudFormationBackend.delete_stack``: refused while an update or rollback is in
  progress; cancels the rollout of a stack being created.
* ``moto.ecs.models.Service`` CloudFormation handlers: moto drops ``LaunchType``,
  ``NetworkConfiguration``, ``DeploymentConfiguration``, ``Tags``, ``PropagateTags``,
  ``EnableExecuteCommand``, ... and never deletes the service with the stack; the
  replacements keep them and delete it.

Every CloudFormation stack status change and ECS deployment state change is handed to
``emit`` as a full EventBridge event, from one worker thread, in a deterministic order
(due time, then order of scheduling).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import heapq
import itertools
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation.exceptions import CloudFormationError, ValidationError
from moto.cloudformation.models import CloudFormationBackend, Event, Stack
from moto.cloudformation.parsing import OutputMap, clean_json, parse_and_update_resource
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.utils import utcnow
from moto.ecr.models import ecr_backends
from moto.ecs.models import (
    Cluster,
    EC2ContainerServiceBackend,
    Service,
    Task,
    TaskDefinition,
    ecs_backends,
)

from ._patching import Patches
from .cfn_permissions import HandlerAccessDenied, delete_created_resources, rollback_denial
from .cfn_permissions import install as install_permissions
from .cfn_tokens import request_token
from .cfn_tokens import using as using_token
from .ecs_secrets import secrets_problem

log = logging.getLogger("shiplane_local")

CRASH_ANNOTATION = "org.shiplane.local/crash"
CIRCUIT_BREAKER_MESSAGE = (
    'Resource handler returned message: "Error occurred during operation '
    "'ECS Deployment Circuit Breaker was triggered'.\" "
    "(RequestToken: {token}, HandlerErrorCode: GeneralServiceException)"
)
ESSENTIAL_EXITED = "Essential container in task exited"

_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[^@:]+)(?:@(?P<digest>sha256:[0-9a-fA-F]+)|:(?P<tag>[^@/]+))?$"
)
_IN_PROGRESS_REFUSED = (
    "CREATE_IN_PROGRESS",
    "UPDATE_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
    "ROLLBACK_IN_PROGRESS",
    "DELETE_IN_PROGRESS",
    "REVIEW_IN_PROGRESS",
)
_BOOLEAN_KEYS = {"enable", "rollback", "enableExecuteCommand", "enableECSManagedTags"}
_INTEGER_KEYS = {
    "maximumPercent",
    "minimumHealthyPercent",
    "containerPort",
    "healthCheckGracePeriodSeconds",
    "weight",
    "base",
    "port",
}
_deployment_numbers = itertools.count(1)


def _iso(moment: dt.datetime | None = None) -> str:
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _deployment_id() -> str:
    # ECS deployment ids look like ecs-svc/<19 digits>; a counter keeps them deterministic.
    return f"ecs-svc/{9000000000000000000 + next(_deployment_numbers)}"


# --------------------------------------------------------------------------------------
# CloudFormation properties of AWS::ECS::Service -> ECS API shapes


_SPECIAL_KEYS = {
    "EFSVolumeConfiguration": "efsVolumeConfiguration",
    "FilesystemId": "fileSystemId",
    "IAM": "iam",
    "FSxWindowsFileServerVolumeConfiguration": "fsxWindowsFileServerVolumeConfiguration",
}
# maps whose keys are the user's, not CloudFormation property names
_VERBATIM_MAPS = {"options", "dockerLabels", "driverOpts", "labels", "systemControls"}


def _camel(value: Any) -> Any:
    """PascalCase CloudFormation keys -> camelCase ECS API keys, typed like the API."""
    if isinstance(value, list):
        return [_camel(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _SPECIAL_KEYS.get(key) or key[:1].lower() + key[1:]
        item = copy.deepcopy(item) if name in _VERBATIM_MAPS else _camel(item)
        if name in _BOOLEAN_KEYS and isinstance(item, str):
            item = item.strip().lower() == "true"
        elif name in _INTEGER_KEYS and isinstance(item, str) and item.strip().isdigit():
            item = int(item)
        elif name == "assignPublicIp" and isinstance(item, bool):
            item = "ENABLED" if item else "DISABLED"
        out[name] = item
    return out


def _name_of(value: Any, attribute: str) -> Any:
    return getattr(value, attribute) if not isinstance(value, str) else value


def _service_settings(properties: dict[str, Any]) -> dict[str, Any]:
    """The service settings moto's CloudFormation handler drops, as ECS API values."""
    settings: dict[str, Any] = {}
    if properties.get("LaunchType"):
        settings["launch_type"] = properties["LaunchType"]
    if properties.get("PlatformVersion"):
        settings["platform_version"] = properties["PlatformVersion"]
    if properties.get("NetworkConfiguration"):
        settings["network_configuration"] = _camel(properties["NetworkConfiguration"])
    if properties.get("DeploymentConfiguration"):
        settings["deployment_configuration"] = _camel(properties["DeploymentConfiguration"])
    else:
        settings["deployment_configuration"] = {
            "deploymentCircuitBreaker": {"enable": False, "rollback": False},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        }
    if properties.get("DeploymentController"):
        settings["deployment_controller"] = _camel(properties["DeploymentController"])
    if "EnableExecuteCommand" in properties:
        settings["enable_execute_command"] = _camel(
            {"EnableExecuteCommand": properties["EnableExecuteCommand"]}
        )["enableExecuteCommand"]
    if "EnableECSManagedTags" in properties:
        settings["enable_ecs_managed_tags"] = (
            str(properties["EnableECSManagedTags"]).lower() == "true"
        )
    if properties.get("PropagateTags"):
        settings["propagate_tags"] = properties["PropagateTags"]
    if properties.get("HealthCheckGracePeriodSeconds") is not None:
        settings["health_check_grace_period_seconds"] = int(
            properties["HealthCheckGracePeriodSeconds"]
        )
    if properties.get("LoadBalancers"):
        settings["load_balancers"] = _camel(properties["LoadBalancers"])
    if properties.get("ServiceRegistries"):
        settings["service_registries"] = _camel(properties["ServiceRegistries"])
    if properties.get("CapacityProviderStrategy"):
        settings["capacity_provider_strategy"] = _camel(properties["CapacityProviderStrategy"])
    if properties.get("Tags"):
        settings["tags"] = [
            {"key": tag.get("Key"), "value": tag.get("Value")} for tag in properties["Tags"]
        ]
    return settings


def _apply_settings(service: Service, settings: dict[str, Any]) -> None:
    for name, value in settings.items():
        setattr(service, name, value)
    network = settings.get("network_configuration")
    for deployment in service.deployments:
        if service.launch_type:
            deployment["launchType"] = service.launch_type
            deployment["platformFamily"] = "Linux"
        if network is not None:
            deployment["networkConfiguration"] = network
        if settings.get("platform_version"):
            deployment["platformVersion"] = settings["platform_version"]


def _task_definition_arn(backend: EC2ContainerServiceBackend, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, TaskDefinition):
        return value.arn
    return backend.describe_task_definition(str(value)).arn


def _desired_count(properties: dict[str, Any]) -> int | None:
    value = properties.get("DesiredCount")
    return int(value) if value is not None else None


def _cfn_create_service(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Service:
    properties = cloudformation_json["Properties"]
    backend = ecs_backends[account_id][region_name]
    cluster = _name_of(properties.get("Cluster", "default"), "name")
    task_definition = _task_definition_arn(backend, properties.get("TaskDefinition"))
    settings = _service_settings(properties)
    service = backend.create_service(
        cluster,
        resource_name,
        _desired_count(properties) or 0,
        task_definition_str=task_definition,
        load_balancers=settings.pop("load_balancers", None),
        tags=settings.pop("tags", None),
        deployment_controller=settings.pop("deployment_controller", None),
        launch_type=settings.pop("launch_type", None),
        service_registries=settings.pop("service_registries", None),
        platform_version=settings.pop("platform_version", None),
        propagate_tags=settings.pop("propagate_tags", "NONE"),
        # set below without moto's subnet lookup: local targets use made-up subnets
        network_configuration=None,
        role_arn=properties.get("Role"),
    )
    service.created_at = utcnow()
    service.created_by = f"arn:aws:iam::{account_id}:role/cloudformation"
    _apply_settings(service, settings)
    return service


def _cfn_update_service(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> Service:
    properties = cloudformation_json["Properties"]
    backend = ecs_backends[account_id][region_name]
    cluster = _name_of(properties.get("Cluster", "default"), "name")
    renamed = "ServiceName" in properties and properties["ServiceName"] != original_resource.name
    if original_resource.cluster_arn != Cluster(cluster, account_id, region_name).arn or renamed:
        # a replacement, as CloudFormation does for a new cluster or service name
        backend.delete_service(original_resource.cluster_name, original_resource.name, True)
        return _cfn_create_service(
            cls, new_resource_name, cloudformation_json, account_id, region_name
        )
    settings = _service_settings(properties)
    desired = _desired_count(properties)
    service = backend.update_service(
        {
            "cluster": cluster,
            "service": original_resource.name,
            "task_definition": _task_definition_arn(backend, properties.get("TaskDefinition")),
            "desired_count": desired if desired is not None else original_resource.desired_count,
        }
    )
    _apply_settings(service, settings)
    return service


def _cfn_delete_service(
    cls: Any,
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> None:
    backend = ecs_backends[account_id][region_name]
    for service in list(backend.services.values()):
        if resource_name in (service.arn, service.name) and service.status == "ACTIVE":
            backend.delete_service(service.cluster_name, service.name, True)
            return


def _cfn_register_task_definition(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> TaskDefinition:
    """AWS::ECS::TaskDefinition with all of its properties (moto keeps only a few)."""
    properties = cloudformation_json["Properties"]
    backend = ecs_backends[account_id][region_name]
    family = properties.get("Family") or resource_name

    def text(name: str) -> str | None:
        value = properties.get(name)
        return str(value) if value is not None else None

    return backend.register_task_definition(
        family=family,
        container_definitions=_camel(properties.get("ContainerDefinitions", [])),
        volumes=_camel(properties.get("Volumes")) or None,
        network_mode=properties.get("NetworkMode"),
        tags=[{"key": t.get("Key"), "value": t.get("Value")} for t in properties.get("Tags", [])]
        or None,
        placement_constraints=_camel(properties.get("PlacementConstraints")) or None,
        requires_compatibilities=properties.get("RequiresCompatibilities"),
        cpu=text("Cpu"),
        memory=text("Memory"),
        task_role_arn=properties.get("TaskRoleArn"),
        execution_role_arn=properties.get("ExecutionRoleArn"),
        proxy_configuration=_camel(properties.get("ProxyConfiguration")),
        runtime_platform=_camel(properties.get("RuntimePlatform")),
        ipc_mode=properties.get("IpcMode"),
        pid_mode=properties.get("PidMode"),
        ephemeral_storage=_camel(properties.get("EphemeralStorage")),
    )


def _cfn_replace_task_definition(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> TaskDefinition:
    # Task definitions are immutable: CloudFormation registers a new revision. The old one
    # stays ACTIVE (AWS deregisters it only once the update has completed).
    return _cfn_register_task_definition(
        cls, new_resource_name, cloudformation_json, account_id, region_name
    )


def _cfn_deregister_task_definition(
    cls: Any,
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> None:
    with contextlib.suppress(Exception):
        ecs_backends[account_id][region_name].deregister_task_definition(resource_name)


# --------------------------------------------------------------------------------------
# Crash detection: an ECR image whose manifest carries the crash annotation


def image_crashes(image: str) -> bool:
    """True when `image` names an ECR image (in moto) annotated to crash."""
    match = _ECR_IMAGE.match(image or "")
    if not match:
        return False
    try:
        backend = ecr_backends[match["account"]][match["region"]]
    except Exception:  # unknown region
        return False
    repository = backend.repositories.get(match["repository"])
    if repository is None:
        return False
    digest, tag = match["digest"], match["tag"]
    if not digest and not tag:
        tag = "latest"
    for candidate in list(repository.images):
        if (digest and candidate.get_image_digest() == digest) or (
            tag and tag in candidate.image_tags
        ):
            try:
                manifest = json.loads(candidate.image_manifest)
            except (TypeError, ValueError):
                return False
            annotations = manifest.get("annotations") or {}
            return str(annotations.get(CRASH_ANNOTATION, "")).lower() == "true"
    return False


def _crashing_container(task_definition: TaskDefinition) -> dict[str, Any] | None:
    for container in task_definition.container_definitions:
        if container.get("essential", True) is not False and image_crashes(
            container.get("image", "")
        ):
            return container
    return None


# --------------------------------------------------------------------------------------
# Bookkeeping


@dataclass
class _StackSnapshot:
    template: Any
    template_dict: dict[str, Any]
    parameters: dict[str, Any]
    input_parameters: dict[str, Any]
    resolved_parameters: dict[str, Any]
    tags: dict[str, str]
    role_arn: str | None
    task_definitions: dict[str, TaskDefinition]

    @classmethod
    def of(cls, stack: Stack) -> _StackSnapshot:
        resource_map = stack.resource_map
        return cls(
            task_definitions={
                logical_id: resource
                for logical_id, resource in list(resource_map._parsed_resources.items())
                if isinstance(resource, TaskDefinition)
            },
            template=stack.template,
            template_dict=copy.deepcopy(stack.template_dict),
            parameters=dict(stack.parameters or {}),
            input_parameters=dict(resource_map.input_parameters or {}),
            resolved_parameters=dict(resource_map.resolved_parameters),
            tags=dict(stack.tags or {}),
            role_arn=stack.role_arn,
        )


@dataclass
class _ServiceState:
    task_definition: str | None
    deployments: list[dict[str, Any]]
    running_count: int
    status: str


@dataclass
class _ServiceRollout:
    service: Service
    backend: EC2ContainerServiceBackend
    logical_id: str
    deployment: dict[str, Any]
    previous: _ServiceState | None  # None: the service is new


@dataclass
class _Rollout:
    stack: Stack
    operation: str  # CREATE | UPDATE
    services: list[_ServiceRollout]
    previous: _StackSnapshot | None
    failure: str | None = None  # a failure that happened in moto itself
    failed_resource: str | None = None
    failed_type: str | None = None
    failure_reason: str | None = None  # the resource's status reason, when the handler said
    cancelled: bool = False
    # services whose tasks fail: (the service, the container, why the task stopped)
    crashed: list[tuple[_ServiceRollout, dict[str, Any], str]] = field(default_factory=list)
    steps_left: int = 0
    # The ClientRequestToken of the API call that started the operation (read when the
    # rollout is created, on the request's thread); every status event of it carries it.
    token: str | None = field(default_factory=request_token)


def _failed(stack: Stack, operation: str, previous: Any, exc: Exception) -> _Rollout:
    """A stack operation that failed in moto, e.g. a handler denied a permission."""
    return _Rollout(
        stack,
        operation,
        [],
        previous,
        failure=str(exc),
        failed_resource=getattr(exc, "logical_id", None),
        failed_type=getattr(exc, "resource_type", None),
        failure_reason=getattr(exc, "status_reason", None),
    )


@dataclass(order=True)
class _Step:
    due: float
    seq: int
    action: Callable[[], list[dict[str, Any]]] = field(compare=False)
    rollout: _Rollout = field(compare=False)


def _services_of(stack: Stack) -> dict[str, Service]:
    parsed = stack.resource_map._parsed_resources
    return {
        logical_id: resource
        for logical_id, resource in list(parsed.items())
        if isinstance(resource, Service)
    }


def _propagate_task_definitions(stack: Stack) -> None:
    """Update services whose TaskDefinition resolves to a new ARN.

    moto's update only touches resources whose own JSON or referenced *parameters*
    changed; a service that refers to a replaced AWS::ECS::TaskDefinition is left alone.
    """
    resource_map = stack.resource_map
    for logical_id, service in _services_of(stack).items():
        resource_json = resource_map._resource_json_map.get(logical_id) or {}
        wanted = (resource_json.get("Properties") or {}).get("TaskDefinition")
        if wanted is None:
            continue
        try:
            arn = _task_definition_arn(
                ecs_backends[service._account_id][service.region_name],
                clean_json(copy.deepcopy(wanted), resource_map),
            )
        except Exception:
            continue
        if arn and arn != service.task_definition:
            updated = parse_and_update_resource(
                logical_id,
                resource_json,
                resource_map,
                account_id=service._account_id,
                region_name=service.region_name,
            )
            if updated is not None:
                resource_map._parsed_resources[logical_id] = updated


def _service_states(stack: Stack) -> dict[int, _ServiceState]:
    return {
        id(service): _ServiceState(
            task_definition=service.task_definition,
            deployments=copy.deepcopy(service.deployments),
            running_count=service.running_count,
            status=service.status,
        )
        for service in _services_of(stack).values()
    }


class RolloutSimulator:
    """Makes moto's CloudFormation + ECS behave like AWS during ECS service rollouts."""

    def __init__(
        self,
        emit: Callable[[dict[str, Any]], None],
        *,
        delay_seconds: float = 0.5,
        region: str = "us-east-1",
        account_id: str = "123456789012",
    ) -> None:
        self.emit = emit
        self.delay_seconds = delay_seconds
        # updates whose rollback failed, by stack id: what ContinueUpdateRollback resumes
        self._failed_rollbacks: dict[str, _Rollout] = {}
        self.region = region
        self.account_id = account_id
        self._patches: Patches | None = None
        self._lock = threading.RLock()
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Step] = []
        self._seq = itertools.count()
        self._pending = 0
        self._by_stack: dict[str, _Rollout] = {}
        self._worker: threading.Thread | None = None
        self._stopping = False

    # ---------------------------------------------------------------- public interface

    def install(self) -> None:
        if self._patches is not None:
            return
        patches = Patches()
        sim = self
        originals: dict[str, Any] = {}

        def create_stack(backend: CloudFormationBackend, *args: Any, **kwargs: Any) -> Stack:
            return sim._create_stack(originals["create_stack"], backend, *args, **kwargs)

        def update_stack(backend: CloudFormationBackend, *args: Any, **kwargs: Any) -> Stack:
            return sim._update_stack(originals["update_stack"], backend, *args, **kwargs)

        def execute_change_set(backend: CloudFormationBackend, *args: Any, **kwargs: Any) -> None:
            return sim._execute_change_set(
                originals["execute_change_set"], backend, *args, **kwargs
            )

        def delete_stack(backend: CloudFormationBackend, name_or_stack_id: str) -> None:
            return sim._delete_stack(originals["delete_stack"], backend, name_or_stack_id)

        for name, replacement in (
            ("create_stack", create_stack),
            ("update_stack", update_stack),
            ("execute_change_set", execute_change_set),
            ("delete_stack", delete_stack),
        ):
            originals[name] = patches.replace(CloudFormationBackend, name, replacement)
        patches.replace(
            Service, "create_from_cloudformation_json", classmethod(_cfn_create_service)
        )
        patches.replace(
            Service, "update_from_cloudformation_json", classmethod(_cfn_update_service)
        )
        patches.replace(
            Service, "delete_from_cloudformation_json", classmethod(_cfn_delete_service)
        )

        def update_service(backend: EC2ContainerServiceBackend, props: dict[str, Any]) -> Service:
            # moto stores whatever was passed ("web", "web:3"); ECS answers with the ARN
            service = originals["update_service"](backend, props)
            if service.task_definition and not str(service.task_definition).startswith("arn:"):
                with contextlib.suppress(Exception):
                    service.task_definition = backend.describe_task_definition(
                        service.task_definition
                    ).arn
            return service

        originals["update_service"] = patches.replace(
            EC2ContainerServiceBackend, "update_service", update_service
        )
        for name, handler in (
            ("create_from_cloudformation_json", _cfn_register_task_definition),
            ("update_from_cloudformation_json", _cfn_replace_task_definition),
            ("delete_from_cloudformation_json", _cfn_deregister_task_definition),
        ):
            patches.replace(TaskDefinition, name, classmethod(handler))

        def continue_update_rollback(response: Any) -> str:
            return sim._continue_update_rollback(response)

        patches.add(CloudFormationResponse, "continue_update_rollback", continue_update_rollback)
        # outermost: the stack operations above run as the stack's role (or its caller)
        install_permissions(patches, on_delete_failed=self._announce_delete_failed)
        self._patches = patches
        self._stopping = False
        self._worker = threading.Thread(target=self._run, name="shiplane-rollouts", daemon=True)
        self._worker.start()

    def uninstall(self) -> None:
        if self._patches is None:
            return
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._pending = 0
            self._cond.notify_all()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=5)
        self._worker = None
        self._patches.undo()
        self._patches = None
        self._by_stack.clear()

    def pending(self) -> int:
        with self._cond:
            return self._pending

    def settle(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._pending} rollout(s) still pending")
                self._cond.wait(remaining)

    # ---------------------------------------------------------------- the worker

    def _schedule(self, rollout: _Rollout, steps: list[tuple[float, Callable]]) -> None:
        """Queue steps of a rollout; it is pending until its last queued step has run.

        A step may queue further steps of its own rollout (a rollback after a failure).
        """
        now = time.monotonic()
        with self._cond:
            if rollout.steps_left == 0:
                self._pending += 1
            for delay, action in steps:
                rollout.steps_left += 1
                heapq.heappush(self._queue, _Step(now + delay, next(self._seq), action, rollout))
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (
                    not self._queue or self._queue[0].due > time.monotonic()
                ):
                    wait = self._queue[0].due - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                step = heapq.heappop(self._queue)
            events: list[dict[str, Any]] = []
            rollout = step.rollout
            try:
                if not rollout.cancelled:
                    with self._lock, using_token(rollout.token):
                        events = step.action()
            except Exception:
                log.exception("rollout step of %s failed", rollout.stack.name)
            for event in events:
                try:
                    self.emit(event)
                except Exception:
                    log.exception("emitting %s failed", event.get("detail-type"))
            with self._cond:
                rollout.steps_left -= 1
                if rollout.steps_left <= 0:
                    if self._by_stack.get(rollout.stack.stack_id) is rollout:
                        del self._by_stack[rollout.stack.stack_id]
                    self._pending = max(0, self._pending - 1)
                    self._cond.notify_all()

    # ---------------------------------------------------------------- events

    def _event(
        self, stack_or_service: Any, detail_type: str, source: str, resource: str, detail: dict
    ) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": getattr(stack_or_service, "account_id", None)
            or getattr(stack_or_service, "_account_id", None)
            or self.account_id,
            "time": _iso(),
            "region": getattr(stack_or_service, "region_name", None) or self.region,
            "resources": [resource],
            "detail": detail,
        }

    def _stack_event(
        self, stack: Stack, status: str, reason: str = "", *, token: str | None = None
    ) -> dict[str, Any]:
        """AWS's "CloudFormation Stack Status Change" detail: stack-id, status-details and
        client-request-token (the operation's ClientRequestToken; "" when none was given)."""
        return self._event(
            stack,
            "CloudFormation Stack Status Change",
            "aws.cloudformation",
            stack.stack_id,
            {
                "stack-id": stack.stack_id,
                "status-details": {"status": status, "status-reason": reason},
                "client-request-token": token or "",
            },
        )

    def _ecs_event(
        self, service: Service, name: str, deployment_id: str, reason: str
    ) -> dict[str, Any]:
        return self._event(
            service,
            "ECS Deployment State Change",
            "aws.ecs",
            service.arn,
            {
                "eventType": "ERROR" if name == "SERVICE_DEPLOYMENT_FAILED" else "INFO",
                "eventName": name,
                "deploymentId": deployment_id,
                "updatedAt": _iso(),
                "reason": reason,
            },
        )

    @staticmethod
    def _resource_event(
        stack: Stack,
        logical_id: str,
        physical_id: str,
        resource_type: str,
        status: str,
        reason: str | None = None,
    ) -> None:
        stack.events.append(
            Event(
                stack_id=stack.stack_id,
                stack_name=stack.name,
                logical_resource_id=logical_id,
                physical_resource_id=physical_id,
                resource_type=resource_type,
                resource_status=status,
                resource_status_reason=reason,
                resource_properties=None,
            )
        )

    @staticmethod
    def _set_status(stack: Stack, status: str, reason: str | None = None) -> None:
        stack.status = status
        stack.status_reason = reason or None
        stack._add_stack_event(status, resource_status_reason=reason or None)

    @staticmethod
    def _drop_terminal_stack_event(stack: Stack) -> None:
        """moto logs `*_COMPLETE` at once; it is logged again when the rollout ends."""
        if (
            stack.events
            and stack.events[-1].logical_resource_id == stack.name
            and stack.events[-1].resource_status.endswith("_COMPLETE")
        ):
            stack.events.pop()

    # ---------------------------------------------------------------- patched backend

    def _refuse_if_busy(self, stack: Stack, action: str = "updated") -> None:
        if stack.status in _IN_PROGRESS_REFUSED:
            raise ValidationError(
                stack.stack_id,
                message=f"Stack:{stack.stack_id} is in {stack.status} state and can not be "
                f"{action}.",
            )

    def _create_stack(
        self, original: Callable, backend: CloudFormationBackend, *args: Any, **kwargs: Any
    ) -> Stack:
        with self._lock:
            before = set(backend.stacks)
            try:
                stack = original(backend, *args, **kwargs)
            except CloudFormationError:
                for stack_id in set(backend.stacks) - before:  # rejected: leave nothing
                    backend.stacks.pop(stack_id, None)
                raise
            except Exception as exc:  # a resource failed in moto: the stack rolls back
                created = [backend.stacks[s] for s in set(backend.stacks) - before]
                if not created:
                    raise
                stack = created[0]
                log.warning("creating stack %s failed in moto: %s", stack.name, exc, exc_info=True)
                self._drop_terminal_stack_event(stack)
                rollout = _failed(stack, "CREATE", None, exc)
                self._start(rollout)
                return stack
            self._after_change(stack, "CREATE", {}, None)
            return stack

    def _update_stack(
        self, original: Callable, backend: CloudFormationBackend, name: str, *args: Any, **kw: Any
    ) -> Stack:
        with self._lock:
            stack = backend.get_stack(name)
            self._refuse_if_busy(stack)
            previous = _StackSnapshot.of(stack)
            services = _service_states(stack)
            events_before = len(stack.events)
            status_before = stack.status
            try:
                stack = original(backend, name, *args, **kw)
            except CloudFormationError:
                self._restore(stack, previous)
                del stack.events[events_before:]
                stack.status = status_before
                raise
            except Exception as exc:
                log.warning("updating stack %s failed in moto: %s", name, exc, exc_info=True)
                self._drop_terminal_stack_event(stack)
                rollout = _failed(stack, "UPDATE", previous, exc)
                self._start(rollout)
                return stack
            try:
                _propagate_task_definitions(stack)
            except Exception as exc:
                self._drop_terminal_stack_event(stack)
                self._start(_failed(stack, "UPDATE", previous, exc))
                return stack
            self._after_change(stack, "UPDATE", services, previous)
            return stack

    def _execute_change_set(
        self,
        original: Callable,
        backend: CloudFormationBackend,
        change_set_name: str,
        *a: Any,
        **kw: Any,
    ) -> None:
        with self._lock:
            change_set = backend.change_sets.get(change_set_name)
            if change_set is None:
                for candidate in backend.change_sets.values():
                    if candidate.change_set_name == change_set_name:
                        change_set = candidate
            if change_set is None:
                return original(backend, change_set_name, *a, **kw)
            stack = backend.stacks[change_set.stack_id]
            operation = change_set.change_set_type
            if operation != "CREATE":
                self._refuse_if_busy(stack)
            previous = _StackSnapshot.of(stack) if operation != "CREATE" else None
            services = _service_states(stack) if operation != "CREATE" else {}
            try:
                original(backend, change_set_name, *a, **kw)
            except CloudFormationError:
                raise
            except Exception as exc:
                log.warning("change set %s failed in moto: %s", change_set_name, exc, exc_info=True)
                self._drop_terminal_stack_event(stack)
                self._start(_failed(stack, operation, previous, exc))
                return None
            if change_set.parameters:
                stack.parameters = dict(change_set.parameters)
            stack._parse_template()
            if operation != "CREATE":
                with contextlib.suppress(Exception):
                    _propagate_task_definitions(stack)
            stack.output_map = stack._create_output_map()
            self._after_change(stack, operation, services, previous)
            return None

    def _delete_stack(
        self, original: Callable, backend: CloudFormationBackend, name_or_stack_id: str
    ) -> None:
        with self._lock:
            targets = [
                stack
                for stack in list(backend.stacks.values())
                if name_or_stack_id in (stack.stack_id, stack.name)
            ]
            if not targets:  # unknown or already deleted: a no-op, as in AWS
                return original(backend, name_or_stack_id)
            for stack in targets:
                if stack.status in _IN_PROGRESS_REFUSED and stack.status != "CREATE_IN_PROGRESS":
                    raise ValidationError(
                        stack.stack_id,
                        message=f"Stack [{stack.name}] cannot be deleted while in status "
                        f"{stack.status}",
                    )
            for stack in targets:
                rollout = self._by_stack.get(stack.stack_id)
                if rollout is not None:  # a create being cancelled
                    rollout.cancelled = True
                original(backend, stack.stack_id)  # by id: moto recurses for a name
        for stack in targets:
            stack_ref = stack

            deletion = _Rollout(stack, "DELETE", [], None)

            def announce(
                stack: Stack = stack_ref, token: str | None = deletion.token
            ) -> list[dict[str, Any]]:
                return [
                    self._stack_event(stack, "DELETE_IN_PROGRESS", "User Initiated", token=token),
                    self._stack_event(stack, "DELETE_COMPLETE", token=token),
                ]

            self._schedule(deletion, [(0.0, announce)])
        return None

    def _announce_delete_failed(self, stack: Stack) -> None:
        """A deletion the stack's role may not make (cfn_permissions ended it DELETE_FAILED):
        EventBridge hears DELETE_IN_PROGRESS then DELETE_FAILED, with the reason."""
        deletion = _Rollout(stack, "DELETE", [], None)

        def announce(token: str | None = deletion.token) -> list[dict[str, Any]]:
            return [
                self._stack_event(stack, "DELETE_IN_PROGRESS", "User Initiated", token=token),
                self._stack_event(stack, "DELETE_FAILED", stack.status_reason or "", token=token),
            ]

        self._schedule(deletion, [(0.0, announce)])

    # ---------------------------------------------------------------- rollout lifecycle

    def _after_change(
        self,
        stack: Stack,
        operation: str,
        before: dict[int, _ServiceState],
        previous: _StackSnapshot | None,
    ) -> None:
        """Turn moto's finished create/update into an AWS-like rollout."""
        rollouts: list[_ServiceRollout] = []
        for logical_id, service in _services_of(stack).items():
            if service.status != "ACTIVE":
                continue
            backend = ecs_backends[service._account_id][service.region_name]
            if service.task_definition:  # moto keeps whatever string it was given
                with contextlib.suppress(Exception):
                    service.task_definition = backend.describe_task_definition(
                        service.task_definition
                    ).arn
            state = before.get(id(service))
            if state is not None and state.task_definition == service.task_definition:
                self._settle_counts(service)
                continue
            rollouts.append(self._begin_deployment(service, backend, logical_id, state))
        rollout = _Rollout(stack, operation, rollouts, previous)
        self._drop_terminal_stack_event(stack)
        self._start(rollout)

    def _begin_deployment(
        self,
        service: Service,
        backend: EC2ContainerServiceBackend,
        logical_id: str,
        state: _ServiceState | None,
    ) -> _ServiceRollout:
        now = utcnow()
        deployment_id = _deployment_id()
        template = service.deployments[0] if service.deployments else {}
        deployment = {
            "id": deployment_id,
            "status": "PRIMARY",
            "taskDefinition": service.task_definition,
            "desiredCount": service.desired_count,
            "pendingCount": service.desired_count,
            "runningCount": 0,
            "failedTasks": 0,
            "createdAt": now,
            "updatedAt": now,
            "launchType": service.launch_type,
            "platformVersion": getattr(service, "platform_version", None)
            or ("LATEST" if service.launch_type == "FARGATE" else None),
            "platformFamily": "Linux",
            "networkConfiguration": getattr(service, "network_configuration", None)
            or template.get("networkConfiguration"),
            "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
        }
        deployments = [deployment]
        running = 0
        if state is not None:
            old = next((d for d in state.deployments if d.get("status") == "PRIMARY"), None)
            if old is not None:
                old = dict(old)
                old["status"] = "ACTIVE"
                old["updatedAt"] = now
                deployments.append(old)
                running = int(old.get("runningCount") or 0)
        service.deployments = deployments
        service.running_count = running
        service.pending_count = service.desired_count
        return _ServiceRollout(service, backend, logical_id, deployment, state)

    @staticmethod
    def _settle_counts(service: Service) -> None:
        """A change that starts no deployment (e.g. desired count): scale at once."""
        service.running_count = service.desired_count
        service.pending_count = 0
        for deployment in service.deployments:
            if deployment.get("status") == "PRIMARY":
                deployment["desiredCount"] = service.desired_count
                deployment["runningCount"] = service.desired_count
                deployment["pendingCount"] = 0

    def _start(self, rollout: _Rollout) -> None:
        stack = rollout.stack
        in_progress = f"{rollout.operation}_IN_PROGRESS"
        immediate = not rollout.services and rollout.failure is None
        if immediate:  # nothing to roll out: complete now, the events follow at once
            complete = f"{rollout.operation}_COMPLETE"
            self._set_status(stack, complete)
            self._schedule(
                rollout,
                [
                    (
                        0.0,
                        lambda: [
                            self._stack_event(
                                stack, in_progress, "User Initiated", token=rollout.token
                            )
                        ],
                    ),
                    (0.0, lambda: [self._stack_event(stack, complete, token=rollout.token)]),
                ],
            )
            return
        stack.status = in_progress
        self._by_stack[stack.stack_id] = rollout
        resource_status = f"{rollout.operation}_IN_PROGRESS"
        for item in rollout.services:
            self._resource_event(stack, item.logical_id, "", "AWS::ECS::Service", resource_status)
            self._resource_event(
                stack,
                item.logical_id,
                item.service.arn,
                "AWS::ECS::Service",
                resource_status,
                "Resource creation Initiated" if rollout.operation == "CREATE" else None,
            )

        def begin() -> list[dict[str, Any]]:
            events = [self._stack_event(stack, in_progress, "User Initiated", token=rollout.token)]
            for item in rollout.services:
                events.append(
                    self._ecs_event(
                        item.service,
                        "SERVICE_DEPLOYMENT_IN_PROGRESS",
                        item.deployment["id"],
                        f"ECS deployment {item.deployment['id']} in progress.",
                    )
                )
            return events

        self._schedule(rollout, [(0.0, begin), (self.delay_seconds, lambda: self._decide(rollout))])

    def _decide(self, rollout: _Rollout) -> list[dict[str, Any]]:
        """After the delay: each deployment completes, or its tasks crash."""
        if rollout.failure is None:
            for item in rollout.services:
                try:
                    task_definition = item.backend.describe_task_definition(
                        item.deployment["taskDefinition"]
                    )
                except Exception:
                    continue
                container = _crashing_container(task_definition)
                if container is not None:
                    rollout.crashed.append((item, container, ESSENTIAL_EXITED))
                    continue
                problem = secrets_problem(
                    task_definition, item.backend.account_id, item.backend.region_name
                )
                if problem is not None:  # the task never starts: ECS could not read secrets
                    first = task_definition.container_definitions[0]
                    rollout.crashed.append((item, first, problem))
        if not rollout.crashed and rollout.failure is None:
            return self._succeed(rollout)
        events = self._fail(rollout)
        self._schedule(rollout, [(self.delay_seconds, lambda: self._finish(rollout))])
        return events

    def _succeed(self, rollout: _Rollout) -> list[dict[str, Any]]:
        stack = rollout.stack
        events: list[dict[str, Any]] = []
        for item in rollout.services:
            service, deployment = item.service, item.deployment
            deployment.update(
                rolloutState="COMPLETED",
                rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
                runningCount=service.desired_count,
                pendingCount=0,
                desiredCount=service.desired_count,
                updatedAt=utcnow(),
            )
            service.deployments = [deployment]
            service.running_count = service.desired_count
            service.pending_count = 0
            self._service_event(
                service,
                f"(service {service.name}) (deployment {deployment['id']}) deployment completed.",
            )
            self._service_event(service, f"(service {service.name}) has reached a steady state.")
            events.append(
                self._ecs_event(
                    service,
                    "SERVICE_DEPLOYMENT_COMPLETED",
                    deployment["id"],
                    f"ECS deployment {deployment['id']} completed.",
                )
            )
            self._resource_event(
                stack,
                item.logical_id,
                service.arn,
                "AWS::ECS::Service",
                f"{rollout.operation}_COMPLETE",
            )
        status = f"{rollout.operation}_COMPLETE"
        self._set_status(stack, status)
        events.append(self._stack_event(stack, status, token=rollout.token))
        return events

    def _fail(self, rollout: _Rollout) -> list[dict[str, Any]]:
        stack = rollout.stack
        events: list[dict[str, Any]] = []
        crashed = {id(item) for item, _, _ in rollout.crashed}
        failed_resources: list[str] = []
        for item, container, stopped in rollout.crashed:
            events.append(self._crash_service(item, container, stopped))
            failed_resources.append(item.logical_id)
            self._resource_event(
                stack,
                item.logical_id,
                item.service.arn,
                "AWS::ECS::Service",
                f"{rollout.operation}_FAILED",
                CIRCUIT_BREAKER_MESSAGE.format(token=uuid.uuid4()),
            )
        if rollout.failure is not None:
            failed_resources.append(
                rollout.failed_resource
                or ", ".join((stack.template_dict or {}).get("Resources", {}))
            )
            self._resource_event(
                stack,
                rollout.failed_resource or stack.name,
                "",
                rollout.failed_type
                or (
                    "AWS::ECS::Service" if rollout.failed_resource else "AWS::CloudFormation::Stack"
                ),
                f"{rollout.operation}_FAILED",
                rollout.failure_reason or f'Resource handler returned message: "{rollout.failure}"',
            )
        for item in rollout.services:
            if id(item) not in crashed:  # cancelled by the rollback
                self._resource_event(
                    stack,
                    item.logical_id,
                    item.service.arn,
                    "AWS::ECS::Service",
                    f"{rollout.operation}_FAILED",
                    "Resource update cancelled",
                )
        names = ", ".join(failed_resources)
        if rollout.operation == "CREATE":
            status = "ROLLBACK_IN_PROGRESS"
            reason = (
                f"The following resource(s) failed to create: [{names}]. "
                "Rollback requested by user."
            )
        else:
            status = "UPDATE_ROLLBACK_IN_PROGRESS"
            reason = f"The following resource(s) failed to update: [{names}]. "
        self._set_status(stack, status, reason)
        events.append(self._stack_event(stack, status, reason, token=rollout.token))
        return events

    def _finish(self, rollout: _Rollout) -> list[dict[str, Any]]:
        """The stack's rollback ends (or fails: the stack's role may not make it)."""
        stack = rollout.stack
        # the resource whose own change failed was not changed: nothing of it to undo
        unchanged = {rollout.failed_resource} if rollout.failure is not None else set()
        denied = rollback_denial(stack, rollout.operation, unchanged - {None})
        if denied is not None:
            return self._rollback_failed(rollout, denied)
        if rollout.operation == "CREATE":
            for item in rollout.services:
                service = item.service
                self._resource_event(
                    stack, item.logical_id, service.arn, "AWS::ECS::Service", "DELETE_IN_PROGRESS"
                )
                if service.status == "ACTIVE":
                    item.backend.delete_service(service.cluster_name, service.name, True)
                service.running_count = 0
                service.desired_count = 0
                self._resource_event(
                    stack, item.logical_id, service.arn, "AWS::ECS::Service", "DELETE_COMPLETE"
                )
            # As in AWS, a stack whose create rolled back has no outputs; moto would try to
            # create the failed resources again to resolve them (DescribeStacks answered 500).
            stack.output_map = OutputMap(stack.resource_map, {}, stack.stack_id)
            if rollout.failure is not None:
                delete_created_resources(stack)
            self._set_status(stack, "ROLLBACK_COMPLETE")
            return [self._stack_event(stack, "ROLLBACK_COMPLETE", token=rollout.token)]
        for item in rollout.services:
            self._resource_event(
                stack, item.logical_id, item.service.arn, "AWS::ECS::Service", "UPDATE_IN_PROGRESS"
            )
        if rollout.previous is not None:
            self._restore(stack, rollout.previous)
        for item in rollout.services:
            self._roll_back_service(item)
            self._resource_event(
                stack, item.logical_id, item.service.arn, "AWS::ECS::Service", "UPDATE_COMPLETE"
            )
        self._set_status(stack, "UPDATE_ROLLBACK_COMPLETE")
        return [self._stack_event(stack, "UPDATE_ROLLBACK_COMPLETE", token=rollout.token)]

    def _continue_update_rollback(self, response: Any) -> str:
        """ContinueUpdateRollback (moto has none): a stack in UPDATE_ROLLBACK_FAILED rolls
        back again, as the role given (it becomes the stack's role) or its own; the events
        carry the call's ClientRequestToken. ResourcesToSkip is not supported."""
        name = response._get_param("StackName")
        backend = response.cloudformation_backend
        with self._lock:
            stack = next((s for s in backend.stacks.values() if name in (s.stack_id, s.name)), None)
            if stack is None or stack.status == "DELETE_COMPLETE":
                raise ValidationError(name, message=f"Stack [{name}] does not exist")
            if stack.status != "UPDATE_ROLLBACK_FAILED":
                raise ValidationError(
                    name,
                    message=f"Stack [{stack.name}] is in {stack.status} state and can not "
                    "continue update rollback.",
                )
            if response._get_param("ResourcesToSkip.member.1"):
                raise ValidationError(
                    name, message="ResourcesToSkip is not supported by the local cloud"
                )
            role = response._get_param("RoleARN")
            if role:
                stack.role_arn = role
            rollout = self._failed_rollbacks.pop(stack.stack_id, None) or _Rollout(
                stack, "UPDATE", [], None
            )
            rollout.token = response._get_param("ClientRequestToken") or None
            reason = "User Initiated"
            self._set_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS", reason)
            token = rollout.token

            def begin() -> list[dict[str, Any]]:
                return [
                    self._stack_event(stack, "UPDATE_ROLLBACK_IN_PROGRESS", reason, token=token)
                ]

            self._schedule(
                rollout, [(0.0, begin), (self.delay_seconds, lambda: self._finish(rollout))]
            )
        return (
            '<ContinueUpdateRollbackResponse xmlns="http://cloudformation.amazonaws.com/doc/'
            '2010-05-15/"><ContinueUpdateRollbackResult/><ResponseMetadata><RequestId>'
            f"{uuid.uuid4()}</RequestId></ResponseMetadata></ContinueUpdateRollbackResponse>"
        )

    def _rollback_failed(
        self, rollout: _Rollout, denied: HandlerAccessDenied
    ) -> list[dict[str, Any]]:
        """AWS's ROLLBACK_FAILED / UPDATE_ROLLBACK_FAILED: the resource the role could not
        roll back fails with the handler's message, and the stack stays as it is (a create's
        must be deleted; an update's needs ContinueUpdateRollback)."""
        stack = rollout.stack
        if rollout.operation == "CREATE":
            resource_status, status, verb = "DELETE_FAILED", "ROLLBACK_FAILED", "delete"
        else:
            resource_status, status, verb = "UPDATE_FAILED", "UPDATE_ROLLBACK_FAILED", "update"
        self._resource_event(
            stack,
            denied.logical_id,
            "",
            denied.resource_type,
            resource_status,
            denied.status_reason,
        )
        reason = f"The following resource(s) failed to {verb}: [{denied.logical_id}]. "
        if rollout.operation != "CREATE":  # ContinueUpdateRollback takes it up again
            self._failed_rollbacks[stack.stack_id] = rollout
        self._set_status(stack, status, reason)
        return [self._stack_event(stack, status, reason, token=rollout.token)]

    # ---------------------------------------------------------------- ECS side of a crash

    @staticmethod
    def _service_event(service: Service, message: str) -> None:
        service.events.insert(
            0, {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": message}
        )

    def _crash_service(
        self, item: _ServiceRollout, container: dict[str, Any], stopped: str = ESSENTIAL_EXITED
    ) -> dict[str, Any]:
        """The circuit breaker trips: tasks stopped, deployment failed, rollback to the old one."""
        service, deployment, backend = item.service, item.deployment, item.backend
        task_definition = backend.describe_task_definition(deployment["taskDefinition"])
        threshold = min(200, max(3, math.ceil(0.5 * max(service.desired_count, 1))))
        tasks = [
            self._stopped_task(
                service, backend, task_definition, deployment["id"], container, stopped
            )
            for _ in range(threshold)
        ]
        breaker = (getattr(service, "deployment_configuration", None) or {}).get(
            "deploymentCircuitBreaker"
        ) or {}
        reason = "ECS deployment circuit breaker: tasks failed to start."
        if not breaker.get("enable"):
            reason = f"ECS deployment {deployment['id']} failed: tasks failed to start."
        now = utcnow()
        deployment.update(
            rolloutState="FAILED",
            rolloutStateReason=reason,
            failedTasks=len(tasks),
            runningCount=0,
            pendingCount=0,
            updatedAt=now,
        )
        for task in tasks:
            self._service_event(
                service,
                f"(service {service.name}) has started 1 tasks: (task {task.id}).",
            )
        self._service_event(
            service,
            f"(service {service.name}) (deployment {deployment['id']}) deployment failed: "
            "tasks failed to start.",
        )
        previous = item.previous
        old = None
        if previous is not None:
            old = next((d for d in service.deployments if d is not deployment), None)
        if old is not None:
            self._service_event(
                service, f"(service {service.name}) rolling back to deployment {old['id']}."
            )
            old.update(status="PRIMARY", updatedAt=now)
            deployment["status"] = "ACTIVE"
            deployment["desiredCount"] = 0
            service.deployments = [old, deployment]
            if previous is not None and previous.task_definition:
                service.task_definition = previous.task_definition
            service.running_count = int(old.get("runningCount") or 0)
            service.pending_count = max(0, service.desired_count - service.running_count)
        else:
            service.running_count = 0
            service.pending_count = 0
        return self._ecs_event(service, "SERVICE_DEPLOYMENT_FAILED", deployment["id"], reason)

    @staticmethod
    def _stopped_task(
        service: Service,
        backend: EC2ContainerServiceBackend,
        task_definition: TaskDefinition,
        deployment_id: str,
        container: dict[str, Any],
        stopped: str = ESSENTIAL_EXITED,
    ) -> Task:
        cluster = backend._get_cluster(service.cluster_name)
        # build as a non-awsvpc task: moto would look up (made-up) subnets to attach an ENI
        shadow = copy.copy(task_definition)
        shadow.network_mode = "bridge"
        shadow.container_definitions = [container] + [
            c for c in task_definition.container_definitions if c is not container
        ]
        task = Task(
            cluster,
            shadow,
            None,
            None,
            backend=backend,
            group=f"service:{service.name}",
            launch_type=service.launch_type or "FARGATE",
            started_by=deployment_id,
            tags=[],
            platform_version=getattr(service, "platform_version", None),
        )
        now = utcnow()
        task.task_definition_arn = task_definition.arn
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stopped_reason = stopped
        started = stopped == ESSENTIAL_EXITED  # else it never started (its secrets, ...)
        task.stop_code = "EssentialContainerExited" if started else "TaskFailedToStart"
        task.created_at = now
        task.started_at = now
        task.stopping_at = now
        task.stopped_at = now
        task.execution_stopped_at = now
        task.network_configuration = getattr(service, "network_configuration", None)
        for task_container in task.containers:
            task_container.task_arn = task.task_arn
            task_container.last_status = "STOPPED"
            if started and task_container.name == container.get("name"):
                task_container.exitCode = 1
                task_container.reason = None
        backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
        return task

    def _roll_back_service(self, item: _ServiceRollout) -> None:
        """After the stack rollback, the service runs its previous deployment again."""
        service, previous = item.service, item.previous
        if previous is None:
            return
        if previous.task_definition:
            service.task_definition = previous.task_definition
        primary = next((d for d in service.deployments if d.get("status") == "PRIMARY"), None)
        if primary is not None and primary is not item.deployment:
            primary.update(
                rolloutState="COMPLETED",
                taskDefinition=service.task_definition,
                desiredCount=service.desired_count,
                runningCount=service.desired_count,
                pendingCount=0,
                updatedAt=utcnow(),
            )
            service.running_count = service.desired_count
            service.pending_count = 0
            if item.deployment in service.deployments:
                # the failed deployment stays listed, drained
                item.deployment.update(status="ACTIVE", desiredCount=0, runningCount=0)
        self._service_event(service, f"(service {service.name}) has reached a steady state.")

    # ---------------------------------------------------------------- stack restore

    def _restore(self, stack: Stack, previous: _StackSnapshot) -> None:
        """Put the stack's template, parameters and resources back as they were."""
        try:
            stack.resource_map.update(
                copy.deepcopy(previous.template_dict), dict(previous.input_parameters)
            )
        except Exception:
            log.exception("rolling back the resources of %s failed", stack.name)
        stack.template = previous.template
        stack.template_dict = copy.deepcopy(previous.template_dict)
        stack.parameters = dict(previous.parameters)
        stack.resource_map.input_parameters = dict(previous.input_parameters)
        stack.resource_map.resolved_parameters.clear()
        stack.resource_map.resolved_parameters.update(previous.resolved_parameters)
        stack.tags = dict(previous.tags)
        stack.role_arn = previous.role_arn
        # the rollback goes back to the previous physical task definitions, not new copies
        for logical_id, task_definition in previous.task_definitions.items():
            current = stack.resource_map._parsed_resources.get(logical_id)
            if isinstance(current, TaskDefinition) and current is not task_definition:
                with contextlib.suppress(Exception):
                    backend = ecs_backends[stack.account_id][stack.region_name]
                    backend.deregister_task_definition(current.arn)
            stack.resource_map._parsed_resources[logical_id] = task_definition
        try:
            stack.output_map = stack._create_output_map()
        except Exception:
            log.exception("recomputing the outputs of %s failed", stack.name)
