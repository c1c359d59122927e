"""Where today's pipeline meets AWS's quotas: each quota beside what one push uses of it.

  .venv/bin/python bench/quotas.py [N1 N2 [TIME_SCALE]]  # default: 2 and 6 tenants, 0.01

It also prints what one deployment costs (AWS calls, DynamoDB calls, AssumeRole and
RegisterTaskDefinition per deployment) and, for 1,000 and 5,000 tenants on AWS, the time
ECS's RegisterTaskDefinition throttle alone sets as a floor on one push.

On the embedded local cloud with quotas on (time scale 0.01 unless given), one tenanted project (one
target per environment serving every tenant, dev and test automatic) gets one push with N1
tenants, then one with N2. For each quota the bench prints the largest use seen in each
push (history events of any execution, largest state data in any history, the largest
DynamoDB transaction and item, Lambda payloads, PutEvents entries, TemplateBody, peak rate
of each throttled API against its bucket) and, from the two points, the use per tenant and
the N at which that use would pass the quota (a straight line through the two points:
"none" when the use does not grow with N). Figures are measured, the breaking N is a
linear extrapolation. At time scale 0.01 the buckets refill 100 times faster than AWS's
(faster than the local server answers), so they never bite; run at time scale 1 to see
ECS's throttles meet the pipeline (e.g. `bench/quotas.py 2 20 1`).
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _histories(cloud: Any, since: set[str]) -> tuple[int, int, set[str]]:
    """(most history events of one execution, largest data in any event, arns seen)."""
    sfn = cloud.client("stepfunctions")
    machine = cloud.outputs["StateMachineArn"]
    arns = {
        e["executionArn"]
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
        for e in page["executions"]
    }
    most_events = largest = 0
    for arn in arns - since:
        events = [
            event
            for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
            for event in page["events"]
        ]
        most_events = max(most_events, len(events))
        for event in events:
            for key, details in event.items():
                if not key.endswith("EventDetails") or not isinstance(details, dict):
                    continue
                for field in ("input", "output"):
                    if isinstance(details.get(field), str):
                        largest = max(largest, len(details[field].encode("utf-8")))
    return most_events, largest, arns


def _push(cloud: Any, store: Any, tenants: int) -> dict[str, float]:
    from tests.e2e.release_model_fixtures import World, environments, phase

    world = World(cloud, store, "q")
    lifecycle = f"lc-{world.id}"
    world.apply(
        {
            "environments": environments("dev", "test"),
            "lifecycles": [
                {
                    "name": lifecycle,
                    "phases": [
                        phase("development", ("dev", "automatic")),
                        phase("testing", ("test", "automatic")),
                    ],
                }
            ],
            "targets": [world.target(e, tenanted_mode="tenanted") for e in ("dev", "test")],
            "projects": [world.project_document(lifecycle, tenanted_mode="tenanted")],
            "tenants": [
                {"name": f"tenant{i:04d}-{world.id}", "projects": {world.project: ["dev", "test"]}}
                for i in range(tenants)
            ],
        }
    )
    cloud.wait_idle(120)
    _, _, before = _histories(cloud, set())
    cloud.quotas.reset_peaks()
    buckets_before = {k: (b.granted, b.refused) for k, b in cloud.quotas.buckets().items()}
    cloud.reset_api_calls()
    started = time.perf_counter()
    world.push("1.0.0", settle=False)
    cloud.wait_idle(600)
    wall = time.perf_counter() - started
    calls = cloud.api_calls()
    most_events, largest, _ = _histories(cloud, before)
    figures: dict[str, float] = dict(cloud.quotas.peaks())
    figures["stepfunctions history events"] = most_events
    figures["stepfunctions state data bytes"] = largest
    figures["lambda concurrent executions"] = cloud.quotas.slots.peak
    for key, bucket in cloud.quotas.buckets().items():
        granted, refused = buckets_before.get(key, (0, 0))
        name = key.split(" ", 1)[1]
        figures[f"{name} calls"] = bucket.granted - granted
        figures[f"{name} throttled"] = bucket.refused - refused
        figures[f"{name} peak per s (since start)"] = bucket.peak_per_second
    figures["wall seconds"] = round(wall, 1)
    deployments = world.deployments()
    figures["deployments"] = len(deployments)
    figures["deployments failed"] = sum(d.status.value != "SUCCEEDED" for d in deployments)
    # what one deployment costs (the floor: 20 calls, 10 of them DynamoDB)
    per = max(1, len(deployments))
    figures["AWS calls per deployment"] = round(sum(calls.values()) / per, 1)
    dynamodb = sum(n for op, n in calls.items() if op.startswith("dynamodb"))
    figures["DynamoDB calls per deployment"] = round(dynamodb / per, 1)
    figures["sts:AssumeRole per deployment"] = round(calls["sts:AssumeRole"] / per, 1)
    figures["ecs:RegisterTaskDefinition per deployment"] = round(
        calls["ecs:RegisterTaskDefinition"] / per, 1
    )
    return figures


LIMITS = {
    "stepfunctions history events": 25_000,
    "stepfunctions state data bytes": 262_144,
    "stepfunctions input bytes": 262_144,
    "stepfunctions output bytes": 262_144,
    "dynamodb:TransactWriteItems actions": 100,
    "dynamodb:TransactWriteItems bytes": 4 * 1024 * 1024,
    "dynamodb item bytes": 400 * 1024,
    "lambda:Invoke sync payload": 6_291_456,
    "lambda:Invoke Event payload": 1_048_576,
    "events:PutEvents entries bytes": 1_048_576,
    "cloudformation TemplateBody bytes": 51_200,
    "lambda concurrent executions": 1_000,
}


def main(argv: list[str]) -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    small, large = (int(argv[0]), int(argv[1])) if len(argv) >= 2 else (2, 6)
    time_scale = float(argv[2]) if len(argv) >= 3 else 0.01

    from shiplane.adapters.dynamodb import DynamoStore
    from shiplane_local.cloud import LocalCloud

    with LocalCloud(
        rollout_delay=0.2, parameters={"LogLevel": "WARNING"}, time_scale=time_scale
    ) as cloud:
        assert cloud.quotas.enabled, "quotas are off (SHIPLANE_LOCAL_QUOTAS): nothing to show"
        store = DynamoStore(cloud.outputs["TableName"], client=cloud.client("dynamodb"))
        at_small = _push(cloud, store, small)
        at_large = _push(cloud, store, large)

    print(
        "== AWS's quotas against one push, tenanted project, dev + test automatic "
        f"(time scale {time_scale:g}) =="
    )
    header = f"{'measure':44} {'quota':>10} {f'N={small}':>10} {f'N={large}':>10}"
    print(f"{header} {'per tenant':>11} {'breaks at N':>12}")
    for measure in sorted(set(at_small) | set(at_large)):
        a, b = at_small.get(measure, 0), at_large.get(measure, 0)
        slope = (b - a) / (large - small)
        limit = LIMITS.get(measure)
        if limit is None:
            breaks = ""
        elif slope <= 0:
            breaks = "none" if b <= limit else "now"
        else:
            breaks = f"{max(0, (limit - (a - slope * small)) / slope):.0f}"
        print(
            f"{measure:44} {limit if limit is not None else '':>10} {a:>10g} {b:>10g} "
            f"{slope:>11.1f} {breaks:>12}"
        )
    # On AWS, 5,000 tenants: ECS's RegisterTaskDefinition bucket (20, then 1 per second per
    # account and region) alone sets a floor on one push's duration.
    registrations = at_large.get("ecs:RegisterTaskDefinition per deployment", 0) * 2  # dev+test
    for n in (1_000, 5_000):
        floor = max(0.0, registrations * n - 20) / 1.0
        print(
            f"N={n} on AWS: {registrations * n:.0f} RegisterTaskDefinition calls per push, "
            f"at least {floor:.0f} s of ECS's throttle (20, then 1/s)"
        )
    print(
        "Token buckets (burst / refill per s): ECS RegisterTaskDefinition 20/1, "
        "Create/UpdateService 50/5, Describe* 100/20; StartExecution 1,300/300. "
        "'throttled' counts calls the buckets refused (retried by the callers)."
    )


if __name__ == "__main__":
    main(sys.argv[1:])
