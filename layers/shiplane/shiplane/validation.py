"""Turning pydantic's validation errors into Shiplane's, naming every bad field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shiplane.errors import InvalidRequestError

M = TypeVar("M", bound=BaseModel)


# The tags of discriminated unions (a step's `type`): pydantic puts them in the error
# location, where they are not fields of the document.
UNION_TAGS = frozenset({"ecs-service", "cloudformation"})


def location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in UNION_TAGS)


def describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = location(error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse(model: type[M], payload: Any, what: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequestError(
            f"invalid {what}: {describe(exc)}",
            fields=[location(e["loc"]) for e in exc.errors(include_url=False)],
        ) from None
