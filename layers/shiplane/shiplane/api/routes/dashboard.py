"""GET /status (where every release stands) and the dashboard pages that show it.

The pages are static files of this package; their script reads the API with relative
paths, so they work under any stage or behind `shiplane dashboard`'s signing proxy."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from shiplane.api.deps import deps
from shiplane.api.errors import responses
from shiplane.domain.models import NAME_PATTERN
from shiplane.services.status import Status, StatusDependencies, drift_by_cell, status

router = Router()

# The page's own script and style only: no inline script, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
}


@cache
def _asset(name: str) -> str:
    return resources.files("shiplane.api").joinpath("static", name).read_text(encoding="utf-8")


def _page(name: str) -> Response[Any]:
    return Response(
        status_code=200,
        content_type=CONTENT_TYPES[name.rsplit(".", 1)[-1]],
        body=_asset(name),
        headers=SECURITY_HEADERS,
    )


@router.get(
    "/status",
    tags=["status"],
    summary="Where every release stands: projects x environments (x tenants)",
    responses=responses(404, 422),
)
def get_status(
    project: Annotated[
        str | None, Query(pattern=NAME_PATTERN, description="only this project")
    ] = None,
) -> Status:
    d = deps(router)
    store = d.store
    result = status(
        StatusDependencies(
            store=store, now=d.now, drift=lambda name: drift_by_cell(store.list_drift(name))
        ),
        project,
    )
    if project is not None and not result.projects:
        from shiplane.errors import NotFoundError

        raise NotFoundError(f"project {project!r} does not exist", field="query.project")
    return result


@router.get("/dashboard", include_in_schema=False)
def dashboard() -> Response[Any]:
    return _page("dashboard.html")


@router.get("/dashboard/app.js", include_in_schema=False)
def dashboard_script() -> Response[Any]:
    return _page("app.js")


@router.get("/dashboard/style.css", include_in_schema=False)
def dashboard_style() -> Response[Any]:
    return _page("style.css")


@router.get("/dashboard/deployments/<project>/<deployment_id>", include_in_schema=False)
def deployment_page(
    project: Annotated[str, Path(pattern=NAME_PATTERN)],
    deployment_id: Annotated[str, Path(max_length=128)],
) -> Response[Any]:
    return _page("deployment.html")
