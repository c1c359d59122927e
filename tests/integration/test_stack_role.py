"""Every stack operation Shiplane sends names a RoleARN (moto's CloudFormation)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shiplane.adapters.targets import BotoTargetGateway

ROLE = "arn:aws:iam::123456789012:role/shiplane-deploy-cfn-exec"
TEMPLATE = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
CHANGED = {
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}, "Other": {"Type": "AWS::SNS::Topic"}}
}


@pytest.fixture
def sent() -> Iterator[tuple[BotoTargetGateway, dict[str, dict[str, Any]]]]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        calls: dict[str, dict[str, Any]] = {}

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            calls[model.name] = dict(params)

        cloudformation.meta.events.register("provide-client-params.cloudformation.*", record)
        yield BotoTargetGateway(boto3.client("ecs", region_name="us-east-1"), cloudformation), calls


def test_create_update_change_sets_and_rollbacks_name_the_role(
    sent: tuple[BotoTargetGateway, dict[str, dict[str, Any]]],
) -> None:
    gateway, calls = sent
    gateway.create_stack("shiplane-web-web-dev-untenanted", TEMPLATE, {}, {"a": "b"}, ROLE)
    gateway.update_stack("shiplane-web-web-dev-untenanted", CHANGED, {}, {"a": "b"}, ROLE)
    with contextlib.suppress(Exception):  # only the request matters here
        gateway.preview_stack_update("shiplane-web-web-dev-untenanted", TEMPLATE, {}, ROLE)
    with contextlib.suppress(Exception):
        gateway.continue_update_rollback("shiplane-web-web-dev-untenanted", ROLE)

    for operation in ("CreateStack", "UpdateStack", "CreateChangeSet", "ContinueUpdateRollback"):
        assert calls[operation]["RoleARN"] == ROLE, operation
    described = gateway.cloudformation.describe_stacks(StackName="shiplane-web-web-dev-untenanted")[
        "Stacks"
    ][0]
    assert described["RoleARN"] == ROLE
