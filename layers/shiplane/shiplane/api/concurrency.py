"""Optimistic concurrency for configuration: ETags and `If-Match`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

from shiplane.errors import PreconditionFailedError, PreconditionRequiredError


def etag_of(resource: BaseModel | dict[str, Any]) -> str:
    """A strong ETag: the hash of the resource's canonical JSON (quoted, as HTTP wants)."""
    data = resource.model_dump(mode="json") if isinstance(resource, BaseModel) else resource
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return f'"{digest[:32]}"'


def check_preconditions(
    what: str,
    current_etag: str | None,
    if_match: str | None,
    if_none_match: str | None = None,
) -> None:
    """Raise unless the request may change `what` (whose stored ETag is `current_etag`,
    None when it does not exist)."""
    if if_none_match is not None and if_none_match.strip() == "*":
        if current_etag is not None:
            raise PreconditionFailedError(
                f"{what} exists already (If-None-Match: *)", field="header.If-None-Match"
            )
        return
    if current_etag is None:
        if if_match is not None and if_match.strip() != "*":
            raise PreconditionFailedError(
                f"{what} does not exist, so If-Match cannot match", field="header.If-Match"
            )
        return
    if if_match is None:
        raise PreconditionRequiredError(
            f"{what} exists: send If-Match with its ETag {current_etag} to change it",
            field="header.If-Match",
        )
    offered = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in offered and current_etag not in offered:
        raise PreconditionFailedError(
            f"{what} changed since you read it (ETag is now {current_etag})",
            field="header.If-Match",
        )
