"""Fault plans validate, and a bad one is an error that names the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiplane_local.faults import (
    CrashFault,
    EventFault,
    FaultPlanError,
    InjectedCrash,
    ThrottleFault,
    load_plan,
    throttling_error,
)

ISSUE_SHAPE = """
faults:
  - function: record_deployment      # the function's folder under functions/
    fail_after_calls: 1               # raise after its 1st AWS call in an invocation
    times: 1                          # only once
  - service: sts
    operation: AssumeRole
    throttle: 0.2                     # 20 % answered with the service's throttling error
  - events: {source: aws.cloudformation, duplicate: 0.5, reorder: true, delay_seconds: 5}
"""


def test_the_example_plan_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "fault-plan.yaml"

    plan = load_plan(example)

    assert [type(f) for f in plan.faults] == [CrashFault, ThrottleFault, EventFault]


def test_the_issue_shape_loads(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("seed: 7\n" + ISSUE_SHAPE)

    plan = load_plan(path)

    crash, throttle, events = plan.faults
    assert plan.seed == 7
    assert isinstance(crash, CrashFault) and crash.function == "record_deployment"
    assert (crash.fail_after_calls, crash.times) == (1, 1)
    assert isinstance(throttle, ThrottleFault) and throttle.operation == "AssumeRole"
    assert throttle.throttle == 0.2 and throttle.callers == "functions"
    assert isinstance(events, EventFault) and events.events.reorder
    assert events.events.duplicate == 0.5 and events.events.delay_seconds == 5


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ({"faults": [{"service": "sts", "throttle": 2}]}, "faults.0.service.throttle"),
        ({"faults": [{"function": "x"}]}, "faults.0.function.fail_after_calls: Field required"),
        (
            {"faults": [{"function": "x", "fail_after_cals": 1}]},
            "faults.0.function.fail_after_cals: Extra inputs are not permitted",
        ),
        ({"faults": [{"throttle": 0.5}]}, "faults.0: a fault needs one of the keys"),
        (
            {"faults": [{"events": {"source": "aws.ecs", "drop": -1}}]},
            "faults.0.events.events.drop",
        ),
        ({"seed": "abc"}, "seed"),
    ],
)
def test_a_bad_plan_names_the_field(plan: dict[str, object], expected: str) -> None:
    with pytest.raises(FaultPlanError) as raised:
        load_plan(plan)

    assert expected in str(raised.value)


def test_a_missing_plan_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(FaultPlanError, match="no such file"):
        load_plan(tmp_path / "nowhere.yaml")


def test_yaml_that_is_not_yaml_is_a_plan_error() -> None:
    with pytest.raises(FaultPlanError, match="not YAML"):
        load_plan("faults: [\n  - {function: x")


def test_each_service_throttles_with_its_own_code() -> None:
    assert throttling_error("dynamodb").code == "ProvisionedThroughputExceededException"
    assert (throttling_error("lambda").code, throttling_error("lambda").status) == (
        "TooManyRequestsException",
        429,
    )
    assert throttling_error("sts").code == "Throttling"
    assert throttling_error("cloudformation").code == "Throttling"
    assert throttling_error("ecs").code == "ThrottlingException"
    assert throttling_error("stepfunctions").code == "ThrottlingException"
    assert throttling_error("s3").status == 503


def test_every_throttling_code_is_one_botocore_retries_as_a_throttle() -> None:
    from botocore.retries.standard import ThrottledRetryableChecker

    codes = set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
    for service in (
        "dynamodb",
        "lambda",
        "sts",
        "cloudformation",
        "ecs",
        "stepfunctions",
        "ecr",
        "events",
        "ssm",
        "sqs",
        "s3",
        "logs",
        "iam",
        "scheduler",
    ):
        assert throttling_error(service).code in codes, service


def test_a_crash_is_not_an_exception_a_handler_can_catch() -> None:
    def handler() -> str:
        try:
            raise InjectedCrash("record_deployment", 1, "Runtime.ExitError")
        except Exception:  # what a handler's broad except would do
            return "swallowed"

    with pytest.raises(InjectedCrash) as raised:
        handler()
    assert raised.value.error_type == "Runtime.ExitError"
