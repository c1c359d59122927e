"""EventBridge delivery to Lambda and Step Functions targets, with AWS's retries and DLQs.

moto's `Rule.send_to_targets` delivers to logs, archives, SQS, buses and API destinations
only, and raises NotImplementedError for a Lambda or a state machine. The replacement
delivers those two itself, asynchronously (as EventBridge does), and hands every other
target back to moto.

A delivery follows the target's RetryPolicy (MaximumRetryAttempts, 185 by default;
MaximumEventAgeInSeconds, 86,400 by default) with exponential backoff and jitter, for the
errors EventBridge retries: throttling and the target service's own failures. Errors that
no retry can mend (the target does not exist, a bad input transformation, a refused
input) are not retried. An event that is not delivered goes to the target's
DeadLetterConfig queue with the attributes EventBridge sets (RULE_ARN, TARGET_ARN,
ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION, RETRY_ATTEMPTS).

What counts as delivered to a Lambda target: EventBridge invokes it *asynchronously*, so
once Lambda has accepted the event a function error is Lambda's to retry (async_lambda.py),
never EventBridge's.

`emit` puts AWS-service events on a bus; a fault plan may drop, duplicate, delay or
reorder them on the way (faults.py). Delays follow the local cloud's `Clock`.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import random
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, cast

from moto.awslambda.utils import get_backend as lambda_backend
from moto.events.models import EventsBackend, Rule, events_backends
from moto.events.utils import EventTemplateParser
from moto.sqs.models import sqs_backends
from moto.stepfunctions.responses import get_backend as stepfunctions_backend
from moto.utilities.arns import parse_arn

from ._patching import Patches
from .activity import Activity
from .clock import Clock
from .iam.services import check_event_delivery
from .lambda_runtime import LambdaRuntime

if TYPE_CHECKING:
    from .faults import Faults

log = logging.getLogger("shiplane_local")

# Delivered here; SQS too, since moto's SQS delivery wants a numeric `time` (AWS sends
# ISO-8601) and knows no RetryPolicy. SQS deliveries stay synchronous, in event order.
_OURS = {"lambda", "states", "sqs"}

DEFAULT_RETRY_ATTEMPTS = 185
DEFAULT_EVENT_AGE = 86400
# Backoff between attempts: exponential from 1 s, capped, with full jitter. AWS documents
# "exponential back off and jitter" without figures; the cap spreads 185 attempts over
# about a day, as AWS's defaults do.
BACKOFF_BASE = 1.0
BACKOFF_CAP = 600.0
_RETRIED = (
    "Throttl",
    "TooManyRequests",
    "LimitExceeded",
    "ServiceException",
    "Internal",
    "Unavailable",
    "Timeout",
)


class DeliveryError(Exception):
    """A target call that failed, with EventBridge's ERROR_CODE and whether it is retried."""

    def __init__(self, code: str, message: str, *, retried: bool) -> None:
        super().__init__(message)
        self.code = code
        self.retried = retried


def classify(exc: Exception) -> DeliveryError:
    """EventBridge's view of a target call's failure."""
    if isinstance(exc, DeliveryError):
        return exc
    # moto's errors carry AWS's code as `error_type`; botocore's as response["Error"]["Code"]
    code = getattr(exc, "error_type", None) or getattr(exc, "response", {}).get("Error", {}).get(
        "Code"
    )
    name = f"{code or ''} {type(exc).__name__}".strip()
    message = f"{code or type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
    if "Throttl" in name or "TooManyRequests" in name:
        return DeliveryError("THROTTLING", message, retried=True)
    if any(word in name for word in _RETRIED):
        return DeliveryError("INTERNAL_ERROR", message, retried=True)
    if "NotFound" in name or "DoesNotExist" in name or "UnknownFunction" in name:
        return DeliveryError("NO_RESOURCE", message, retried=False)
    if "AccessDenied" in name or isinstance(exc, PermissionError):
        return DeliveryError("NO_PERMISSIONS", message, retried=False)
    return DeliveryError("INVALID_PARAMETER", message, retried=False)


def aws_time(value: Any) -> str:
    """EventBridge's `time` field: moto keeps a unix timestamp, AWS sends ISO-8601 UTC."""
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What the target receives: Input, InputPath, InputTransformer or the whole event."""
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        matches = parse(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    transformer = target.get("InputTransformer")
    if transformer:
        rendered = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=cast(Any, event),
        )
        return rendered
    return event


class EventDelivery:
    """Installs the delivery patch; `emit` puts a full AWS-service event on a bus."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        activity: Activity,
        clock: Clock | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.runtime = runtime
        self.activity = activity
        self.clock = clock or Clock()
        self.faults = faults
        # AWS's API rate limits (quotas.Quotas): EventBridge's StartExecution calls take
        # from the account's bucket like any other caller's. None: no buckets.
        self.quotas: Any = None
        self._patches = Patches()
        self._lock = threading.Lock()
        self._jitter = random.Random(0)
        self.delivered = 0
        self.dead_lettered = 0
        self.retried = 0

    def install(self) -> None:
        delivery = self
        original = Rule.send_to_targets

        def send_to_targets(rule: Rule, original_event: Any, transform_input: bool = True) -> None:
            if rule.state != "ENABLED" or not rule.event_pattern.matches_event(original_event):
                return
            if rule.scheduled_expression and not rule.event_pattern.dump():
                return  # a schedule-only rule matches no event (moto's empty pattern matches all)
            others = [t for t in rule.targets if parse_arn(t["Arn"]).service not in _OURS]
            if others:
                shallow = copy.copy(rule)
                shallow.targets = others
                original(shallow, original_event, transform_input)
            for target in rule.targets:
                service = parse_arn(target["Arn"]).service
                if service in _OURS:
                    delivery.deliver(rule, target, original_event, wait=service == "sqs")

        self._patches.replace(Rule, "send_to_targets", send_to_targets)

    def uninstall(self) -> None:
        self._patches.undo()

    # -- emitting ------------------------------------------------------------------------
    def emit(self, event: dict[str, Any], *, account_id: str, region: str) -> None:
        """Put a full event (as AWS services emit them) on its bus and run matching rules.

        Goes through the backend rather than PutEvents: AWS refuses `aws.*` sources from
        callers, and the event's own id and time must be kept.
        """
        event = dict(event)
        event.setdefault("version", "0")
        event.setdefault("id", str(uuid.uuid4()))
        event.setdefault("account", account_id)
        event.setdefault("region", region)
        event.setdefault("resources", [])
        event.setdefault("detail", {})
        event.setdefault("time", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        bus_name = event.pop("EventBusName", "default")
        if self.faults is None:
            self._publish(event, bus_name, account_id, region)
            return
        self.faults.route_event(
            event, lambda routed: self._publish(routed, bus_name, account_id, region)
        )

    def put_event(self, event: dict[str, Any], bus_arn: str) -> None:
        """Put an event on the bus `bus_arn` (a Lambda destination, for one)."""
        bus = parse_arn(bus_arn)
        name = bus.resource_id.split("/", 1)[-1]
        self.emit({**event, "EventBusName": name}, account_id=bus.account, region=bus.region)

    def _publish(self, event: dict[str, Any], bus_name: str, account_id: str, region: str) -> None:
        backend: EventsBackend = events_backends[account_id][region]
        bus = backend.describe_event_bus(bus_name)
        # moto's own targets (SQS, logs, archives) read the time PutEvents would stamp.
        event = {**event, "ingestion-time": time.time()}
        log.info(
            "event %s / %s on bus %s (%s)",
            event.get("source"),
            event.get("detail-type"),
            bus_name,
            event["id"],
        )
        for rule in list(bus.rules.values()):
            rule.send_to_targets(cast(Any, copy.deepcopy(event)))

    # -- delivering ----------------------------------------------------------------------
    def deliver(
        self, rule: Rule, target: dict[str, Any], event: dict[str, Any], *, wait: bool = False
    ) -> None:
        event = dict(event)
        event.pop("ingestion-time", None)
        event["time"] = aws_time(event.get("time"))
        try:
            payload = target_input(target, event)
        except Exception as exc:  # a bad transformer is a delivery failure, as in AWS
            self._dead_letter(rule, target, event, "TRANSFORMATION_ERROR", str(exc), None, 0)
            return
        if wait:
            self._deliver(rule, target, event, payload)
            return
        self.activity.spawn(
            "event delivery", self._deliver, rule, target, event, payload, name="event-delivery"
        )

    def _deliver(
        self, rule: Rule, target: dict[str, Any], event: dict[str, Any], payload: Any
    ) -> None:
        policy = target.get("RetryPolicy") or {}
        max_retries = int(policy.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS))
        max_age = float(policy.get("MaximumEventAgeInSeconds", DEFAULT_EVENT_AGE))
        arrived = self.clock.now()
        retries = 0
        while True:
            try:
                self._call_target(rule, target, payload, event)
            except Exception as exc:
                failure = classify(exc)
                log.info(
                    "rule %s: delivery to %s failed (%s): %s",
                    rule.name,
                    target["Arn"],
                    failure.code,
                    failure,
                )
                # Given up: not a retried error (no EXHAUSTED_RETRY_CONDITION), or out of
                # attempts, or the next attempt would come after the event's maximum age.
                give_up, exhausted, delay = not failure.retried, None, 0.0
                if not give_up and retries >= max_retries:
                    give_up, exhausted = True, "MaximumRetryAttempts"
                if not give_up:
                    with self._lock:
                        delay = self._jitter.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**retries))
                    if self.clock.now() + delay - arrived > max_age:
                        give_up, exhausted = True, "MaximumEventAgeInSeconds"
                if give_up:
                    self._dead_letter(
                        rule, target, event, failure.code, str(failure), exhausted, retries
                    )
                    return
                retries += 1
                with self._lock:
                    self.retried += 1
                self.clock.sleep(delay)
                continue
            with self._lock:
                self.delivered += 1
            return

    def _call_target(
        self, rule: Rule, target: dict[str, Any], payload: Any, event: dict[str, Any]
    ) -> None:
        """One attempt; raises what the target service answered."""
        arn = parse_arn(target["Arn"])
        check_event_delivery(rule.arn, target)  # IAM: the target's role / resource policy
        if arn.service == "sqs":
            self._throttled("sqs", "SendMessage")
            group = (target.get("SqsParameters") or {}).get("MessageGroupId")
            # a FIFO queue deduplicates by the event's id, as EventBridge sends it
            sqs_backends[arn.account][arn.region].send_message(
                arn.resource_id,
                json.dumps(payload),
                group_id=group,
                deduplication_id=str(event.get("id")) if group else None,
            )
            return
        if arn.service == "states":
            self._throttled("stepfunctions", "StartExecution", arn.account, arn.region)
            backend = stepfunctions_backend(arn.account, arn.region)
            name = str(uuid.uuid4())
            backend.start_execution(target["Arn"], name=name, execution_input=json.dumps(payload))
            log.info("rule %s: started %s execution %s", rule.name, arn.resource_id, name)
            return
        self._throttled("lambda", "Invoke")
        fn = lambda_backend(arn.account, arn.region).get_function(target["Arn"])
        log.info("rule %s: invoking lambda %s (Event)", rule.name, fn.function_name)
        # Lambda has accepted the event: from here on, failures are Lambda's to retry.
        self.activity.spawn(
            "lambda invocation",
            self.runtime._run_async,
            fn,
            payload,
            name=f"lambda-{fn.function_name}",
        )

    def _throttled(self, service: str, operation: str, account: str = "", region: str = "") -> None:
        quotas = self.quotas if self.quotas is not None and self.quotas.enabled else None
        if quotas is not None and account and not quotas.take(account, region, service, operation):
            detail = f"{account}/{region}: EventBridge"
            quotas.refuse(f"{service}:{operation} rate", "ThrottlingException", detail)
            raise DeliveryError("THROTTLING", "ThrottlingException: Rate exceeded", retried=True)
        if self.faults is None:
            return
        error = self.faults.throttle(service, operation, None)
        if error is not None:
            raise DeliveryError("THROTTLING", f"{error.code}: {error.message}", retried=True)

    def _dead_letter(
        self,
        rule: Rule,
        target: dict[str, Any],
        event: dict[str, Any],
        code: str,
        message: str,
        exhausted: str | None,
        retries: int,
    ) -> None:
        dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not dlq:
            self.activity.errors.append(f"rule {rule.name} -> {target['Arn']}: {message}")
            log.warning("rule %s: event %s dropped: %s", rule.name, event.get("id"), message)
            return
        queue = parse_arn(dlq)
        attributes = {
            "RULE_ARN": rule.arn,
            "TARGET_ARN": target["Arn"],
            "ERROR_CODE": code,
            "ERROR_MESSAGE": message[:256],
        }
        if exhausted:
            attributes["EXHAUSTED_RETRY_CONDITION"] = exhausted
            attributes["RETRY_ATTEMPTS"] = str(retries)
        sqs_backends[queue.account][queue.region].send_message(
            queue.resource_id,
            json.dumps(event),
            message_attributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
            },
        )
        with self._lock:
            self.dead_lettered += 1
        log.info("rule %s: event %s sent to dead-letter queue %s", rule.name, event.get("id"), dlq)
