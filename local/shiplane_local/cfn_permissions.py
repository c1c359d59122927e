"""The IAM permissions CloudFormation's resource handlers use, and their enforcement on the
local cloud's stack operations.

AWS runs a stack's resource handlers as the stack's role (the RoleARN given at
CreateStack/UpdateStack/CreateChangeSet, kept for later operations), or - for a stack
without one - with the credentials of whoever called the operation. Each resource type's
handlers need the permissions listed in its CloudFormation resource provider schema
(`handlers.<create|update|delete|read>.permissions`); cfn-lint ships those schemas, and
they are the source here, not a hand-written list.

A schema lists every permission a handler *may* use; some are used only when a property
asks for them (a log group's data protection policy, an ECS service's load balancer role,
tags). `CONDITIONAL` says when, for the resource types Shiplane renders; every other
listed permission is always required (for any type without an entry: all of them, which
may be stricter than AWS, never more lenient).

Each permission is authorized against the resource ARN AWS authorizes it against (the
Service Authorization Reference: the resource's own ARN where the action supports
resource-level permissions, else "*"), with `iam:PassedToService` for `iam:PassRole`.

`install(patches)` hooks moto's CloudFormation: every resource a stack operation creates,
updates or deletes is authorized (through `shiplane_local.iam.authorize`) first; the
first denied permission fails the resource with the handler's AccessDenied message, and
the local cloud's rollout simulator rolls the stack back as AWS does.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .iam import authorize
from .iam.policy import ContextValue
from .iam.principal import request_principal

Operation = str  # "create" | "update" | "delete" | "read"

# The session name CloudFormation uses when it assumes a stack's role.
CLOUDFORMATION_SESSION = "AWSCloudFormation"

# AWS SDK service names as the Java SDK v2 (which the handlers use) prints them, and the
# HTTP status of each service's AccessDenied.
_SDK_SERVICE = {
    "ecs": ("Ecs", 400),
    "logs": ("CloudWatchLogs", 400),
    "iam": ("Iam", 403),
    "dynamodb": ("DynamoDb", 400),
    "s3": ("S3", 403),
    "sts": ("Sts", 403),
}


@dataclass(frozen=True)
class Permission:
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


# -- the schemas ---------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _schema(resource_type: str) -> dict[str, Any] | None:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        return dict(PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema)
    except Exception:  # not a registry type (e.g. AWS::CloudFormation::WaitConditionHandle)
        return None


def handler_permissions(resource_type: str, operation: Operation) -> list[str]:
    """The permissions the schema lists for one handler ([] for an unknown type)."""
    schema = _schema(resource_type) or {}
    handler = (schema.get("handlers") or {}).get(operation) or {}
    return [str(p) for p in handler.get("permissions") or []]


# -- when a listed permission is used ------------------------------------------------------
Properties = Mapping[str, Any]
Needed = Callable[[Properties, bool], bool]  # (properties, tagged) -> used?


def _has(*names: str) -> Needed:
    return lambda props, tagged: any(props.get(n) not in (None, "", [], {}) for n in names)


def _tags(props: Properties, tagged: bool) -> bool:
    return tagged


def _never(props: Properties, tagged: bool) -> bool:
    return False


def _lacks(name: str) -> Needed:
    return lambda props, tagged: props.get(name) in (None, "")


_SERVICE_ROLE = _has("Role")
_TASK_ROLES = _has("TaskRoleArn", "ExecutionRoleArn")
_LOG_DELIVERY = _has("DataProtectionPolicy")

# (resource type, action) -> when the handler uses it. Anything listed and not here: always.
CONDITIONAL: dict[tuple[str, str], Needed] = {
    ("AWS::ECS::Service", "iam:PassRole"): _SERVICE_ROLE,
    ("AWS::ECS::Service", "ecs:TagResource"): _tags,
    ("AWS::ECS::Service", "ecs:UntagResource"): _tags,
    # used only to stop the deployment of an update CloudFormation cancels
    ("AWS::ECS::Service", "ecs:StopServiceDeployment"): _never,
    ("AWS::ECS::TaskDefinition", "iam:PassRole"): _TASK_ROLES,
    ("AWS::ECS::TaskDefinition", "iam:GetRole"): _TASK_ROLES,
    ("AWS::ECS::TaskDefinition", "ecs:TagResource"): _tags,
    ("AWS::ECS::TaskDefinition", "ecs:UntagResource"): _tags,
    ("AWS::Logs::LogGroup", "logs:PutRetentionPolicy"): _has("RetentionInDays"),
    ("AWS::Logs::LogGroup", "logs:DeleteRetentionPolicy"): _lacks("RetentionInDays"),
    ("AWS::Logs::LogGroup", "logs:TagResource"): _tags,
    ("AWS::Logs::LogGroup", "logs:UntagResource"): _tags,
    ("AWS::Logs::LogGroup", "logs:GetDataProtectionPolicy"): _LOG_DELIVERY,
    ("AWS::Logs::LogGroup", "logs:PutDataProtectionPolicy"): _LOG_DELIVERY,
    ("AWS::Logs::LogGroup", "logs:DeleteDataProtectionPolicy"): _LOG_DELIVERY,
    ("AWS::Logs::LogGroup", "logs:CreateLogDelivery"): _LOG_DELIVERY,
    ("AWS::Logs::LogGroup", "s3:REST.PUT.OBJECT"): _LOG_DELIVERY,
    ("AWS::Logs::LogGroup", "firehose:TagDeliveryStream"): _LOG_DELIVERY,
    ("AWS::Logs::LogGroup", "logs:PutResourcePolicy"): _has("ResourcePolicyDocument"),
    ("AWS::Logs::LogGroup", "logs:DescribeResourcePolicies"): _has("ResourcePolicyDocument"),
    ("AWS::Logs::LogGroup", "logs:DeleteResourcePolicy"): _has("ResourcePolicyDocument"),
    ("AWS::Logs::LogGroup", "logs:PutIndexPolicy"): _has("FieldIndexPolicies"),
    ("AWS::Logs::LogGroup", "logs:DescribeIndexPolicies"): _has("FieldIndexPolicies"),
    ("AWS::Logs::LogGroup", "logs:DeleteIndexPolicy"): _has("FieldIndexPolicies"),
    ("AWS::Logs::LogGroup", "logs:AssociateKmsKey"): _has("KmsKeyId"),
    ("AWS::Logs::LogGroup", "logs:DisassociateKmsKey"): _has("KmsKeyId"),
    ("AWS::Logs::LogGroup", "logs:PutBearerTokenAuthentication"): _has(
        "BearerTokenAuthenticationEnabled"
    ),
    ("AWS::Logs::LogGroup", "logs:PutLogGroupDeletionProtection"): _has(
        "DeletionProtectionEnabled"
    ),
}


# Types whose every property but Tags is create-only (the schema's createOnlyProperties):
# a change CloudFormation makes to one is a replacement, which the create handler does.
REPLACED_ON_UPDATE = {"AWS::ECS::TaskDefinition"}


# -- the resource each permission is authorized against ------------------------------------
@dataclass(frozen=True)
class Target:
    """The resource a handler works on, as far as its ARNs need it."""

    resource_type: str
    properties: Properties
    account_id: str
    region: str
    physical_id: str = ""  # the resource's name (or ARN) when known
    tagged: bool = False  # the resource gets tags (its own or the stack's)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"


def _cluster_name(value: Any) -> str:
    text = str(value or "default")
    return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text


def _service_arn(target: Target) -> str:
    name = str(target.properties.get("ServiceName") or target.physical_id)
    if name.startswith("arn:"):
        return name
    return target.arn("ecs", f"service/{_cluster_name(target.properties.get('Cluster'))}/{name}")


def _service_deployment_arn(target: Target) -> str:
    service = _service_arn(target)
    cluster_and_name = service.split(":service/", 1)[-1]
    return target.arn("ecs", f"service-deployment/{cluster_and_name}/{_deployment_id(target)}")


def _deployment_id(target: Target) -> str:
    """The service's current deployment (digits of ecs-svc/...), or a new one's stand-in."""
    with contextlib.suppress(Exception):
        from moto.ecs.models import ecs_backends

        backend = ecs_backends[target.account_id][target.region]
        arn = _service_arn(target)
        for service in backend.services.values():
            if service.arn == arn and service.deployments:
                return str(service.deployments[0]["id"]).rsplit("/", 1)[-1]
    return "0"


def _task_definition_arn(target: Target) -> str:
    if target.physical_id.startswith("arn:"):
        return target.physical_id
    family = str(target.properties.get("Family") or target.physical_id)
    revision = 1
    with contextlib.suppress(Exception):
        from moto.ecs.models import ecs_backends

        known = ecs_backends[target.account_id][target.region].task_definitions.get(family)
        revision = (max(known) + 1) if known else 1
    return target.arn("ecs", f"task-definition/{family}:{revision}")


def _log_group_arn(target: Target) -> str:
    name = str(target.properties.get("LogGroupName") or target.physical_id)
    return target.arn("logs", f"log-group:{name}")


def _role_arns(target: Target) -> list[tuple[str, str]]:
    """(role ARN, the service it is passed to) for each role in the properties."""
    props = target.properties
    if target.resource_type == "AWS::ECS::Service" and props.get("Role"):
        role = str(props["Role"])
        if not role.startswith("arn:"):
            role = f"arn:aws:iam::{target.account_id}:role/{role}"
        return [(role, "ecs.amazonaws.com")]
    if target.resource_type == "AWS::ECS::TaskDefinition":
        return [
            (str(props[name]), "ecs-tasks.amazonaws.com")
            for name in ("TaskRoleArn", "ExecutionRoleArn")
            if props.get(name)
        ]
    return []


# Actions of ECS services and task definitions without resource-level permissions.
_ECS_UNSCOPED = {
    "ecs:registertaskdefinition",
    "ecs:deregistertaskdefinition",
    "ecs:describetaskdefinition",
    "ecs:listtaskdefinitions",
    "ecs:listclusters",
}


def _permissions_for(target: Target, action: str) -> list[Permission]:
    service, _, name = action.partition(":")
    lowered = action.lower()
    if lowered == "iam:passrole":
        return [
            Permission(action, role, {"iam:PassedToService": to}) for role, to in _role_arns(target)
        ]
    if lowered == "iam:getrole":
        return [Permission(action, role) for role, _ in _role_arns(target)]
    if service == "ecs" and lowered not in _ECS_UNSCOPED:
        if target.resource_type == "AWS::ECS::Service":
            if name in ("DescribeServiceDeployments", "StopServiceDeployment"):
                return [Permission(action, _service_deployment_arn(target))]
            if name == "ListServices":
                return [Permission(action, "*")]
            return [Permission(action, _service_arn(target))]
        if target.resource_type == "AWS::ECS::TaskDefinition":
            return [Permission(action, _task_definition_arn(target))]
    if service == "logs" and target.resource_type == "AWS::Logs::LogGroup":
        if name == "DescribeLogGroups":
            # CloudFormation asks by name prefix: authorized against every log group
            return [Permission(action, target.arn("logs", "log-group:*"))]
        if name in ("DescribeResourcePolicies", "PutResourcePolicy", "DeleteResourcePolicy"):
            return [Permission(action, "*")]
        return [Permission(action, _log_group_arn(target))]
    return [Permission(action, "*")]


def required_permissions(target: Target, operation: Operation) -> list[Permission]:
    """Every permission (with its resource and context) a handler needs for `target`."""
    required: list[Permission] = []
    for action in handler_permissions(target.resource_type, operation):
        needed = CONDITIONAL.get((target.resource_type, action))
        if needed is not None and not needed(target.properties, target.tagged):
            continue
        required.extend(_permissions_for(target, action))
    return required


# -- AWS's failure ---------------------------------------------------------------------------
class HandlerAccessDenied(Exception):
    """A resource handler was denied one of its permissions: the resource fails."""

    def __init__(self, logical_id: str, resource_type: str, message: str) -> None:
        super().__init__(message)
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.status_reason = (
            f'Resource handler returned message: "{message}" '
            f"(RequestToken: {uuid.uuid4()}, HandlerErrorCode: AccessDenied)"
        )


def handler_message(denial_message: str, action: str) -> str:
    """AWS's AccessDenied as the handler's SDK reports it."""
    service = action.split(":", 1)[0].lower()
    sdk, status = _SDK_SERVICE.get(service, (service.capitalize(), 400))
    return f"{denial_message} (Service: {sdk}, Status Code: {status}, Request ID: {uuid.uuid4()})"


def stack_principal(role_arn: str | None, caller: str | None) -> str | None:
    """Who the handlers act as: the stack's role as CloudFormation assumes it, else the
    caller (None: the administrator)."""
    if role_arn:
        parts = role_arn.split(":", 5)
        if len(parts) == 6 and parts[5].startswith("role/"):
            name = parts[5].rsplit("/", 1)[-1]
            return f"arn:aws:sts::{parts[4]}:assumed-role/{name}/{CLOUDFORMATION_SESSION}"
        return role_arn
    return caller


def check(principal: str | None, logical_id: str, target: Target, operation: Operation) -> None:
    """Raise HandlerAccessDenied at the first permission `principal` lacks."""
    if principal is None:
        return
    current = _OPERATION.get()
    if current is not None and logical_id in current.denied:
        raise current.denied[logical_id]
    try:
        _check(principal, logical_id, target, operation)
    except HandlerAccessDenied as denied:
        if current is not None:
            current.denied[logical_id] = denied
        raise


def _check(principal: str, logical_id: str, target: Target, operation: Operation) -> None:
    for permission in required_permissions(target, operation):
        denial = authorize(principal, permission.action, permission.resource, permission.context)
        if denial is not None:
            raise HandlerAccessDenied(
                logical_id,
                target.resource_type,
                handler_message(denial.message, permission.action),
            )


# -- the hook into moto's CloudFormation ---------------------------------------------------
@dataclass(frozen=True)
class _StackOperation:
    role_arn: str | None  # the role given with this operation, if any
    caller: str | None
    # moto retries a failed resource update several times: one denial per resource
    denied: dict[str, HandlerAccessDenied] = field(default_factory=dict)


_OPERATION: contextvars.ContextVar[_StackOperation | None] = contextvars.ContextVar(
    "shiplane_local_stack_operation", default=None
)


@contextlib.contextmanager
def _operation(role_arn: str | None) -> Iterator[None]:
    token = _OPERATION.set(_StackOperation(role_arn, request_principal()))
    try:
        yield
    finally:
        _OPERATION.reset(token)


def _stack_of(resources_map: Any) -> Any:
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[resources_map._account_id][resources_map._region_name]
    return backend.stacks.get(resources_map.stack_id)


def _principal_for(resources_map: Any) -> str | None:
    operation = _OPERATION.get()
    if operation is None:  # not a stack operation someone asked for (e.g. a rollback)
        return None
    stack = _stack_of(resources_map)
    role = operation.role_arn or (getattr(stack, "role_arn", None) if stack else None)
    return stack_principal(role, operation.caller)


def _target(resource_json: Mapping[str, Any], resources_map: Any, physical_id: str = "") -> Target:
    from moto.cloudformation.parsing import clean_json

    properties: Any = {}
    with contextlib.suppress(Exception):
        properties = clean_json(dict(resource_json.get("Properties") or {}), resources_map)
    stack = _stack_of(resources_map)
    stack_tags = bool(getattr(stack, "tags", None)) if stack is not None else False
    return Target(
        resource_type=str(resource_json.get("Type")),
        properties=properties if isinstance(properties, dict) else {},
        account_id=resources_map._account_id,
        region=resources_map._region_name,
        physical_id=physical_id,
        tagged=stack_tags or bool((properties or {}).get("Tags")),
    )


def _physical_id(resource: Any) -> str:
    for attribute in ("physical_resource_id", "arn", "name"):
        with contextlib.suppress(Exception):
            value = getattr(resource, attribute)
            if isinstance(value, str) and value:
                return value
    return ""


def install(patches: Any, on_delete_failed: Callable[[Any], None] | None = None) -> None:
    """Authorize every resource handler of the stack operations moto performs.
    `on_delete_failed(stack)` is told of a deletion that ended DELETE_FAILED (to send its
    status events)."""
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend

    originals: dict[str, Any] = {}

    def create_resource(logical_id: str, resource_json: Any, resources_map: Any, *a: Any, **k: Any):
        principal = _principal_for(resources_map)
        condition = resource_json.get("Condition")
        if principal is not None and not (
            condition and not resources_map.lazy_condition_map[condition]
        ):
            check(principal, logical_id, _target(resource_json, resources_map), "create")
        return originals["create"](logical_id, resource_json, resources_map, *a, **k)

    def update_resource(logical_id: str, resource_json: Any, resources_map: Any, *a: Any, **k: Any):
        principal = _principal_for(resources_map)
        if principal is not None:
            current = resources_map._parsed_resources.get(logical_id)
            target = _target(resource_json, resources_map, _physical_id(current))
            # a change of a create-only property replaces the resource: the create handler
            # makes the new one
            operation = "create" if target.resource_type in REPLACED_ON_UPDATE else "update"
            if operation == "create":
                target = _target(resource_json, resources_map)
            check(principal, logical_id, target, operation)
        return originals["update"](logical_id, resource_json, resources_map, *a, **k)

    def delete_resource(resources_map: Any, parsed_resource: Any, resource_json: Any) -> None:
        principal = _principal_for(resources_map)
        if principal is not None:
            logical_id = str(getattr(parsed_resource, "logical_resource_id", "") or "")
            target = _target(resource_json, resources_map, _physical_id(parsed_resource))
            check(principal, logical_id, target, "delete")
        return originals["delete"](resources_map, parsed_resource, resource_json)

    originals["create"] = patches.replace(parsing, "parse_and_create_resource", create_resource)
    originals["update"] = patches.replace(parsing, "parse_and_update_resource", update_resource)
    originals["delete"] = patches.replace(parsing.ResourceMap, "_delete_resource", delete_resource)

    def stack_operation(name: str, role_of_call: Callable[..., str | None]) -> None:
        original = getattr(CloudFormationBackend, name)

        def operation(backend: Any, *args: Any, **kwargs: Any) -> Any:
            role_arn = role_of_call(backend, *args, **kwargs)
            stack = None
            if name == "update_stack":
                with contextlib.suppress(Exception):
                    stack = backend.get_stack(kwargs.get("name") or args[0])
            previous_role = getattr(stack, "role_arn", None)
            with _operation(role_arn):
                result = original(backend, *args, **kwargs)
            if stack is not None and not role_arn and previous_role:
                # AWS keeps the stack's role when an update names none (moto forgets it)
                stack.role_arn = previous_role
            return result

        patches.replace(CloudFormationBackend, name, operation)

    def given(index: int) -> Callable[..., str | None]:
        def role(backend: Any, *args: Any, **kwargs: Any) -> str | None:
            if "role_arn" in kwargs:
                return kwargs["role_arn"] or None
            return args[index] if len(args) > index else None

        return role

    def change_set_role(backend: Any, change_set_name: str, *a: Any, **k: Any) -> str | None:
        for change_set in backend.change_sets.values():
            if change_set_name in (change_set.change_set_id, change_set.change_set_name):
                return getattr(change_set, "role_arn", None) or None
        return None

    stack_operation("create_stack", given(5))
    stack_operation("update_stack", given(2))
    stack_operation("execute_change_set", change_set_role)

    original_delete = CloudFormationBackend.delete_stack

    def delete_stack(backend: Any, name_or_stack_id: str) -> None:
        for stack in list(backend.stacks.values()):
            if name_or_stack_id in (stack.stack_id, stack.name):
                principal = stack_principal(stack.role_arn, request_principal())
                try:
                    _check_deletion(principal, stack)
                except HandlerAccessDenied as denied:
                    _delete_failed(stack, denied)
                    if on_delete_failed is not None:
                        on_delete_failed(stack)
                    return None
        return original_delete(backend, name_or_stack_id)

    patches.replace(CloudFormationBackend, "delete_stack", delete_stack)


def _check_deletion(principal: str | None, stack: Any) -> None:
    """Every resource the stack still has, before moto deletes any (moto cannot stop
    halfway through a deletion)."""
    if principal is None:
        return
    resource_map = stack.resource_map
    for logical_id, resource_json in (resource_map._resource_json_map or {}).items():
        if resource_json.get("DeletionPolicy") == "Retain":
            continue
        resource = resource_map._parsed_resources.get(logical_id)
        if resource is None or isinstance(resource, str):
            continue
        target = _target(resource_json, resource_map, _physical_id(resource))
        check(principal, logical_id, target, "delete")


def _delete_failed(stack: Any, denied: HandlerAccessDenied) -> None:
    from moto.cloudformation.models import Event

    stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=denied.logical_id,
            physical_resource_id="",
            resource_type=denied.resource_type,
            resource_status="DELETE_FAILED",
            resource_status_reason=denied.status_reason,
            resource_properties=None,
        )
    )
    reason = f"The following resource(s) failed to delete: [{denied.logical_id}]. "
    stack.status = "DELETE_FAILED"
    stack.status_reason = reason
    stack._add_stack_event("DELETE_FAILED", resource_status_reason=reason)


def rollback_denial(
    stack: Any, operation: str, unchanged: set[str] | frozenset[str] = frozenset()
) -> HandlerAccessDenied | None:
    """What stops the rollback of a failed `operation` (CREATE or UPDATE), None when the
    stack's role may make it. A create's rollback deletes every resource the stack has; an
    update's rollback updates its services back. CloudFormation acts as the stack's role;
    a stack without one is not checked (its caller is not known after the call). The
    resources in `unchanged` (their own change failed) have nothing to undo."""
    principal = stack_principal(getattr(stack, "role_arn", None), None)
    if principal is None:
        return None
    resource_map = stack.resource_map
    try:
        if operation == "CREATE":
            _check_deletion(principal, stack)
            return None
        for logical_id, resource_json in (resource_map._resource_json_map or {}).items():
            if resource_json.get("Type") != "AWS::ECS::Service" or logical_id in unchanged:
                continue
            resource = resource_map._parsed_resources.get(logical_id)
            physical = (
                "" if resource is None or isinstance(resource, str) else _physical_id(resource)
            )
            check(principal, logical_id, _target(resource_json, resource_map, physical), "update")
    except HandlerAccessDenied as denied:
        return denied
    return None


def delete_created_resources(stack: Any) -> None:
    """The rollback of a failed create: what the stack did create is deleted again (as
    CloudFormation, by the stack's role: `rollback_denial` was asked first)."""
    from moto.cloudformation.models import Event

    resource_map = stack.resource_map
    for logical_id, resource in list(resource_map._parsed_resources.items()):
        resource_json = (resource_map._resource_json_map or {}).get(logical_id)
        if resource is None or isinstance(resource, str) or resource_json is None:
            continue
        for status in ("DELETE_IN_PROGRESS", "DELETE_COMPLETE"):
            if status == "DELETE_COMPLETE":
                # already gone, e.g. a service the rollout removed: nothing to delete
                with contextlib.suppress(Exception):
                    resource_map._delete_resource(resource, resource_json)
                resource_map._parsed_resources.pop(logical_id, None)
            stack.events.append(
                Event(
                    stack_id=stack.stack_id,
                    stack_name=stack.name,
                    logical_resource_id=logical_id,
                    physical_resource_id=_physical_id(resource),
                    resource_type=str(resource_json.get("Type")),
                    resource_status=status,
                    resource_status_reason=None,
                    resource_properties=None,
                )
            )
