"""Asynchronous Lambda invocations as Lambda runs them: retries, then the on-failure destination.

An `Event` invocation (InvocationType Event, an EventBridge rule's or a schedule's delivery)
that ends in a function error is retried by Lambda itself: twice by default, about one
minute and then two minutes later, within MaximumEventAgeInSeconds (6 hours by default).
The function's EventInvokeConfig (PutFunctionEventInvokeConfig, or
AWS::Lambda::EventInvokeConfig in a template: SAM's `EventInvokeConfig`, applied here
because moto's CloudFormation does not create it) may lower both. When the retries are
exhausted or the event is too old, Lambda sends an invocation record to the
DestinationConfig's OnFailure destination (SQS, SNS, a function, an event bus); a success
goes to OnSuccess. Without a destination the event is discarded (and noted in
`Activity.errors`, so a test sees it).

Delays follow the local cloud's `Clock`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.awslambda.utils import get_backend as lambda_backend
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.utilities.arns import parse_arn

from . import scheduler
from .activity import Activity
from .clock import Clock
from .iam.services import authorize_service_call
from .lambda_runtime import LambdaRuntime

log = logging.getLogger("shiplane_local")

DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE = 21600  # 6 hours
RETRY_DELAYS = (60.0, 120.0)  # "about one minute, then two minutes"


def _iso_ms(moment: dt.datetime | None = None) -> str:
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def event_invoke_config(fn: LambdaFunction) -> dict[str, Any]:
    """The function's EventInvokeConfig as PutFunctionEventInvokeConfig stored it ({} if none)."""
    configs = getattr(fn, "event_invoke_config", None) or []
    return dict(configs[-1].config) if configs else {}


def invocation_record(
    fn: LambdaFunction,
    *,
    request_id: str,
    condition: str,
    attempts: int,
    request: Any,
    response: Any,
    failed: bool,
) -> dict[str, Any]:
    """The record Lambda sends to a destination (AWS Lambda Developer Guide, "Capturing
    records of Lambda asynchronous invocations")."""
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if failed:
        response_context["functionError"] = "Unhandled"
    return {
        "version": "1.0",
        "timestamp": _iso_ms(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{fn.function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": request,
        "responseContext": response_context,
        "responsePayload": response,
    }


class AsyncInvocations:
    """Runs `Event` invocations with Lambda's retries and destinations."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        activity: Activity,
        clock: Clock,
        put_event: Callable[[dict[str, Any], str], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.activity = activity
        self.clock = clock
        self.put_event = put_event  # (event, bus ARN): puts an event on a bus
        self.records: list[tuple[str, dict[str, Any]]] = []  # (destination, record) sent
        self.retries = 0

    def install(self) -> None:
        self.runtime.async_runner = self.run

    def uninstall(self) -> None:
        if self.runtime.async_runner == self.run:
            self.runtime.async_runner = None

    def run(self, fn: LambdaFunction, event: Any) -> None:
        """Invoke until success, or until retries or age run out; then the destination."""
        config = event_invoke_config(fn)
        retries = int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES))
        max_age = float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE))
        destinations = config.get("DestinationConfig") or {}
        request_id = str(uuid.uuid4())
        queued = self.clock.now()
        attempts = 0
        while True:
            attempts += 1
            payload, error = self.runtime.run(fn, event)
            response = _json_or_text(payload)
            if not error:
                on_success = (destinations.get("OnSuccess") or {}).get("Destination")
                if on_success:
                    record = invocation_record(
                        fn,
                        request_id=request_id,
                        condition="Success",
                        attempts=attempts,
                        request=event,
                        response=response,
                        failed=False,
                    )
                    self._send(fn, on_success, record, success=True)
                return
            if attempts > retries:
                condition = "RetriesExhausted"
            else:
                delay = RETRY_DELAYS[min(attempts - 1, len(RETRY_DELAYS) - 1)]
                if self.clock.now() + delay - queued > max_age:
                    condition = "EventAgeExceeded"
                else:
                    log.info(
                        "lambda %s: async invocation failed (attempt %d); retried in %g s",
                        fn.function_name,
                        attempts,
                        delay,
                    )
                    self.retries += 1
                    with self.activity.busy("lambda retry"):
                        self.clock.sleep(delay)
                    continue
            self._fail(fn, destinations, request_id, condition, attempts, event, response)
            return

    def _fail(
        self,
        fn: LambdaFunction,
        destinations: dict[str, Any],
        request_id: str,
        condition: str,
        attempts: int,
        event: Any,
        response: Any,
    ) -> None:
        on_failure = (destinations.get("OnFailure") or {}).get("Destination")
        record = invocation_record(
            fn,
            request_id=request_id,
            condition=condition,
            attempts=attempts,
            request=event,
            response=response,
            failed=True,
        )
        if not on_failure:
            message = f"{fn.function_name}: {json.dumps(response)} ({condition}, discarded)"
            log.warning("lambda %s: async invocation discarded: %s", fn.function_name, condition)
            self.activity.errors.append(message)
            return
        self._send(fn, on_failure, record, success=False)

    def _send(self, fn: LambdaFunction, arn: str, record: dict[str, Any], *, success: bool) -> None:
        target = parse_arn(arn)
        body = json.dumps(record)
        try:
            # Lambda sends the record with the function's execution role.
            action = _DESTINATION_ACTIONS.get(target.service)
            if action is not None:
                denial = authorize_service_call(fn.role, action, arn, session=fn.function_name)
                if denial is not None:
                    raise PermissionError(f"AccessDenied: {denial.message}")
            if target.service == "sqs":
                sqs_backends[target.account][target.region].send_message(target.resource_id, body)
            elif target.service == "sns":
                sns_backends[target.account][target.region].publish(body, arn=arn)
            elif target.service == "lambda":
                destination = lambda_backend(target.account, target.region).get_function(arn)
                self.activity.spawn(
                    "lambda invocation",
                    self.run,
                    destination,
                    record,
                    name=f"lambda-{destination.function_name}",
                )
            elif target.service == "events":
                if self.put_event is None:
                    raise RuntimeError("no event bus delivery installed")
                self.put_event(
                    {
                        "source": "lambda",
                        "detail-type": "Lambda Function Invocation Result - "
                        + ("Success" if success else "Failure"),
                        "resources": [fn.function_arn, arn],
                        "detail": record,
                    },
                    arn,
                )
            else:
                raise ValueError(f"{arn} is not a destination Lambda supports")
        except Exception as exc:  # DestinationDeliveryFailures on AWS: the record is lost
            log.warning("lambda %s: destination %s failed: %s", fn.function_name, arn, exc)
            self.activity.errors.append(f"{fn.function_name}: destination {arn} failed: {exc}")
            return
        self.records.append((arn, record))
        log.info(
            "lambda %s: invocation record (%s) sent to %s",
            fn.function_name,
            record["requestContext"]["condition"],
            arn,
        )


# What the execution role needs for each kind of destination (Lambda developer guide,
# "Capturing records of Lambda asynchronous invocations").
_DESTINATION_ACTIONS = {
    "sqs": "sqs:SendMessage",
    "sns": "sns:Publish",
    "lambda": "lambda:InvokeFunction",
    "events": "events:PutEvents",
}


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload or b"null")
    except ValueError:
        return payload.decode("utf-8", "replace")


class _Resolver(scheduler._Resolver):
    """The scheduler's intrinsic functions, plus `Fn::GetAtt Queue.Arn` (a queue's physical
    id is its URL) and `Fn::GetAtt Topic.TopicArn`."""

    def arn(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        if resource.resource_type == "AWS::SQS::Queue":
            name = resource.physical_id.rstrip("/").rsplit("/", 1)[-1]
            return f"arn:aws:sqs:{self.region}:{self.account}:{name}"
        return str(super().arn(logical_id))

    def get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "TopicArn":
            return self.resources[logical_id].physical_id
        return str(super().get_att(logical_id, attribute))


def apply_template_event_invoke_configs(
    dropped: dict[str, dict[str, Any]],
    resources: list[scheduler.StackResource],
    pseudo: dict[str, str],
    account_id: str,
    region: str,
) -> int:
    """Create the template's AWS::Lambda::EventInvokeConfig resources moto's CloudFormation
    set aside, as CloudFormation would (through PutFunctionEventInvokeConfig)."""
    resolve = _Resolver(resources, pseudo, account_id, region).resolve
    backend = lambda_backend(account_id, region)
    applied = 0
    for logical_id, resource in dropped.items():
        if resource.get("Type") != "AWS::Lambda::EventInvokeConfig":
            continue
        props = resolve(resource.get("Properties") or {})
        config: dict[str, Any] = {}
        for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"):
            if props.get(key) is not None:
                config[key] = props[key]
        backend.put_function_event_invoke_config(str(props["FunctionName"]), config)
        applied += 1
        log.info("template: %s applied to %s", logical_id, props["FunctionName"])
    return applied
