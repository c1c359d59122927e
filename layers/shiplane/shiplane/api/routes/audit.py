"""GET /audit: who changed what, newest first."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from shiplane.api.deps import deps
from shiplane.api.errors import responses
from shiplane.api.pagination import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
)
from shiplane.domain.audit import AuditRecord

router = Router()


@router.get(
    "/audit", tags=["audit"], summary="Audit records, newest first", responses=responses(422)
)
def list_audit(limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None) -> Page[AuditRecord]:
    before = decode_cursor(cursor) if cursor else None
    records = deps(router).store.list_audit(limit + 1, before)
    page = records[:limit]
    more = len(records) > limit
    return Page[AuditRecord](items=page, next_cursor=encode_cursor(page[-1].id) if more else None)
