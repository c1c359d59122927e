"""Every error the API answers, in one JSON shape, mapped to HTTP status in one place."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

from shiplane import errors
from shiplane.validation import location


class FieldError(BaseModel):
    field: str = Field(description="where: `body.cpu`, `query.limit`, `path.name`")
    message: str


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer."""

    code: str = Field(description="machine-readable: NotFound, Conflict, InvalidRequest...")
    message: str = Field(description="what is wrong, naming the field")
    field: str | None = Field(default=None, description="the offending field, when one is")
    errors: list[FieldError] = Field(default_factory=list)


# Most specific first: the first class an error is an instance of decides its status.
STATUS: tuple[tuple[type[errors.ShiplaneError], HTTPStatus], ...] = (
    (errors.NotFoundError, HTTPStatus.NOT_FOUND),
    (errors.PreconditionFailedError, HTTPStatus.PRECONDITION_FAILED),
    (errors.PreconditionRequiredError, HTTPStatus.PRECONDITION_REQUIRED),
    (errors.ConflictError, HTTPStatus.CONFLICT),
    (errors.LifecycleViolationError, HTTPStatus.CONFLICT),
    (errors.TransientError, HTTPStatus.SERVICE_UNAVAILABLE),
    (errors.TerminalError, HTTPStatus.BAD_REQUEST),
    (errors.ShiplaneError, HTTPStatus.BAD_REQUEST),
)


def code_of(exc: errors.ShiplaneError) -> str:
    name = type(exc).__name__
    return name[: -len("Error")] if name.endswith("Error") and name != "Error" else name


def status_of(exc: errors.ShiplaneError) -> HTTPStatus:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return HTTPStatus.BAD_REQUEST


def body_of(exc: errors.ShiplaneError) -> ErrorBody:
    details = exc.details
    field = details.get("field")
    fields = details.get("fields") or []
    if field is None and len(fields) == 1:
        field = fields[0]
    return ErrorBody(
        code=code_of(exc),
        message=exc.message,
        field=str(field) if field is not None else None,
        errors=[FieldError(field=str(f), message=exc.message) for f in fields],
    )


def validation_body(raw_errors: list[dict[str, Any]]) -> ErrorBody:
    """From Powertools' RequestValidationError: every failed field, no input echoed back
    (a body may carry a sensitive value)."""
    found = [
        FieldError(field=location(tuple(e.get("loc", ()))) or "body", message=_message(e))
        for e in raw_errors
    ]
    summary = "; ".join(f"{f.field}: {f.message}" for f in found) or "invalid request"
    return ErrorBody(
        code="InvalidRequest",
        message=f"invalid request: {summary}",
        field=found[0].field if len(found) == 1 else None,
        errors=found,
    )


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg") or error.get("type") or "invalid")
    # pydantic's "Value error, ..." prefix says nothing to an API user.
    return message.removeprefix("Value error, ")


def responses(*statuses: int, ok: int = 200, ok_description: str = "OK") -> dict[int, Any]:
    """OpenAPI `responses` for a route: its success (the return type's schema) and the
    error statuses it can answer, each an `ErrorBody`. Any other status is covered by
    the `default` response every operation gets (see `shiplane.api.app`)."""
    found: dict[int, Any] = {ok: {"description": ok_description}}
    for status in statuses:
        found[status] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"model": ErrorBody}},
        }
    return found
