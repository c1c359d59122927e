"""The fault matrix on the local cloud, a representative subset: each pipeline function
crashed once after its first AWS call (reconcile_deployment with every CloudFormation
event lost, so the deployment ends by its wait timeout and reconciliation; settle_execution
on an execution stopped mid-deployment), 20 % throttling of every call type with
botocore's retries off, duplicated/reordered/late events; after each case every invariant
of tests/e2e/fault_matrix.py holds. The whole matrix (every crash point of every
function) is bench/fault_matrix.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane_local.cloud import LocalCloud
from tests.e2e.conftest import ROLLOUT_DELAY, TIME_SCALE
from tests.e2e.fault_matrix import (
    PATHS,
    PUSH_FUNCTIONS,
    Case,
    crash_cases,
    event_cases,
    no_sdk_retries,
    run_case,
    throttle_case,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with (
        no_sdk_retries(),
        LocalCloud(
            rollout_delay=ROLLOUT_DELAY,
            parameters={"LogLevel": "WARNING"},
            time_scale=TIME_SCALE,
        ) as running,
    ):
        yield running


# Each function crashed once after its first AWS call (on the scenario that runs it; the
# lost-events case is the one that crashes reconcile_deployment), one throttle case and
# every event case.
FUNCTIONS = (*PUSH_FUNCTIONS, *PATHS)
SUBSET: list[Case] = [
    *(c for c in crash_cases(dict.fromkeys(FUNCTIONS, 1)) if c.name.endswith("after 1")),
    throttle_case(),
    *(c for c in event_cases() if c.scenario != "lost-events"),
]


@pytest.mark.parametrize("case", SUBSET, ids=[c.name for c in SUBSET])
def test_every_invariant_holds(cloud: LocalCloud, store: DynamoStore, case: Case) -> None:
    outcome = run_case(cloud, store, case)
    assert outcome.fired, f"{case.name}: the plan never fired"
    assert outcome.held, f"{case.name}: {outcome.broken}"
