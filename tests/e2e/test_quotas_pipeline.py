"""AWS's throttles on the deploy pipeline: a bucket someone else keeps empty delays a
deployment, it never fails one (issue 10: "throttling delays a deployment")."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from shiplane_local.cloud import LocalCloud
from tests.e2e.conftest import ROLLOUT_DELAY, Project

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    # AWS's own time: buckets refill at AWS's rates (at 0.01 a bucket refills 100 times
    # faster than this machine can call it, and would never be empty).
    with LocalCloud(rollout_delay=ROLLOUT_DELAY, parameters={"LogLevel": "WARNING"}) as running:
        yield running


def test_a_neighbour_emptying_ecs_register_bucket_delays_a_push_and_it_succeeds(
    project: Project,
) -> None:
    cloud = project.cloud
    ecs = cloud.client("ecs", config=Config(retries={"total_max_attempts": 1}))
    stop = threading.Event()

    def neighbour() -> None:
        # Another tool in the same account and region registering as fast as it can:
        # RegisterTaskDefinition's bucket (20, then 1 a second) stays empty.
        while not stop.is_set():
            with contextlib.suppress(ClientError):  # throttled, as intended
                ecs.register_task_definition(
                    family="neighbour",
                    containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}],
                )

    def shiplane_refused() -> int:
        return sum(
            "register_task_definition" in r.detail
            for r in cloud.quotas.refusals("ecs:RegisterTaskDefinition")
        )

    before = shiplane_refused()
    threads = [threading.Thread(target=neighbour, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        cloud.push_image(project.repository, "1.0.0")
        deadline = time.monotonic() + 60
        while shiplane_refused() == before:  # Shiplane's own registration was throttled
            assert time.monotonic() < deadline, "Shiplane's registration never throttled"
            time.sleep(0.05)
        time.sleep(5)  # and keeps being throttled a while
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    project.settle()

    assert shiplane_refused() > before
    statuses = {(d.environment, d.release): d.status.value for d in project.deployments()}
    assert statuses == {("dev", "1.0.0"): "SUCCEEDED", ("test", "1.0.0"): "SUCCEEDED"}
