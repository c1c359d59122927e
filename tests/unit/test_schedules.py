"""Scheduled deployments: the schedule arithmetic, and the service with fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shiplane.domain.schedules import (
    ScheduleRequest,
    ScheduleStatus,
    at_expression,
    parse_at,
    parse_rate,
)
from shiplane.errors import ConflictError, InvalidRequestError, NotFoundError
from shiplane.services import schedules as service
from tests.unit.fakes_schedules import NOW, FakePipeline, FakeScheduler, FakeStore, release


@pytest.fixture
def store() -> FakeStore:
    found = FakeStore()
    found.add_release(release("1.0.0"))
    return found


@pytest.fixture
def scheduler() -> FakeScheduler:
    return FakeScheduler()


@pytest.fixture
def pipeline() -> FakePipeline:
    return FakePipeline()


@pytest.fixture
def deps(
    store: FakeStore, scheduler: FakeScheduler, pipeline: FakePipeline
) -> service.ScheduleDependencies:
    return service.ScheduleDependencies(
        config=store,
        releases=store,
        schedules=store,
        scheduler=scheduler,
        pipeline=pipeline,
        state_machine_arn=pipeline.ARN,
        now=lambda: NOW,
    )


def request(**changes: object) -> ScheduleRequest:
    body = {
        "project": "web",
        "release": "1.0.0",
        "environment": "prod",
        "at": NOW + timedelta(hours=14),
    }
    return ScheduleRequest.model_validate(body | changes)


# ----------------------------------------------------------------------------- domain


def test_at_is_read_as_utc_to_the_second() -> None:
    naive = request(at=datetime(2026, 11, 29, 2, 0, 0, 123456))
    assert naive.at == datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    offset = request(at=datetime(2026, 11, 29, 3, 0, tzinfo=timezone(timedelta(hours=1))))
    assert offset.at == datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    assert at_expression(offset.at) == "at(2026-11-29T02:00:00)"
    assert parse_at(at_expression(offset.at)) == offset.at


def test_schedule_expressions() -> None:
    assert parse_rate("rate(15 minutes)") == timedelta(minutes=15)
    assert parse_rate("rate(1 hour)") == timedelta(hours=1)
    assert parse_rate("rate(1 day)") == timedelta(days=1)
    assert parse_rate("cron(0 2 * * ? *)") is None
    assert parse_rate("rate(0 minutes)") is None
    assert parse_at("rate(1 day)") is None


# ----------------------------------------------------------------------------- create


def test_a_schedule_starts_the_pipeline_with_the_deploy_action_at_its_time(
    deps: service.ScheduleDependencies, scheduler: FakeScheduler, pipeline: FakePipeline
) -> None:
    schedule, created = service.create_schedule(request(), deps, by="arn:aws:iam::1:user/ana")
    assert created
    assert schedule.status is ScheduleStatus.SCHEDULED
    target = scheduler.schedules[schedule.schedule_name]
    assert target["at"] == NOW + timedelta(hours=14)
    assert target["state_machine_arn"] == pipeline.ARN
    assert target["execution_name"] == f"schedule-{schedule.id}"
    assert target["payload"] == {
        "action": "deploy",
        "project": "web",
        "release": "1.0.0",
        "environment": "prod",
        "tenant": "untenanted",
        "requested_by": f"schedule {schedule.id} (arn:aws:iam::1:user/ana)",
    }


def test_a_retried_create_returns_the_same_schedule_and_schedules_nothing_more(
    deps: service.ScheduleDependencies, scheduler: FakeScheduler
) -> None:
    first, created = service.create_schedule(request(), deps, by="ana")
    again, created_again = service.create_schedule(request(), deps, by="ana")
    assert created and not created_again
    assert again == first
    assert len(scheduler.schedules) == 1
    keyed, _ = service.create_schedule(request(), deps, by="ana", idempotency_key="k-1")
    assert keyed.id != first.id
    with pytest.raises(ConflictError) as info:
        service.create_schedule(request(environment="test"), deps, by="ana", idempotency_key="k-1")
    assert info.value.details["field"] == "header.Idempotency-Key"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"project": "nope"}, "body.project"),
        ({"release": "9.9.9"}, "body.release"),
        ({"environment": "staging"}, "body.environment"),
        ({"tenant": "acme"}, "body.tenant"),
    ],
)
def test_unknown_names_are_refused_naming_the_field(
    deps: service.ScheduleDependencies,
    scheduler: FakeScheduler,
    changes: dict[str, str],
    field: str,
) -> None:
    with pytest.raises(NotFoundError) as info:
        service.create_schedule(request(**changes), deps, by="ana")
    assert info.value.details["field"] == field
    assert scheduler.schedules == {}


def test_a_time_in_the_past_is_refused(
    deps: service.ScheduleDependencies, scheduler: FakeScheduler
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        service.create_schedule(request(at=NOW - timedelta(minutes=1)), deps, by="ana")
    assert info.value.details["field"] == "body.at"
    assert scheduler.schedules == {}


def test_a_failed_record_write_leaves_no_schedule_behind(
    deps: service.ScheduleDependencies, store: FakeStore, scheduler: FakeScheduler
) -> None:
    store.fail_put_schedule = True
    with pytest.raises(RuntimeError):
        service.create_schedule(request(), deps, by="ana")
    assert scheduler.schedules == {}


# ----------------------------------------------------------------------------- lifecycle


def test_a_schedule_is_fired_once_its_execution_exists(
    deps: service.ScheduleDependencies,
    store: FakeStore,
    scheduler: FakeScheduler,
    pipeline: FakePipeline,
) -> None:
    schedule, _ = service.create_schedule(request(), deps, by="ana")
    later = service.ScheduleDependencies(**{**deps.__dict__, "now": lambda: schedule.at})
    assert service.get_schedule(schedule.id, later).status is ScheduleStatus.SCHEDULED
    scheduler.fire(schedule.schedule_name, pipeline)
    fired = service.get_schedule(schedule.id, later)
    assert fired.status is ScheduleStatus.FIRED
    assert fired.execution_status == "SUCCEEDED"
    assert store.schedules[schedule.id].status is ScheduleStatus.FIRED
    with pytest.raises(ConflictError):
        service.cancel_schedule(schedule.id, later, by="ana")


def test_cancel_deletes_the_schedule_once(
    deps: service.ScheduleDependencies, scheduler: FakeScheduler
) -> None:
    schedule, _ = service.create_schedule(request(), deps, by="ana")
    before, after, changed = service.cancel_schedule(schedule.id, deps, by="bob")
    assert changed
    assert before.status is ScheduleStatus.SCHEDULED
    assert after.status is ScheduleStatus.CANCELLED
    assert after.cancelled_by == "bob"
    assert scheduler.schedules == {}
    _, again, changed_again = service.cancel_schedule(schedule.id, deps, by="bob")
    assert not changed_again and again.status is ScheduleStatus.CANCELLED
    with pytest.raises(ConflictError):  # the same request again needs a new key
        service.create_schedule(request(), deps, by="ana")


def test_cancel_of_an_unknown_schedule_is_not_found(deps: service.ScheduleDependencies) -> None:
    with pytest.raises(NotFoundError):
        service.cancel_schedule("0" * 20, deps, by="bob")


def test_a_schedule_that_fired_while_being_cancelled_is_reported_fired(
    deps: service.ScheduleDependencies,
    store: FakeStore,
    scheduler: FakeScheduler,
    pipeline: FakePipeline,
) -> None:
    schedule, _ = service.create_schedule(request(), deps, by="ana")
    scheduler.fire(schedule.schedule_name, pipeline)  # before its time is seen as passed
    with pytest.raises(ConflictError):
        service.cancel_schedule(schedule.id, deps, by="bob")
    assert store.schedules[schedule.id].status is ScheduleStatus.FIRED


def test_list_filters_and_orders_by_time(deps: service.ScheduleDependencies) -> None:
    late, _ = service.create_schedule(request(at=NOW + timedelta(days=2)), deps, by="ana")
    soon, _ = service.create_schedule(request(at=NOW + timedelta(hours=1)), deps, by="ana")
    service.cancel_schedule(late.id, deps, by="ana")
    assert [s.id for s in service.list_schedules(deps)] == [soon.id, late.id]
    assert [s.id for s in service.list_schedules(deps, status=ScheduleStatus.CANCELLED)] == [
        late.id
    ]
    assert service.list_schedules(deps, project="other") == []
