"""Tenants at scale: one push of a tenanted project (one target per environment serving
every tenant, dev and test automatic) on the embedded local cloud, for N tenants; and a
linear model of the same on AWS for the N the machine cannot run.

  .venv/bin/python bench/tenants.py            # N = 5 and 15 (about a minute)
  .venv/bin/python bench/tenants.py 10 100     # the N given

Printed per N (stable figures first; the wall time is indicative only):
- releases and deployments written, and their statuses;
- the largest history of any execution (events) and the largest state input/output in it
  (bytes), against Step Functions' quotas (25,000 events; 262,144 bytes);
- AWS API calls in all and per deployment, DynamoDB operations per deployment,
  RegisterTaskDefinition and AssumeRole calls;
- when the push failed, the execution's error and cause.
Then, from the two smallest N measured, the per-tenant slope of each figure, the N at which
each quota would break, and the time ECS's RegisterTaskDefinition throttle (1 per second
after a burst of 20, per account and region) alone takes at N = 1,000 and 5,000.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HISTORY_QUOTA = 25_000
PAYLOAD_QUOTA = 262_144
REGISTER_BURST, REGISTER_RATE = 20, 1.0  # ECS RegisterTaskDefinition token bucket


@dataclass
class Figures:
    tenants: int
    seconds: float = 0.0
    releases: int = 0
    deployments: Counter[str] = field(default_factory=Counter)
    executions: int = 0
    largest_history: int = 0
    largest_payload: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    failure: str = ""

    @property
    def deployed(self) -> int:
        return sum(self.deployments.values())

    def per_deployment(self, n: int) -> str:
        return f"{n / self.deployed:.1f}" if self.deployed else "-"


def document(tenants: int) -> dict[str, Any]:
    import yaml

    config = yaml.safe_load((ROOT / "examples" / "shiplane.yaml").read_text())
    for target in config["targets"]:
        target["tenanted_mode"] = "tenanted"
    project = config["projects"][0]
    project["tenanted_mode"] = "tenanted"
    config["tenants"] = [
        {"name": f"t{i:05d}", "tags": ["Tier/Bench"], "projects": {"web": ["dev", "test", "prod"]}}
        for i in range(tenants)
    ]
    return copy.deepcopy(config)


def _history(sfn: Any, arn: str) -> tuple[int, int]:
    """(events, the largest input/output of any event) of one execution."""
    events, largest, token = 0, 0, None
    while True:
        page = sfn.get_execution_history(
            executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        for event in page["events"]:
            events += 1
            for key, details in event.items():
                if key.endswith("EventDetails") and isinstance(details, dict):
                    for name in ("input", "output"):
                        if isinstance(details.get(name), str):
                            largest = max(largest, len(details[name].encode()))
        token = page.get("nextToken")
        if not token:
            return events, largest


def measure(tenants: int) -> Figures:
    from shiplane.adapters.dynamodb import DynamoStore
    from shiplane.services.apply_configuration import apply_configuration
    from shiplane_local.cloud import LocalCloud
    from shiplane_local.targets import prepare_targets

    figures = Figures(tenants)
    with LocalCloud(
        rollout_delay=0.2, parameters={"LogLevel": "WARNING"}, time_scale=0.01
    ) as cloud:
        store = DynamoStore(cloud.outputs["TableName"], client=cloud.client("dynamodb"))
        prepare_targets(cloud, apply_configuration(document(tenants), store))
        sfn = cloud.client("stepfunctions")
        machine = cloud.outputs["StateMachineArn"]
        cloud.reset_api_calls()
        started = time.perf_counter()
        cloud.push_image("web", "1.0.0")
        cloud.wait_idle(max(120, 6 * tenants))
        figures.seconds = time.perf_counter() - started
        figures.calls = cloud.api_calls()
        figures.releases = len(store.list_releases("web"))
        figures.deployments = Counter(str(d.status) for d in store.list_deployments("web"))
        executions = sfn.list_executions(stateMachineArn=machine)["executions"]
        figures.executions = len(executions)
        for execution in executions:
            events, largest = _history(sfn, execution["executionArn"])
            figures.largest_history = max(figures.largest_history, events)
            figures.largest_payload = max(figures.largest_payload, largest)
            if execution["status"] == "FAILED":
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                figures.failure = f"{described.get('error')}: {described.get('cause', '')[:300]}"
    return figures


def report(f: Figures) -> None:
    dynamodb = sum(n for op, n in f.calls.items() if op.startswith("dynamodb"))
    total = sum(f.calls.values())
    print(f"-- N = {f.tenants} tenants ({f.seconds:.1f} s wall, indicative)")
    print(f"   releases: {f.releases}; deployments: {f.deployed} {dict(f.deployments)}")
    print(f"   executions: {f.executions}; largest history: {f.largest_history} events "
          f"(quota {HISTORY_QUOTA}); largest state input/output: {f.largest_payload} bytes "
          f"(quota {PAYLOAD_QUOTA})")  # fmt: skip
    print(f"   AWS API calls: {total} ({f.per_deployment(total)} per deployment); "
          f"DynamoDB: {dynamodb} ({f.per_deployment(dynamodb)} per deployment)")  # fmt: skip
    print(f"   RegisterTaskDefinition: {f.calls['ecs:RegisterTaskDefinition']}; "
          f"AssumeRole: {f.calls['sts:AssumeRole']}")  # fmt: skip
    if f.failure:
        print(f"   FAILED: {f.failure}")


def model(small: Figures, large: Figures) -> None:
    """Linear in N from two measured points: where each quota breaks on AWS."""
    span = large.tenants - small.tenants
    if span <= 0 or small.failure or large.failure:
        print("-- model: needs two successful runs with different N")
        return
    print(f"== model (linear from N = {small.tenants} and {large.tenants}) ==")
    for name, a, b, quota in (
        ("history events", small.largest_history, large.largest_history, HISTORY_QUOTA),
        ("state input/output bytes", small.largest_payload, large.largest_payload, PAYLOAD_QUOTA),
    ):
        slope = (b - a) / span
        if slope <= 0:
            print(f"   {name}: constant ({b}); breaks: never")
            continue
        breaks = small.tenants + (quota - a) / slope
        print(f"   {name}: {slope:.1f} per tenant; quota {quota} passed at N ≈ {breaks:.0f}")
    per_tenant = large.calls["ecs:RegisterTaskDefinition"] / large.tenants
    for n in (1_000, 5_000):
        registrations = per_tenant * n
        seconds = max(0.0, registrations - REGISTER_BURST) / REGISTER_RATE
        print(f"   N = {n}: {registrations:.0f} RegisterTaskDefinition calls, at least "
              f"{seconds:.0f} s of ECS throttle (burst {REGISTER_BURST}, "
              f"{REGISTER_RATE:.0f}/s) per push")  # fmt: skip


def main(argv: list[str]) -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    sizes = [int(a) for a in argv[1:]] or [5, 15]
    print("== one push of a tenanted project through dev and test ==")
    measured = []
    for n in sizes:
        figures = measure(n)
        report(figures)
        measured.append(figures)
    ok = [f for f in measured if not f.failure]
    if len(ok) >= 2:
        model(ok[0], ok[1])


if __name__ == "__main__":
    main(sys.argv)
