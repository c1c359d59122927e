"""IAM on the local cloud, as AWS enforces it: each function's calls are signed and
authorized as its own execution role; target roles come from the bootstrap template.

The fixture (tests/fixtures/iam_cloud) runs one handler that makes the AWS call its event
names under two roles: Reader (dynamodb:GetItem) and Deployer (GetItem, PutItem, and
sts:AssumeRole on the deploy role).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shiplane_local import LocalCloud
from shiplane_local.iam import USAGE
from shiplane_local.iam.middleware import ENFORCEMENT
from shiplane_local.targets import bootstrap_target_account

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "iam_cloud"
ACCOUNT = "123456789012"
EXTERNAL_ID = "iam-test-external-id"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shiplane-deploy"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(FIXTURE, rollout_delay=0.05, scheduler_interval=None, iam=True) as local:
        bootstrap_target_account(local, ACCOUNT, local.region, "shiplane-deploy", {EXTERNAL_ID})
        yield local


def call(cloud: LocalCloud, function: str, service: str, operation: str, **params: Any) -> Any:
    lam = cloud.client("lambda")
    response = lam.invoke(
        FunctionName=cloud.outputs[f"{function}FunctionName"],
        Payload=json.dumps({"service": service, "operation": operation, "params": params}),
    )
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read())


def role_name(cloud: LocalCloud, function: str) -> str:
    config = cloud.client("lambda").get_function_configuration(
        FunctionName=cloud.outputs[f"{function}FunctionName"]
    )
    return str(config["Role"]).rsplit("/", 1)[-1]


def table_arn(cloud: LocalCloud) -> str:
    return f"arn:aws:dynamodb:{cloud.region}:{ACCOUNT}:table/{cloud.outputs['TableName']}"


def test_each_function_is_signed_as_its_own_role(cloud: LocalCloud) -> None:
    reader = call(cloud, "Reader", "sts", "get_caller_identity")["response"]["Arn"]
    deployer = call(cloud, "Deployer", "sts", "get_caller_identity")["response"]["Arn"]
    assert reader.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name(cloud, 'Reader')}/")
    assert deployer.startswith(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name(cloud, 'Deployer')}/"
    )
    # the test's own calls remain the account's administrator's
    admin = cloud.client("sts").get_caller_identity()["Arn"]
    assert "assumed-role" not in admin


def test_a_call_the_role_allows_succeeds_and_is_counted(cloud: LocalCloud) -> None:
    key = {"pk": {"S": "x"}}
    written = call(
        cloud, "Deployer", "dynamodb", "put_item", TableName=cloud.outputs["TableName"], Item=key
    )
    assert "error" not in written
    read = call(
        cloud, "Reader", "dynamodb", "get_item", TableName=cloud.outputs["TableName"], Key=key
    )
    assert read["response"]["Item"] == key
    role = f"arn:aws:iam::{ACCOUNT}:role/{role_name(cloud, 'Reader')}"
    assert USAGE.allowed[(role, "dynamodb:GetItem")] >= 1


def test_a_call_the_role_lacks_is_denied_exactly_as_aws_denies_it(cloud: LocalCloud) -> None:
    result = call(
        cloud,
        "Reader",
        "dynamodb",
        "put_item",
        TableName=cloud.outputs["TableName"],
        Item={"pk": {"S": "y"}},
    )
    assert result["status"] == 400
    assert result["error"]["Code"] == "AccessDeniedException"
    message = result["error"]["Message"]
    assert message.startswith(
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role_name(cloud, 'Reader')}/"
    )
    assert message.endswith(
        f"is not authorized to perform: dynamodb:PutItem on resource: {table_arn(cloud)} "
        "because no identity-based policy allows the dynamodb:PutItem action"
    )
    # nothing was written
    assert "Item" not in cloud.client("dynamodb").get_item(
        TableName=cloud.outputs["TableName"], Key={"pk": {"S": "y"}}
    )


def test_a_rest_json_denial_is_the_services_403(cloud: LocalCloud) -> None:
    target = cloud.outputs["DeployerFunctionName"]
    result = call(cloud, "Reader", "lambda", "invoke", FunctionName=target, Payload="{}")
    assert result["status"] == 403
    assert result["error"]["Code"] == "AccessDeniedException"
    assert result["error"]["Message"].endswith(
        "is not authorized to perform: lambda:InvokeFunction on resource: "
        f"arn:aws:lambda:{cloud.region}:{ACCOUNT}:function:{target} because no "
        "identity-based policy allows the lambda:InvokeFunction action"
    )


def test_an_operation_the_local_cloud_cannot_map_is_denied_loudly(cloud: LocalCloud) -> None:
    result = call(cloud, "Deployer", "dynamodb", "list_tables")
    assert result["error"]["Code"] == "AccessDeniedException"
    assert "dynamodb:ListTables" in result["error"]["Message"]
    assert "denied rather than allowed unevaluated" in result["error"]["Message"]


def test_assume_role_needs_the_external_id(cloud: LocalCloud) -> None:
    without = call(
        cloud, "Deployer", "sts", "assume_role", RoleArn=DEPLOY_ROLE, RoleSessionName="iam-test"
    )
    assert without["status"] == 403
    assert without["error"]["Code"] == "AccessDenied"
    assert without["error"]["Message"].endswith(
        f"is not authorized to perform: sts:AssumeRole on resource: {DEPLOY_ROLE}"
    )
    wrong = call(
        cloud,
        "Deployer",
        "sts",
        "assume_role",
        RoleArn=DEPLOY_ROLE,
        RoleSessionName="iam-test",
        ExternalId="not-the-id",
    )
    assert wrong["error"]["Code"] == "AccessDenied"
    right = call(
        cloud,
        "Deployer",
        "sts",
        "assume_role",
        RoleArn=DEPLOY_ROLE,
        RoleSessionName="iam-test",
        ExternalId=EXTERNAL_ID,
    )
    assert right["response"]["AssumedRoleUser"]["Arn"].startswith(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/shiplane-deploy/"
    )


def test_a_new_targets_external_id_widens_the_bootstrap_trust(cloud: LocalCloud) -> None:
    # a second target of the same account with its own external ID: the stack is updated
    bootstrap_target_account(
        cloud, ACCOUNT, cloud.region, "shiplane-deploy", {"second-target-external-id"}
    )
    for external_id in (EXTERNAL_ID, "second-target-external-id"):
        result = call(
            cloud,
            "Deployer",
            "sts",
            "assume_role",
            RoleArn=DEPLOY_ROLE,
            RoleSessionName="iam-test",
            ExternalId=external_id,
        )
        assert "response" in result, result


def test_assume_role_is_refused_to_a_role_its_identity_policy_does_not_allow(
    cloud: LocalCloud,
) -> None:
    # the Reader role matches the trust (shiplane-*), but its own policy grants no AssumeRole
    result = call(
        cloud,
        "Reader",
        "sts",
        "assume_role",
        RoleArn=DEPLOY_ROLE,
        RoleSessionName="iam-test",
        ExternalId=EXTERNAL_ID,
    )
    assert result["error"]["Code"] == "AccessDenied"
    assert (
        "because no identity-based policy allows the sts:AssumeRole action"
        in (result["error"]["Message"])
    )


def test_assume_role_is_refused_to_a_role_outside_the_shiplane_stack(cloud: LocalCloud) -> None:
    # A deploy role bootstrapped for a Shiplane stack named "other": the trust accepts
    # only arn:aws:iam::ACCOUNT:role/other-*, and this stack's roles are shiplane-*.
    bootstrap_target_account(
        cloud,
        ACCOUNT,
        cloud.region,
        "other-deploy",
        {EXTERNAL_ID},
        shiplane_stack_name="other",
    )
    iam = cloud.client("iam")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": f"arn:aws:iam::{ACCOUNT}:role/other-deploy",
            }
        ],
    }
    iam.put_role_policy(
        RoleName=role_name(cloud, "Deployer"),
        PolicyName="assume-other",
        PolicyDocument=json.dumps(policy),
    )
    result = call(
        cloud,
        "Deployer",
        "sts",
        "assume_role",
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/other-deploy",
        RoleSessionName="iam-test",
        ExternalId=EXTERNAL_ID,
    )
    assert result["error"]["Code"] == "AccessDenied"
    assert result["error"]["Message"].endswith(
        f"sts:AssumeRole on resource: arn:aws:iam::{ACCOUNT}:role/other-deploy"
    )


def _deploy_role_ecs(cloud: LocalCloud) -> Any:
    result = call(
        cloud,
        "Deployer",
        "sts",
        "assume_role",
        RoleArn=DEPLOY_ROLE,
        RoleSessionName="pass-role",
        ExternalId=EXTERNAL_ID,
    )
    credentials = result["response"]["Credentials"]
    return boto3.client(
        "ecs",
        endpoint_url=cloud.endpoint_url,
        region_name=cloud.region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def _task_definition(task_role: str) -> dict[str, Any]:
    return {
        "family": f"iam-{uuid.uuid4().hex[:8]}",
        "taskRoleArn": task_role,
        "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 128}],
    }


def test_the_deploy_role_passes_only_shiplane_task_roles_to_ecs(cloud: LocalCloud) -> None:
    ecs = _deploy_role_ecs(cloud)
    allowed = ecs.register_task_definition(
        **_task_definition(f"arn:aws:iam::{ACCOUNT}:role/shiplane-task-web")
    )
    assert allowed["taskDefinition"]["revision"] == 1
    outside = f"arn:aws:iam::{ACCOUNT}:role/admin"
    with pytest.raises(ClientError) as denied:
        ecs.register_task_definition(**_task_definition(outside))
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/shiplane-deploy/pass-role is not "
        f"authorized to perform: iam:PassRole on resource: {outside} because no "
        "identity-based policy allows the iam:PassRole action"
    )


def test_target_calls_are_authorized_against_the_bootstrap_policies(cloud: LocalCloud) -> None:
    cloud.client("ecs").create_cluster(clusterName="iam-test")  # as the administrator
    ecs = _deploy_role_ecs(cloud)
    # a diagnosis lists stopped tasks by cluster and family: authorized against "*"
    listed = ecs.list_tasks(cluster="iam-test", family="web", desiredStatus="STOPPED")
    assert listed["taskArns"] == []
    with pytest.raises(ClientError) as denied:
        ecs.create_cluster(clusterName="not-shiplanes")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert denied.value.response["Error"]["Message"].endswith(
        "is not authorized to perform: ecs:CreateCluster on resource: "
        f"arn:aws:ecs:{cloud.region}:{ACCOUNT}:cluster/not-shiplanes because no "
        "identity-based policy allows the ecs:CreateCluster action"
    )


def test_step_functions_invokes_as_the_state_machine_role(cloud: LocalCloud) -> None:
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=cloud.outputs["StateMachineArn"],
        name=f"iam-{uuid.uuid4().hex[:8]}",
        input=json.dumps({"service": "sts", "operation": "get_caller_identity"}),
    )["executionArn"]
    deadline = time.monotonic() + 20
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status == "SUCCEEDED"
    machine_role = sfn.describe_state_machine(stateMachineArn=cloud.outputs["StateMachineArn"])[
        "roleArn"
    ]
    assert USAGE.allowed[(machine_role, "lambda:InvokeFunction")] == 1
    # and the function it invoked ran as its own role, not the machine's
    output = json.loads(sfn.describe_execution(executionArn=arn)["output"])
    caller = output["Payload"]["response"]["Arn"]
    assert f":assumed-role/{role_name(cloud, 'Reader')}/" in caller


def test_iam_can_be_switched_off_for_diagnosis(cloud: LocalCloud) -> None:
    ENFORCEMENT.enabled = False
    try:
        result = call(
            cloud,
            "Reader",
            "dynamodb",
            "put_item",
            TableName=cloud.outputs["TableName"],
            Item={"pk": {"S": "off"}},
        )
        assert "error" not in result
    finally:
        ENFORCEMENT.enabled = True


def test_a_schedule_starts_its_target_only_if_its_role_may(cloud: LocalCloud) -> None:
    from datetime import UTC, datetime

    scheduler = cloud.client("scheduler")
    scheduler.create_schedule_group(Name="iam-test")
    reader_role = f"arn:aws:iam::{ACCOUNT}:role/{role_name(cloud, 'Reader')}"
    scheduler.create_schedule(
        Name="start-without-permission",
        GroupName="iam-test",
        ScheduleExpression="at(2020-01-01T00:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": cloud.outputs["StateMachineArn"], "RoleArn": reader_role, "Input": "{}"},
    )
    started = cloud.scheduler.tick(datetime.now(UTC))
    assert started == ["start-without-permission: failed"]
    assert any(
        "AccessDenied" in e
        and f"is not authorized to perform: states:StartExecution on resource: "
        f"{cloud.outputs['StateMachineArn']}"
        in e
        for e in cloud.activity.errors
    )
    executions = cloud.client("stepfunctions").list_executions(
        stateMachineArn=cloud.outputs["StateMachineArn"]
    )["executions"]
    assert not any(e["name"] == "start-without-permission" for e in executions)


def _deliver_to(cloud: LocalCloud, rule: str, target: dict[str, Any]) -> list[str]:
    events = cloud.client("events")
    rule_arn = events.put_rule(
        Name=rule, EventPattern=json.dumps({"source": [f"iam.test.{rule}"]})
    )["RuleArn"]
    events.put_targets(Rule=rule, Targets=[{"Id": "t", **target}])
    before = len(cloud.activity.errors)
    cloud.emit_event(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "test",
            "source": f"iam.test.{rule}",
            "account": ACCOUNT,
            "time": "2026-12-07T00:00:00Z",
            "region": cloud.region,
            "resources": [],
            "detail": {"service": "sts", "operation": "get_caller_identity"},
        }
    )
    cloud.wait_idle()
    assert rule_arn.endswith(f":rule/{rule}")
    return cloud.activity.errors[before:]


def test_eventbridge_invokes_a_function_only_under_its_resource_policy(cloud: LocalCloud) -> None:
    function = cloud.outputs["DeployerFunctionName"]
    arn = f"arn:aws:lambda:{cloud.region}:{ACCOUNT}:function:{function}"
    errors = _deliver_to(cloud, "no-permission", {"Arn": arn})
    assert any(
        "AccessDenied" in e and "does not allow events.amazonaws.com" in e for e in errors
    ), errors
    cloud.client("lambda").add_permission(
        FunctionName=function,
        StatementId="from-the-rule",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=f"arn:aws:events:{cloud.region}:{ACCOUNT}:rule/with-permission",
    )
    assert _deliver_to(cloud, "with-permission", {"Arn": arn, "InputPath": "$.detail"}) == []


def test_eventbridge_starts_a_state_machine_only_with_a_role_that_may(cloud: LocalCloud) -> None:
    reader_role = f"arn:aws:iam::{ACCOUNT}:role/{role_name(cloud, 'Reader')}"
    machine = cloud.outputs["StateMachineArn"]
    errors = _deliver_to(cloud, "weak-role", {"Arn": machine, "RoleArn": reader_role})
    assert any(
        f"is not authorized to perform: states:StartExecution on resource: {machine}" in e
        for e in errors
    ), errors
