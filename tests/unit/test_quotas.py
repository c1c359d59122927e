"""The local cloud's quota arithmetic: token buckets on the cloud clock, AWS's figures, and
the sizes each service measures (the refusals' shapes are in tests/integration)."""

from __future__ import annotations

import threading

import pytest

from shiplane_local.clock import Clock
from shiplane_local.quotas import (
    BucketSpec,
    ConcurrencyExceeded,
    ConcurrencySlots,
    Quotas,
    TokenBucket,
    bucket_spec,
    enabled_by_environment,
    item_size,
    put_events_entry_size,
    transaction_items_size,
)


class FakeClock(Clock):
    """A cloud clock the test moves by hand (in wall seconds, scaled like Clock.now)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        super().__init__(time_scale)
        self.wall = 1000.0

    def now(self) -> float:
        return self.wall / self.time_scale


def test_bucket_grants_its_burst_then_refills_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(BucketSpec(20, 1), clock)

    assert [bucket.take() for _ in range(21)] == [True] * 20 + [False]
    clock.wall += 0.5
    assert not bucket.take()  # half a token
    clock.wall += 0.5
    assert bucket.take()
    clock.wall += 3600
    assert sum(bucket.take() for _ in range(30)) == 20  # never more than the burst
    assert bucket.peak_per_second == 20


def test_time_scale_runs_the_refill_faster_and_keeps_the_burst() -> None:
    clock = FakeClock(time_scale=0.01)  # 1 wall second is 100 cloud seconds
    bucket = TokenBucket(BucketSpec(20, 1), clock)
    for _ in range(20):
        assert bucket.take()
    assert not bucket.take()

    clock.wall += 0.05  # 5 cloud seconds: 5 tokens, as AWS refills in 5 s
    assert sum(bucket.take() for _ in range(10)) == 5


@pytest.mark.parametrize(
    ("service", "operation", "region", "spec"),
    [
        ("ecs", "RegisterTaskDefinition", "us-east-1", BucketSpec(20, 1)),
        ("ecs", "CreateService", "us-east-1", BucketSpec(50, 5)),
        ("ecs", "UpdateService", "eu-central-1", BucketSpec(50, 5)),
        ("ecs", "DescribeServices", "us-east-1", BucketSpec(100, 20)),
        ("ecs", "DescribeTaskDefinition", "us-east-1", BucketSpec(100, 20)),
        ("ecs", "DescribeServiceDeployments", "us-east-1", BucketSpec(50, 20)),
        ("stepfunctions", "StartExecution", "us-east-1", BucketSpec(1300, 300)),
        ("stepfunctions", "StartExecution", "eu-central-1", BucketSpec(800, 150)),
        ("ecs", "ListTasks", "us-east-1", None),
        ("dynamodb", "PutItem", "us-east-1", None),
    ],
)
def test_bucket_figures_are_awss(
    service: str, operation: str, region: str, spec: BucketSpec | None
) -> None:
    assert bucket_spec(service, operation, region) == spec


def test_buckets_are_per_account_and_region() -> None:
    quotas = Quotas(FakeClock())
    for _ in range(20):
        assert quotas.take("111111111111", "us-east-1", "ecs", "RegisterTaskDefinition")
    assert not quotas.take("111111111111", "us-east-1", "ecs", "RegisterTaskDefinition")
    assert quotas.take("222222222222", "us-east-1", "ecs", "RegisterTaskDefinition")
    assert quotas.take("111111111111", "us-west-2", "ecs", "RegisterTaskDefinition")
    assert quotas.take("111111111111", "us-east-1", "ecs", "ListTasks")  # no bucket


def test_put_events_entry_size_follows_awss_formula() -> None:
    entry = {
        "Time": 1,
        "Source": "shiplane",
        "DetailType": "Déploiement",
        "Detail": '{"a": 1}',
        "Resources": ["arn:1", None],
    }
    assert put_events_entry_size(entry) == 14 + 8 + len("Déploiement".encode()) + 8 + 5


def test_dynamodb_item_and_transaction_sizes() -> None:
    item = {
        "pk": {"S": "abc"},  # 2 + 3
        "n": {"N": "12345"},  # 1 + (5 digits: 3 + 1)
        "ok": {"BOOL": True},  # 2 + 1
        "l": {"L": [{"S": "xy"}]},  # 1 + 3 + (1 + 2)
    }
    assert item_size(item) == 5 + 5 + 3 + 7
    actions = [
        {"Put": {"Item": item}},
        {"Update": {"Key": {"pk": {"S": "k"}}, "ExpressionAttributeValues": {":v": {"S": "zz"}}}},
        {"ConditionCheck": {"Key": {"pk": {"S": "k"}}}},
    ]
    assert transaction_items_size(actions) == 20 + (3 + 2) + 3


def test_switch_turns_quotas_off_for_diagnosis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPLANE_LOCAL_QUOTAS", raising=False)
    assert enabled_by_environment()
    monkeypatch.setenv("SHIPLANE_LOCAL_QUOTAS", "off")
    assert not enabled_by_environment()


def test_slots_refuse_a_synchronous_caller_and_hold_an_asynchronous_one() -> None:
    quotas = Quotas(FakeClock())
    slots = ConcurrencySlots(quotas, limit=1)
    scope = ("123456789012", "us-east-1")
    slots.acquire(scope, wait=False)

    with pytest.raises(ConcurrencyExceeded):
        slots.acquire(scope, wait=False)
    assert [r.code for r in quotas.refusals("lambda")] == ["TooManyRequestsException"]
    slots.acquire(("123456789012", "eu-west-1"), wait=False)  # another region: its own

    waited = threading.Event()

    def queued() -> None:
        slots.acquire(scope, wait=True)
        waited.set()

    thread = threading.Thread(target=queued)
    thread.start()
    assert not waited.wait(0.2)  # held, not refused
    slots.release(scope)
    assert waited.wait(2)
    thread.join()
