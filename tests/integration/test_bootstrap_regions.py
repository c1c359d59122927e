"""bootstrap/target-account.yaml deploys in several regions of one account (moto's
CloudFormation, in-process): IAM role names are global, so only RolesRegion's stack
creates them; every region gets its own event forwarding."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from shiplane_local.bootstrap_template import BOOTSTRAP

ACCOUNT = "123456789012"
BUS = "arn:aws:events:us-east-1:111111111111:event-bus/shiplane-target-events"


@pytest.fixture
def aws() -> Iterator[None]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


def deploy(region: str, **extra: str) -> dict[str, Any]:
    cfn = boto3.client("cloudformation", region_name=region)
    parameters = {
        "ShiplaneAccountId": "111111111111",
        "ExternalId": "a-secret-external-id",
        "ShiplaneEventBusArn": BUS,
        **extra,
    }
    cfn.create_stack(
        StackName="shiplane-target",
        TemplateBody=BOOTSTRAP.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName="shiplane-target")["Stacks"][0]
    return dict(stack)


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def role_names() -> list[str]:
    return sorted(r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"])


def test_the_same_parameters_deploy_in_two_regions_of_one_account(aws: None) -> None:
    first = deploy("us-east-1", RolesRegion="us-east-1")
    second = deploy("eu-west-1", RolesRegion="us-east-1")

    assert first["StackStatus"] == second["StackStatus"] == "CREATE_COMPLETE"
    named = [n for n in role_names() if not n.startswith("shiplane-target-")]
    assert named == ["shiplane-deploy", "shiplane-deploy-cfn-exec", "shiplane-task-execution"]
    # both regions' outputs name the account's roles
    assert outputs(first) == outputs(second)
    assert outputs(second)["DeployRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/shiplane-deploy"
    assert outputs(second)["CloudFormationExecutionRoleArn"] == (
        f"arn:aws:iam::{ACCOUNT}:role/shiplane-deploy-cfn-exec"
    )
    # each region forwards its own events
    for region in ("us-east-1", "eu-west-1"):
        rules = boto3.client("events", region_name=region).list_rules()["Rules"]
        assert len(rules) == 2, region


def test_a_second_region_that_creates_the_roles_again_fails(aws: None) -> None:
    """Why RolesRegion exists. AWS fails the second stack (ROLLBACK_COMPLETE, "already
    exists"); moto refuses its CreateStack outright: either way it is not created."""
    deploy("us-east-1")

    try:
        outcome = deploy("eu-west-1")["StackStatus"]  # RolesRegion empty: roles again
    except ClientError as exc:
        outcome = str(exc)

    assert outcome != "CREATE_COMPLETE"
    assert "already exists" in outcome or outcome.startswith("ROLLBACK")
