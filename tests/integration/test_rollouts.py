"""The simulated ECS rollouts of the embedded local cloud (moto in-process)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.cloudformation.models import CloudFormationBackend
from moto.ecs.models import Service

from shiplane_local.rollouts import RolloutSimulator, image_crashes

REGION = "us-east-1"
ACCOUNT = "123456789012"
CLUSTER = "shiplane-dev"
STACK = "shiplane-web-web-dev-untenanted"
REPOSITORY = "web"
SLOW = 4.0  # a delay for tests that look at a rollout while it is in progress (a loaded
# machine must still get its look in before the rollout ends)

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  TaskDefinitionArn: {Type: String}
Resources:
  Service:
    Type: AWS::ECS::Service
    Properties:
      Cluster: shiplane-dev
      ServiceName: web
      TaskDefinition: !Ref TaskDefinitionArn
      DesiredCount: 2
      LaunchType: FARGATE
      DeploymentConfiguration:
        DeploymentCircuitBreaker: {Enable: true, Rollback: true}
        MaximumPercent: 200
        MinimumHealthyPercent: 100
      NetworkConfiguration:
        AwsvpcConfiguration:
          Subnets: [subnet-1]
          SecurityGroups: [sg-1]
          AssignPublicIp: DISABLED
      EnableExecuteCommand: false
      PropagateTags: SERVICE
      Tags: [{Key: "shiplane:project", Value: web}]
Outputs:
  ServiceArn: {Value: !Ref Service}
"""

PLAIN_TEMPLATE = """
Resources:
  Topic:
    Type: AWS::SNS::Topic
"""


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
            boto3.client("ecr", region_name=REGION).create_repository(repositoryName=REPOSITORY)
            yield {
                "sim": sim,
                "events": events,
                "ecs": ecs,
                "ecr": boto3.client("ecr", region_name=REGION),
                "cfn": boto3.client("cloudformation", region_name=REGION),
            }
        finally:
            sim.uninstall()


def push(cloud: dict[str, Any], tag: str, *, crash: bool = False) -> str:
    """Put an image in ECR; return its image reference pinned by digest."""
    layer = "sha256:" + hashlib.sha256(f"{tag}-{crash}".encode()).hexdigest()
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1,
            "digest": layer,
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 1,
                "digest": layer,
            }
        ],
    }
    if crash:
        manifest["annotations"] = {"org.shiplane.local/crash": "true"}
    image = cloud["ecr"].put_image(
        repositoryName=REPOSITORY, imageManifest=json.dumps(manifest), imageTag=tag
    )["image"]
    digest = image["imageId"]["imageDigest"]
    return f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}@{digest}"


def register(cloud: dict[str, Any], image: str, **container: Any) -> str:
    extra = {k: v for k, v in container.items() if k == "executionRoleArn"}
    app = {"name": "app", "image": image, "essential": True}
    app |= {k: v for k, v in container.items() if k != "executionRoleArn"}
    return cloud["ecs"].register_task_definition(
        family="web",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[app],
        **extra,
    )["taskDefinition"]["taskDefinitionArn"]


def params(task_definition: str) -> list[dict[str, str]]:
    return [{"ParameterKey": "TaskDefinitionArn", "ParameterValue": task_definition}]


def service(cloud: dict[str, Any]) -> dict[str, Any]:
    return cloud["ecs"].describe_services(cluster=CLUSTER, services=["web"], include=["TAGS"])[
        "services"
    ][0]


def stack(cloud: dict[str, Any]) -> dict[str, Any]:
    return cloud["cfn"].describe_stacks(StackName=STACK)["Stacks"][0]


def sequence(events: list[dict[str, Any]]) -> list[str]:
    """Compact view of emitted events: CFN statuses and ECS event names, in order."""
    out = []
    for event in events:
        if event["source"] == "aws.cloudformation":
            out.append("cfn:" + event["detail"]["status-details"]["status"])
        else:
            out.append("ecs:" + event["detail"]["eventName"])
    return out


def create(cloud: dict[str, Any], image: str) -> str:
    task_definition = register(cloud, image)
    cloud["cfn"].create_stack(
        StackName=STACK, TemplateBody=TEMPLATE, Parameters=params(task_definition)
    )
    return task_definition


def test_create_rolls_out_then_completes(cloud: dict[str, Any]) -> None:
    cloud["sim"].delay_seconds = SLOW  # long enough to look at the rollout in progress
    task_definition = create(cloud, push(cloud, "1.0.0"))

    assert stack(cloud)["StackStatus"] == "CREATE_IN_PROGRESS"
    svc = service(cloud)
    assert svc["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert cloud["sim"].pending() == 1

    cloud["sim"].settle(timeout=30)
    assert cloud["sim"].pending() == 0
    assert sequence(cloud["events"]) == [
        "cfn:CREATE_IN_PROGRESS",
        "ecs:SERVICE_DEPLOYMENT_IN_PROGRESS",
        "ecs:SERVICE_DEPLOYMENT_COMPLETED",
        "cfn:CREATE_COMPLETE",
    ]
    described = stack(cloud)
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert described["Outputs"][0]["OutputValue"] == svc["serviceArn"]

    svc = service(cloud)
    assert svc["taskDefinition"] == task_definition
    assert svc["launchType"] == "FARGATE"
    assert svc["runningCount"] == svc["desiredCount"] == 2
    assert [d["status"] for d in svc["deployments"]] == ["PRIMARY"]
    assert svc["deployments"][0]["rolloutState"] == "COMPLETED"
    assert svc["deployments"][0]["taskDefinition"] == task_definition
    assert svc["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    assert svc["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-1"]
    assert svc["propagateTags"] == "SERVICE"
    assert svc["tags"] == [{"key": "shiplane:project", "value": "web"}]
    assert any("has reached a steady state" in e["message"] for e in svc["events"])

    # the event shapes of docs/architecture.md
    cfn_event, ecs_event = cloud["events"][-1], cloud["events"][-2]
    assert cfn_event["detail-type"] == "CloudFormation Stack Status Change"
    assert cfn_event["resources"] == [described["StackId"]]
    assert cfn_event["detail"]["stack-id"] == described["StackId"]
    assert cfn_event["account"] == ACCOUNT and cfn_event["region"] == REGION
    assert ecs_event["detail-type"] == "ECS Deployment State Change"
    assert ecs_event["resources"] == [svc["serviceArn"]]
    assert ecs_event["detail"]["eventType"] == "INFO"
    assert ecs_event["detail"]["deploymentId"] == svc["deployments"][0]["id"]
    assert {"version", "id", "time"} <= set(cfn_event)


def test_update_rolls_out_then_completes(cloud: dict[str, Any]) -> None:
    first = create(cloud, push(cloud, "1.0.0"))
    cloud["sim"].settle(timeout=30)
    old_deployment = service(cloud)["deployments"][0]["id"]
    cloud["events"].clear()

    second = register(cloud, push(cloud, "1.1.0"))
    cloud["sim"].delay_seconds = SLOW
    cloud["cfn"].update_stack(StackName=STACK, TemplateBody=TEMPLATE, Parameters=params(second))

    assert stack(cloud)["StackStatus"] == "UPDATE_IN_PROGRESS"
    svc = service(cloud)
    assert [(d["status"], d["taskDefinition"]) for d in svc["deployments"]] == [
        ("PRIMARY", second),
        ("ACTIVE", first),
    ]
    assert svc["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert svc["deployments"][1]["id"] == old_deployment

    cloud["sim"].settle(timeout=30)
    assert sequence(cloud["events"]) == [
        "cfn:UPDATE_IN_PROGRESS",
        "ecs:SERVICE_DEPLOYMENT_IN_PROGRESS",
        "ecs:SERVICE_DEPLOYMENT_COMPLETED",
        "cfn:UPDATE_COMPLETE",
    ]
    assert stack(cloud)["StackStatus"] == "UPDATE_COMPLETE"
    assert stack(cloud)["Parameters"][0]["ParameterValue"] == second
    svc = service(cloud)
    assert svc["taskDefinition"] == second
    assert [(d["status"], d["rolloutState"]) for d in svc["deployments"]] == [
        ("PRIMARY", "COMPLETED")
    ]


def test_crash_on_update_rolls_back(cloud: dict[str, Any]) -> None:
    first = create(cloud, push(cloud, "1.0.0"))
    cloud["sim"].settle(timeout=30)
    cloud["events"].clear()

    bad_image = push(cloud, "1.1.0", crash=True)
    assert image_crashes(bad_image)
    second = register(cloud, bad_image)
    cloud["cfn"].update_stack(StackName=STACK, TemplateBody=TEMPLATE, Parameters=params(second))
    cloud["sim"].settle(timeout=30)

    assert sequence(cloud["events"]) == [
        "cfn:UPDATE_IN_PROGRESS",
        "ecs:SERVICE_DEPLOYMENT_IN_PROGRESS",
        "ecs:SERVICE_DEPLOYMENT_FAILED",
        "cfn:UPDATE_ROLLBACK_IN_PROGRESS",
        "cfn:UPDATE_ROLLBACK_COMPLETE",
    ]
    failed = cloud["events"][2]["detail"]
    assert failed["eventType"] == "ERROR"
    assert "circuit breaker" in failed["reason"]

    described = stack(cloud)
    assert described["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert described["Parameters"] == params(first)

    stack_events = cloud["cfn"].describe_stack_events(StackName=STACK)["StackEvents"]
    failures = [e for e in stack_events if e["ResourceStatus"] == "UPDATE_FAILED"]
    assert failures and failures[0]["LogicalResourceId"] == "Service"
    assert "ECS Deployment Circuit Breaker was triggered" in failures[0]["ResourceStatusReason"]
    assert stack_events[0]["ResourceStatus"] == "UPDATE_ROLLBACK_COMPLETE"  # newest first

    svc = service(cloud)
    assert svc["taskDefinition"] == first
    by_status = {d["status"]: d for d in svc["deployments"]}
    assert by_status["PRIMARY"]["taskDefinition"] == first
    assert by_status["PRIMARY"]["rolloutState"] == "COMPLETED"
    assert by_status["ACTIVE"]["taskDefinition"] == second
    assert by_status["ACTIVE"]["rolloutState"] == "FAILED"
    assert by_status["ACTIVE"]["id"] == failed["deploymentId"]
    messages = [e["message"] for e in svc["events"]]
    assert any("deployment failed: tasks failed to start." in m for m in messages)
    assert any("rolling back to deployment" in m for m in messages)

    stopped = cloud["ecs"].list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]
    assert len(stopped) >= 3
    tasks = cloud["ecs"].describe_tasks(cluster=CLUSTER, tasks=stopped)["tasks"]
    assert {t["stoppedReason"] for t in tasks} == {"Essential container in task exited"}
    assert {t["lastStatus"] for t in tasks} == {"STOPPED"}
    assert {t["taskDefinitionArn"] for t in tasks} == {second}
    assert tasks[0]["containers"][0]["exitCode"] == 1

    # after a rollback the stack can be updated again
    third = register(cloud, push(cloud, "1.2.0"))
    cloud["cfn"].update_stack(StackName=STACK, TemplateBody=TEMPLATE, Parameters=params(third))
    cloud["sim"].settle(timeout=30)
    assert stack(cloud)["StackStatus"] == "UPDATE_COMPLETE"
    assert service(cloud)["taskDefinition"] == third


def test_crash_on_create_ends_in_rollback_complete(cloud: dict[str, Any]) -> None:
    create(cloud, push(cloud, "1.0.0", crash=True))
    cloud["sim"].settle(timeout=30)

    assert sequence(cloud["events"]) == [
        "cfn:CREATE_IN_PROGRESS",
        "ecs:SERVICE_DEPLOYMENT_IN_PROGRESS",
        "ecs:SERVICE_DEPLOYMENT_FAILED",
        "cfn:ROLLBACK_IN_PROGRESS",
        "cfn:ROLLBACK_COMPLETE",
    ]
    assert stack(cloud)["StackStatus"] == "ROLLBACK_COMPLETE"
    statuses = [
        (e["LogicalResourceId"], e["ResourceStatus"])
        for e in cloud["cfn"].describe_stack_events(StackName=STACK)["StackEvents"]
    ]
    assert ("Service", "CREATE_FAILED") in statuses
    assert service(cloud)["status"] == "INACTIVE"

    # a ROLLBACK_COMPLETE stack can be neither updated nor kept: it is deleted, then created
    with pytest.raises(ClientError, match="ROLLBACK_COMPLETE state and can not be updated"):
        cloud["cfn"].update_stack(
            StackName=STACK, TemplateBody=TEMPLATE, Parameters=params(register(cloud, "x"))
        )
    cloud["cfn"].delete_stack(StackName=STACK)
    cloud["sim"].settle(timeout=30)
    assert not cloud["cfn"].list_stacks(StackStatusFilter=["ROLLBACK_COMPLETE"])["StackSummaries"]
    create(cloud, push(cloud, "1.0.1"))
    cloud["sim"].settle(timeout=30)
    assert stack(cloud)["StackStatus"] == "CREATE_COMPLETE"
    assert service(cloud)["status"] == "ACTIVE"


def test_update_while_in_progress_is_refused(cloud: dict[str, Any]) -> None:
    create(cloud, push(cloud, "1.0.0"))
    cloud["sim"].settle(timeout=30)
    second = register(cloud, push(cloud, "1.1.0"))
    cloud["sim"].delay_seconds = SLOW
    cloud["cfn"].update_stack(StackName=STACK, TemplateBody=TEMPLATE, Parameters=params(second))
    stack_id = stack(cloud)["StackId"]

    third = register(cloud, push(cloud, "1.2.0"))
    with pytest.raises(ClientError) as error:
        cloud["cfn"].update_stack(StackName=STACK, TemplateBody=TEMPLATE, Parameters=params(third))
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert error.value.response["Error"]["Message"] == (
        f"Stack:{stack_id} is in UPDATE_IN_PROGRESS state and can not be updated."
    )
    cloud["sim"].settle(timeout=30)
    assert service(cloud)["taskDefinition"] == second
    assert stack(cloud)["StackStatus"] == "UPDATE_COMPLETE"


def test_stack_without_a_service_completes_at_once(cloud: dict[str, Any]) -> None:
    cloud["cfn"].create_stack(StackName="plain", TemplateBody=PLAIN_TEMPLATE)
    assert cloud["cfn"].describe_stacks(StackName="plain")["Stacks"][0]["StackStatus"] == (
        "CREATE_COMPLETE"
    )
    cloud["sim"].settle(timeout=30)
    assert sequence(cloud["events"]) == ["cfn:CREATE_IN_PROGRESS", "cfn:CREATE_COMPLETE"]


def test_settle_times_out_while_a_rollout_is_pending(cloud: dict[str, Any]) -> None:
    cloud["sim"].delay_seconds = 2
    create(cloud, push(cloud, "1.0.0"))
    with pytest.raises(TimeoutError):
        cloud["sim"].settle(timeout=0.1)
    assert cloud["sim"].pending() == 1


def test_uninstall_restores_moto() -> None:
    create_stack = CloudFormationBackend.create_stack
    update_handler = vars(Service)["update_from_cloudformation_json"]
    sim = RolloutSimulator(lambda event: None, delay_seconds=0.01)
    sim.install()
    sim.install()  # idempotent
    assert CloudFormationBackend.create_stack is not create_stack
    sim.uninstall()
    sim.uninstall()
    assert CloudFormationBackend.create_stack is create_stack
    assert vars(Service)["update_from_cloudformation_json"] is update_handler


CONVERTED_TEMPLATE = """
Parameters:
  Image: {Type: String}
Resources:
  TaskDefinition:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Family: web
      Cpu: "256"
      Memory: "512"
      NetworkMode: awsvpc
      RequiresCompatibilities: [FARGATE]
      RuntimePlatform: {CpuArchitecture: ARM64, OperatingSystemFamily: LINUX}
      ExecutionRoleArn: arn:aws:iam::123456789012:role/exec
      ContainerDefinitions:
        - Name: app
          Image: !Ref Image
          Essential: true
          PortMappings: [{ContainerPort: 8080, Protocol: tcp}]
          Environment: [{Name: MODE, Value: prod}]
          Secrets: [{Name: TOKEN, ValueFrom: arn:aws:ssm:us-east-1:123456789012:parameter/t}]
          LogConfiguration:
            LogDriver: awslogs
            Options: {awslogs-group: /shiplane/web, awslogs-region: us-east-1}
      Volumes:
        - Name: data
          EFSVolumeConfiguration: {FilesystemId: fs-1, TransitEncryption: ENABLED}
  Service:
    Type: AWS::ECS::Service
    Properties:
      Cluster: shiplane-dev
      ServiceName: web
      TaskDefinition: !Ref TaskDefinition
      DesiredCount: 1
      LaunchType: FARGATE
      DeploymentConfiguration:
        DeploymentCircuitBreaker: {Enable: true, Rollback: true}
      NetworkConfiguration:
        AwsvpcConfiguration: {Subnets: [subnet-1], SecurityGroups: [sg-1]}
"""


def test_converted_template_keeps_the_task_definition_and_rolls_back(
    cloud: dict[str, Any],
) -> None:
    good = push(cloud, "1.0.0")
    # what the task's secret needs to start: the parameter, and an execution role to read it
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/t", Value="token", Type="SecureString"
    )
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName="exec", AssumeRolePolicyDocument="{}")
    read = {"Effect": "Allow", "Action": "ssm:GetParameters",
            "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/t"}  # fmt: skip
    policy = {"Version": "2012-10-17", "Statement": [read]}
    iam.put_role_policy(RoleName="exec", PolicyName="read", PolicyDocument=json.dumps(policy))
    cloud["cfn"].create_stack(
        StackName=STACK,
        TemplateBody=CONVERTED_TEMPLATE,
        Parameters=[{"ParameterKey": "Image", "ParameterValue": good}],
    )
    cloud["sim"].settle(timeout=30)
    first = service(cloud)["taskDefinition"]
    task_definition = cloud["ecs"].describe_task_definition(taskDefinition=first)["taskDefinition"]
    assert task_definition["networkMode"] == "awsvpc"
    assert task_definition["cpu"] == "256" and task_definition["memory"] == "512"
    assert task_definition["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    container = task_definition["containerDefinitions"][0]
    assert container["image"] == good
    assert container["portMappings"][0]["containerPort"] == 8080
    assert container["secrets"][0]["valueFrom"].endswith("parameter/t")
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/shiplane/web"
    assert task_definition["volumes"][0]["efsVolumeConfiguration"]["fileSystemId"] == "fs-1"

    cloud["events"].clear()
    cloud["cfn"].update_stack(
        StackName=STACK,
        TemplateBody=CONVERTED_TEMPLATE,
        Parameters=[{"ParameterKey": "Image", "ParameterValue": push(cloud, "2", crash=True)}],
    )
    cloud["sim"].settle(timeout=30)
    assert sequence(cloud["events"])[-1] == "cfn:UPDATE_ROLLBACK_COMPLETE"
    assert service(cloud)["taskDefinition"] == first
    resources = cloud["cfn"].describe_stack_resources(StackName=STACK)["StackResources"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    assert physical["TaskDefinition"] == first


def test_describe_services_answers_task_definition_arns(cloud: dict[str, Any]) -> None:
    first = create(cloud, push(cloud, "1.0.0"))
    cloud["sim"].settle(timeout=30)
    cloud["ecs"].update_service(cluster=CLUSTER, service="web", taskDefinition="web:1")
    assert service(cloud)["taskDefinition"] == first


# ------------------------------------------------------------ secrets, read by the execution role
# ECS reads a task's secrets with its execution role before starting it: a role that may
# not read them (or decrypt them) keeps every task from starting, and the deployment fails.

EXECUTION_ROLE = "shiplane-task-execution"


def execution_role(cloud: dict[str, Any], statements: list[dict[str, Any]]) -> str:
    iam = boto3.client("iam", region_name=REGION)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action":
             "sts:AssumeRole", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}  # fmt: skip
    arn = iam.create_role(RoleName=EXECUTION_ROLE, AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(
        RoleName=EXECUTION_ROLE, PolicyName="execution", PolicyDocument=json.dumps(policy)
    )
    return str(arn)


def with_secret(cloud: dict[str, Any], role_arn: str, value_from: str) -> str:
    image = push(cloud, "1.0." + hashlib.sha256(value_from.encode()).hexdigest()[:8])
    secrets = [{"name": "DB_PASSWORD", "valueFrom": value_from}]
    return register(cloud, image, executionRoleArn=role_arn, secrets=secrets)


def secret_parameter(key_id: str | None = None) -> str:
    ssm = boto3.client("ssm", region_name=REGION)
    args = {"Name": "/shiplane/web/DbPassword", "Value": "s3cret", "Type": "SecureString"}
    ssm.put_parameter(**args, **({"KeyId": key_id} if key_id else {}))
    return str(ssm.get_parameter(Name="/shiplane/web/DbPassword")["Parameter"]["ARN"])


def create_with(cloud: dict[str, Any], task_definition: str) -> None:
    cloud["cfn"].create_stack(
        StackName=STACK, TemplateBody=TEMPLATE, Parameters=params(task_definition)
    )
    cloud["sim"].settle(timeout=30)


def stopped_reasons(cloud: dict[str, Any]) -> set[tuple[str, str]]:
    ecs = cloud["ecs"]
    arns = ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
    return {(t.get("stopCode", ""), t.get("stoppedReason", "")) for t in tasks}


def test_an_execution_role_that_reads_its_secrets_starts_the_tasks(cloud: dict[str, Any]) -> None:
    parameter = secret_parameter()
    role = execution_role(
        cloud, [{"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": parameter}]
    )
    create_with(cloud, with_secret(cloud, role, parameter))
    assert stack(cloud)["StackStatus"] == "CREATE_COMPLETE"


def test_an_execution_role_that_may_not_read_a_secret_fails_the_deployment(
    cloud: dict[str, Any],
) -> None:
    parameter = secret_parameter()
    role = execution_role(
        cloud, [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": parameter}]
    )  # GetParameter: not what ECS calls
    create_with(cloud, with_secret(cloud, role, parameter))

    assert stack(cloud)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "ecs:SERVICE_DEPLOYMENT_FAILED" in sequence(cloud["events"])
    [(code, reason)] = stopped_reasons(cloud)
    assert code == "TaskFailedToStart"
    assert reason.startswith("ResourceInitializationError: unable to pull secrets")
    assert (
        f"AccessDeniedException: User: arn:aws:sts::{ACCOUNT}:assumed-role/{EXECUTION_ROLE}/"
        f"ecs-task is not authorized to perform: ssm:GetParameters on resource: {parameter}"
    ) in reason


def test_a_missing_parameter_or_key_keeps_the_tasks_from_starting(
    cloud: dict[str, Any],
) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         "Action": "kms:*", "Resource": "*"}]}))["KeyMetadata"]["Arn"]  # fmt: skip
    parameter = secret_parameter(key)
    # the role may read the parameter but not decrypt it: the key policy delegates to IAM
    role = execution_role(
        cloud, [{"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": "*"}]
    )
    create_with(cloud, with_secret(cloud, role, parameter))
    [(_, reason)] = stopped_reasons(cloud)
    assert f"kms:Decrypt on resource: {key}" in reason

    cloud["cfn"].delete_stack(StackName=STACK)
    cloud["sim"].settle(timeout=30)
    gone = parameter.replace("DbPassword", "NoSuchValue")
    create_with(cloud, with_secret(cloud, role, gone))
    reasons = {r for _, r in stopped_reasons(cloud)}
    assert any(r.endswith("invalid ssm parameters: /shiplane/web/NoSuchValue") for r in reasons)
