"""Environments, lifecycles, targets, projects (with their steps, variables and channels)
and tenants, one resource at a time: list, get (with its ETag), create or replace, delete.

Every change is checked against the whole configuration it leads to and written with the
ETag it was read with, together with its audit record (`shiplane.services.configuration`).
A sensitive variable's value is write-only: it goes to SSM and only its reference stays."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from pydantic import BaseModel, Field

from shiplane.api.context import audit_record
from shiplane.api.deps import deps
from shiplane.api.errors import responses
from shiplane.api.pagination import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    Page,
    paginate,
)
from shiplane.domain.base import Model
from shiplane.domain.health import TargetHealth
from shiplane.domain.models import (
    NAME_PATTERN,
    Channel,
    CloudFormationStep,
    EcsServiceStep,
    Environment,
    Lifecycle,
    Name,
    Project,
    Step,
    Target,
    Tenant,
)
from shiplane.domain.variables import Variable
from shiplane.errors import InvalidRequestError, NotFoundError
from shiplane.services import configuration as service
from shiplane.services.configuration import (
    ENVIRONMENT,
    LIFECYCLE,
    PROJECT,
    TARGET,
    TENANT,
    Audit,
    ConfigState,
    Kind,
)
from shiplane.validation import parse

router = Router()

ResourceName = Annotated[str, Path(description="the resource's name")]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="the ETag you read: required to change or delete an existing resource",
    ),
]
IfNoneMatch = Annotated[
    str | None, Header(alias="If-None-Match", description="`*`: only create, never replace")
]

READ = responses(404, 422)
WRITE = responses(400, 404, 412, 422, 428, ok_description="replaced") | {
    201: {"description": "created"}
}
# No body: `content` is given (empty) so that the return type is not documented as one.
DELETE = responses(400, 404, 412, 422, 428) | {204: {"description": "deleted", "content": {}}}
DELETE.pop(200)


# --------------------------------------------------------------------------- bodies
# The name comes from the path; a body may repeat it (it must then be the same).


class EnvironmentBody(Environment):
    name: Name | None = None


class LifecycleBody(Lifecycle):
    name: Name | None = None


class TargetBody(Target):
    name: Name | None = None
    health: dict[str, Any] | None = Field(
        default=None, description="read-only (answered by GET): ignored"
    )


class ProjectBody(Project):
    name: Name | None = None


class TenantBody(Tenant):
    name: Name | None = None


class EcsServiceStepBody(EcsServiceStep):
    name: Name | None = None


class CloudFormationStepBody(CloudFormationStep):
    name: Name | None = None


StepBody = Annotated[EcsServiceStepBody | CloudFormationStepBody, Field(discriminator="type")]


class TargetView(Target):
    """A target with its last health check (none before the first)."""

    health: TargetHealth | None = None


# --------------------------------------------------------------------------- helpers


def _audit() -> Audit:
    def record(resource: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> Any:
        return audit_record(router, resource, before, after)

    return record


def _check_name(name: str, field: str = "path.name") -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise InvalidRequestError(
            f"{field} {name!r} is not a name: lowercase letters, digits and '-', "
            "at most 40 characters, starting with a letter or digit",
            field=field,
        )


def _named_data(
    what: str, name: str, body: BaseModel, field: str = "body.name", drop: tuple[str, ...] = ()
) -> dict[str, Any]:
    data: dict[str, Any] = body.model_dump(mode="json", exclude=set(drop))
    given = data.pop("name", None)
    if given is not None and given != name:
        raise InvalidRequestError(
            f"{field} {given!r} is not the {what} of the path, {name!r} (to rename, create "
            "the new one and delete the old)",
            field=field,
        )
    return data | {"name": name}


def _answer(body: Any, etag: str, status: int = HTTPStatus.OK) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"ETag": etag},
    )


def _known_name(kind: Kind, name: str, field: str = "path.name") -> None:
    """A name that cannot be stored names nothing: not found, without asking DynamoDB
    (whose keys have limits of their own)."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise NotFoundError(f"{kind.name} {name!r} does not exist", field=field)


def _list(kind: Kind, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    models = ConfigState.load(deps(router).store).models(kind)
    return paginate(models, key=lambda m: str(getattr(m, "name")), cursor=cursor, limit=limit)  # noqa: B009


def _get(kind: Kind, name: str) -> Response[Any]:
    _known_name(kind, name)
    stored = deps(router).store.get_config(kind.store, name)
    if stored is None:
        raise NotFoundError(f"{kind.name} {name!r} does not exist", field="path.name")
    return _answer(stored.data, stored.etag)


def _put(
    kind: Kind,
    name: str,
    body: BaseModel,
    if_match: str | None,
    if_none_match: str | None,
    drop: tuple[str, ...] = (),
) -> Response[Any]:
    _check_name(name)
    resource = parse(kind.model, _named_data(kind.name, name, body, drop=drop), kind.name)
    return _write(kind, resource, if_match, if_none_match)


def _write(
    kind: Kind, resource: Model, if_match: str | None, if_none_match: str | None
) -> Response[Any]:
    api = deps(router)
    written = service.put_resource(
        api.store,
        kind,
        resource,
        if_match=if_match,
        if_none_match=if_none_match,
        audit=_audit(),
        secrets=api.secrets,
        secret_token=service.secret_token(api.now()),
    )
    status = HTTPStatus.CREATED if written.created else HTTPStatus.OK
    return _answer(written.resource, written.etag, status)


def _delete(kind: Kind, name: str, if_match: str | None) -> Response[None]:
    _known_name(kind, name)
    service.delete_resource(deps(router).store, kind, name, if_match=if_match, audit=_audit())
    return Response(status_code=HTTPStatus.NO_CONTENT, body=None)


# --------------------------------------------------------------------------- environments


@router.get("/environments", tags=["environments"], summary="Environments", responses=READ)
def list_environments(
    limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[Environment]:
    items, next_cursor = _list(ENVIRONMENT, cursor, limit)
    return Page[Environment](items=items, next_cursor=next_cursor)


@router.get("/environments/<name>", tags=["environments"], summary="An environment", responses=READ)
def get_environment(name: ResourceName) -> Response[Environment]:
    return _get(ENVIRONMENT, name)


@router.put(
    "/environments/<name>",
    tags=["environments"],
    summary="Create or replace an environment",
    responses=WRITE,
)
def put_environment(
    name: ResourceName,
    body: EnvironmentBody,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Environment]:
    return _put(ENVIRONMENT, name, body, if_match, if_none_match)


@router.delete(
    "/environments/<name>", tags=["environments"], summary="Delete an environment", responses=DELETE
)
def delete_environment(name: ResourceName, if_match: IfMatch = None) -> Response[None]:
    return _delete(ENVIRONMENT, name, if_match)


# --------------------------------------------------------------------------- lifecycles


@router.get("/lifecycles", tags=["lifecycles"], summary="Lifecycles", responses=READ)
def list_lifecycles(
    limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[Lifecycle]:
    items, next_cursor = _list(LIFECYCLE, cursor, limit)
    return Page[Lifecycle](items=items, next_cursor=next_cursor)


@router.get("/lifecycles/<name>", tags=["lifecycles"], summary="A lifecycle", responses=READ)
def get_lifecycle(name: ResourceName) -> Response[Lifecycle]:
    return _get(LIFECYCLE, name)


@router.put(
    "/lifecycles/<name>",
    tags=["lifecycles"],
    summary="Create or replace a lifecycle",
    responses=WRITE,
)
def put_lifecycle(
    name: ResourceName,
    body: LifecycleBody,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Lifecycle]:
    return _put(LIFECYCLE, name, body, if_match, if_none_match)


@router.delete(
    "/lifecycles/<name>", tags=["lifecycles"], summary="Delete a lifecycle", responses=DELETE
)
def delete_lifecycle(name: ResourceName, if_match: IfMatch = None) -> Response[None]:
    return _delete(LIFECYCLE, name, if_match)


# --------------------------------------------------------------------------- targets


@router.get("/targets", tags=["targets"], summary="Targets", responses=READ)
def list_targets(limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None) -> Page[Target]:
    items, next_cursor = _list(TARGET, cursor, limit)
    return Page[Target](items=items, next_cursor=next_cursor)


@router.get(
    "/targets/<name>", tags=["targets"], summary="A target, with its last health", responses=READ
)
def get_target(name: ResourceName) -> Response[TargetView]:
    _known_name(TARGET, name)
    api = deps(router)
    stored = api.store.get_config(TARGET.store, name)
    if stored is None:
        raise NotFoundError(f"target {name!r} does not exist", field="path.name")
    health = api.store.get_target_health(name)
    view = stored.data | {"health": health.model_dump(mode="json") if health else None}
    return _answer(view, stored.etag)


@router.put(
    "/targets/<name>", tags=["targets"], summary="Create or replace a target", responses=WRITE
)
def put_target(
    name: ResourceName,
    body: TargetBody,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Target]:
    return _put(TARGET, name, body, if_match, if_none_match, drop=("health",))


@router.delete("/targets/<name>", tags=["targets"], summary="Delete a target", responses=DELETE)
def delete_target(name: ResourceName, if_match: IfMatch = None) -> Response[None]:
    return _delete(TARGET, name, if_match)


# --------------------------------------------------------------------------- tenants


@router.get("/tenants", tags=["tenants"], summary="Tenants", responses=READ)
def list_tenants(limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None) -> Page[Tenant]:
    items, next_cursor = _list(TENANT, cursor, limit)
    return Page[Tenant](items=items, next_cursor=next_cursor)


@router.get("/tenants/<name>", tags=["tenants"], summary="A tenant", responses=READ)
def get_tenant(name: ResourceName) -> Response[Tenant]:
    return _get(TENANT, name)


@router.put(
    "/tenants/<name>",
    tags=["tenants"],
    summary="Create or replace a tenant (sensitive variable values are write-only)",
    responses=WRITE,
)
def put_tenant(
    name: ResourceName,
    body: TenantBody,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Tenant]:
    return _put(TENANT, name, body, if_match, if_none_match)


@router.delete("/tenants/<name>", tags=["tenants"], summary="Delete a tenant", responses=DELETE)
def delete_tenant(name: ResourceName, if_match: IfMatch = None) -> Response[None]:
    return _delete(TENANT, name, if_match)


# --------------------------------------------------------------------------- projects


@router.get("/projects", tags=["projects"], summary="Projects", responses=READ)
def list_projects(limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None) -> Page[Project]:
    items, next_cursor = _list(PROJECT, cursor, limit)
    return Page[Project](items=items, next_cursor=next_cursor)


@router.get("/projects/<name>", tags=["projects"], summary="A project", responses=READ)
def get_project(name: ResourceName) -> Response[Project]:
    return _get(PROJECT, name)


@router.put(
    "/projects/<name>",
    tags=["projects"],
    summary="Create or replace a project (sensitive variable values are write-only)",
    responses=WRITE,
)
def put_project(
    name: ResourceName,
    body: ProjectBody,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Project]:
    return _put(PROJECT, name, body, if_match, if_none_match)


@router.delete("/projects/<name>", tags=["projects"], summary="Delete a project", responses=DELETE)
def delete_project(name: ResourceName, if_match: IfMatch = None) -> Response[None]:
    return _delete(PROJECT, name, if_match)


# --------------------------------------------------------------------------- project parts
# Parts of a project: read with the project's ETag, changed with it as If-Match.


def _project(name: str) -> tuple[Project, str, dict[str, Any]]:
    _known_name(PROJECT, name)
    stored = deps(router).store.get_config(PROJECT.store, name)
    if stored is None:
        raise NotFoundError(f"project {name!r} does not exist", field="path.name")
    return Project.model_validate(stored.data), stored.etag, stored.data


def _write_project(
    name: str, data: dict[str, Any], if_match: str | None
) -> tuple[dict[str, Any], str, bool]:
    api = deps(router)
    project = parse(Project, data, "project")
    written = service.put_resource(
        api.store,
        PROJECT,
        project,
        if_match=if_match,
        if_none_match=None,
        audit=_audit(),
        secrets=api.secrets,
        secret_token=service.secret_token(api.now()),
    )
    return written.resource, written.etag, written.changed


@router.get(
    "/projects/<name>/steps",
    tags=["projects"],
    summary="A project's steps, in the order they deploy",
    responses=READ,
)
def list_steps(
    name: ResourceName, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[Step]:
    project, _, _ = _project(name)
    page, next_cursor = paginate(
        list(enumerate(project.steps)), key=lambda p: f"{p[0]:04d}", cursor=cursor, limit=limit
    )
    return Page[Step](items=[step for _, step in page], next_cursor=next_cursor)


@router.get(
    "/projects/<name>/steps/<step>", tags=["projects"], summary="A project's step", responses=READ
)
def get_step(
    name: ResourceName, step: Annotated[str, Path(description="the step's name")]
) -> Response[Step]:
    project, etag, _ = _project(name)
    try:
        found = project.step(step)
    except KeyError:
        raise NotFoundError(f"project {name!r} has no step {step!r}", field="path.step") from None
    return _answer(found.model_dump(mode="json"), etag)


@router.put(
    "/projects/<name>/steps/<step>",
    tags=["projects"],
    summary="Create or replace a step (If-Match: the project's ETag)",
    responses=WRITE,
)
def put_step(
    name: ResourceName,
    step: Annotated[str, Path(description="the step's name")],
    body: Annotated[StepBody, Body()],
    if_match: IfMatch = None,
) -> Response[Step]:
    _check_name(step, "path.step")
    _, _, data = _project(name)
    step_data = _named_data("step", step, body)
    steps = list(data["steps"])
    index = next((i for i, s in enumerate(steps) if s["name"] == step), None)
    if index is None:
        steps.append(step_data)
    else:
        steps[index] = step_data
    written, etag, _ = _write_project(name, data | {"steps": steps}, if_match)
    saved = next(s for s in written["steps"] if s["name"] == step)
    return _answer(saved, etag, HTTPStatus.CREATED if index is None else HTTPStatus.OK)


@router.get(
    "/projects/<name>/variables",
    tags=["projects"],
    summary="A project's variables (sensitive values are never answered)",
    responses=READ,
)
def get_variables(name: ResourceName) -> Response[list[Variable]]:
    _, etag, data = _project(name)
    return _answer(data["variables"], etag)


@router.put(
    "/projects/<name>/variables",
    tags=["projects"],
    summary="Replace a project's variables (If-Match: the project's ETag); a sensitive "
    "value is stored in SSM and only its reference kept",
    responses=WRITE,
)
def put_variables(
    name: ResourceName, variables: Annotated[list[Variable], Body()], if_match: IfMatch = None
) -> Response[list[Variable]]:
    _, _, data = _project(name)
    replaced = [v.model_dump(mode="json") for v in variables]
    written, etag, _ = _write_project(name, data | {"variables": replaced}, if_match)
    return _answer(written["variables"], etag)


@router.get(
    "/projects/<name>/channels", tags=["projects"], summary="A project's channels", responses=READ
)
def get_channels(name: ResourceName) -> Response[list[Channel]]:
    _, etag, data = _project(name)
    return _answer(data["channels"], etag)


@router.put(
    "/projects/<name>/channels",
    tags=["projects"],
    summary="Replace a project's channels (If-Match: the project's ETag)",
    responses=WRITE,
)
def put_channels(
    name: ResourceName, channels: Annotated[list[Channel], Body()], if_match: IfMatch = None
) -> Response[list[Channel]]:
    _, _, data = _project(name)
    replaced = [c.model_dump(mode="json") for c in channels]
    written, etag, _ = _write_project(name, data | {"channels": replaced}, if_match)
    return _answer(written["channels"], etag)
