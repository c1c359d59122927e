"""Turning pydantic's validation errors into Shiplane's, naming every bad field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shiplane.errors import InvalidRequestError

M = TypeVar("M", bound=BaseModel)


def describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse(model: type[M], payload: Any, what: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequestError(
            f"invalid {what}: {describe(exc)}",
            fields=[".".join(str(p) for p in e["loc"]) for e in exc.errors(include_url=False)],
        ) from None
