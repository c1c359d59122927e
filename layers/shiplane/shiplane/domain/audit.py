"""Audit records: who changed what, when, from what to what. Sensitive values never
appear: `redact` replaces them before a record is built."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from shiplane.domain.base import Model

REDACTED = "(sensitive)"


class AuditRecord(Model):
    id: str = Field(description="unique, time-ordered")
    at: datetime
    who: str = Field(description="the caller's IAM ARN (or the system job)")
    action: str = Field(description="`PUT /environments/dev`, `deploy`, ...")
    resource: str = Field(description="`environment/dev`, `project/web/deployment/...`")
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def redact(value: Any) -> Any:
    """A copy of `value` without sensitive values: any mapping marked `sensitive` loses
    its `value`, and keys that name secrets lose theirs."""
    if isinstance(value, dict):
        sensitive = bool(value.get("sensitive"))
        out: dict[str, Any] = {}
        for key, item in value.items():
            if sensitive and key == "value" and item not in (None, ""):
                out[key] = REDACTED
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value
