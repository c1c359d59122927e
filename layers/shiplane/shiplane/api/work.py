"""What the routes that start pipeline work share: the `202 Accepted` answer and the
`Idempotency-Key` header."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header, Path
from pydantic import BaseModel, Field

from shiplane.domain.models import NAME_PATTERN

T = TypeVar("T")

ProjectName = Annotated[str, Path(pattern=NAME_PATTERN, description="the project")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="the same key is the same request: a retry starts nothing twice "
        "(without it, the body and what finished where it acts decide)",
    ),
]


class Accepted(BaseModel):
    """The pipeline took the request: what to poll for its outcome."""

    execution_arn: str = Field(description="the deploy pipeline's execution")
    started: bool = Field(
        description="false: the same request was accepted before, nothing new started"
    )
    project: str
    release: str | None = None
    environment: str | None = None
    tenant: str | None = None
    deployment_id: str | None = Field(default=None, description="the deployment it creates")
    poll: str = Field(description="the path to GET for the outcome")


def accepted(body: Accepted) -> Response[Accepted]:
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Location": body.poll},
    )


def plain(value: Any) -> Any:
    """A model as the JSON an audit record keeps."""
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
