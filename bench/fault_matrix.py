"""The full fault matrix on the embedded local cloud: every case x every invariant, printed.

  .venv/bin/python bench/fault_matrix.py               # every case (about 32 minutes here)
  .venv/bin/python bench/fault_matrix.py crash deploy  # only cases whose name has these words

Cases (tests/e2e/fault_matrix.py): each pipeline function a push runs (functions/<folder>)
crashed once (`Runtime.ExitError`) before its first AWS call and after each of its N calls,
N measured first on a clean push (the most calls one invocation made); 20 % throttling of
every call type the functions make, with botocore's own retries off for them
(AWS_MAX_ATTEMPTS=1 in the environment before any client is made); duplicated, reordered,
delayed (late) events of aws.ecr, aws.cloudformation, aws.ecs and aws.states; every
CloudFormation event lost (the deployment ends by its 60 s wait timeout and
reconciliation). After each case one function checks every invariant; a cell is "held"
or "BROKEN" (the reason follows the table). Exit status 1 when any cell is broken.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "local"), str(ROOT / "layers" / "shiplane")]

from shiplane.adapters.dynamodb import DynamoStore  # noqa: E402
from shiplane_local.cloud import LocalCloud  # noqa: E402
from tests.e2e.fault_matrix import (  # noqa: E402
    INVARIANTS,
    Outcome,
    all_cases,
    measure_calls,
    no_sdk_retries,
    run_case,
)


def main(words: list[str]) -> int:
    # The functions' metrics (EMF lines on stdout) would bury the table: off for the bench.
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    logging.basicConfig(level=logging.CRITICAL)
    for name in ("shiplane_local", "moto", "werkzeug"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with (
        no_sdk_retries(),
        LocalCloud(
            rollout_delay=0.2, parameters={"LogLevel": "CRITICAL"}, time_scale=0.01
        ) as cloud,
    ):
        store = DynamoStore(cloud.outputs["TableName"], client=cloud.client("dynamodb"))
        calls = measure_calls(cloud, store)
        print("AWS calls per invocation (most, clean push):", calls, flush=True)
        cases = [c for c in all_cases(calls) if all(w in c.name for w in words)]
        for number, case in enumerate(cases, 1):
            outcome = run_case(cloud, store, case)
            outcomes.append(outcome)
            state = "held" if outcome.held else "BROKEN " + ",".join(outcome.broken)
            print(f"[{number}/{len(cases)}] {case.name}: {state} ({outcome.seconds:.1f} s, "
                  f"fired {dict(outcome.fired)})", flush=True)  # fmt: skip
    print()
    print(table(outcomes))
    broken = [o for o in outcomes if not o.held]
    for outcome in broken:
        for invariant, why in outcome.broken.items():
            print(f"BROKEN {outcome.case.name} / {invariant}: {why}")
    print(
        f"\n{len(outcomes)} cases x {len(INVARIANTS)} invariants: "
        f"{sum(len(o.broken) for o in outcomes)} broken cell(s); "
        f"{time.monotonic() - started:.0f} s"
    )
    return 1 if broken else 0


def table(outcomes: list[Outcome]) -> str:
    names = list(INVARIANTS)
    width = max([len("case")] + [len(o.case.name) for o in outcomes])
    columns = [max(len(n), len("BROKEN")) for n in names]
    lines = [
        " | ".join(
            ["case".ljust(width), *(n.ljust(w) for n, w in zip(names, columns, strict=True))]
        ),
        "-|-".join(["-" * width, *("-" * w for w in columns)]),
    ]
    for outcome in outcomes:
        cells = [
            ("BROKEN" if n in outcome.broken else "held").ljust(w)
            for n, w in zip(names, columns, strict=True)
        ]
        lines.append(" | ".join([outcome.case.name.ljust(width), *cells]))
    legend = [f"  {n}: {text}" for n, text in INVARIANTS.items()]
    return "\n".join([*lines, "", "invariants:", *legend])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
