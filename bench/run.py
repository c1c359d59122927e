"""Shiplane's benchmarks: figures that are stable on a noisy machine, printed.

  python bench/run.py            # all of them
  python bench/run.py imports    # one of: imports, api, pipeline, failed-create

- imports:  for each handler, the modules a cold start imports (a count) and the import
            time (median of 5 fresh interpreters; indicative only).
- api:      the api function's cold start, which matters most there: import, then the
            first request (the resolver and every router are built on it), then a warm
            request; modules imported and milliseconds (median of 5 fresh interpreters).
- pipeline: on the embedded local cloud, one environment deployment (a promotion) and
            one release through dev and test: state transitions (from the execution
            history), AWS API calls by operation and DynamoDB operations, and the same for
            a duplicated push event.
- failed-create: on the embedded local cloud, the wall time from a push to the end of a
            deployment whose stack create fails (dev's cluster does not exist), against
            the wait's timeout.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))

PROBE = """
import importlib.util, sys, time
before = set(sys.modules)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
print(len(set(sys.modules) - before), elapsed)
"""


def bench_imports() -> None:
    print("== handler cold-start imports (python3.11, fresh interpreter each) ==")
    print(f"{'handler':28} {'modules':>8} {'import ms (median of 5)':>24}")
    env = {"POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    for name in FUNCTIONS:
        path = str(ROOT / "functions" / name / "app.py")
        counts, times = [], []
        for _ in range(5):
            out = subprocess.run(
                [sys.executable, "-c", PROBE.format(path=path)],
                capture_output=True,
                text=True,
                check=True,
                env={**env, "PATH": "/usr/bin:/bin"},
            ).stdout.split()
            counts.append(int(out[0]))
            times.append(float(out[1]) * 1000)
        print(f"{name:28} {max(counts):>8} {statistics.median(times):>24.0f}")


API_PROBE = """
import importlib.util, json, sys, time
sys.path.insert(0, {root!r})
before = set(sys.modules)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = time.perf_counter()
modules_at_import = len(set(sys.modules) - before)
from datetime import UTC, datetime
from shiplane.api.deps import ApiDependencies

class NoAudit:
    def list_audit(self, limit, before_id=None):
        return []

deps = ApiDependencies(store=NoAudit(), now=lambda: datetime.now(UTC))
# What API Gateway sends for GET /audit (REST API, proxy integration, IAM caller).
event = {{
    "resource": "/{{proxy+}}", "path": "/audit", "httpMethod": "GET",
    "headers": {{"Authorization": "AWS4-HMAC-SHA256 Credential=x/"}},
    "multiValueHeaders": {{"Authorization": ["AWS4-HMAC-SHA256 Credential=x/"]}},
    "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": {{"proxy": "audit"}}, "stageVariables": None, "body": None,
    "isBase64Encoded": False,
    "requestContext": {{"resourcePath": "/{{proxy+}}", "httpMethod": "GET", "path": "/v1/audit",
        "stage": "v1", "requestId": "bench", "accountId": "123456789012",
        "identity": {{"userArn": "arn:aws:iam::123456789012:user/bench",
                      "sourceIp": "127.0.0.1"}}}},
}}
class Context:
    function_name = "api"; memory_limit_in_mb = 1024; aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
first_start = time.perf_counter()
response = module.lambda_handler(event, Context(), deps=deps)
first = time.perf_counter()
assert response["statusCode"] == 200, response
module.lambda_handler(event, Context(), deps=deps)
warm = time.perf_counter()
print(modules_at_import, len(set(sys.modules) - before), (imported - start) * 1000,
      (first - first_start) * 1000, (warm - first) * 1000)
"""


def bench_api() -> None:
    print("== api function cold start (python3.11, fresh interpreter each, median of 5) ==")
    env = {
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": "bench",
        "PYTHONPATH": f"{ROOT / 'layers' / 'shiplane'}:{ROOT / 'local'}",
        "PATH": "/usr/bin:/bin",
    }
    path = str(ROOT / "functions" / "api" / "app.py")
    rows = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", API_PROBE.format(root=str(ROOT), path=path)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if out.returncode:
            raise SystemExit(f"the api probe failed:\n{out.stderr[-2000:]}")
        rows.append([float(x) for x in out.stdout.split()])
    columns = list(zip(*rows, strict=True))
    print(
        f"modules at import {int(max(columns[0]))}, after the first request {int(max(columns[1]))}"
    )
    print(
        f"import {statistics.median(columns[2]):.0f} ms, "
        f"first request {statistics.median(columns[3]):.0f} ms, "
        f"warm request {statistics.median(columns[4]):.1f} ms"
    )


def _transitions(sfn, execution_arn: str) -> Counter[str]:  # type: ignore[no-untyped-def]
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    entered = Counter()
    for event in events:
        if event["type"].endswith("StateEntered"):
            entered[event["stateEnteredEventDetails"]["name"]] += 1
    return entered


def _report(title: str, calls: Counter[str], transitions: Counter[str] | None) -> None:
    print(f"-- {title}")
    if transitions is not None:
        print(f"   state transitions: {sum(transitions.values())}  ({dict(transitions)})")
    print(f"   AWS API calls: {sum(calls.values())}")
    by_service: Counter[str] = Counter()
    for operation, n in calls.items():
        by_service[operation.split(":")[0]] += n
    print(f"     by service: {dict(sorted(by_service.items()))}")
    print(f"     by operation: {dict(sorted(calls.items()))}")
    dynamodb = sum(n for op, n in calls.items() if op.lower().startswith("dynamodb"))
    print(f"   DynamoDB operations: {dynamodb}")


def bench_pipeline() -> None:
    import logging
    import warnings

    import yaml

    from shiplane.adapters.dynamodb import DynamoStore
    from shiplane.services.apply_configuration import apply_configuration
    from shiplane_local.cloud import LocalCloud
    from shiplane_local.targets import prepare_targets

    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # EMF lines on stdout: not figures
    print("== one deployment on the embedded local cloud ==")
    with LocalCloud(rollout_delay=0.2, parameters={"LogLevel": "WARNING"}) as cloud:
        store = DynamoStore(cloud.outputs["TableName"], client=cloud.client("dynamodb"))
        document = yaml.safe_load((ROOT / "examples" / "shiplane.yaml").read_text())
        prepare_targets(cloud, apply_configuration(document, store))
        sfn = cloud.client("stepfunctions")
        machine = cloud.outputs["StateMachineArn"]

        cloud.reset_api_calls()
        started = time.perf_counter()
        cloud.push_image("web", "1.0.0")
        cloud.wait_idle(120)
        push_seconds = time.perf_counter() - started
        calls = cloud.api_calls()
        [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]
        _report(
            f"push web:1.0.0 → dev + test ({push_seconds:.1f} s wall, rollout delay 0.2 s)",
            calls,
            _transitions(sfn, execution["executionArn"]),
        )

        cloud.reset_api_calls()
        arn = sfn.start_execution(
            stateMachineArn=machine,
            name="bench-promotion",
            input=json.dumps(
                {"action": "deploy", "project": "web", "release": "1.0.0", "environment": "prod"}
            ),
        )["executionArn"]
        cloud.wait_idle(120)
        calls = cloud.api_calls()
        calls["stepfunctions:StartExecution"] -= 1  # the benchmark's own call
        _report("one environment deployment (promotion to prod)", +calls, _transitions(sfn, arn))

        cloud.reset_api_calls()
        digest = store.get_release("web", "1.0.0").images["web"].digest  # type: ignore[union-attr]
        cloud.emit_event(
            {
                "version": "0",
                "id": "bench-duplicate",
                "detail-type": "ECR Image Action",
                "source": "aws.ecr",
                "account": cloud.account_id,
                "time": "2026-11-28T00:00:00Z",
                "region": cloud.region,
                "resources": [],
                "detail": {
                    "result": "SUCCESS",
                    "repository-name": "web",
                    "image-digest": digest,
                    "action-type": "PUSH",
                    "image-tag": "1.0.0",
                },
            }
        )
        cloud.wait_idle(60)
        _report("a duplicated push event (nothing to do)", cloud.api_calls(), None)


def bench_failed_create() -> None:
    """How long a deployment whose stack cannot be created takes to end: dev's target names
    a cluster that does not exist, so CloudFormation's create fails (ClusterNotFound) and
    rolls back; the deployment must end FAILED on the stack's events, not on its timeout."""
    import copy
    import logging
    import warnings

    import yaml

    from shiplane.adapters.dynamodb import DynamoStore
    from shiplane.services.apply_configuration import apply_configuration
    from shiplane_local.cloud import LocalCloud
    from shiplane_local.targets import prepare_targets

    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    print("== a stack create that fails (dev's cluster does not exist) ==")
    with LocalCloud(rollout_delay=0.2, parameters={"LogLevel": "WARNING"}) as cloud:
        store = DynamoStore(cloud.outputs["TableName"], client=cloud.client("dynamodb"))
        document = yaml.safe_load((ROOT / "examples" / "shiplane.yaml").read_text())
        prepare_targets(cloud, apply_configuration(document, store))
        broken = copy.deepcopy(document)
        for target in broken["targets"]:
            if "dev" in target.get("environments", []):
                target["cluster"] = "no-such-cluster"
        apply_configuration(broken, store)
        timeout = next(
            int(step.get("service", {}).get("wait_timeout_seconds", 1800))
            for project in document["projects"]
            for step in project["steps"]
        )
        started = time.perf_counter()
        cloud.push_image("web", "1.0.0")
        ended = None
        while time.perf_counter() - started < 120:
            dev = [d for d in store.list_deployments("web") if d.environment == "dev"]
            if dev and dev[0].status.value in ("FAILED", "SUCCEEDED"):
                ended = time.perf_counter() - started
                break
            time.sleep(0.05)
        cloud.wait_idle(60)
        if ended is None:
            print("   the deployment did not end within 120 s")
            return
        print(
            f"   push → deployment {dev[0].status.value} in {ended:.1f} s wall "
            f"(rollout delay 0.2 s; the wait's timeout is {timeout} s)"
        )
        print(f"   reason: {dev[0].reason}")


def main(argv: list[str]) -> None:
    which = argv[1:] or ["imports", "api", "pipeline", "failed-create"]
    if "imports" in which:
        bench_imports()
    if "api" in which:
        bench_api()
    if "pipeline" in which:
        bench_pipeline()
    if "failed-create" in which:
        bench_failed_create()


if __name__ == "__main__":
    main(sys.argv)
