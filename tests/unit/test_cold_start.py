"""What a handler's cold start imports: stable properties, never timings (those are
`bench/cold_start.py`'s). Each handler is imported in a fresh interpreter, in Lambda's
environment (LAMBDA_TASK_ROOT set, so Powertools would trace if nothing disabled it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shiplane import observability
from shiplane.observability import DisabledTracer

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
# Never on a handler's path: development tooling, and what only some invocations need.
NEVER = ["moto", "typer", "shiplane_local", "pytest"]
NOT_AT_IMPORT = ["aws_xray_sdk", "yaml"]

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import app
from shiplane import observability
print(json.dumps({
    "modules": sorted(sys.modules),
    "tracer": type(observability.tracer).__name__,
}))
"""


def import_handler(name: str, tracing: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_TRACE")}
    env.pop("AWS_SAM_LOCAL", None)
    env.update(
        LAMBDA_TASK_ROOT=str(ROOT / "functions" / name),
        AWS_LAMBDA_FUNCTION_NAME=f"shiplane-{name}",
        AWS_REGION="us-east-1",
        TABLE_NAME="shiplane",
    )
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def roots(modules: object) -> set[str]:
    assert isinstance(modules, list)
    return {str(m).partition(".")[0] for m in modules}


def test_there_are_handlers_to_check() -> None:
    assert len(FUNCTIONS) >= 16
    assert "api" in FUNCTIONS and "acquire_slot" in FUNCTIONS


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_handler_with_tracing_disabled_imports_neither_xray_nor_yaml_nor_tooling(
    name: str,
) -> None:
    imported = import_handler(name, tracing=False)
    assert imported["tracer"] == "DisabledTracer"
    found = roots(imported["modules"])
    assert "shiplane" in found and "boto3" in found  # the probe imported the handler
    assert not found & {*NEVER, *NOT_AT_IMPORT}


def test_with_tracing_on_as_deployed_the_handler_is_traced_with_the_xray_sdk() -> None:
    # template.yaml's Tracing: Active; Powertools' Tracer patches botocore at INIT.
    imported = import_handler("acquire_slot", tracing=True)
    assert imported["tracer"] == "Tracer"
    assert "aws_xray_sdk" in roots(imported["modules"])
    assert not roots(imported["modules"]) & set(NEVER)


@pytest.mark.parametrize(
    ("env", "disabled"),
    [
        ({"POWERTOOLS_TRACE_DISABLED": "true", "LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"POWERTOOLS_TRACE_DISABLED": "1", "LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"POWERTOOLS_TRACE_DISABLED": "false", "LAMBDA_TASK_ROOT": "/var/task"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task"}, False),
        ({}, True),  # not on Lambda: no X-Ray daemon to send to
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, True),
    ],
)
def test_tracing_is_disabled_by_powertools_own_rule(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], disabled: bool
) -> None:
    for name in ["POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT", "AWS_SAM_LOCAL"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert observability.tracing_disabled() is disabled
    if disabled:  # (a real Tracer would patch botocore in this process: not built here)
        assert isinstance(observability.build_tracer(), DisabledTracer)


def test_the_disabled_tracer_leaves_a_handler_as_it_is() -> None:
    tracer = DisabledTracer()

    def handler(event: dict[str, int], context: object, deps: object = None) -> int:
        if event["n"] < 0:
            raise ValueError("negative")
        return event["n"] * 2

    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_method(handler) is handler
    assert handler({"n": 2}, None) == 4
    with pytest.raises(ValueError, match="negative"):
        handler({"n": -1}, None)
    tracer.put_annotation("k", "v")
    tracer.put_metadata("k", {"v": 1})


@pytest.mark.parametrize(("task_root", "frozen"), [("/var/task", 1), (None, 0)])
def test_the_first_dependency_freezes_what_init_loaded_on_lambda_only(
    monkeypatch: pytest.MonkeyPatch, task_root: str | None, frozen: int
) -> None:
    from shiplane import bootstrap

    calls: list[None] = []
    monkeypatch.setattr(bootstrap.gc, "freeze", lambda: calls.append(None))
    if task_root:
        monkeypatch.setenv("LAMBDA_TASK_ROOT", task_root)
    else:
        monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    monkeypatch.setenv("TABLE_NAME", "shiplane")
    bootstrap.store.cache_clear()
    try:
        bootstrap.store()
        bootstrap.store()  # cached: a warm invocation freezes nothing more
    finally:
        bootstrap.store.cache_clear()
    assert len(calls) == frozen
