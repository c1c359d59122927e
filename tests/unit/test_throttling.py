"""A throttled AWS call is transient (ThrottledError, retried by the state machine), never
a terminal failure: STS's AssumeRole, Step Functions' SendTaskSuccess, any service's code."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from shiplane.adapters.stepfunctions import SfnTaskTokens
from shiplane.adapters.targets import AssumedRoleGateways
from shiplane.adapters.throttling import THROTTLING_CODES
from shiplane.domain.models import Target
from shiplane.errors import TargetUnavailableError, ThrottledError


def _target() -> Target:
    return Target.model_validate(
        {
            "name": "dev-cluster",
            "roles": ["web"],
            "region": "us-east-1",
            "subnets": ["subnet-0123abcd"],
            "cluster": "shiplane-dev",
            "deploy_role_arn": "arn:aws:iam::123456789012:role/shiplane-deploy",
            "external_id": "shiplane-test",
            "environments": ["dev"],
        }
    )


def _sts() -> tuple[object, Stubber]:
    client = boto3.client(
        "sts", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def test_a_throttled_assume_role_is_transient() -> None:
    client, stub = _sts()
    # STS's own throttling code ("Throttling", HTTP 400)
    stub.add_client_error("assume_role", service_error_code="Throttling", http_status_code=400)
    with stub, pytest.raises(ThrottledError):
        AssumedRoleGateways(sts=client).for_target(_target(), "d-1")


def test_a_refused_assume_role_is_still_terminal() -> None:
    client, stub = _sts()
    stub.add_client_error("assume_role", service_error_code="AccessDenied", http_status_code=403)
    with stub, pytest.raises(TargetUnavailableError):
        AssumedRoleGateways(sts=client).for_target(_target(), "d-1")


def test_a_throttled_send_task_success_is_transient() -> None:
    client = boto3.client(
        "stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    stub.add_client_error(
        "send_task_success", service_error_code="ThrottlingException", http_status_code=400
    )
    stub.add_client_error(
        "send_task_success", service_error_code="TaskTimedOut", http_status_code=400
    )
    tokens = SfnTaskTokens(client)
    with stub:
        with pytest.raises(ThrottledError):
            tokens.succeed("token", {})
        assert tokens.succeed("token", {}) is False  # a gone token is not an error


def test_the_throttling_codes_are_botocore_s() -> None:
    from botocore.retries.standard import ThrottledRetryableChecker

    assert set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES) == THROTTLING_CODES
