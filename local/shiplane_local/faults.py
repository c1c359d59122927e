"""Fault plans: the failures AWS can hand Shiplane, injected on demand in the local cloud.

A plan (YAML, validated with pydantic) lists faults of three kinds:

- `function` + `fail_after_calls` (+ `times`): the function's invocation crashes right after
  its Nth AWS call has completed (so a write has taken effect), `times` times in all. The
  crash is a `BaseException` the handler cannot catch, reported as Lambda reports a runtime
  that exited (`Runtime.ExitError`, `x-amz-function-error: Unhandled`).
- `service` (+ `operation`) + `throttle`: that fraction of the calls is answered with the
  service's own throttling error, at the status and in the protocol botocore expects, so
  its retry handlers classify it as a throttle (`throttling_error` below, from the
  service's model and AWS's common errors).
- `events`: by `source`, drop, duplicate (same event id, as at-least-once delivery does),
  delay or reorder (hold an event and release it after the next one) the service events
  the local cloud puts on its buses.

Every decision draws from one seeded random generator, and every fault that fires is
recorded (`Faults.fired()`), so a test can assert that what it planned happened.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from .activity import Activity
from .clock import Clock
from .invocation import Invocation, current

log = logging.getLogger("shiplane_local")

# The header the in-process botocore hook puts on requests made inside an invocation, so
# the server-side middleware knows which function called (AWS knows it from the role).
FUNCTION_HEADER = "X-Shiplane-Local-Function"
_FUNCTION_ENVIRON = "HTTP_" + FUNCTION_HEADER.upper().replace("-", "_")
# A service's integration calls made with its role (Step Functions' Lambda tasks).
CALLER_HEADER = "X-Shiplane-Local-Caller"
_CALLER_ENVIRON = "HTTP_" + CALLER_HEADER.upper().replace("-", "_")


# --------------------------------------------------------------------------------------
# The plan


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CrashFault(_Strict):
    function: str = Field(min_length=1, description="the function's folder under functions/")
    fail_after_calls: int = Field(ge=0, description="crash after this many AWS calls (0: before)")
    times: int = Field(default=1, ge=1, description="how many invocations crash in all")
    error: str = Field(default="Runtime.ExitError", min_length=1)


class ThrottleFault(_Strict):
    service: str = Field(min_length=1, description="boto3's client name, e.g. sts, dynamodb")
    operation: str | None = Field(default=None, description="e.g. AssumeRole; none: every one")
    throttle: float = Field(gt=0, le=1, description="the fraction of calls throttled")
    callers: Literal["functions", "stepfunctions", "all"] = Field(
        default="functions",
        description="functions: calls made by Shiplane's functions; stepfunctions: Step "
        "Functions' service integrations (lambda:invoke, aws-sdk tasks); all: every caller",
    )
    function: str | None = Field(default=None, description="only calls by this function")
    times: int | None = Field(default=None, ge=1, description="at most this many throttles")


class EventFaultSpec(_Strict):
    source: str = Field(min_length=1, description="e.g. aws.cloudformation, aws.ecs")
    detail_type: str | None = Field(default=None, alias="detail-type")
    drop: float = Field(default=0, ge=0, le=1)
    duplicate: float = Field(default=0, ge=0, le=1)
    reorder: bool = False
    delay_seconds: float = Field(default=0, ge=0)
    hold_seconds: float = Field(
        default=30, gt=0, description="reorder: the longest an event waits for a successor"
    )


class EventFault(_Strict):
    events: EventFaultSpec


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("service", "events", "function"):  # a throttle may name a function
            if key in value:
                return key
        return None
    kinds: dict[type, str] = {
        CrashFault: "function",
        ThrottleFault: "service",
        EventFault: "events",
    }
    return kinds.get(type(value))


Fault = Annotated[
    Annotated[CrashFault, Tag("function")]
    | Annotated[ThrottleFault, Tag("service")]
    | Annotated[EventFault, Tag("events")],
    Discriminator(
        _kind,
        custom_error_type="fault_kind",
        custom_error_message="a fault needs one of the keys function, service or events",
    ),
]


class FaultPlan(_Strict):
    seed: int = 0
    faults: list[Fault] = Field(default_factory=list)


class FaultPlanError(ValueError):
    """A plan that does not validate; the message names each bad field."""


def load_plan(source: FaultPlan | dict[str, Any] | str | Path) -> FaultPlan:
    """A plan from a model, a mapping, YAML text or a YAML file."""
    if isinstance(source, FaultPlan):
        return source
    where = "fault plan"
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source):
        path = Path(source)
        if path.is_file():
            where = str(path)
            source = path.read_text()
        elif isinstance(source, Path) or path.suffix in (".yaml", ".yml"):
            raise FaultPlanError(f"fault plan {path}: no such file")
    if isinstance(source, str):
        try:
            source = yaml.safe_load(source) or {}
        except yaml.YAMLError as exc:
            raise FaultPlanError(f"{where}: not YAML: {exc}") from exc
    try:
        return FaultPlan.model_validate(source)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or '(plan)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise FaultPlanError(f"{where} is not a valid fault plan:\n" + "\n".join(lines)) from None


# --------------------------------------------------------------------------------------
# Throttling errors, per service


@dataclass(frozen=True)
class ThrottlingError:
    code: str
    status: int
    message: str = "Rate exceeded"


# The code and status each service answers a throttled call with. Modelled errors come from
# botocore's service models (lambda TooManyRequestsException 429, scheduler
# ThrottlingException 429, dynamodb ProvisionedThroughputExceededException, sqs
# RequestThrottled); the rest are AWS's common errors (query protocol: Throttling; JSON
# protocols: ThrottlingException; S3: SlowDown 503).
_THROTTLES = {
    "dynamodb": ThrottlingError("ProvisionedThroughputExceededException", 400, "Rate exceeded"),
    "lambda": ThrottlingError("TooManyRequestsException", 429, "Rate Exceeded."),
    "scheduler": ThrottlingError("ThrottlingException", 429),
    "sqs": ThrottlingError("RequestThrottled", 400),
    "s3": ThrottlingError("SlowDown", 503, "Please reduce your request rate."),
}
_BY_PROTOCOL = {
    "query": ThrottlingError("Throttling", 400),
    "ec2": ThrottlingError("RequestLimitExceeded", 503),
    "json": ThrottlingError("ThrottlingException", 400),
    "rest-json": ThrottlingError("ThrottlingException", 429),
    "rest-xml": ThrottlingError("SlowDown", 503),
}


def _protocol(service: str) -> tuple[str, str]:
    """(protocol, JSON version) of a service, from botocore's model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    return str(model.protocol), str(model.metadata.get("jsonVersion") or "1.0")


def throttling_error(service: str) -> ThrottlingError:
    if service in _THROTTLES:
        return _THROTTLES[service]
    try:
        protocol, _ = _protocol(service)
    except Exception:
        protocol = "json"
    return _BY_PROTOCOL.get(protocol, _BY_PROTOCOL["json"])


def throttle_response(
    service: str, error: ThrottlingError
) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of the throttling answer in the service's protocol."""
    request_id = str(uuid.uuid4())
    try:
        protocol, json_version = _protocol(service)
    except Exception:
        protocol, json_version = "json", "1.1"
    reason = {400: "Bad Request", 429: "Too Many Requests", 503: "Service Unavailable"}
    status = f"{error.status} {reason.get(error.status, 'Error')}"
    if protocol in ("query", "ec2"):
        body = (
            '<ErrorResponse xmlns="https://aws.amazon.com/">'
            f"<Error><Type>Sender</Type><Code>{error.code}</Code>"
            f"<Message>{error.message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    elif protocol == "rest-xml":
        body = (
            f"<Error><Code>{error.code}</Code><Message>{error.message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    elif protocol == "rest-json":
        document = {"message": error.message, "Type": "User"}
        if service == "lambda":
            document["Reason"] = "CallerRateLimitExceeded"
        body = json.dumps(document).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", error.code),
            ("x-amzn-RequestId", request_id),
        ]
    else:
        body = json.dumps({"__type": error.code, "message": error.message}).encode()
        headers = [
            ("Content-Type", f"application/x-amz-json-{json_version}"),
            ("x-amzn-RequestId", request_id),
        ]
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


# --------------------------------------------------------------------------------------
# The crash


class InjectedCrash(BaseException):  # a crash, not an error a handler handles
    """The function's process dies: no `except Exception` in a handler can catch it."""

    def __init__(self, function: str, calls: int, error_type: str) -> None:
        super().__init__(f"Runtime exited: fault plan crashed {function} after {calls} AWS call(s)")
        self.error_type = error_type


# --------------------------------------------------------------------------------------
# Record of what fired


@dataclass(frozen=True)
class Fired:
    kind: str  # crash | throttle | drop | duplicate | delay | reorder
    target: str  # the function, service:Operation, or event source / detail-type
    detail: str
    fault: int  # the fault's index in the plan


# --------------------------------------------------------------------------------------
# The injector


class Faults:
    """The loaded plan and the injection points the local cloud calls."""

    def __init__(self, activity: Activity | None = None, clock: Clock | None = None) -> None:
        self.activity = activity or Activity()
        self.clock = clock or Clock()
        self._lock = threading.RLock()
        self.plan = FaultPlan()
        self._rng = random.Random(0)
        self._used: dict[int, int] = {}
        self._fired: list[Fired] = []
        self._held: dict[int, _Held] = {}
        self._clients_hooked = False

    # -- plan ----------------------------------------------------------------------------
    def load(self, source: FaultPlan | dict[str, Any] | str | Path) -> FaultPlan:
        """Replace the plan (and start its random sequence and counts afresh)."""
        plan = load_plan(source)
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)
            self._used = {}
            self._fired = []
        log.info("fault plan loaded: %d fault(s), seed %d", len(plan.faults), plan.seed)
        return plan

    def clear(self) -> None:
        self.load(FaultPlan())

    def fired(self, kind: str | None = None) -> list[Fired]:
        with self._lock:
            return [f for f in self._fired if kind is None or f.kind == kind]

    def _fire(self, kind: str, target: str, detail: str, index: int) -> None:
        fired = Fired(kind, target, detail, index)
        with self._lock:
            self._fired.append(fired)
        log.warning("fault %s fired on %s: %s", kind, target, detail)

    def _faults(self, kind: type[Any]) -> list[tuple[int, Any]]:
        return [(i, f) for i, f in enumerate(self.plan.faults) if isinstance(f, kind)]

    # -- throttling (server side) ----------------------------------------------------------
    def throttle(
        self, service: str, operation: str, function: str | None, caller: str = "other"
    ) -> ThrottlingError | None:
        """The throttling answer for this call, or None to let it through. `caller`:
        "function" (then `function` names it), "stepfunctions", or "other"."""
        with self._lock:
            for index, fault in self._faults(ThrottleFault):
                if fault.service != service or fault.operation not in (None, operation):
                    continue
                if fault.callers == "functions" and not function:
                    continue
                if fault.callers == "stepfunctions" and caller != "stepfunctions":
                    continue
                if fault.function is not None and fault.function != function:
                    continue
                if fault.times is not None and self._used.get(index, 0) >= fault.times:
                    continue
                if self._rng.random() >= fault.throttle:
                    continue
                self._used[index] = self._used.get(index, 0) + 1
                error = throttling_error(service)
                self._fire(
                    "throttle",
                    f"{service}:{operation}",
                    f"{error.code} ({error.status}) to {function or 'a caller'}",
                    index,
                )
                return error
        return None

    def middleware(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """WSGI middleware answering planned throttles before the request reaches moto."""
        return ThrottleMiddleware(app, self)

    # -- crashes (in-process, botocore hooks) --------------------------------------------------
    def install_client_hooks(self) -> Callable[[], None]:
        """Hook every botocore client created from now on; return the undo."""
        import botocore.client

        original = botocore.client.ClientCreator.create_client
        faults = self

        def create_client(creator: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(creator, *args, **kwargs)
            client.meta.events.register("before-call", faults._before_call)
            client.meta.events.register("before-send", faults._before_send)
            client.meta.events.register("after-call", faults._after_call)
            client.meta.events.register("after-call-error", faults._after_call)
            return client

        botocore.client.ClientCreator.create_client = create_client  # type: ignore[method-assign,assignment]

        def undo() -> None:
            botocore.client.ClientCreator.create_client = original  # type: ignore[method-assign]

        return undo

    def _before_call(self, **_: Any) -> None:
        invocation = current()
        if invocation is not None and invocation.calls == 0:
            self._maybe_crash(invocation, 0)

    @staticmethod
    def _before_send(request: Any, **_: Any) -> None:
        invocation = current()
        if invocation is not None and invocation.folder:
            request.headers[FUNCTION_HEADER] = invocation.folder
        elif invocation is not None and invocation.service == "states":
            request.headers[CALLER_HEADER] = "stepfunctions"

    def _after_call(self, **_: Any) -> None:
        invocation = current()
        if invocation is None:
            return
        self._maybe_crash(invocation, invocation.count_call())

    def _maybe_crash(self, invocation: Invocation, calls: int) -> None:
        folder = invocation.folder
        if not folder:
            return
        with self._lock:
            for index, fault in self._faults(CrashFault):
                if fault.function != folder or fault.fail_after_calls != calls:
                    continue
                if self._used.get(index, 0) >= fault.times:
                    continue
                self._used[index] = self._used.get(index, 0) + 1
                where = "before its first AWS call" if calls == 0 else f"after AWS call {calls}"
                self._fire("crash", folder, f"{fault.error} {where}", index)
                raise InjectedCrash(folder, calls, fault.error)

    # -- events ----------------------------------------------------------------------------
    def route_event(self, event: dict[str, Any], publish: Callable[[dict[str, Any]], None]) -> None:
        """Publish `event` as the plan says: dropped, duplicated, delayed or reordered."""
        with self._lock:
            match = next(
                (
                    (i, f.events)
                    for i, f in self._faults(EventFault)
                    if f.events.source == event.get("source")
                    and f.events.detail_type in (None, event.get("detail-type"))
                ),
                None,
            )
            if match is None:
                plan = None
            else:
                index, spec = match
                target = f"{spec.source} {event.get('detail-type', '')}".strip()
                if spec.drop and self._rng.random() < spec.drop:
                    self._fire("drop", target, f"event {event.get('id')} dropped", index)
                    return
                copies = 2 if spec.duplicate and self._rng.random() < spec.duplicate else 1
                if copies == 2:
                    self._fire("duplicate", target, f"event {event.get('id')} sent twice", index)
                plan = (index, spec, target, copies)
        if plan is None:
            publish(event)
            return
        index, spec, target, copies = plan
        for _ in range(copies):
            self._send(index, spec, target, json.loads(json.dumps(event)), publish)

    def _send(
        self,
        index: int,
        spec: EventFaultSpec,
        target: str,
        event: dict[str, Any],
        publish: Callable[[dict[str, Any]], None],
    ) -> None:
        if spec.delay_seconds:
            self._fire(
                "delay", target, f"event {event.get('id')} by {spec.delay_seconds:g} s", index
            )

            def later() -> None:
                self.clock.sleep(spec.delay_seconds)
                self._reorder_or_publish(index, spec, target, event, publish)

            self.activity.spawn("delayed event", later, name="shiplane-delayed-event")
            return
        self._reorder_or_publish(index, spec, target, event, publish)

    def _reorder_or_publish(
        self,
        index: int,
        spec: EventFaultSpec,
        target: str,
        event: dict[str, Any],
        publish: Callable[[dict[str, Any]], None],
    ) -> None:
        if not spec.reorder:
            publish(event)
            return
        with self._lock:
            held = self._held.pop(index, None)
            if held is None or not held.claim():
                mine = _Held(event, publish)
                self._held[index] = mine
                held = None
        if held is None:  # hold this one until the next comes, or for hold_seconds at most
            self.activity.spawn(
                "held event",
                self._release_late,
                index,
                mine,
                spec.hold_seconds,
                name="shiplane-held-event",
            )
            return
        # The later event overtakes the held one.
        self._fire(
            "reorder",
            target,
            f"event {event.get('id')} delivered before {held.event.get('id')}",
            index,
        )
        publish(event)
        held.publish(held.event)
        held.done.set()

    def _release_late(self, index: int, held: _Held, hold_seconds: float) -> None:
        if held.done.wait(self.clock.real_seconds(hold_seconds)):
            return
        with self._lock:
            if not held.claim():
                return
            if self._held.get(index) is held:
                del self._held[index]
        held.publish(held.event)


class _Held:
    """An event held back for reordering; exactly one party releases it."""

    def __init__(self, event: dict[str, Any], publish: Callable[[dict[str, Any]], None]) -> None:
        self.event = event
        self.publish = publish
        self.done = threading.Event()
        self._claimed = False
        self._lock = threading.Lock()

    def claim(self) -> bool:
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True


class ThrottleMiddleware:
    """WSGI: answer a planned fraction of calls with the service's throttling error."""

    def __init__(self, app: Callable[..., Any], faults: Faults) -> None:
        self.app = app
        self.faults = faults

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api") or not self.faults._faults(ThrottleFault):
            return self.app(environ, start_response)
        from .server import ApiCallCounter

        try:
            service, _, operation = ApiCallCounter.classify(environ).partition(":")
        except Exception:  # never break a request over a fault plan
            return self.app(environ, start_response)
        function = environ.get(_FUNCTION_ENVIRON) or None
        if function:
            caller = "function"
        elif (
            environ.get(_CALLER_ENVIRON) == "stepfunctions"
            or _access_key(environ) == _STEP_FUNCTIONS_KEY
        ):
            caller = "stepfunctions"
        else:
            caller = "other"
        error = self.faults.throttle(service, operation, function, caller)
        if error is None:
            return self.app(environ, start_response)
        status, headers, body = throttle_response(service, error)
        start_response(status, headers)
        return [body]


# moto's Step Functions interpreter signs its service integrations' calls with this key
# (when IAM is off; with IAM on they are signed as the machine's role and marked above).
_STEP_FUNCTIONS_KEY = "ak"


def _access_key(environ: dict[str, Any]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in auth:
        return ""
    return str(auth.split("Credential=", 1)[1].split("/", 1)[0])
