"""A step retried after a committed write completes the work, never drops it: the fault
is injected by wrapping the store's write so that it raises once, right after writing
(what a Lambda that crashes, times out or is throttled after its write looks like to the
state machine, which then runs the step again with the same input)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import DeploymentStatus
from shiplane.errors import ConflictError
from shiplane.services.deployment_requests import CancelDependencies, cancel_deployment
from shiplane.services.gate_promotion import gate_promotion
from shiplane.services.resolve_release import resolve_release
from tests.api_fakes import FakePipeline
from tests.helpers import ecr_push
from tests.integration.pipeline_harness import DIGEST_1, DIGEST_2, NoRegistry, Pipeline


class Crash(Exception):
    """The injected fault."""


def crash_once_after(monkeypatch: pytest.MonkeyPatch, store: DynamoStore, method: str) -> list[Any]:
    """Make `store.<method>` raise once, after its write went through; returns its results."""
    original: Callable[..., Any] = getattr(store, method)
    results: list[Any] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        results.append(result)
        if len(results) == 1:
            raise Crash(f"{method} crashed after its write")
        return result

    monkeypatch.setattr(store, method, wrapped)
    return results


@pytest.fixture
def pipeline(configured: DynamoStore, clock: Any) -> Pipeline:
    return Pipeline(configured, clock)


def _resolve(pipeline: Pipeline, event: dict[str, Any], execution: str) -> dict[str, Any]:
    payload = {"input": event, "execution": execution}
    return resolve_release(payload, pipeline.resolve_deps).model_dump(mode="json")


def test_resolve_release_retried_after_create_release_returns_the_same_deployments(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_once_after(monkeypatch, pipeline.store, "create_release")
    event = ecr_push("web", "1.0.0", DIGEST_1)
    with pytest.raises(Crash):
        _resolve(pipeline, event, "exec-a")
    retried = _resolve(pipeline, event, "exec-a")
    [task] = retried["deployments"]
    assert task["environment"] == "dev"
    [dev] = pipeline.store.list_deployments("web")
    assert task["deployment_id"] == dev.id and dev.status is DeploymentStatus.QUEUED
    # and it deploys: the retry lost nothing
    after = pipeline.deploy_units(retried["deployments"])
    assert [f["status"] for f in after["finished"]] == ["SUCCEEDED"]


def test_a_duplicate_push_in_another_execution_still_starts_nothing(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_once_after(monkeypatch, pipeline.store, "create_release")
    event = ecr_push("web", "1.0.0", DIGEST_1)
    with pytest.raises(Crash):
        _resolve(pipeline, event, "exec-a")
    assert _resolve(pipeline, event, "exec-b")["deployments"] == []
    assert len(pipeline.store.list_deployments("web")) == 1


def test_gate_promotion_retried_after_its_claim_still_starts_the_claimed_deployment(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolved = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")
    finished = [pipeline.run_task(task) for task in resolved["deployments"]]
    crash_once_after(monkeypatch, pipeline.store, "create_deployments")
    payload = {"finished": finished, "execution": "exec-a"}
    with pytest.raises(Crash):
        gate_promotion(payload, pipeline.gate_deps)
    retried = gate_promotion(payload, pipeline.gate_deps).model_dump(mode="json")
    [task] = retried["deployments"]
    assert task["environment"] == "test"
    # a gate of another execution (a re-driven one) does not start it a second time
    other = gate_promotion(
        finished and {"finished": finished, "execution": "exec-b"}, pipeline.gate_deps
    )
    assert other.deployments == []
    after = pipeline.deploy_units(retried["deployments"])
    assert [f["status"] for f in after["finished"]] == ["SUCCEEDED"]


def _two_in_line(pipeline: Pipeline) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Release 1.0.0 deploying to dev holds the slot; a requested deploy of 1.0.0 to dev
    waits behind it. Returns (holder's task, waiting task, the waiter's slot token)."""
    first = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")["deployments"][0]
    _, slot = pipeline.acquire(first)
    assert slot == {"granted": True}
    action = {
        "action": "deploy",
        "project": "web",
        "release": "1.0.0",
        "environment": "dev",
        "mode": "redeploy",
    }
    second = _resolve(pipeline, action, "exec-b")["deployments"][0]
    token, granted = pipeline.acquire(second)
    assert granted is None, "it must queue behind the running deployment"
    return first, second, token


def test_record_deployment_retried_after_release_slot_still_wakes_the_queue(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, token = _two_in_line(pipeline)
    results = pipeline.run_units(first)
    crash_once_after(monkeypatch, pipeline.store, "release_slot")
    with pytest.raises(Crash):
        pipeline.record(first, slot={"granted": True}, results=results)
    assert pipeline.tokens.succeeded.get(token) is None  # the crash came before the wake-up
    pipeline.record(first, slot={"granted": True}, results=results)
    assert pipeline.tokens.succeeded[token] == {"granted": True}
    assert pipeline.store.slot_holder("web", "dev", "untenanted") == second["deployment_id"]
    assert pipeline.store.queued("web", "dev", "untenanted") == []


def test_record_deployment_retried_mid_hand_over_completes_it(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, token = _two_in_line(pipeline)
    results = pipeline.run_units(first)
    # the slot went to the waiter, then the attempt died before completing its token
    crash_once_after(monkeypatch, pipeline.store, "try_acquire_slot")
    with pytest.raises(Crash):
        pipeline.record(first, slot={"granted": True}, results=results)
    assert pipeline.store.slot_holder("web", "dev", "untenanted") == second["deployment_id"]
    assert pipeline.tokens.succeeded.get(token) is None
    pipeline.record(first, slot={"granted": True}, results=results)
    assert pipeline.tokens.succeeded[token] == {"granted": True}
    assert pipeline.store.queued("web", "dev", "untenanted") == []


def _cancel_deps(pipeline: Pipeline, clock: Any) -> CancelDependencies:
    store = pipeline.store
    return CancelDependencies(
        deployments=store,
        releases=store,
        slots=store,
        tokens=pipeline.tokens,
        approvals=store,
        pipeline=FakePipeline(store, store, store, NoRegistry(), clock),
    )


def test_cancel_frees_the_slot_a_finished_deployment_still_holds(
    pipeline: Pipeline, clock: Any
) -> None:
    first, second, token = _two_in_line(pipeline)
    dead = pipeline.store.get_deployment("web", first["deployment_id"])
    # its execution died after recording the end, before freeing the slot
    assert pipeline.store.finish_deployment(dead, DeploymentStatus.FAILED, "died", dead.diagnosis)
    result = cancel_deployment("web", dead.id, "bob", "", _cancel_deps(pipeline, clock))
    assert result.status is DeploymentStatus.FAILED, "its recorded end is kept"
    assert result.slot_handed_to == [second["deployment_id"]]
    assert pipeline.tokens.succeeded[token] == {"granted": True}
    # once freed, it holds nothing: a second cancel is refused as before
    with pytest.raises(ConflictError):
        cancel_deployment("web", dead.id, "bob", "", _cancel_deps(pipeline, clock))


def test_a_second_push_of_another_digest_is_unaffected(pipeline: Pipeline) -> None:
    # guards the helpers above: without a fault, the pipeline behaves as before
    first = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")
    second = _resolve(pipeline, ecr_push("web", "1.1.0", DIGEST_2), "exec-b")
    assert len(first["deployments"]) == len(second["deployments"]) == 1


def test_a_hand_over_finished_on_retry_reaches_the_live_wait_of_a_twice_queued_waiter(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, token = _two_in_line(pipeline)
    store, where = pipeline.store, ("web", "dev", "untenanted")
    # Acquire Slot was retried: its first attempt's queue entry (a dead token) is ahead
    [live] = store.queued(*where)
    store.dequeue("web", live.key)
    store.enqueue(*where, second["deployment_id"], "dead-token")
    pipeline.tokens.failed["dead-token"] = ("States.Timeout", "attempt 1 ended")
    store.enqueue(*where, second["deployment_id"], token)
    results = pipeline.run_units(first)
    crash_once_after(monkeypatch, store, "try_acquire_slot")
    with pytest.raises(Crash):
        pipeline.record(first, slot={"granted": True}, results=results)
    pipeline.record(first, slot={"granted": True}, results=results)
    assert pipeline.tokens.succeeded[token] == {"granted": True}
    assert store.queued(*where) == []
