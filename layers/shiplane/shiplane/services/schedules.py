"""Scheduled deployments: "deploy release X to prod at 02:00 UTC".

Each is a one-time EventBridge Scheduler schedule (deleted after it fires) that starts the
deploy pipeline with the `deploy` action under a name derived from the schedule, and a
record in DynamoDB that lists it with its status. "fired" is observed, not reported: a
schedule whose execution exists has fired."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shiplane.domain.models import UNTENANTED
from shiplane.domain.schedules import (
    ScheduledDeployment,
    ScheduleRequest,
    ScheduleStatus,
    deploy_action,
    execution_name,
    schedule_id,
    schedule_name,
)
from shiplane.errors import ConflictError, InvalidRequestError, NotFoundError
from shiplane.observability import logger
from shiplane.ports import (
    ConfigStore,
    OneTimeScheduler,
    PipelineExecutions,
    ReleaseStore,
    ScheduleStore,
)


@dataclass
class ScheduleDependencies:
    config: ConfigStore
    releases: ReleaseStore
    schedules: ScheduleStore
    scheduler: OneTimeScheduler
    pipeline: PipelineExecutions
    state_machine_arn: str
    now: Callable[[], datetime]


def create_schedule(
    request: ScheduleRequest,
    deps: ScheduleDependencies,
    *,
    by: str,
    idempotency_key: str | None = None,
) -> tuple[ScheduledDeployment, bool]:
    """(the schedule, created now). A retried call gets the schedule it created."""
    sid = schedule_id(request, idempotency_key)
    existing = deps.schedules.get_schedule(sid)
    if existing is not None:
        return _replayed(existing, request, idempotency_key), False
    _validate(request, deps)
    schedule = ScheduledDeployment(
        id=sid,
        project=request.project,
        release=request.release,
        environment=request.environment,
        tenant=request.tenant,
        at=request.at,
        schedule_name=schedule_name(sid),
        execution_name=execution_name(sid),
        execution_arn=deps.pipeline.execution_arn(execution_name(sid)),
        created_at=deps.now(),
        created_by=by,
    )
    # The schedule first: a record without a schedule would say "scheduled" and never fire.
    deps.scheduler.create_pipeline_start(
        schedule.schedule_name,
        schedule.at,
        deps.state_machine_arn,
        schedule.execution_name,
        deploy_action(schedule),
        description=(
            f"deploy {schedule.project} {schedule.release} to {schedule.environment}"
            + (f" for {schedule.tenant}" if schedule.tenant != UNTENANTED else "")
        ),
    )
    try:
        written = deps.schedules.put_schedule(schedule)
    except Exception:
        deps.scheduler.delete(schedule.schedule_name)  # nothing half-written
        raise
    if not written:  # a concurrent retry of the same call wrote it first
        current = deps.schedules.get_schedule(sid)
        return (current or schedule), False
    logger.info(
        "deployment scheduled",
        extra={"schedule": sid, "project": schedule.project, "at": schedule.at.isoformat()},
    )
    return schedule, True


def _replayed(
    existing: ScheduledDeployment, request: ScheduleRequest, idempotency_key: str | None
) -> ScheduledDeployment:
    if not existing.same_request(request):
        raise ConflictError(
            f"Idempotency-Key {idempotency_key!r} was used for another schedule ({existing.id})",
            field="header.Idempotency-Key",
        )
    if existing.status is not ScheduleStatus.SCHEDULED:
        raise ConflictError(
            f"the same schedule ({existing.id}) was {existing.status.value} already; send a "
            "new Idempotency-Key header to schedule it again",
            field="header.Idempotency-Key",
        )
    return existing


def _validate(request: ScheduleRequest, deps: ScheduleDependencies) -> None:
    if request.at <= deps.now():
        raise InvalidRequestError(
            f"at {request.at.isoformat()} is not in the future", field="body.at"
        )
    try:
        deps.config.get_project(request.project)
    except NotFoundError:
        raise NotFoundError(
            f"project {request.project!r} does not exist", field="body.project"
        ) from None
    if deps.releases.get_release(request.project, request.release) is None:
        raise NotFoundError(
            f"project {request.project!r} has no release {request.release!r}",
            field="body.release",
        )
    if request.environment not in {e.name for e in deps.config.list_environments()}:
        raise NotFoundError(
            f"environment {request.environment!r} does not exist", field="body.environment"
        )
    if request.tenant != UNTENANTED and request.tenant not in {
        t.name for t in deps.config.list_tenants()
    }:
        raise NotFoundError(f"tenant {request.tenant!r} does not exist", field="body.tenant")


def observe(schedule: ScheduledDeployment, deps: ScheduleDependencies) -> ScheduledDeployment:
    """The schedule as it is now: once its execution exists it has fired (recorded, so
    the next look needs no Scheduler); a fired one shows its execution's status. The
    execution, not the clock, decides: Scheduler may fire a little late."""
    arn = schedule.execution_arn or deps.pipeline.execution_arn(schedule.execution_name)
    if schedule.status is ScheduleStatus.FIRED:
        return schedule.model_copy(update={"execution_status": deps.pipeline.status(arn)})
    if schedule.status is not ScheduleStatus.SCHEDULED:
        return schedule
    status = deps.pipeline.status(arn)
    if status is None:
        return schedule
    fired = schedule.model_copy(update={"status": ScheduleStatus.FIRED, "execution_arn": arn})
    deps.schedules.update_schedule(fired, ScheduleStatus.SCHEDULED)
    return fired.model_copy(update={"execution_status": status})


def get_schedule(sid: str, deps: ScheduleDependencies) -> ScheduledDeployment:
    schedule = deps.schedules.get_schedule(sid)
    if schedule is None:
        raise NotFoundError(f"schedule {sid!r} does not exist", field="path.id")
    return observe(schedule, deps)


def list_schedules(
    deps: ScheduleDependencies,
    project: str | None = None,
    status: ScheduleStatus | None = None,
) -> list[ScheduledDeployment]:
    """Every schedule (the stored status; `observe` the ones shown), soonest first."""
    found = [
        s
        for s in deps.schedules.list_schedules()
        if (project is None or s.project == project) and (status is None or s.status is status)
    ]
    return sorted(found, key=sort_key)


def sort_key(schedule: ScheduledDeployment) -> str:
    return f"{schedule.at.isoformat()}#{schedule.id}"


def cancel_schedule(
    sid: str, deps: ScheduleDependencies, *, by: str
) -> tuple[ScheduledDeployment, ScheduledDeployment, bool]:
    """(before, after, changed now). Cancelling a cancelled schedule changes nothing;
    a fired one cannot be cancelled (cancel its deployment instead)."""
    before = get_schedule(sid, deps)
    if before.status is ScheduleStatus.CANCELLED:
        return before, before, False
    if before.status is ScheduleStatus.FIRED:
        raise _fired(before)
    # Gone from the Scheduler already: it may have fired a moment ago.
    gone = not deps.scheduler.delete(before.schedule_name)
    if gone and deps.pipeline.status(before.execution_arn) is not None:
        fired = before.model_copy(update={"status": ScheduleStatus.FIRED})
        deps.schedules.update_schedule(fired, ScheduleStatus.SCHEDULED)
        raise _fired(fired)
    after = before.model_copy(
        update={
            "status": ScheduleStatus.CANCELLED,
            "cancelled_at": deps.now(),
            "cancelled_by": by,
        }
    )
    if not deps.schedules.update_schedule(after, ScheduleStatus.SCHEDULED):
        raise ConflictError(f"schedule {sid!r} changed while it was being cancelled; retry")
    logger.info("scheduled deployment cancelled", extra={"schedule": sid})
    return before, after, True


def _fired(schedule: ScheduledDeployment) -> ConflictError:
    return ConflictError(
        f"schedule {schedule.id!r} has fired already (execution {schedule.execution_name}); "
        "cancel the deployment instead",
        field="path.id",
    )
