"""The API's resolver: routers, one error shape, the OpenAPI document and Swagger UI.

Built once per warm Lambda (`resolver()`), on the first request rather than at import,
and reused."""

from __future__ import annotations

import importlib
from functools import cache
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane.api.deps import ApiDependencies
from shiplane.api.errors import ErrorBody, body_of, status_of, validation_body
from shiplane.errors import ShiplaneError
from shiplane.observability import logger

TITLE = "Shiplane"
VERSION = "1"

# Modules under shiplane.api.routes with a `router`; each owns one resource.
ROUTERS: tuple[str, ...] = (
    "audit",
    "dashboard",
    "schedules",
    "config_resources",
    "configuration",
    "releases",
    "deployments",
    "approvals",
    "steps",
)


def _error(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(mode="json"),
        headers=headers,
    )


@cache
def resolver() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(ShiplaneError)
    def shiplane_error(exc: ShiplaneError) -> Response[Any]:
        status = status_of(exc)
        if status >= 500:
            logger.warning("request failed", extra={"error": type(exc).__name__})
        headers = {"Retry-After": "5"} if status == HTTPStatus.SERVICE_UNAVAILABLE else None
        return _error(status, body_of(exc), headers)

    @app.exception_handler(UnicodeDecodeError)
    def undecodable_body(exc: UnicodeDecodeError) -> Response[Any]:
        return _error(
            HTTPStatus.BAD_REQUEST,
            ErrorBody(code="InvalidRequest", message="the body is not UTF-8 JSON", field="body"),
        )

    @app.exception_handler(RequestValidationError)
    def invalid_request(exc: RequestValidationError) -> Response[Any]:
        return _error(HTTPStatus.UNPROCESSABLE_ENTITY, validation_body(list(exc.errors())))

    @app.not_found
    def not_found(exc: Exception) -> Response[Any]:
        event = app.current_event
        return _error(
            HTTPStatus.NOT_FOUND,
            ErrorBody(code="NotFound", message=f"no route {event.http_method} {event.path}"),
        )

    for name in ROUTERS:
        module = importlib.import_module(f"shiplane.api.routes.{name}")
        app.include_router(module.router)

    # Swagger UI over this API's own document. (Powertools' enable_swagger would import
    # its OpenAPI models on every cold start; this page builds them on its first view.)
    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> Response[str]:
        return Response(status_code=200, content_type="text/html", body=swagger_page())

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json() -> Response[str]:
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body=openapi_document_json(),
        )

    return app


GATEWAY_REFUSAL = {
    "description": "Forbidden: no valid SigV4 signature (API Gateway's AWS_IAM authorization)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GatewayError"}}},
}


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, with validation errors described as what they are: an
    `ErrorBody` (Powertools documents its own shape, which this API does not answer)."""
    document: dict[str, Any] = (
        resolver()
        .get_openapi_schema(title=TITLE, version=VERSION)
        .model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for path in document.get("paths", {}).values():
        for operation in path.values():
            error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
            answers = operation.setdefault("responses", {})
            if "422" in answers:
                answers["422"]["content"] = error
            answers.setdefault("default", {"description": "An error", "content": error})
            # API Gateway itself refuses a request whose SigV4 signature does not hold,
            # before the function runs, in its own shape.
            answers.setdefault("403", GATEWAY_REFUSAL)
    schemas["GatewayError"] = {
        "title": "GatewayError",
        "type": "object",
        "properties": {"message": {"type": "string"}},
        "required": ["message"],
        "description": "API Gateway's own answer (AWS_IAM refused the request)",
    }
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.setdefault(
        "ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for name, schema in (
        ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        .get("$defs", {})
        .items()
    ):
        schemas.setdefault(name, schema)
    schemas["ErrorBody"].pop("$defs", None)
    document["security"] = [{"sigv4": []}]
    schemas_root = document["components"]
    schemas_root["securitySchemes"] = {
        "sigv4": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "AWS Signature Version 4 (API Gateway AWS_IAM authorization)",
        }
    }
    return document


@cache
def swagger_page() -> str:
    """Swagger UI with its script and style inline (no CDN) and the document embedded
    (`</` escaped so that the document cannot close the page's script tag)."""
    from pathlib import Path

    from aws_lambda_powertools.event_handler.openapi import swagger_ui

    folder = Path(swagger_ui.__file__).parent
    script = (folder / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    style = (folder / "swagger-ui.min.css").read_text(encoding="utf-8")
    spec = openapi_document_json().replace("</", "<\\/")
    return swagger_ui.generate_swagger_html(spec, script, style, "", None)


@cache
def openapi_document_json() -> str:
    import json

    return json.dumps(openapi_document(), separators=(",", ":"))


def handle(event: dict[str, Any], context: LambdaContext, deps: ApiDependencies) -> dict[str, Any]:
    app = resolver()
    app.append_context(deps=deps)
    return app.resolve(event, context)
