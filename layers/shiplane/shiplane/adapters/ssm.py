"""Sensitive values in SSM Parameter Store (SecureString). Shiplane keeps only the
parameter's ARN; the value passes through memory and is never logged or returned."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from shiplane.adapters.throttling import is_throttling
from shiplane.errors import NotFoundError, ThrottledError


class SsmSecrets:
    def __init__(self, client: Any = None, kms_key_id: str | None = None) -> None:
        self._client = client
        self.kms_key_id = kms_key_id

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("ssm")
        return self._client

    def put_secret(self, name: str, value: str) -> str:
        args: dict[str, Any] = {
            "Name": name,
            "Value": value,
            "Type": "SecureString",
            "Overwrite": True,
            "Description": "Shiplane sensitive variable",
        }
        if self.kms_key_id:
            args["KeyId"] = self.kms_key_id
        try:
            self.client.put_parameter(**args)
            # Without decryption: only the ARN is wanted, not the value back.
            parameter = self.client.get_parameter(Name=name, WithDecryption=False)["Parameter"]
        except ClientError as exc:
            if is_throttling(exc):
                raise ThrottledError("SSM throttled") from exc
            raise
        return str(parameter["ARN"])

    def delete_secret(self, reference: str) -> None:
        name = reference.split(":parameter", 1)[-1] if reference.startswith("arn:") else reference
        try:
            self.client.delete_parameter(Name=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ParameterNotFound":
                raise NotFoundError(f"no sensitive value at {reference}") from exc
            raise
