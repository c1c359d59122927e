"""Who is calling, and the audit record of what they change."""

from __future__ import annotations

import uuid
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from shiplane.api.deps import deps
from shiplane.domain.audit import AuditRecord, redact

UNKNOWN_CALLER = "unknown"


def caller(router: BaseRouter) -> str:
    """The IAM identity API Gateway authenticated (AWS_IAM authorization)."""
    identity = router.current_event.request_context.identity  # type: ignore[attr-defined]
    return str(identity.user_arn or identity.caller or identity.user or UNKNOWN_CALLER)


def audit_record(
    router: BaseRouter,
    resource: str,
    before: Any = None,
    after: Any = None,
    action: str | None = None,
) -> AuditRecord:
    """The record of this request's change: method and path, caller, before and after
    (sensitive values redacted). Ids sort by time, so the log reads in order."""
    event = router.current_event
    now = deps(router).now()
    return AuditRecord(
        id=f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}#{uuid.uuid4().hex[:12]}",
        at=now,
        who=caller(router),
        action=action or f"{event.http_method} {event.path}",
        resource=resource,
        before=redact(_plain(before)),
        after=redact(_plain(after)),
    )


def _plain(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if hasattr(value, "model_dump"):
        dumped: dict[str, Any] = value.model_dump(mode="json")
        return dumped
    if isinstance(value, dict):
        return value
    return {"value": value}
