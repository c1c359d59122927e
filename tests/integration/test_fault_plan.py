"""Fault plans on the local cloud: throttles answered as each service answers them (and
retried by botocore), crashes after a function's Nth AWS call, and dropped, duplicated,
delayed and reordered events. On the fixture template (tests/fixtures/local_cloud).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from shiplane_local import LocalCloud
from shiplane_local.cli import app

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "local_cloud"
TIME_SCALE = 0.002


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(FIXTURE, rollout_delay=0.05, time_scale=TIME_SCALE) as local:
        local.wait_idle()
        yield local


@pytest.fixture(autouse=True)
def no_faults(cloud: LocalCloud) -> Iterator[None]:
    cloud.faults.clear()
    yield
    cloud.faults.clear()
    cloud.wait_idle()


# -- throttling ------------------------------------------------------------------------------

CALLS: dict[str, tuple[str, Callable[[Any], Any], str, int]] = {
    # service: (operation, call, the service's throttling code, HTTP status)
    "sts": ("GetCallerIdentity", lambda c: c.get_caller_identity(), "Throttling", 400),
    "dynamodb": (
        "ListTables",
        lambda c: c.list_tables(),
        "ProvisionedThroughputExceededException",
        400,
    ),
    "ecs": ("ListClusters", lambda c: c.list_clusters(), "ThrottlingException", 400),
    "cloudformation": ("ListStacks", lambda c: c.list_stacks(), "Throttling", 400),
    "stepfunctions": (
        "ListStateMachines",
        lambda c: c.list_state_machines(),
        "ThrottlingException",
        400,
    ),
    "lambda": ("ListFunctions", lambda c: c.list_functions(), "TooManyRequestsException", 429),
    "events": ("ListRules", lambda c: c.list_rules(), "ThrottlingException", 400),
}


@pytest.mark.parametrize("service", sorted(CALLS))
def test_throttle_answers_with_the_service_own_error(cloud: LocalCloud, service: str) -> None:
    operation, call, code, status = CALLS[service]
    cloud.faults.load(
        {"faults": [{"service": service, "operation": operation, "throttle": 1, "callers": "all"}]}
    )
    client = cloud.client(
        service, config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )

    with pytest.raises(ClientError) as raised:
        call(client)

    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    (fired,) = cloud.faults.fired("throttle")
    assert fired.target == f"{service}:{operation}"


@pytest.mark.parametrize(
    ("service", "mode"),
    [(service, "standard") for service in sorted(CALLS)]
    + [(service, "legacy") for service in ("dynamodb", "lambda", "sts")],
)
def test_botocore_retries_the_throttle_as_a_throttle(
    cloud: LocalCloud, service: str, mode: str
) -> None:
    operation, call, _, _ = CALLS[service]
    cloud.faults.load(
        {
            "faults": [
                {
                    "service": service,
                    "operation": operation,
                    "throttle": 1,
                    "callers": "all",
                    "times": 2,
                }
            ]
        }
    )
    client = cloud.client(service, config=Config(retries={"mode": mode, "max_attempts": 3}))

    response = call(client)

    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(cloud.faults.fired("throttle")) == 2


def test_a_fraction_is_throttled_and_the_seed_decides_which(cloud: LocalCloud) -> None:
    plan = {"seed": 11, "faults": [{"service": "sts", "throttle": 0.3, "callers": "all"}]}
    client = cloud.client(
        "sts", config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )

    def outcomes() -> list[bool]:
        cloud.faults.load(plan)
        found = []
        for _ in range(60):
            try:
                client.get_caller_identity()
                found.append(True)
            except ClientError:
                found.append(False)
        return found

    first, second = outcomes(), outcomes()

    assert first == second
    assert 6 <= first.count(False) <= 30  # about 30 % of 60


def _invoke(cloud: LocalCloud, function: str, event: dict[str, Any]) -> tuple[Any, str | None]:
    response = cloud.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event))
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def _recorded(cloud: LocalCloud, kind: str, item_id: str) -> bool:
    item = (
        cloud.client("dynamodb")
        .get_item(
            TableName=cloud.outputs["TableName"],
            Key={"pk": {"S": f"RECORD#{kind}"}, "sk": {"S": item_id}},
        )
        .get("Item")
    )
    return item is not None


def test_functions_calls_are_throttled_and_the_test_own_are_not(cloud: LocalCloud) -> None:
    plan = {"service": "dynamodb", "operation": "PutItem", "throttle": 1, "function": "record"}
    cloud.faults.load({"faults": [{**plan, "times": 1}]})
    record = cloud.outputs["RecordFunctionName"]

    cloud.client("dynamodb").put_item(
        TableName=cloud.outputs["TableName"],
        Item={"pk": {"S": "RECORD#mine"}, "sk": {"S": "m-1"}},
    )
    payload, error = _invoke(cloud, record, {"kind": "throttled", "id": "t-1"})

    # the function's botocore retried its throttled PutItem, and the write went through
    assert error is None and payload == {"recorded": "t-1"}
    assert _recorded(cloud, "throttled", "t-1")
    assert _recorded(cloud, "mine", "m-1")
    (fired,) = cloud.faults.fired("throttle")
    assert fired.target == "dynamodb:PutItem" and "to record" in fired.detail


def test_step_functions_lambda_task_is_throttled_for_step_functions_only(
    cloud: LocalCloud,
) -> None:
    cloud.faults.load(
        {
            "faults": [
                {
                    "service": "lambda",
                    "operation": "Invoke",
                    "throttle": 1,
                    "callers": "stepfunctions",
                    "times": 1,
                }
            ]
        }
    )
    sfn = cloud.client("stepfunctions")
    _, direct_error = _invoke(cloud, cloud.outputs["EchoFunctionName"], {"direct": True})

    arn = sfn.start_execution(
        stateMachineArn=cloud.outputs["StateMachineArn"],
        name=f"throttled-{uuid.uuid4().hex[:8]}",
        input=json.dumps({"id": "thr-1"}),
    )["executionArn"]
    cloud.wait_idle()

    assert direct_error is None  # the test's own Invoke is not Step Functions'
    execution = sfn.describe_execution(executionArn=arn)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "Lambda.TooManyRequestsException"
    assert len(cloud.faults.fired("throttle")) == 1


# -- crashes ---------------------------------------------------------------------------------


def test_fail_after_calls_crashes_once_after_the_write_took_effect(cloud: LocalCloud) -> None:
    cloud.faults.load({"faults": [{"function": "record", "fail_after_calls": 1, "times": 1}]})
    record = cloud.outputs["RecordFunctionName"]

    first, first_error = _invoke(cloud, record, {"kind": "crash", "id": "c-1"})
    second, second_error = _invoke(cloud, record, {"kind": "crash", "id": "c-2"})

    assert first_error == "Unhandled"
    assert first["errorType"] == "Runtime.ExitError"
    assert _recorded(cloud, "crash", "c-1")  # the write took effect before the crash
    assert second_error is None and second == {"recorded": "c-2"}
    (fired,) = cloud.faults.fired("crash")
    assert (fired.target, fired.fault) == ("record", 0)


def test_fail_after_zero_calls_crashes_before_the_first(cloud: LocalCloud) -> None:
    cloud.faults.load({"faults": [{"function": "record", "fail_after_calls": 0}]})

    payload, error = _invoke(cloud, cloud.outputs["RecordFunctionName"], {"kind": "c0", "id": "1"})

    assert error == "Unhandled" and payload["errorType"] == "Runtime.ExitError"
    assert not _recorded(cloud, "c0", "1")


def test_a_crash_names_only_its_function(cloud: LocalCloud) -> None:
    cloud.faults.load({"faults": [{"function": "echo", "fail_after_calls": 1}]})

    _, error = _invoke(cloud, cloud.outputs["RecordFunctionName"], {"kind": "other", "id": "o"})

    assert error is None
    assert cloud.faults.fired() == []


# -- events ----------------------------------------------------------------------------------


def _ecs_events_queue(cloud: LocalCloud) -> str:
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName=f"ecs-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = cloud.client("events")
    rule = f"ecs-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.ecs"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    return url


def _received(cloud: LocalCloud, url: str) -> list[str]:
    sqs = cloud.client("sqs")
    ids: list[str] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return ids
        ids.extend(json.loads(m["Body"])["id"] for m in batch)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )


def _emit(cloud: LocalCloud, event_id: str) -> None:
    cloud.emit_event(
        {
            "id": event_id,
            "source": "aws.ecs",
            "detail-type": "ECS Deployment State Change",
            "detail": {"eventName": "SERVICE_DEPLOYMENT_COMPLETED"},
        }
    )


def test_events_are_dropped(cloud: LocalCloud) -> None:
    url = _ecs_events_queue(cloud)
    cloud.faults.load({"faults": [{"events": {"source": "aws.ecs", "drop": 1}}]})

    _emit(cloud, "dropped-1")
    cloud.wait_idle()

    assert _received(cloud, url) == []
    assert [f.kind for f in cloud.faults.fired()] == ["drop"]


def test_events_are_duplicated_with_the_same_id(cloud: LocalCloud) -> None:
    url = _ecs_events_queue(cloud)
    cloud.faults.load({"faults": [{"events": {"source": "aws.ecs", "duplicate": 1}}]})

    _emit(cloud, "twice-1")
    cloud.wait_idle()

    assert _received(cloud, url) == ["twice-1", "twice-1"]


def test_events_are_delayed_by_cloud_seconds(cloud: LocalCloud) -> None:
    url = _ecs_events_queue(cloud)
    # Long enough (in wall time) that a loaded machine still looks before it is due.
    cloud.faults.load({"faults": [{"events": {"source": "aws.ecs", "delay_seconds": 2000}}]})
    started = time.monotonic()

    _emit(cloud, "late-1")
    early = _received(cloud, url)
    looked = time.monotonic() - started
    cloud.wait_idle()

    assert looked < 2000 * TIME_SCALE, "the machine was too slow to look before the event was due"
    assert early == []
    assert _received(cloud, url) == ["late-1"]
    assert time.monotonic() - started >= 2000 * TIME_SCALE


def test_events_are_reordered(cloud: LocalCloud) -> None:
    url = _ecs_events_queue(cloud)
    # A hold long enough (in wall time) that "second" overtakes "first" on a loaded machine.
    cloud.faults.load(
        {"faults": [{"events": {"source": "aws.ecs", "reorder": True, "hold_seconds": 1000}}]}
    )

    _emit(cloud, "first")
    _emit(cloud, "second")
    _emit(cloud, "third")  # held, then released alone after hold_seconds
    cloud.wait_idle()

    assert _received(cloud, url) == ["second", "first", "third"]
    assert [f.kind for f in cloud.faults.fired()] == ["reorder"]


def test_events_of_other_sources_are_untouched(cloud: LocalCloud) -> None:
    url = _ecs_events_queue(cloud)
    cloud.faults.load({"faults": [{"events": {"source": "aws.cloudformation", "drop": 1}}]})

    _emit(cloud, "kept-1")
    cloud.wait_idle()

    assert _received(cloud, url) == ["kept-1"]


def test_event_decisions_follow_the_seed(cloud: LocalCloud) -> None:
    url = _ecs_events_queue(cloud)
    plan = {"seed": 5, "faults": [{"events": {"source": "aws.ecs", "duplicate": 0.5}}]}

    def run() -> list[str]:
        cloud.faults.load(plan)
        for n in range(12):
            _emit(cloud, f"e-{n}")
        cloud.wait_idle()
        return _received(cloud, url)

    first, second = run(), run()

    assert first == second
    assert 12 < len(first) < 24


# -- the command line ------------------------------------------------------------------------


def test_local_up_refuses_a_bad_plan_naming_the_field(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("faults:\n  - service: sts\n    throttle: 1.5\n")

    result = CliRunner().invoke(app, ["local", "up", "--faults", str(plan)])

    assert result.exit_code == 2
    assert "faults.0.service.throttle" in result.output
