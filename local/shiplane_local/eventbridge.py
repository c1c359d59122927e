"""EventBridge delivery to Lambda and Step Functions targets.

moto's `Rule.send_to_targets` delivers to logs, archives, SQS, buses and API destinations
only, and raises NotImplementedError for a Lambda or a state machine. The replacement
delivers those two itself, asynchronously (as EventBridge does), and hands every other
target back to moto. A delivery that fails goes to the target's DeadLetterConfig queue
with the attributes EventBridge sets (ERROR_CODE, ERROR_MESSAGE, RULE_ARN, TARGET_ARN).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import uuid
from typing import Any, cast

from moto.awslambda.utils import get_backend as lambda_backend
from moto.events.models import EventsBackend, Rule, events_backends
from moto.events.utils import EventTemplateParser
from moto.sqs.models import sqs_backends
from moto.stepfunctions.responses import get_backend as stepfunctions_backend
from moto.utilities.arns import parse_arn

from ._patching import Patches
from .activity import Activity
from .iam.services import check_event_delivery
from .lambda_runtime import LambdaRuntime

log = logging.getLogger("shiplane_local")

_OURS = {"lambda", "states"}


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

    def __init__(self, runtime: LambdaRuntime, activity: Activity) -> None:
        self.runtime = runtime
        self.activity = activity
        self._patches = Patches()
        self.delivered = 0
        self.dead_lettered = 0

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
                if parse_arn(target["Arn"]).service in _OURS:
                    delivery.deliver(rule, target, original_event)

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
        backend: EventsBackend = events_backends[account_id][region]
        bus = backend.describe_event_bus(bus_name)
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
    def deliver(self, rule: Rule, target: dict[str, Any], event: dict[str, Any]) -> None:
        event = dict(event)
        event.pop("ingestion-time", None)
        event["time"] = aws_time(event.get("time"))
        try:
            payload = target_input(target, event)
        except Exception as exc:  # a bad transformer is a delivery failure, as in AWS
            self._dead_letter(rule, target, event, "TRANSFORMATION_ERROR", str(exc))
            return
        self.activity.spawn(
            "event delivery", self._deliver, rule, target, event, payload, name="event-delivery"
        )

    def _deliver(
        self, rule: Rule, target: dict[str, Any], event: dict[str, Any], payload: Any
    ) -> None:
        arn = parse_arn(target["Arn"])
        try:
            check_event_delivery(rule.arn, target)  # IAM: the target's role / resource policy
            if arn.service == "states":
                backend = stepfunctions_backend(arn.account, arn.region)
                name = str(uuid.uuid4())
                backend.start_execution(
                    target["Arn"], name=name, execution_input=json.dumps(payload)
                )
                log.info("rule %s: started %s execution %s", rule.name, arn.resource_id, name)
            else:
                function_name = target["Arn"]
                fn = lambda_backend(arn.account, arn.region).get_function(function_name)
                log.info("rule %s: invoking lambda %s", rule.name, fn.function_name)
                self.runtime._run_async(fn, payload)
            self.delivered += 1
        except Exception as exc:
            log.info("rule %s: delivery to %s failed: %s", rule.name, target["Arn"], exc)
            self._dead_letter(rule, target, event, type(exc).__name__, str(exc))

    def _dead_letter(
        self, rule: Rule, target: dict[str, Any], event: dict[str, Any], code: str, message: str
    ) -> None:
        dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not dlq:
            self.activity.errors.append(f"rule {rule.name} -> {target['Arn']}: {message}")
            return
        queue = parse_arn(dlq)
        attributes = {
            "ERROR_CODE": code,
            "ERROR_MESSAGE": message[:256],
            "RULE_ARN": rule.arn,
            "TARGET_ARN": target["Arn"],
        }
        sqs_backends[queue.account][queue.region].send_message(
            queue.resource_id,
            json.dumps(event),
            message_attributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
            },
        )
        self.dead_lettered += 1
        log.info("rule %s: event %s sent to dead-letter queue %s", rule.name, event.get("id"), dlq)
