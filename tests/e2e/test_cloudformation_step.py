"""A `cloudformation` step on the local cloud, followed by an `ecs-service` step that uses
its stack output: the template gets the release's image tag (substituted into the parsed
template), and the container's environment gets the earlier stack's output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import DeploymentStatus
from shiplane_local.cloud import LocalCloud
from tests.e2e.release_model_fixtures import World, environments, phase

pytestmark = pytest.mark.e2e

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Greeting:
    Type: String
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Tag:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/tag"
      Type: String
      Value: "#{Shiplane.Package[app].Tag}"
      Description: !Join [" ", [!Ref Greeting, "#{Shiplane.Environment.Name}"]]
Outputs:
  QueueUrl:
    Value: !Ref Queue
  TagParameter:
    Value: !Ref Tag
"""


def stack_role(cloud: LocalCloud, name: str) -> str:
    """A role CloudFormation may run the infra stack as (what its resources' handlers use)."""
    iam = cloud.client("iam")
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
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sqs:*", "ssm:*"], "Resource": "*"}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="infra", PolicyDocument=json.dumps(policy))
    return str(arn)


def test_a_cloudformation_step_feeds_its_outputs_to_the_next_step(
    cloud: LocalCloud, store: DynamoStore
) -> None:
    w = World(cloud, store, "cf")
    lifecycle = f"lc-{w.id}"
    project = w.project_document(
        lifecycle, environment={"QUEUE_URL": "#{Shiplane.Step[infra].Output[QueueUrl]}"}
    )
    infra: dict[str, Any] = {
        "name": "infra",
        "type": "cloudformation",
        "target_role": w.role,
        "template": TEMPLATE,
        "parameters": {"Greeting": "hello #{Shiplane.Release.Number}"},
        "packages": [{"name": "app", "repository": w.repository}],
        "tags": {"team": "e2e"},
        # the bootstrap's execution role may create services, not queues: a role of its own
        "role_arn": stack_role(cloud, f"shiplane-stack-{w.id}"),
    }
    project["steps"].insert(0, infra)
    w.apply(
        {
            "environments": environments("dev"),
            "lifecycles": [{"name": lifecycle, "phases": [phase("only", ("dev", "automatic"))]}],
            "targets": [w.target("dev")],
            "projects": [project],
        }
    )

    w.push("1.4.2")

    (deployment,) = w.deployments("dev")
    assert deployment.status is DeploymentStatus.SUCCEEDED, deployment.reason
    stack_name = f"shiplane-{w.project}-infra-dev-untenanted"
    cfn = cloud.client("cloudformation")
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {
        "Greeting": "hello 1.4.2"
    }
    assert {t["Key"]: t["Value"] for t in stack["Tags"]}["team"] == "e2e"
    parameter = cloud.client("ssm").get_parameter(Name=outputs["TagParameter"])["Parameter"]
    assert parameter["Value"] == "1.4.2"
    assert deployment.outputs["infra"] == outputs
    assert outputs.get("QueueUrl")

    environment = {
        e["name"]: e["value"]
        for e in w.task_definition("dev")["containerDefinitions"][0]["environment"]
    }
    assert environment["QUEUE_URL"] == outputs["QueueUrl"]
