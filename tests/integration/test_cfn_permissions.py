"""Stack operations on the local cloud run as the stack's role (or its caller) and need the
handler permissions of each resource type, as in AWS (moto in-process)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shiplane_local.iam import USAGE
from shiplane_local.iam.principal import acting_as
from shiplane_local.rollouts import CRASH_ANNOTATION, RolloutSimulator

REGION = "us-east-1"
ACCOUNT = "123456789012"
CLUSTER = "shiplane-dev"
STACK = "shiplane-web-web-dev-untenanted"
SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/web"

TEMPLATE = {
    "Parameters": {"TaskDefinitionArn": {"Type": "String"}},
    "Resources": {
        "LogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": "/shiplane/web/dev", "RetentionInDays": 30},
        },
        "Service": {
            "Type": "AWS::ECS::Service",
            "DependsOn": ["LogGroup"],
            "Properties": {
                "Cluster": CLUSTER,
                "ServiceName": "web",
                "TaskDefinition": {"Ref": "TaskDefinitionArn"},
                "DesiredCount": 1,
                "LaunchType": "FARGATE",
            },
        },
    },
}

# What the two handlers use for this template (schemas: AWS::Logs::LogGroup create,
# AWS::ECS::Service create/update), scoped to its resources.
FULL_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ecs:CreateService",
                "ecs:UpdateService",
                "ecs:DeleteService",
                "ecs:DescribeServices",
                "ecs:ListServiceDeployments",
                "ecs:ListTagsForResource",
                "ecs:TagResource",
                "ecs:UntagResource",
            ],
            "Resource": f"arn:aws:ecs:*:{ACCOUNT}:service/*/*",
        },
        {
            "Effect": "Allow",
            "Action": "ecs:DescribeServiceDeployments",
            "Resource": f"arn:aws:ecs:*:{ACCOUNT}:service-deployment/*",
        },
        {"Effect": "Allow", "Action": "logs:*", "Resource": "*"},
    ],
}


def _without(action: str) -> dict[str, Any]:
    policy = json.loads(json.dumps(FULL_POLICY))
    for statement in policy["Statement"]:
        if isinstance(statement["Action"], list) and action in statement["Action"]:
            statement["Action"].remove(action)
    return policy


@pytest.fixture
def cloud() -> Iterator[dict[str, Any]]:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    events: list[dict[str, Any]] = []
    with mock_aws():
        sim = RolloutSimulator(events.append, delay_seconds=0.05, region=REGION)
        sim.install()
        try:
            ecs = boto3.client("ecs", region_name=REGION)
            ecs.create_cluster(clusterName=CLUSTER)
            task_definition = ecs.register_task_definition(
                family="web",
                containerDefinitions=[
                    {"name": "app", "image": "nginx", "essential": True, "memory": 512}
                ],
            )["taskDefinition"]["taskDefinitionArn"]
            yield {
                "sim": sim,
                "events": events,
                "ecs": ecs,
                "iam": boto3.client("iam", region_name=REGION),
                "cfn": boto3.client("cloudformation", region_name=REGION),
                "logs": boto3.client("logs", region_name=REGION),
                "task_definition": task_definition,
            }
        finally:
            sim.uninstall()


def make_role(cloud: dict[str, Any], name: str, policy: dict[str, Any]) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "cloudformation.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = cloud["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    cloud["iam"].put_role_policy(
        RoleName=name, PolicyName="stack", PolicyDocument=json.dumps(policy)
    )
    return str(arn)


def create(cloud: dict[str, Any], role_arn: str | None = None) -> None:
    args: dict[str, Any] = {
        "StackName": STACK,
        "TemplateBody": json.dumps(TEMPLATE),
        "Parameters": [
            {"ParameterKey": "TaskDefinitionArn", "ParameterValue": cloud["task_definition"]}
        ],
        "Tags": [{"Key": "shiplane:project", "Value": "web"}],
    }
    if role_arn:
        args["RoleARN"] = role_arn
    cloud["cfn"].create_stack(**args)
    cloud["sim"].settle(timeout=30)


def status(cloud: dict[str, Any]) -> str:
    return str(cloud["cfn"].describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"])


def stack_statuses(cloud: dict[str, Any]) -> list[str]:
    return [
        e["detail"]["status-details"]["status"]
        for e in cloud["events"]
        if e["source"] == "aws.cloudformation"
    ]


def failures(cloud: dict[str, Any]) -> list[dict[str, Any]]:
    events = cloud["cfn"].describe_stack_events(StackName=STACK)["StackEvents"]
    return [
        e
        for e in events
        if e["ResourceStatus"].endswith("_FAILED") and e["LogicalResourceId"] != STACK
    ]


def services(cloud: dict[str, Any]) -> list[dict[str, Any]]:
    found = cloud["ecs"].describe_services(cluster=CLUSTER, services=["web"])["services"]
    return [s for s in found if s["status"] == "ACTIVE"]


def log_groups(cloud: dict[str, Any]) -> list[str]:
    return [g["logGroupName"] for g in cloud["logs"].describe_log_groups()["logGroups"]]


DENIED = re.compile(
    r'^Resource handler returned message: "User: (?P<user>\S+) is not authorized to perform: '
    r"(?P<action>\S+) on resource: (?P<resource>\S+) because no identity-based policy allows "
    r"the (?P=action) action \(Service: (?P<service>\w+), Status Code: 400, Request ID: "
    r'[0-9a-f-]{36}\)" \(RequestToken: [0-9a-f-]{36}, HandlerErrorCode: AccessDenied\)$'
)


def test_a_role_without_create_service_fails_the_create_and_rolls_back(
    cloud: dict[str, Any],
) -> None:
    role = make_role(cloud, "shiplane-deploy-cfn-exec", _without("ecs:CreateService"))

    create(cloud, role)

    assert status(cloud) == "ROLLBACK_COMPLETE"
    assert stack_statuses(cloud) == [
        "CREATE_IN_PROGRESS",
        "ROLLBACK_IN_PROGRESS",
        "ROLLBACK_COMPLETE",
    ]
    rollback = next(
        e
        for e in cloud["events"]
        if e["source"] == "aws.cloudformation"
        and e["detail"]["status-details"]["status"] == "ROLLBACK_IN_PROGRESS"
    )
    assert "[Service]" in rollback["detail"]["status-details"]["status-reason"]
    (failed,) = failures(cloud)
    assert failed["LogicalResourceId"] == "Service"
    assert failed["ResourceType"] == "AWS::ECS::Service"
    assert failed["ResourceStatus"] == "CREATE_FAILED"
    match = DENIED.match(failed["ResourceStatusReason"])
    assert match, failed["ResourceStatusReason"]
    assert match["user"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/shiplane-deploy-cfn-exec/AWSCloudFormation"
    )
    assert match["action"] == "ecs:CreateService"
    assert match["resource"] == SERVICE_ARN
    assert match["service"] == "Ecs"
    # nothing is left behind: the service was never created, the log group is deleted again
    assert services(cloud) == []
    assert log_groups(cloud) == []


def test_a_role_with_the_handler_permissions_creates_the_stack(cloud: dict[str, Any]) -> None:
    role = make_role(cloud, "shiplane-deploy-cfn-exec", FULL_POLICY)

    create(cloud, role)

    assert status(cloud) == "CREATE_COMPLETE"
    assert [s["serviceArn"] for s in services(cloud)] == [SERVICE_ARN]
    assert log_groups(cloud) == ["/shiplane/web/dev"]


def test_tags_need_tag_resource_and_the_log_group_its_own_permissions(
    cloud: dict[str, Any],
) -> None:
    # the stack's tags reach every resource: the log group handler needs logs:TagResource
    policy = json.loads(json.dumps(FULL_POLICY))
    policy["Statement"][-1] = {
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:DescribeLogGroups", "logs:PutRetentionPolicy"],
        "Resource": "*",
    }
    create(cloud, make_role(cloud, "shiplane-deploy-cfn-exec", policy))

    assert status(cloud) == "ROLLBACK_COMPLETE"
    (failed,) = failures(cloud)
    match = DENIED.match(failed["ResourceStatusReason"])
    assert match and failed["LogicalResourceId"] == "LogGroup"
    assert match["action"] == "logs:TagResource"
    assert match["resource"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/shiplane/web/dev"
    assert match["service"] == "CloudWatchLogs"


def test_a_stack_without_a_role_runs_as_its_caller(cloud: dict[str, Any]) -> None:
    caller_role = make_role(
        cloud,
        "shiplane-deploy",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "ecs:DescribeClusters", "Resource": "*"}],
        },
    )
    caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/shiplane-deploy/shiplane-deploy-stack"
    assert caller_role.endswith(":role/shiplane-deploy")

    with acting_as(caller):
        create(cloud)

    assert status(cloud) == "ROLLBACK_COMPLETE"
    (failed,) = failures(cloud)
    match = DENIED.match(failed["ResourceStatusReason"])
    assert match and match["user"] == caller
    assert match["action"] == "logs:DescribeLogGroups"  # the first resource's first permission


def test_a_stack_without_a_role_and_no_caller_runs_as_the_administrator(
    cloud: dict[str, Any],
) -> None:
    create(cloud)

    assert status(cloud) == "CREATE_COMPLETE"


def test_an_update_the_role_may_not_make_rolls_back(cloud: dict[str, Any]) -> None:
    role = make_role(cloud, "shiplane-deploy-cfn-exec", _without("ecs:UpdateService"))
    create(cloud, role)
    assert status(cloud) == "CREATE_COMPLETE"
    second = cloud["ecs"].register_task_definition(
        family="web",
        containerDefinitions=[
            {"name": "app", "image": "nginx:2", "essential": True, "memory": 512}
        ],
    )["taskDefinition"]["taskDefinitionArn"]

    USAGE.reset()
    # no RoleARN: the stack keeps its role, as in AWS
    cloud["cfn"].update_stack(
        StackName=STACK,
        TemplateBody=json.dumps(TEMPLATE),
        Parameters=[{"ParameterKey": "TaskDefinitionArn", "ParameterValue": second}],
        Tags=[{"Key": "shiplane:project", "Value": "web"}],
    )
    cloud["sim"].settle(timeout=30)

    assert status(cloud) == "UPDATE_ROLLBACK_COMPLETE"
    assert stack_statuses(cloud)[-2:] == ["UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE"]
    failed = failures(cloud)[0]
    assert failed["ResourceStatus"] == "UPDATE_FAILED"
    match = DENIED.match(failed["ResourceStatusReason"])
    assert match and match["action"] == "ecs:UpdateService"
    # one denial, however often moto retries the resource
    denied = [n for (_, action, _), n in USAGE.denied.items() if action == "ecs:UpdateService"]
    assert denied == [1]
    assert services(cloud)[0]["taskDefinition"] == cloud["task_definition"]
    described = cloud["cfn"].describe_stacks(StackName=STACK)["Stacks"][0]
    assert described["RoleARN"] == role


def test_a_delete_the_role_may_not_make_fails(cloud: dict[str, Any]) -> None:
    role = make_role(cloud, "shiplane-deploy-cfn-exec", _without("ecs:DeleteService"))
    create(cloud, role)

    created = len(stack_statuses(cloud))
    cloud["cfn"].delete_stack(StackName=STACK)
    cloud["sim"].settle(timeout=30)

    assert status(cloud) == "DELETE_FAILED"
    # and EventBridge hears it so: no DELETE_COMPLETE for a stack that is still there
    assert stack_statuses(cloud)[created:] == ["DELETE_IN_PROGRESS", "DELETE_FAILED"]
    [event] = [e for e in cloud["events"][created:] if "DELETE_FAILED" in json.dumps(e)]
    assert "[Service]" in event["detail"]["status-details"]["status-reason"]
    (failed,) = failures(cloud)
    assert failed["LogicalResourceId"] == "Service"
    match = DENIED.match(failed["ResourceStatusReason"])
    assert match and match["action"] == "ecs:DeleteService"
    assert len(services(cloud)) == 1


def test_a_change_set_runs_as_its_role(cloud: dict[str, Any]) -> None:
    role = make_role(cloud, "shiplane-deploy-cfn-exec", _without("ecs:CreateService"))
    cloud["cfn"].create_change_set(
        StackName=STACK,
        ChangeSetName="first",
        ChangeSetType="CREATE",
        TemplateBody=json.dumps(TEMPLATE),
        Parameters=[
            {"ParameterKey": "TaskDefinitionArn", "ParameterValue": cloud["task_definition"]}
        ],
        RoleARN=role,
    )

    cloud["cfn"].execute_change_set(ChangeSetName="first", StackName=STACK)
    cloud["sim"].settle(timeout=30)

    assert status(cloud) == "ROLLBACK_COMPLETE"
    (failed,) = failures(cloud)
    match = DENIED.match(failed["ResourceStatusReason"])
    assert match and match["action"] == "ecs:CreateService"
    assert services(cloud) == []


def test_a_new_task_definition_revision_is_a_replacement_made_by_the_create_handler(
    cloud: dict[str, Any],
) -> None:
    template = {
        "Parameters": {"Image": {"Type": "String"}},
        "Resources": {
            "TaskDefinition": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "Family": "web-dev",
                    "ContainerDefinitions": [
                        {"Name": "app", "Image": {"Ref": "Image"}, "Memory": 512}
                    ],
                },
            }
        },
    }
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "ecs:RegisterTaskDefinition",
                    "ecs:DescribeTaskDefinition",
                    "ecs:DeregisterTaskDefinition",
                    "ecs:TagResource",
                    "ecs:UntagResource",
                    "ecs:ListTagsForResource",
                ],
                "Resource": "*",
            }
        ],
    }
    role = make_role(cloud, "shiplane-deploy-cfn-exec", policy)

    def apply(operation: str, image: str) -> None:
        getattr(cloud["cfn"], operation)(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": "Image", "ParameterValue": image}],
            RoleARN=role,
        )
        cloud["sim"].settle(timeout=30)

    apply("create_stack", "app:1")
    assert status(cloud) == "CREATE_COMPLETE"
    policy["Statement"][0]["Action"].remove("ecs:RegisterTaskDefinition")
    cloud["iam"].put_role_policy(
        RoleName="shiplane-deploy-cfn-exec", PolicyName="stack", PolicyDocument=json.dumps(policy)
    )

    apply("update_stack", "app:2")

    assert status(cloud) == "UPDATE_ROLLBACK_COMPLETE"
    match = DENIED.match(failures(cloud)[0]["ResourceStatusReason"])
    assert match and match["action"] == "ecs:RegisterTaskDefinition"
    families = cloud["ecs"].list_task_definitions(familyPrefix="web-dev")["taskDefinitionArns"]
    assert [arn.rsplit(":", 1)[-1] for arn in families] == ["1"]


# ------------------------------------------------------------------ rollbacks run as the role
# CloudFormation rolls a failed operation back as the stack's role too; a rollback the role
# may not make fails (AWS: ROLLBACK_FAILED, UPDATE_ROLLBACK_FAILED) and says which resource.


def _denying(policy: dict[str, Any], action: str) -> dict[str, Any]:
    denied = json.loads(json.dumps(policy))
    denied["Statement"].append({"Effect": "Deny", "Action": action, "Resource": "*"})
    return denied


def test_a_create_rollback_the_role_may_not_make_ends_rollback_failed(
    cloud: dict[str, Any],
) -> None:
    # the log group is created, the service is refused, and the log group may not be deleted
    policy = _denying(_without("ecs:CreateService"), "logs:DeleteLogGroup")
    role = make_role(cloud, "shiplane-deploy-cfn-exec", policy)

    create(cloud, role)

    assert status(cloud) == "ROLLBACK_FAILED"
    assert stack_statuses(cloud) == [
        "CREATE_IN_PROGRESS",
        "ROLLBACK_IN_PROGRESS",
        "ROLLBACK_FAILED",
    ]
    [last] = [e for e in cloud["events"] if e["detail"]["status-details"]["status"] == (
        "ROLLBACK_FAILED")]  # fmt: skip
    assert last["detail"]["status-details"]["status-reason"] == (
        "The following resource(s) failed to delete: [LogGroup]. "
    )
    undeleted = [f for f in failures(cloud) if f["ResourceStatus"] == "DELETE_FAILED"]
    assert [f["LogicalResourceId"] for f in undeleted] == ["LogGroup"]
    reason = undeleted[0]["ResourceStatusReason"]
    assert reason.startswith(
        'Resource handler returned message: "User: arn:aws:sts::123456789012:assumed-role/'
        "shiplane-deploy-cfn-exec/AWSCloudFormation is not authorized to perform: "
        "logs:DeleteLogGroup on resource: "
    ), reason
    assert "with an explicit deny in an identity-based policy" in reason
    assert reason.endswith("HandlerErrorCode: AccessDenied)")
    assert log_groups(cloud) == ["/shiplane/web/dev"]  # still there, as in AWS


def test_an_update_rollback_the_role_may_not_make_ends_update_rollback_failed(
    cloud: dict[str, Any],
) -> None:
    role = make_role(cloud, "shiplane-deploy-cfn-exec", FULL_POLICY)
    create(cloud, role)
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.create_repository(repositoryName="web")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                   "digest": "sha256:" + "c" * 64},
        "layers": [],
        "annotations": {CRASH_ANNOTATION: "true"},
    }  # fmt: skip
    digest = ecr.put_image(repositoryName="web", imageManifest=json.dumps(manifest),
                           imageTag="crash")["image"]["imageId"]["imageDigest"]  # fmt: skip
    crashing = cloud["ecs"].register_task_definition(
        family="web",
        containerDefinitions=[{"name": "app", "essential": True, "memory": 512,
                               "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web@{digest}"}],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
    cloud["sim"].delay_seconds = 1.0  # time to change the role while ECS rolls out

    cloud["cfn"].update_stack(
        StackName=STACK,
        TemplateBody=json.dumps(TEMPLATE),
        Parameters=[{"ParameterKey": "TaskDefinitionArn", "ParameterValue": crashing}],
        Tags=[{"Key": "shiplane:project", "Value": "web"}],
    )
    # the role loses ecs:UpdateService while the update rolls out: the rollback needs it
    cloud["iam"].put_role_policy(
        RoleName="shiplane-deploy-cfn-exec",
        PolicyName="stack",
        PolicyDocument=json.dumps(_denying(FULL_POLICY, "ecs:UpdateService")),
    )
    cloud["sim"].settle(timeout=30)

    assert status(cloud) == "UPDATE_ROLLBACK_FAILED"
    assert stack_statuses(cloud)[-3:] == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_FAILED",
    ]
    described = cloud["cfn"].describe_stacks(StackName=STACK)["Stacks"][0]
    assert (
        described["StackStatusReason"] == "The following resource(s) failed to update: [Service]. "
    )
    [failed] = [f for f in failures(cloud) if "ecs:UpdateService" in f["ResourceStatusReason"]]
    assert failed["LogicalResourceId"] == "Service" and failed["ResourceStatus"] == "UPDATE_FAILED"

    # ContinueUpdateRollback (what Shiplane's next deployment calls): once the role may
    # again, the rollback completes; its events carry the call's token
    cloud["iam"].put_role_policy(
        RoleName="shiplane-deploy-cfn-exec",
        PolicyName="stack",
        PolicyDocument=json.dumps(FULL_POLICY),
    )
    cloud["cfn"].continue_update_rollback(StackName=STACK, RoleARN=role, ClientRequestToken="t-1")
    cloud["sim"].settle(timeout=30)
    assert status(cloud) == "UPDATE_ROLLBACK_COMPLETE"
    ends = [e["detail"] for e in cloud["events"]][-2:]
    assert [(d["status-details"]["status"], d["client-request-token"]) for d in ends] == [
        ("UPDATE_ROLLBACK_IN_PROGRESS", "t-1"),
        ("UPDATE_ROLLBACK_COMPLETE", "t-1"),
    ]
    assert services(cloud)[0]["taskDefinition"] == cloud["task_definition"]
    with pytest.raises(cloud["cfn"].exceptions.ClientError, match="can not continue update"):
        cloud["cfn"].continue_update_rollback(StackName=STACK, RoleARN=role)
