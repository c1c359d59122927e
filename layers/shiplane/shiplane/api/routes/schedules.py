"""Scheduled deployments: POST/GET /schedules, GET/DELETE /schedules/{id}.

A schedule is a one-time EventBridge Scheduler schedule that starts the deploy pipeline
with the `deploy` action at its time, and a record listed here with its status
(scheduled / cancelled / fired)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from shiplane.api.context import audit_record, caller
from shiplane.api.deps import ApiDependencies, deps
from shiplane.api.errors import responses
from shiplane.api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, paginate
from shiplane.domain.models import NAME_PATTERN
from shiplane.domain.schedules import ScheduledDeployment, ScheduleRequest, ScheduleStatus
from shiplane.services import schedules as service

router = Router()

IdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{20}$", description="the schedule's id")]


def _dependencies(api: ApiDependencies) -> service.ScheduleDependencies:
    return service.ScheduleDependencies(
        config=api.store,
        releases=api.store,
        schedules=api.store,
        scheduler=api.scheduler,
        pipeline=api.pipeline,
        state_machine_arn=str(getattr(api.pipeline, "state_machine_arn", "")),
        now=api.now,
    )


def _header(name: str) -> str | None:
    for key, value in (router.current_event.headers or {}).items():
        if key.lower() == name.lower() and value:
            return str(value)
    return None


def _json(status: int, schedule: ScheduledDeployment) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=schedule.model_dump(mode="json"),
    )


@router.post(
    "/schedules",
    tags=["schedules"],
    summary="Schedule a deployment (a one-time EventBridge Scheduler schedule)",
    description=(
        "Deploys `release` of `project` to `environment` (and `tenant`) at `at` (UTC, in "
        "the future). A retried call (same body, or the same `Idempotency-Key` header) "
        "answers 200 with the schedule it created."
    ),
    responses={
        **responses(400, 404, 409, 422, ok=201, ok_description="Scheduled"),
        201: {
            "description": "Scheduled",
            "content": {"application/json": {"model": ScheduledDeployment}},
        },
        200: {
            "description": "Scheduled already (a retried call)",
            "content": {"application/json": {"model": ScheduledDeployment}},
        },
    },
)
def create_schedule(body: Annotated[ScheduleRequest, Body()]) -> Response[Any]:
    api = deps(router)
    schedule, created = service.create_schedule(
        body, _dependencies(api), by=caller(router), idempotency_key=_header("Idempotency-Key")
    )
    if created:
        api.store.put_audit(audit_record(router, f"schedule/{schedule.id}", after=schedule))
    return _json(HTTPStatus.CREATED if created else HTTPStatus.OK, schedule)


@router.get(
    "/schedules",
    tags=["schedules"],
    summary="Scheduled deployments, soonest first",
    responses=responses(422),
)
def list_schedules(
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    project: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    status: Annotated[ScheduleStatus | None, Query()] = None,
) -> Page[ScheduledDeployment]:
    dependencies = _dependencies(deps(router))
    found = service.list_schedules(dependencies, project, status)
    page, next_cursor = paginate(found, service.sort_key, cursor, limit)
    return Page[ScheduledDeployment](
        items=[service.observe(s, dependencies) for s in page], next_cursor=next_cursor
    )


@router.get(
    "/schedules/<id>",
    tags=["schedules"],
    summary="One scheduled deployment, with its execution once it has fired",
    responses=responses(404, 422),
)
def get_schedule(id: IdPath) -> ScheduledDeployment:
    return service.get_schedule(id, _dependencies(deps(router)))


@router.delete(
    "/schedules/<id>",
    tags=["schedules"],
    summary="Cancel a scheduled deployment (its schedule is deleted; it never fires)",
    responses=responses(404, 409, 422),
)
def cancel_schedule(id: IdPath) -> ScheduledDeployment:
    api = deps(router)
    before, after, changed = service.cancel_schedule(id, _dependencies(api), by=caller(router))
    if changed:
        api.store.put_audit(audit_record(router, f"schedule/{id}", before=before, after=after))
    return after
