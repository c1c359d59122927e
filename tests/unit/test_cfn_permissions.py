"""The handler permissions of CloudFormation resource types, from the provider schemas
cfn-lint ships, with the resource each is authorized against."""

from __future__ import annotations

from typing import Any

from shiplane_local.cfn_permissions import (
    Target,
    handler_message,
    handler_permissions,
    required_permissions,
    stack_principal,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"


def target(resource_type: str, tagged: bool = False, **properties: Any) -> Target:
    return Target(resource_type, properties, ACCOUNT, REGION, tagged=tagged)


def actions(t: Target, operation: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for permission in required_permissions(t, operation):
        found.setdefault(permission.action, []).append(permission.resource)
    return found


def test_the_schemas_are_the_source() -> None:
    create = handler_permissions("AWS::ECS::Service", "create")
    assert "ecs:CreateService" in create and "ecs:DescribeServiceDeployments" in create
    assert "ecs:StopServiceDeployment" in handler_permissions("AWS::ECS::Service", "update")
    assert handler_permissions("AWS::Not::AType", "create") == []


def test_an_ecs_service_is_authorized_on_its_own_arn() -> None:
    service = target("AWS::ECS::Service", Cluster="shiplane-dev", ServiceName="web")
    found = actions(service, "create")
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/shiplane-dev/web"
    assert found["ecs:CreateService"] == [arn]
    assert found["ecs:DescribeServices"] == [arn]
    assert found["ecs:DescribeServiceDeployments"] == [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/shiplane-dev/web/0"
    ]
    # untagged and without a load balancer role: neither TagResource nor PassRole
    assert "ecs:TagResource" not in found and "iam:PassRole" not in found
    tagged = actions(
        target("AWS::ECS::Service", True, Cluster="arn:aws:ecs:x:1:cluster/c", ServiceName="s"),
        "update",
    )
    assert tagged["ecs:TagResource"] == [f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/c/s"]
    assert "ecs:StopServiceDeployment" not in tagged  # only for a cancelled update


def test_roles_in_a_task_definition_are_passed_to_ecs_tasks_and_read() -> None:
    task = target(
        "AWS::ECS::TaskDefinition",
        True,
        Family="web-dev",
        TaskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/shiplane-task-web",
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/shiplane-task-execution",
    )
    permissions = required_permissions(task, "create")
    passes = [p for p in permissions if p.action == "iam:PassRole"]
    assert [(p.resource, dict(p.context)) for p in passes] == [
        (
            f"arn:aws:iam::{ACCOUNT}:role/shiplane-task-web",
            {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
        ),
        (
            f"arn:aws:iam::{ACCOUNT}:role/shiplane-task-execution",
            {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
        ),
    ]
    found = actions(task, "create")
    assert len(found["iam:GetRole"]) == 2
    assert found["ecs:RegisterTaskDefinition"] == ["*"]  # no resource-level permissions
    assert found["ecs:TagResource"] == [f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web-dev:1"]
    # no roles: nothing to pass
    assert "iam:PassRole" not in actions(target("AWS::ECS::TaskDefinition"), "create")


def test_a_log_groups_options_decide_its_permissions() -> None:
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/shiplane/web/dev"
    plain = actions(target("AWS::Logs::LogGroup", LogGroupName="/shiplane/web/dev"), "create")
    assert plain["logs:CreateLogGroup"] == [group]
    assert plain["logs:DescribeLogGroups"] == [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:*"]
    assert "logs:PutRetentionPolicy" not in plain and "s3:REST.PUT.OBJECT" not in plain
    kept = actions(
        target(
            "AWS::Logs::LogGroup",
            LogGroupName="/g",
            RetentionInDays=30,
            DataProtectionPolicy={"a": 1},
        ),
        "create",
    )
    assert "logs:PutRetentionPolicy" in kept and "logs:PutDataProtectionPolicy" in kept
    assert "logs:DeleteRetentionPolicy" in actions(
        target("AWS::Logs::LogGroup", LogGroupName="/g"), "update"
    )


def test_a_type_without_rules_needs_every_listed_permission() -> None:
    queue = actions(target("AWS::SQS::Queue", QueueName="q"), "create")
    assert set(queue) == set(handler_permissions("AWS::SQS::Queue", "create"))


def test_who_the_handlers_act_as() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/shiplane-deploy-cfn-exec"
    assert stack_principal(role, "arn:aws:sts::1:assumed-role/caller/s") == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/shiplane-deploy-cfn-exec/AWSCloudFormation"
    )
    assert stack_principal(None, "arn:aws:sts::1:assumed-role/caller/s") == (
        "arn:aws:sts::1:assumed-role/caller/s"
    )
    assert stack_principal(None, None) is None


def test_the_sdk_names_the_service_in_the_message() -> None:
    assert "(Service: Ecs, Status Code: 400, Request ID: " in handler_message("m", "ecs:X")
    assert "(Service: CloudWatchLogs, Status Code: 400" in handler_message("m", "logs:X")
    assert "(Service: Iam, Status Code: 403" in handler_message("m", "iam:PassRole")


def test_types_replaced_on_update_have_only_create_only_properties_but_tags() -> None:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    from shiplane_local.cfn_permissions import REPLACED_ON_UPDATE

    for resource_type in REPLACED_ON_UPDATE:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
        create_only = {p.rsplit("/", 1)[-1] for p in schema["createOnlyProperties"]}
        read_only = {p.rsplit("/", 1)[-1] for p in schema["readOnlyProperties"]}
        assert set(schema["properties"]) - create_only - read_only == {"Tags"}
