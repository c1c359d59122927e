"""Sensitive values are written under Shiplane's own KMS key when one is configured: a
SecureString under the default aws/ssm key cannot be decrypted from a target account."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from shiplane.adapters.ssm import SsmSecrets
from shiplane.settings import load_settings


@pytest.fixture
def aws() -> Iterator[None]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


def test_secure_strings_use_the_configured_key(aws: None) -> None:
    key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    ssm = boto3.client("ssm", region_name="us-east-1")
    settings = load_settings({"TABLE_NAME": "t", "SECRETS_KMS_KEY_ID": key})

    arn = SsmSecrets(ssm, kms_key_id=settings.secrets_kms_key_id or None).put_secret(
        "/shiplane/web/DbPassword", "s3cret"
    )

    assert arn.endswith(":parameter/shiplane/web/DbPassword")
    (described,) = ssm.describe_parameters()["Parameters"]
    assert described["Type"] == "SecureString"
    assert described["KeyId"] == key


def test_without_a_key_the_default_is_used(aws: None) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    assert load_settings({"TABLE_NAME": "t"}).secrets_kms_key_id == ""

    SsmSecrets(ssm).put_secret("/shiplane/web/DbPassword", "s3cret")

    (described,) = ssm.describe_parameters()["Parameters"]
    assert described["KeyId"] == "alias/aws/ssm"
