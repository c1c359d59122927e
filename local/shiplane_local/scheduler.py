"""EventBridge Scheduler, fired in-process.

moto's CloudFormation cannot create `AWS::Scheduler::*` resources (`sam_stack` sets them
aside), and moto's scheduler backend stores schedules without ever firing them.
`LocalScheduler` does both halves:

* the template's schedule groups are created in moto's scheduler backend (so the API can
  create one-time schedules in them), and the template's recurring schedules (SAM
  `ScheduleV2` events become `AWS::Scheduler::Schedule` resources) are kept with their
  targets resolved to the functions and state machines of the stack;
* `tick(now)` fires what is due at `now`: a one-time schedule read from moto's backend
  (`at(...) <= now`, once, then deleted when its ActionAfterCompletion says DELETE) and a
  recurring `rate(...)` schedule when a period has elapsed since it last fired (the first
  period counts from the start of the local cloud).

A fire starts the target as Scheduler would: a Lambda invocation (asynchronous), a state
machine execution, or the `aws-sdk:sfn:startExecution` universal target (whose input
names the execution, so a fire repeated starts nothing twice). A background thread ticks
with the wall clock; tests call `tick` with explicit times and may run without it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from moto.awslambda.utils import get_backend as lambda_backend
from moto.scheduler.models import scheduler_backends
from moto.stepfunctions.responses import get_backend as stepfunctions_backend
from moto.utilities.arns import parse_arn

from shiplane.domain.schedules import parse_at, parse_rate

from .activity import Activity
from .lambda_runtime import LambdaRuntime

log = logging.getLogger("shiplane_local")

SCHEDULE = "AWS::Scheduler::Schedule"
SCHEDULE_GROUP = "AWS::Scheduler::ScheduleGroup"
_UNIVERSAL_START_EXECUTION = re.compile(r"^arn:aws[a-z-]*:scheduler:::aws-sdk:sfn:startExecution$")


@dataclass
class RecurringSchedule:
    """A template schedule: what it starts, how often, and when it last fired."""

    logical_id: str
    name: str
    expression: str
    period: timedelta
    target_arn: str
    input: Any
    enabled: bool
    last_fired: datetime  # the start of the local cloud until it first fires
    role_arn: str = ""  # the role Scheduler acts as to start the target

    @property
    def next_due(self) -> datetime:
        return self.last_fired + self.period


@dataclass(frozen=True)
class StackResource:
    logical_id: str
    resource_type: str
    physical_id: str


class LocalScheduler:
    """The template's schedules and the API's one-time schedules, fired on `tick`."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        activity: Activity,
        *,
        account_id: str,
        region: str,
        interval: float | None = 1.0,
    ) -> None:
        self.runtime = runtime
        self.activity = activity
        self.account_id = account_id
        self.region = region
        self.interval = interval
        self.recurring: dict[str, RecurringSchedule] = {}
        self.groups: list[str] = []
        self.fired: list[str] = []  # what each fire started, in order (for tests and logs)
        self._done_one_time: set[str] = set()  # ARNs fired and kept (no DELETE after)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- installation --------------------------------------------------------------------
    def install(
        self,
        dropped: dict[str, dict[str, Any]],
        resources: list[StackResource],
        pseudo: dict[str, str],
        now: datetime,
    ) -> None:
        """Create the template's schedule groups; keep its recurring schedules."""
        resolver = _Resolver(resources, pseudo, self.account_id, self.region)
        backend = scheduler_backends[self.account_id][self.region]
        for logical_id, resource in sorted(dropped.items()):
            props = resource.get("Properties") or {}
            if resource.get("Type") == SCHEDULE_GROUP:
                name = str(resolver.resolve(props.get("Name", logical_id)))
                if name not in backend.schedule_groups:
                    backend.create_schedule_group(name, tags=[])
                self.groups.append(name)
                log.info("scheduler: schedule group %s created", name)
        for logical_id, resource in sorted(dropped.items()):
            if resource.get("Type") != SCHEDULE:
                continue
            try:
                self._keep(logical_id, resource.get("Properties") or {}, resolver, now)
            except Exception as exc:  # one odd schedule must not stop the local cloud
                log.warning("scheduler: %s is not fired locally: %s", logical_id, exc)

    def _keep(
        self, logical_id: str, props: dict[str, Any], resolver: _Resolver, now: datetime
    ) -> None:
        expression = str(resolver.resolve(props.get("ScheduleExpression", "")))
        period = parse_rate(expression)
        if period is None:
            # cron() is not evaluated locally; say so rather than never firing silently.
            log.warning("scheduler: %s (%s) is not fired locally", logical_id, expression)
            return
        target = props.get("Target") or {}
        raw_input = resolver.resolve(target.get("Input"))
        self.recurring[logical_id] = RecurringSchedule(
            logical_id=logical_id,
            name=str(resolver.resolve(props.get("Name") or logical_id)),
            expression=expression,
            period=period,
            target_arn=str(resolver.resolve(target.get("Arn"))),
            input=json.loads(raw_input) if isinstance(raw_input, str) else (raw_input or {}),
            enabled=str(resolver.resolve(props.get("State", "ENABLED"))) == "ENABLED",
            last_fired=now,
            role_arn=str(resolver.resolve(target.get("RoleArn")) or ""),
        )
        log.info(
            "scheduler: %s %s -> %s",
            logical_id,
            expression,
            self.recurring[logical_id].target_arn,
        )

    def job(self, target_logical_id: str) -> RecurringSchedule:
        """The recurring schedule whose target is the resource `target_logical_id`."""
        for schedule in self.recurring.values():
            if schedule.logical_id.startswith(target_logical_id):
                return schedule
        raise KeyError(f"no recurring schedule targets {target_logical_id}")

    # -- the clock -----------------------------------------------------------------------
    def start(self) -> None:
        if self.interval is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="shiplane-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            try:
                self.tick(datetime.now(UTC))
            except Exception:  # the clock must keep ticking; the failure is logged
                log.exception("scheduler: tick failed")

    # -- firing --------------------------------------------------------------------------
    def tick(self, now: datetime) -> list[str]:
        """Fire every schedule due at `now`; return what was started."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        started: list[str] = []
        with self._lock:
            started += self._tick_one_time(now)
            for schedule in list(self.recurring.values()):
                if schedule.enabled and now >= schedule.next_due:
                    schedule.last_fired = now
                    name = f"{schedule.name}-{now.strftime('%Y%m%dT%H%M%S')}"[:80]
                    started.append(
                        self._fire(
                            schedule.name,
                            schedule.target_arn,
                            schedule.input,
                            name,
                            schedule.role_arn,
                        )
                    )
            self.fired.extend(started)
        return started

    def _tick_one_time(self, now: datetime) -> list[str]:
        started = []
        backend = scheduler_backends[self.account_id][self.region]
        for group in list(backend.schedule_groups.values()):
            for schedule in list(group.schedules.values()):
                at = parse_at(schedule.schedule_expression)
                if at is None or schedule.state != "ENABLED" or schedule.arn in self._done_one_time:
                    continue
                zone = schedule.schedule_expression_timezone or "UTC"
                if zone != "UTC":
                    at = at.replace(tzinfo=ZoneInfo(zone))
                if at > now:
                    continue
                target = schedule.target
                payload = json.loads(target["Input"]) if target.get("Input") else {}
                started.append(
                    self._fire(
                        schedule.name,
                        target["Arn"],
                        payload,
                        schedule.name,
                        str(target.get("RoleArn") or ""),
                    )
                )
                if schedule.action_after_completion == "DELETE":
                    group.delete_schedule(schedule.name)
                    log.info("scheduler: one-time schedule %s deleted after firing", schedule.name)
                else:
                    self._done_one_time.add(schedule.arn)
        return started

    def _fire(
        self, schedule: str, arn: str, payload: Any, execution_name: str, role_arn: str = ""
    ) -> str:
        """Start the target as the schedule's role; return a line saying what started."""
        from .iam.services import authorize_service_call

        try:
            if _UNIVERSAL_START_EXECUTION.match(arn):
                machine = str(payload["StateMachineArn"])
                name = str(payload.get("Name") or execution_name)
                _allowed(authorize_service_call(role_arn, "states:StartExecution", machine))
                return self._start_execution(schedule, machine, name, payload.get("Input", "{}"))
            parsed = parse_arn(arn)
            if parsed.service == "states":
                _allowed(authorize_service_call(role_arn, "states:StartExecution", arn))
                return self._start_execution(schedule, arn, execution_name, json.dumps(payload))
            if parsed.service == "lambda":
                _allowed(authorize_service_call(role_arn, "lambda:InvokeFunction", arn))
                fn = lambda_backend(parsed.account, parsed.region).get_function(arn)
                self.activity.spawn(
                    "scheduled invocation",
                    self.runtime._run_async,
                    fn,
                    payload,
                    name=f"schedule-{fn.function_name}",
                )
                log.info("scheduler: %s invoked lambda %s", schedule, fn.function_name)
                return f"{schedule}: lambda {fn.function_name}"
            raise ValueError(f"target {arn} is not supported locally")
        except Exception as exc:
            message = f"schedule {schedule}: starting {arn} failed: {type(exc).__name__}: {exc}"
            log.warning("scheduler: %s", message)
            self.activity.errors.append(message)
            return f"{schedule}: failed"

    def _start_execution(self, schedule: str, machine: str, name: str, document: str) -> str:
        parsed = parse_arn(machine)
        backend = stepfunctions_backend(parsed.account, parsed.region)
        try:
            backend.start_execution(machine, name=name, execution_input=document)
        except Exception as exc:
            if type(exc).__name__ != "ExecutionAlreadyExists":
                raise
            log.info("scheduler: %s: execution %s exists already, nothing started", schedule, name)
            return f"{schedule}: execution {name} (already started)"
        log.info("scheduler: %s started execution %s", schedule, name)
        return f"{schedule}: execution {name}"


def _allowed(denial: Any) -> None:
    """Scheduler fails the target's invocation when its role may not start it."""
    if denial is not None:
        raise PermissionError(f"AccessDenied: {denial.message}")


class _Resolver:
    """Enough of CloudFormation's intrinsic functions for the schedules' properties."""

    def __init__(
        self, resources: list[StackResource], pseudo: dict[str, str], account: str, region: str
    ) -> None:
        self.resources = {r.logical_id: r for r in resources}
        self.pseudo = pseudo
        self.account = account
        self.region = region

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.resources:
            return self.resources[name].physical_id
        raise KeyError(f"cannot resolve Ref {name}")

    def arn(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        if resource.resource_type == "AWS::Lambda::Function":
            return f"arn:aws:lambda:{self.region}:{self.account}:function:{resource.physical_id}"
        if resource.resource_type == "AWS::IAM::Role":
            return f"arn:aws:iam::{self.account}:role/{resource.physical_id}"
        return resource.physical_id  # state machines, queues...: the ARN is the physical id

    def get_att(self, logical_id: str, attribute: str) -> str:
        if attribute != "Arn":
            raise KeyError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute}")
        return self.arn(logical_id)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(str(value))
            if key == "Fn::GetAtt":
                parts = value if isinstance(value, list) else str(value).split(".", 1)
                return self.get_att(str(parts[0]), str(parts[1]))
            if key == "Fn::Sub":
                text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})

                def sub(match: re.Match[str]) -> str:
                    name = match.group(1)
                    if name in variables:
                        return str(self.resolve(variables[name]))
                    if "." in name:
                        logical_id, attribute = name.split(".", 1)
                        return self.get_att(logical_id, attribute)
                    return self.ref(name)

                return re.sub(r"\$\{([^!}][^}]*)\}", sub, str(text))
            if key == "Fn::Join":
                separator, items = value
                return str(separator).join(str(self.resolve(i)) for i in items)
        if isinstance(node, dict):
            return {k: self.resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        return node
