"""AWS's quotas, enforced by the local cloud the way AWS enforces them.

What moto leaves out and AWS refuses, each answered in AWS's own shape (error code, HTTP
status, message) so botocore raises the same ClientError and Shiplane meets the same
failure it would meet on AWS:

- request sizes (WSGI middleware): Lambda `Invoke` payloads (6 MB synchronous, 1 MB
  `Event`), EventBridge `PutEvents` entries, CloudFormation `TemplateBody` (51,200 bytes)
  and `TemplateURL` objects (1 MB), Step Functions `SendTaskSuccess` output and
  `StartExecution` input (262,144 bytes), DynamoDB transactions (4 MB of items);
- API rate limits (token buckets per account and region, in the middleware): ECS's
  `RegisterTaskDefinition`, `Create/Update/DeleteService` and `Describe*`, Step Functions'
  `StartExecution` (EventBridge's deliveries to a state machine take from it too:
  eventbridge.py);
- Lambda's synchronous response over 6 MB (`LambdaRuntime.response_limit`): the function
  error `Function.ResponseSizeTooLarge`, as Lambda reports it;
- Lambda's 1,000 concurrent executions per account and region (`ConcurrencySlots`, used
  by the Lambda runtime): a synchronous invocation over the limit is refused
  (`TooManyRequestsException`, Reason `ConcurrentInvocationLimitExceeded`); an
  asynchronous one waits in Lambda's queue for a slot, as Lambda retries throttled events;
- Step Functions' 25,000 history events per execution (a patch of moto's interpreter): the
  25,000th event is `ExecutionFailed` with `States.Runtime`, as AWS writes it; and the
  262,144-byte state data limit moto already checks is made inclusive, as AWS's is.

Already enforced by moto, and left to it: DynamoDB's 100 actions per transaction and its
item size (moto refuses above 405,000 bytes: slightly stricter than AWS's 400 KB).

Figures come from AWS's references: botocore's service models (the Lambda `Invoke` and
EventBridge `PutEvents` documentation give 1 MB for asynchronous payloads and entries,
raised from 256 KB), AWS's quotas pages, and the errors AWS is seen to answer with.

Buckets refill in cloud seconds (clock.py): at `time_scale=0.01` a bucket that refills 1
token per second refills 100 per wall second, and keeps its capacity, so bursts and the
ratio of burst to rate are AWS's while tests run fast. On by default; the switch
`SHIPLANE_LOCAL_QUOTAS=off` (or `LocalCloud(quotas=False)`) is for diagnosis only.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from .clock import Clock
from .faults import ThrottlingError, throttle_response

log = logging.getLogger("shiplane_local")

ENV_SWITCH = "SHIPLANE_LOCAL_QUOTAS"

# -- the figures ----------------------------------------------------------------------------
SFN_HISTORY_EVENTS = 25_000
SFN_STATE_DATA_BYTES = 262_144  # 256 KiB, UTF-8
LAMBDA_SYNC_PAYLOAD_BYTES = 6_291_456  # 6 MB
LAMBDA_SYNC_RESPONSE_BYTES = 6_291_556  # what Lambda's error names as the response limit
LAMBDA_ASYNC_PAYLOAD_BYTES = 1_048_576  # 1 MB (botocore's Invoke documentation)
LAMBDA_CONCURRENT_EXECUTIONS = 1_000
EVENTBRIDGE_ENTRIES_BYTES = 1_048_576  # 1 MB (botocore's PutEvents documentation)
DYNAMODB_TRANSACTION_ITEMS_BYTES = 4 * 1024 * 1024
CFN_TEMPLATE_BODY_BYTES = 51_200
CFN_TEMPLATE_URL_BYTES = 1_048_576  # 1 MB in S3


def enabled_by_environment() -> bool:
    return os.environ.get(ENV_SWITCH, "on").strip().lower() not in ("off", "0", "false", "no")


@dataclass(frozen=True)
class BucketSpec:
    capacity: int  # the burst
    refill: float  # tokens per (cloud) second: the sustained rate


# ECS: one bucket per API per account and region (ECS's "Request throttling" page).
_ECS_BUCKETS = {
    "RegisterTaskDefinition": BucketSpec(20, 1),
    "CreateService": BucketSpec(50, 5),
    "UpdateService": BucketSpec(50, 5),
    "DeleteService": BucketSpec(50, 5),
    "DescribeServiceDeployments": BucketSpec(50, 20),
}
_ECS_DESCRIBE = BucketSpec(100, 20)
# Step Functions Standard StartExecution: larger buckets in the biggest regions.
_SFN_BIG_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
_SFN_START_BIG = BucketSpec(1_300, 300)
_SFN_START = BucketSpec(800, 150)

# ECS and Step Functions answer a throttled call alike (JSON 1.1, status 400).
THROTTLED = ThrottlingError("ThrottlingException", 400, "Rate exceeded")


def bucket_spec(service: str, operation: str, region: str) -> BucketSpec | None:
    if service == "ecs":
        if operation in _ECS_BUCKETS:
            return _ECS_BUCKETS[operation]
        if operation.startswith("Describe"):
            return _ECS_DESCRIBE
        return None
    if service == "stepfunctions" and operation == "StartExecution":
        return _SFN_START_BIG if region in _SFN_BIG_REGIONS else _SFN_START
    return None


class TokenBucket:
    """AWS's token bucket, on the cloud clock; remembers its peak rate per cloud second."""

    def __init__(self, spec: BucketSpec, clock: Clock) -> None:
        self.spec = spec
        self.clock = clock
        self.tokens = float(spec.capacity)
        self._last = clock.now()
        self._lock = threading.Lock()
        self._granted: deque[float] = deque()
        self.peak_per_second = 0
        self.granted = 0
        self.refused = 0

    def take(self) -> bool:
        with self._lock:
            now = self.clock.now()
            self.tokens = min(
                float(self.spec.capacity), self.tokens + (now - self._last) * self.spec.refill
            )
            self._last = now
            if self.tokens < 1:
                self.refused += 1
                return False
            self.tokens -= 1
            self.granted += 1
            self._granted.append(now)
            while self._granted and self._granted[0] <= now - 1:
                self._granted.popleft()
            self.peak_per_second = max(self.peak_per_second, len(self._granted))
            return True


@dataclass(frozen=True)
class Refusal:
    quota: str  # e.g. "ecs:RegisterTaskDefinition rate", "lambda:Invoke payload"
    code: str
    detail: str


class ConcurrencyExceeded(Exception):
    """No slot for a synchronous invocation: Lambda answers 429."""


class ConcurrencySlots:
    """Lambda's concurrent executions per account and region."""

    def __init__(self, quotas: Quotas, limit: int = LAMBDA_CONCURRENT_EXECUTIONS) -> None:
        self.quotas = quotas
        self.limit = limit
        self._in_use: dict[tuple[str, str], int] = {}
        self._cond = threading.Condition()
        self.peak = 0

    def acquire(self, scope: tuple[str, str], *, wait: bool) -> None:
        """Take a slot; without `wait`, raise ConcurrencyExceeded when none is free."""
        with self._cond:
            while self._in_use.get(scope, 0) >= self.limit:
                if not wait:
                    self.quotas.refuse(
                        "lambda concurrency",
                        "TooManyRequestsException",
                        f"{self.limit} executions running in {scope[0]}/{scope[1]}",
                    )
                    raise ConcurrencyExceeded(scope)
                # Lambda keeps an asynchronous event queued and retries it when throttled.
                self._cond.wait(0.05)
            self._in_use[scope] = self._in_use.get(scope, 0) + 1
            self.peak = max(self.peak, self._in_use[scope])

    def release(self, scope: tuple[str, str]) -> None:
        with self._cond:
            self._in_use[scope] = max(0, self._in_use.get(scope, 0) - 1)
            self._cond.notify_all()


class Quotas:
    """The quotas' state (buckets, slots, refusals) and their installation."""

    def __init__(self, clock: Clock | None = None, *, enabled: bool = True) -> None:
        self.clock = clock or Clock()
        self.enabled = enabled
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str, str], TokenBucket] = {}
        self._refusals: list[Refusal] = []
        self._peaks: dict[str, int] = {}
        self.slots = ConcurrencySlots(self)
        self._undo: list[Callable[[], None]] = []

    # -- record ----------------------------------------------------------------------------
    def refuse(self, quota: str, code: str, detail: str) -> None:
        with self._lock:
            self._refusals.append(Refusal(quota, code, detail))
            del self._refusals[:-10_000]
        log.info("quota %s: %s (%s)", quota, code, detail)

    def observe(self, measure: str, value: int) -> None:
        """Remember the largest `value` seen for `measure` (what the bench reports)."""
        with self._lock:
            self._peaks[measure] = max(self._peaks.get(measure, 0), value)

    def peaks(self) -> dict[str, int]:
        """The largest size seen per measure, e.g. "dynamodb:TransactWriteItems actions"."""
        with self._lock:
            return dict(self._peaks)

    def reset_peaks(self) -> None:
        with self._lock:
            self._peaks.clear()

    def refusals(self, quota: str | None = None) -> list[Refusal]:
        with self._lock:
            return [r for r in self._refusals if quota is None or r.quota.startswith(quota)]

    def buckets(self) -> dict[str, TokenBucket]:
        """Each bucket used so far, by `account/region service:Operation`."""
        with self._lock:
            return {f"{a}/{r} {s}:{o}": b for (a, r, s, o), b in self._buckets.items()}

    def take(self, account: str, region: str, service: str, operation: str) -> bool:
        spec = bucket_spec(service, operation, region)
        if spec is None:
            return True
        key = (account, region, service, operation)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(spec, self.clock)
        return bucket.take()

    # -- installation --------------------------------------------------------------------------
    def install(self) -> None:
        if not self.enabled:
            return
        self._undo.append(install_history_limit())
        self._undo.append(install_inclusive_state_data_limit())

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def middleware(self, app: Callable[..., Any]) -> Callable[..., Any]:
        return QuotaMiddleware(app, self)


# --------------------------------------------------------------------------------------------
# Errors in each protocol


def _query_error(code: str, message: str) -> tuple[str, list[tuple[str, str]], bytes]:
    request_id = str(uuid.uuid4())
    body = (
        '<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{_xml(message)}</Message>"
        f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return (
        "400 Bad Request",
        [
            ("Content-Type", "text/xml"),
            ("x-amzn-RequestId", request_id),
            ("Content-Length", str(len(body))),
        ],
        body,
    )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _json_error(
    code: str, message: str, status: str, version: str = "1.0", **extra: str
) -> tuple[str, list[tuple[str, str]], bytes]:
    request_id = str(uuid.uuid4())
    body = json.dumps({"__type": code, "message": message, **extra}).encode()
    return (
        status,
        [
            ("Content-Type", f"application/x-amz-json-{version}"),
            ("x-amzn-RequestId", request_id),
            ("Content-Length", str(len(body))),
        ],
        body,
    )


def _rest_json_error(
    code: str, message: str, status: str, **extra: str
) -> tuple[str, list[tuple[str, str]], bytes]:
    request_id = str(uuid.uuid4())
    body = json.dumps({"Type": "User", "message": message, **extra}).encode()
    return (
        status,
        [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", request_id),
            ("Content-Length", str(len(body))),
        ],
        body,
    )


def template_body_error(body: str) -> str:
    """CloudFormation's words for a TemplateBody over 51,200 bytes (it quotes the body)."""
    return (
        f"1 validation error detected: Value '{body}' at 'templateBody' failed to satisfy "
        f"constraint: Member must have length less than or equal to {CFN_TEMPLATE_BODY_BYTES}"
    )


def lambda_concurrency_error() -> Any:
    """The moto error a synchronous invoke over the concurrency limit raises (429)."""
    from moto.core.exceptions import JsonRESTError

    class TooManyRequests(JsonRESTError):
        code = 429

        def __init__(self) -> None:
            super().__init__("TooManyRequestsException", "Rate Exceeded.")
            self.description = json.dumps(
                {
                    "Reason": "ConcurrentInvocationLimitExceeded",
                    "Type": "User",
                    "message": "Rate Exceeded.",
                }
            )

    return TooManyRequests()


# --------------------------------------------------------------------------------------------
# Sizes, as each service measures them


def put_events_entry_size(entry: dict[str, Any]) -> int:
    """EventBridge's PutEventsRequestEntry size ("Calculating PutEvents event entry size")."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        if entry.get(key) is not None:
            size += len(str(entry[key]).encode("utf-8"))
    for resource in entry.get("Resources") or []:
        if resource is not None:
            size += len(str(resource).encode("utf-8"))
    return size


def attribute_value_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute value (its "Item sizes and formats" rules)."""
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(str(data).encode("utf-8"))
    if kind == "N":
        digits = str(data).lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(str(data)) * 3 // 4  # base64 on the wire
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode("utf-8")) for s in data)
    if kind == "NS":
        return sum(attribute_value_size({"N": n}) for n in data)
    if kind == "BS":
        return sum(len(str(b)) * 3 // 4 for b in data)
    if kind == "L":
        return 3 + sum(1 + attribute_value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(
            1 + len(k.encode("utf-8")) + attribute_value_size(v) for k, v in data.items()
        )
    return len(json.dumps(data))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(k.encode("utf-8")) + attribute_value_size(v) for k, v in item.items())


def transaction_items_size(actions: list[dict[str, Any]]) -> int:
    """The items a TransactWriteItems request writes or names, by DynamoDB's measure: a
    Put's whole item, the key and the new values of an Update, the key of the others."""
    total = 0
    for action in actions:
        for kind, op in action.items():
            if kind == "Put":
                total += item_size(op.get("Item") or {})
            else:
                total += item_size(op.get("Key") or {})
                if kind == "Update":
                    total += sum(
                        attribute_value_size(v)
                        for v in (op.get("ExpressionAttributeValues") or {}).values()
                    )
    return total


# --------------------------------------------------------------------------------------------
# The middleware


class QuotaMiddleware:
    """WSGI: refuse what AWS refuses before moto sees it."""

    def __init__(self, app: Callable[..., Any], quotas: Quotas) -> None:
        self.app = app
        self.quotas = quotas

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not self.quotas.enabled or environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self.app(environ, start_response)
        try:
            answer = self._check(environ)
        except Exception:  # a quota check must never break a request it cannot read
            log.debug("quota check failed", exc_info=True)
            answer = None
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def _check(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        from .server import ApiCallCounter

        service, _, operation = ApiCallCounter.classify(environ).partition(":")
        account, region = _account_and_region(environ)
        if not self.quotas.take(account, region, service, operation):
            # Who was refused: the function's folder (the header the fault plan reads too).
            caller = environ.get("HTTP_X_SHIPLANE_LOCAL_FUNCTION") or "another caller"
            self.quotas.refuse(
                f"{service}:{operation} rate", THROTTLED.code, f"{account}/{region}: {caller}"
            )
            return throttle_response(service, THROTTLED)
        check = _SIZE_CHECKS.get((service, operation))
        if check is None:
            return None
        body = _read_body(environ)
        return check(self.quotas, environ, body)


def _account_and_region(environ: dict[str, Any]) -> tuple[str, str]:
    from moto.core.models import DEFAULT_ACCOUNT_ID

    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in auth:
        return DEFAULT_ACCOUNT_ID, os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    region = scope[2] if len(scope) > 2 else "us-east-1"
    try:
        from moto.iam.models import get_account_id_from

        account = get_account_id_from(scope[0])
    except Exception:
        account = DEFAULT_ACCOUNT_ID
    return str(account), region


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


Answer = tuple[str, list[tuple[str, str]], bytes]


def _lambda_invoke(quotas: Quotas, environ: dict[str, Any], body: bytes) -> Answer | None:
    kind = environ.get("HTTP_X_AMZ_INVOCATION_TYPE") or "RequestResponse"
    size = len(body)
    quotas.observe(f"lambda:Invoke {'Event' if kind == 'Event' else 'sync'} payload", size)
    if kind == "Event" and size > LAMBDA_ASYNC_PAYLOAD_BYTES:
        message = (
            f"{size} byte payload is too large for the Event invocation type "
            f"(limit {LAMBDA_ASYNC_PAYLOAD_BYTES} bytes)"
        )
    elif kind != "Event" and size > LAMBDA_SYNC_PAYLOAD_BYTES:
        message = (
            f"Request must be smaller than {LAMBDA_SYNC_PAYLOAD_BYTES} bytes "
            "for the InvokeFunction operation"
        )
    else:
        return None
    # The code AWS answers with (botocore models it as RequestTooLargeException).
    quotas.refuse("lambda:Invoke payload", "RequestEntityTooLargeException", message)
    return _rest_json_error(
        "RequestEntityTooLargeException", message, "413 Request Entity Too Large"
    )


def _put_events(quotas: Quotas, environ: dict[str, Any], body: bytes) -> Answer | None:
    entries = json.loads(body or b"{}").get("Entries") or []
    size = sum(put_events_entry_size(e) for e in entries)
    quotas.observe("events:PutEvents entries bytes", size)
    if size <= EVENTBRIDGE_ENTRIES_BYTES:
        return None
    # AWS refuses the whole call, not entry by entry, when the entries are too large.
    message = "Total size of the entries in the request is over the limit."
    quotas.refuse("events:PutEvents size", "ValidationException", f"{size} bytes")
    return _json_error("ValidationException", message, "400 Bad Request", "1.1")


def _cloudformation_template(quotas: Quotas, environ: dict[str, Any], body: bytes) -> Answer | None:
    params = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    template = params.get("TemplateBody")
    if template is not None:
        quotas.observe("cloudformation TemplateBody bytes", len(template.encode("utf-8")))
    if template is not None and len(template.encode("utf-8")) > CFN_TEMPLATE_BODY_BYTES:
        quotas.refuse(
            "cloudformation TemplateBody",
            "ValidationError",
            f"{len(template.encode('utf-8'))} bytes",
        )
        return _query_error("ValidationError", template_body_error(template))
    url = params.get("TemplateURL")
    if url:
        size = _s3_object_size(url, _account_and_region(environ)[0])
        if size is not None and size > CFN_TEMPLATE_URL_BYTES:
            message = f"Template may not exceed {CFN_TEMPLATE_URL_BYTES} bytes in size."
            quotas.refuse("cloudformation TemplateURL", "ValidationError", f"{size} bytes")
            return _query_error("ValidationError", message)
    return None


def _s3_object_size(url: str, account: str) -> int | None:
    """The size of the S3 object a TemplateURL names (path or virtual-host style)."""
    from moto.s3.models import s3_backends

    parsed = urlparse(url)
    path = unquote(parsed.path).lstrip("/")
    host = parsed.hostname or ""
    if ".s3" in host and not host.startswith("s3"):
        bucket, key = host.split(".s3", 1)[0], path
    else:
        bucket, _, key = path.partition("/")
    try:
        obj = s3_backends[account]["aws"].get_object(bucket, key)
    except Exception:
        return None
    return int(obj.size) if obj is not None else None


def _sfn_data(field: str, member: str) -> Callable[[Quotas, dict[str, Any], bytes], Answer | None]:
    def check(quotas: Quotas, environ: dict[str, Any], body: bytes) -> Answer | None:
        value = json.loads(body or b"{}").get(field)
        if value is not None:
            quotas.observe(f"stepfunctions {field} bytes", len(value.encode("utf-8")))
        if value is None or len(value.encode("utf-8")) <= SFN_STATE_DATA_BYTES:
            return None
        # The member is sensitive: AWS's message leaves its value out.
        message = (
            f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {SFN_STATE_DATA_BYTES}"
        )
        quotas.refuse(
            f"stepfunctions {field}", "ValidationException", f"{len(value.encode())} bytes"
        )
        return _json_error("ValidationException", message, "400 Bad Request")

    return check


def _transact_write(quotas: Quotas, environ: dict[str, Any], body: bytes) -> Answer | None:
    actions = json.loads(body or b"{}").get("TransactItems") or []
    size = transaction_items_size(actions)
    quotas.observe("dynamodb:TransactWriteItems actions", len(actions))
    quotas.observe("dynamodb:TransactWriteItems bytes", size)
    if size <= DYNAMODB_TRANSACTION_ITEMS_BYTES:
        return None
    # The code is AWS's (ValidationException); no AWS reference gives the exact wording.
    message = "Transaction request cannot be larger than 4 MB"
    quotas.refuse("dynamodb transaction size", "ValidationException", f"{size} bytes")
    return _json_error("com.amazon.coral.validate#ValidationException", message, "400 Bad Request")


def _put_item(quotas: Quotas, environ: dict[str, Any], body: bytes) -> Answer | None:
    # moto refuses the item itself; the largest is remembered for the bench.
    quotas.observe("dynamodb item bytes", item_size(json.loads(body or b"{}").get("Item") or {}))
    return None


_TEMPLATE_OPERATIONS = (
    "CreateStack",
    "UpdateStack",
    "CreateChangeSet",
    "ValidateTemplate",
    "GetTemplateSummary",
    "EstimateTemplateCost",
    "CreateStackSet",
    "UpdateStackSet",
)
_SIZE_CHECKS: dict[tuple[str, str], Callable[[Quotas, dict[str, Any], bytes], Answer | None]] = {
    ("lambda", "Invoke"): _lambda_invoke,
    ("events", "PutEvents"): _put_events,
    ("stepfunctions", "SendTaskSuccess"): _sfn_data("output", "output"),
    ("stepfunctions", "StartExecution"): _sfn_data("input", "input"),
    ("dynamodb", "TransactWriteItems"): _transact_write,
    ("dynamodb", "PutItem"): _put_item,
    **{("cloudformation", op): _cloudformation_template for op in _TEMPLATE_OPERATIONS},
}


# --------------------------------------------------------------------------------------------
# Step Functions: the history limit, and the state data limit made inclusive

HISTORY_LIMIT_CAUSE = (
    f"The execution reached the maximum number of history events ({SFN_HISTORY_EVENTS})."
)
_TERMINAL_EVENTS = {
    "ExecutionFailed",
    "ExecutionSucceeded",
    "ExecutionAborted",
    "ExecutionTimedOut",
}


def install_history_limit(limit: int = SFN_HISTORY_EVENTS) -> Callable[[], None]:
    """Fail an execution at its `limit`th history event, as AWS does: events 1 to
    limit-1 are the program's, event `limit` is `ExecutionFailed` (`States.Runtime`).
    Frames (Map iterations, Parallel branches) share their execution's event manager, and
    the execution's root environment is the one that created it."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    original_init = Environment.__init__
    original_set_error = Environment.set_error
    original_add = EventManager.add_event

    def init(env: Any, *args: Any, **kwargs: Any) -> None:
        original_init(env, *args, **kwargs)
        env.event_manager._shiplane_root = env
        # Deciding and publishing under one lock: concurrent Map iterations cannot both
        # take the last event (moto's own mutex is released between the two).
        env.event_manager._shiplane_lock = threading.Lock()

    def set_error(env: Any, error: Any) -> None:
        # Once the history is full, the execution's error is the history limit's: the
        # state cut short may fail in its own way as it unwinds.
        if getattr(env.event_manager, "_shiplane_full", False):
            error = _history_error()
        original_set_error(env, error)

    def add_event(manager: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        name = str(getattr(event_type, "value", event_type))
        lock = getattr(manager, "_shiplane_lock", None)
        if lock is None:  # a manager no Environment made: not an execution's
            return int(original_add(manager, context, event_type, *args, **kwargs))
        with lock:
            published = int(manager._event_id_gen._next_id) - 1
            full = getattr(manager, "_shiplane_full", False)
            if name in _TERMINAL_EVENTS:
                if getattr(manager, "_shiplane_closed", False):
                    return published
                manager._shiplane_closed = full  # after the limit, one ExecutionFailed
                return int(original_add(manager, context, event_type, *args, **kwargs))
            if full:
                return published
            if published < limit - 1:
                return int(original_add(manager, context, event_type, *args, **kwargs))
            manager._shiplane_full = True
        # The last event is the limit's ExecutionFailed, which the program writes as it
        # ends in this error (outside the lock: set_error takes the environment's own).
        log.info("step functions execution: %d history events, failed", limit)
        manager._shiplane_root.set_error(_history_error())
        return published

    Environment.__init__ = init  # type: ignore[method-assign,assignment]
    Environment.set_error = set_error  # type: ignore[method-assign,assignment]
    EventManager.add_event = add_event  # type: ignore[method-assign,assignment]

    def undo() -> None:
        Environment.__init__ = original_init  # type: ignore[method-assign]
        Environment.set_error = original_set_error  # type: ignore[method-assign]
        EventManager.add_event = original_add  # type: ignore[method-assign]

    return undo


def _history_error() -> Any:
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails

    return ExecutionFailedEventDetails(error="States.Runtime", cause=HISTORY_LIMIT_CAUSE)


def install_inclusive_state_data_limit() -> Callable[[], None]:
    """moto refuses state data of exactly 262,144 bytes and measures JSON with spaces; AWS
    allows up to 256 KiB of the data as it keeps it (compact JSON, as in the history)."""
    import importlib

    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    def is_within_size_quota(value: Any) -> bool:
        text = value if isinstance(value, str) else to_json_str(value, separators=(",", ":"))
        return len(text.encode("utf-8")) <= SFN_STATE_DATA_BYTES

    modules = [
        "moto.stepfunctions.parser.quotas",
        "moto.stepfunctions.parser.asl.component.state.state",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
    ]
    saved: list[tuple[Any, Any]] = []
    for name in modules:
        module = importlib.import_module(name)
        saved.append((module, getattr(module, "is_within_size_quota")))  # noqa: B009
        setattr(module, "is_within_size_quota", is_within_size_quota)  # noqa: B010

    def undo() -> None:
        for module, original in saved:
            setattr(module, "is_within_size_quota", original)  # noqa: B010

    return undo
