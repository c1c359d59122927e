"""The same deployment asked for twice while the first is queued or running (the same
console input started under two execution names, a request sent twice) is recorded as a
duplicate and changes nothing; a redeploy asked for explicitly runs."""

from __future__ import annotations

from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import DeploymentStatus
from shiplane.services.resolve_release import resolve_release
from tests.helpers import ecr_push
from tests.integration.pipeline_harness import DIGEST_1, DIGEST_2, Pipeline


@pytest.fixture
def pipeline(configured: DynamoStore, clock: Any) -> Pipeline:
    return Pipeline(configured, clock)


def _resolve(pipeline: Pipeline, event: dict[str, Any], execution: str) -> dict[str, Any]:
    payload = {"input": event, "execution": execution}
    return resolve_release(payload, pipeline.resolve_deps).model_dump(mode="json")


def console(release: str, **extra: Any) -> dict[str, Any]:
    return {"action": "deploy", "project": "web", "release": release, "environment": "dev"} | extra


def _deployed_1_0_0(pipeline: Pipeline) -> None:
    pipeline.deploy_units(
        _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "push")["deployments"]
    )


def test_the_same_console_input_started_twice_deploys_once(pipeline: Pipeline) -> None:
    _deployed_1_0_0(pipeline)
    [first] = _resolve(pipeline, console("1.0.0", mode="redeploy"), "console-1")["deployments"]
    [second] = _resolve(
        pipeline, console("1.0.0", mode="redeploy") | {"mode": "deploy"}, "console-2"
    )["deployments"]
    _, granted = pipeline.acquire(first)
    assert granted == {"granted": True}
    _, slot = pipeline.acquire(second)
    assert slot == {"duplicate_of": first["deployment_id"]}
    summary = pipeline.record(second, slot=slot)
    assert summary["status"] == "SKIPPED"
    assert summary["reason"].startswith(f"duplicate: deployment {first['deployment_id']}")
    assert pipeline.gateway.calls.count("update_stack") == 0, "the duplicate deployed nothing"
    # the first runs as if the second had never come
    assert pipeline.record(first, slot=granted, results=pipeline.run_units(first))["status"] == (
        "SUCCEEDED"
    )


def test_an_explicit_redeploy_waits_its_turn_and_runs(pipeline: Pipeline) -> None:
    _deployed_1_0_0(pipeline)
    [first] = _resolve(pipeline, console("1.0.0"), "console-1")["deployments"]
    [again] = _resolve(pipeline, console("1.0.0", mode="redeploy"), "console-2")["deployments"]
    _, granted = pipeline.acquire(first)
    token, slot = pipeline.acquire(again)
    assert slot is None, "queued behind the first, not a duplicate"
    pipeline.record(first, slot=granted, results=pipeline.run_units(first))
    assert pipeline.tokens.succeeded[token] == {"granted": True}
    assert pipeline.store.get_deployment("web", again["deployment_id"]).redeploy is True


def test_a_request_repeating_a_queued_deployment_is_a_duplicate(pipeline: Pipeline) -> None:
    [running] = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "push-1")["deployments"]
    pipeline.acquire(running)
    [queued] = _resolve(pipeline, ecr_push("web", "1.1.0", DIGEST_2), "push-2")["deployments"]
    assert pipeline.acquire(queued)[1] is None
    [repeat] = _resolve(pipeline, console("1.1.0"), "console-1")["deployments"]
    assert pipeline.acquire(repeat)[1] == {"duplicate_of": queued["deployment_id"]}
    stored = pipeline.store.get_deployment("web", repeat["deployment_id"])
    assert stored.status is DeploymentStatus.QUEUED  # recorded SKIPPED by Record Deployment
