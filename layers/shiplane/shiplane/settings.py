"""Function settings, read from the environment when asked for (never at import time)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    region: str = Field(alias="AWS_REGION", default="us-east-1")
    default_wait_timeout_seconds: int = Field(
        alias="DEFAULT_WAIT_TIMEOUT_SECONDS", default=1800, ge=30
    )
    # The api function's: what it starts, where sensitive values go.
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", default="")
    secrets_prefix: str = Field(alias="SECRETS_PREFIX", default="/shiplane/")
    # Shiplane's own KMS key: SecureStrings under the default aws/ssm key cannot be
    # decrypted by another account's task execution role. Empty: the default key.
    secrets_kms_key_id: str = Field(alias="SECRETS_KMS_KEY_ID", default="")
    # The api function's scheduled deployments: the schedule group and the role the
    # Scheduler starts the pipeline as.
    schedule_group_name: str = Field(alias="SCHEDULE_GROUP_NAME", default="")
    scheduler_role_arn: str = Field(alias="SCHEDULER_ROLE_ARN", default="")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    # boto3 and the Lambda runtime use either name; prefer the runtime's.
    env.setdefault("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1"))
    return Settings.model_validate(env)
