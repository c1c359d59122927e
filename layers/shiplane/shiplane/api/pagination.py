"""Cursor pagination for every list: `?limit=&cursor=`, answered `{items, next_cursor}`.

A cursor is the opaque (base64) sort key of the last item returned, so a page stays
correct when items are added or removed between calls."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, Field

from shiplane.errors import InvalidRequestError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"items per page (1-{MAX_LIMIT})")
]
CursorQuery = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` of the previous page"),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(default=None, description="absent on the last page")


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidRequestError(
            "cursor is not one this API gave out", field="query.cursor"
        ) from None
    if not key:
        raise InvalidRequestError("cursor is empty", field="query.cursor")
    return key


def paginate(
    items: Sequence[T],
    key: Callable[[T], str],
    cursor: str | None,
    limit: int,
    *,
    newest_first: bool = False,
) -> tuple[list[T], str | None]:
    """One page of `items` (sorted by `key` here, greatest first when `newest_first`)
    after `cursor`, and the next cursor."""
    ordered = sorted(items, key=key, reverse=newest_first)
    if cursor:
        after = decode_cursor(cursor)
        ordered = [
            item for item in ordered if (key(item) < after if newest_first else key(item) > after)
        ]
    page = list(ordered[:limit])
    more = len(ordered) > limit
    return page, (encode_cursor(key(page[-1])) if more and page else None)
