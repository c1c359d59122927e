"""Configuration as code: export the whole configuration, plan a document (what applying
it would change) and apply it (declaratively: what the document leaves out is removed),
and the JSON Schema of the document."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from shiplane.api.context import audit_record
from shiplane.api.deps import deps
from shiplane.api.errors import responses
from shiplane.api.routes.config_resources import IfMatch
from shiplane.domain.models import Configuration, Environment, Lifecycle
from shiplane.services import configuration as service
from shiplane.services.configuration import ConfigState, ConfigurationChanges

router = Router()


class ConfigurationExport(Configuration):
    """The stored configuration: a configuration document, empty before the first apply."""

    environments: list[Environment] = Field(default_factory=list)
    lifecycles: list[Lifecycle] = Field(default_factory=list)


DOCUMENT: dict[int, Any] = {
    200: {
        "description": "the configuration document (ETag header: send it as If-Match to apply)",
        "content": {"application/json": {"model": ConfigurationExport}},
    }
}


def _json(body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


@router.get("/configuration", tags=["configuration"], summary="Export", responses=DOCUMENT)
def export_configuration() -> Response[dict[str, Any]]:
    state = ConfigState.load(deps(router).store)
    return _json(state.document(), {"ETag": state.etag()})


@router.get(
    "/configuration/schema",
    tags=["configuration"],
    summary="The JSON Schema of a configuration document",
)
def configuration_schema() -> dict[str, Any]:
    return service.configuration_schema()


@router.post(
    "/configuration/plan",
    tags=["configuration"],
    summary="What applying a document would change",
    responses=responses(400, 422),
)
def plan_configuration(document: Configuration) -> ConfigurationChanges:
    return service.plan_document(deps(router).store, document)


@router.put(
    "/configuration",
    tags=["configuration"],
    summary="Apply a document: add, change and remove resources to match it",
    responses=responses(400, 412, 422),
)
def apply_configuration(
    document: Configuration, if_match: IfMatch = None
) -> Response[ConfigurationChanges]:
    applied = service.apply_document(
        deps(router).store,
        document,
        if_match=if_match,
        audit=lambda resource, before, after: audit_record(router, resource, before, after),
    )
    return _json(applied, {"ETag": applied.etag})
