"""Settle Execution: an execution that fails, times out or is aborted leaves no
deployment DEPLOYING or QUEUED behind it and no slot held; the next in line proceeds."""

from __future__ import annotations

from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import DeploymentStatus
from shiplane.ports import ExecutionOutcome
from shiplane.services.resolve_release import resolve_release
from shiplane.services.settle_execution import settle_execution, sweep_executions
from tests.helpers import LambdaContext, ecr_push, load_event, load_handler
from tests.integration.pipeline_harness import DIGEST_1, DIGEST_2, Pipeline


@pytest.fixture
def pipeline(configured: DynamoStore, clock: Any) -> Pipeline:
    return Pipeline(configured, clock)


def _resolve(pipeline: Pipeline, event: dict[str, Any], execution: str) -> dict[str, Any]:
    payload = {"input": event, "execution": execution}
    return resolve_release(payload, pipeline.resolve_deps).model_dump(mode="json")


def ended(name: str, status: str = "FAILED") -> dict[str, Any]:
    event = load_event("execution_failed")
    arn = event["detail"]["executionArn"].rsplit(":", 1)[0] + f":{name}"
    event["resources"] = [arn]
    event["detail"].update({"executionArn": arn, "name": name, "status": status})
    return event


def test_a_failed_execution_ends_its_deployments_and_hands_the_slot_on(
    pipeline: Pipeline,
) -> None:
    [running] = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")["deployments"]
    pipeline.acquire(running)
    pipeline.start_unit(running["units"][0])  # DEPLOYING, waiting on its stack
    action = {
        "action": "deploy",
        "project": "web",
        "release": "1.0.0",
        "environment": "dev",
        "mode": "redeploy",
    }
    [waiting] = _resolve(pipeline, action, "exec-b")["deployments"]
    token, granted = pipeline.acquire(waiting)
    assert granted is None

    result = settle_execution(ended("exec-a"), pipeline.settle_deps)

    assert result.ended == [running["deployment_id"]]
    dead = pipeline.store.get_deployment("web", running["deployment_id"])
    assert dead.status is DeploymentStatus.FAILED
    assert dead.reason.startswith("its pipeline execution exec-a failed (Lambda.ServiceException")
    assert pipeline.tokens.succeeded[token] == {"granted": True}
    assert pipeline.store.slot_holder("web", "dev", "untenanted") == waiting["deployment_id"]
    assert pipeline.store.get_deployment("web", waiting["deployment_id"]).status is (
        DeploymentStatus.QUEUED
    )
    # delivered again (events arrive at least once): nothing changes
    again = settle_execution(ended("exec-a"), pipeline.settle_deps)
    assert again.ended == [] and again.slot_handed_to == []
    assert pipeline.store.slot_holder("web", "dev", "untenanted") == waiting["deployment_id"]


@pytest.mark.parametrize("status", ["TIMED_OUT", "ABORTED"])
def test_a_queued_deployment_of_a_dead_execution_leaves_the_queue(
    pipeline: Pipeline, status: str
) -> None:
    [first] = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")["deployments"]
    pipeline.acquire(first)
    action = {
        "action": "deploy",
        "project": "web",
        "release": "1.0.0",
        "environment": "dev",
        "mode": "redeploy",
    }
    [queued] = _resolve(pipeline, action, "exec-b")["deployments"]
    pipeline.acquire(queued)

    result = settle_execution(ended("exec-b", status), pipeline.settle_deps)

    assert result.ended == [queued["deployment_id"]]
    assert pipeline.store.queued("web", "dev", "untenanted") == []
    assert pipeline.store.slot_holder("web", "dev", "untenanted") == first["deployment_id"]
    reason = pipeline.store.get_deployment("web", queued["deployment_id"]).reason
    assert {"TIMED_OUT": "timed out", "ABORTED": "was aborted"}[status] in reason


def test_a_finished_holder_of_a_dead_execution_frees_its_slot(pipeline: Pipeline) -> None:
    [first] = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")["deployments"]
    pipeline.acquire(first)
    stored = pipeline.store.get_deployment("web", first["deployment_id"])
    # Record Deployment wrote the end, then the execution died before the slot was freed
    pipeline.store.finish_deployment(stored, DeploymentStatus.SUCCEEDED, "ok", stored.diagnosis)
    result = settle_execution(ended("exec-a"), pipeline.settle_deps)
    assert result.ended == []
    assert pipeline.store.get_deployment("web", first["deployment_id"]).status is (
        DeploymentStatus.SUCCEEDED
    )
    assert pipeline.store.slot_holder("web", "dev", "untenanted") is None


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED"])
def test_a_live_or_successful_execution_is_left_alone(pipeline: Pipeline, status: str) -> None:
    [first] = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")["deployments"]
    pipeline.acquire(first)
    result = settle_execution(ended("exec-a", status), pipeline.settle_deps)
    assert result.ended == []
    assert pipeline.store.slot_holder("web", "dev", "untenanted") == first["deployment_id"]


def test_a_slot_left_by_a_finished_deployment_is_freed_by_the_next_arrival(
    pipeline: Pipeline,
) -> None:
    # the execution died after recording the end, and its status event was lost
    [first] = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")["deployments"]
    pipeline.acquire(first)
    stored = pipeline.store.get_deployment("web", first["deployment_id"])
    pipeline.store.finish_deployment(stored, DeploymentStatus.FAILED, "died", stored.diagnosis)
    action = {"action": "deploy", "project": "web", "release": "1.0.0", "environment": "dev"}
    [later] = _resolve(pipeline, action, "exec-b")["deployments"]
    _, granted = pipeline.acquire(later)
    assert granted == {"granted": True}, "not queued behind a finished deployment"
    assert pipeline.store.slot_holder("web", "dev", "untenanted") == later["deployment_id"]


# ---------------------------------------------------------------------------- the sweep
# Step Functions sends status events best effort: the scheduled sweep asks it how each
# execution given deployments ended and settles the ones whose event never came.


def test_the_sweep_settles_a_dead_execution_whose_event_was_lost(pipeline: Pipeline) -> None:
    [dead] = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")["deployments"]
    pipeline.acquire(dead)
    pipeline.start_unit(dead["units"][0])
    [alive] = _resolve(pipeline, ecr_push("web", "1.1.0", DIGEST_2), "exec-b")["deployments"]
    pipeline.executions.outcomes["exec-a"] = ExecutionOutcome(
        "FAILED", "States.TaskFailed", "Record Deployment: out of retries"
    )

    swept = sweep_executions(pipeline.settle_deps)

    assert (swept.checked, swept.running) == (2, 1)
    assert [s.execution for s in swept.settled] == ["exec-a"]
    ended_now = pipeline.store.get_deployment("web", dead["deployment_id"])
    assert ended_now.status is DeploymentStatus.FAILED
    assert ended_now.reason == (
        "its pipeline execution exec-a failed (States.TaskFailed: Record Deployment: out of "
        "retries)"
    )
    assert pipeline.store.slot_holder("web", "dev", "untenanted") is None
    assert pipeline.store.get_deployment("web", alive["deployment_id"]).status is (
        DeploymentStatus.QUEUED
    )
    # the settled execution leaves the list; the running one stays for the next sweep
    assert [e.name for e in pipeline.store.live_executions()] == ["exec-b"]
    pipeline.executions.described.clear()
    again = sweep_executions(pipeline.settle_deps)
    assert pipeline.executions.described == ["exec-b"] and again.settled == []


def test_an_execution_that_ended_without_ending_its_deployment_is_settled(
    pipeline: Pipeline,
) -> None:
    [first] = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")["deployments"]
    pipeline.acquire(first)
    [second] = _resolve(pipeline, ecr_push("web", "1.1.0", DIGEST_2), "exec-b")["deployments"]
    pipeline.executions.outcomes["exec-a"] = ExecutionOutcome("SUCCEEDED")
    pipeline.executions.unknown.add("exec-b")  # expired, or never started

    swept = sweep_executions(pipeline.settle_deps)

    assert sorted(s.execution for s in swept.settled) == ["exec-a", "exec-b"]
    reasons = {
        pipeline.store.get_deployment("web", first["deployment_id"]).reason,
        pipeline.store.get_deployment("web", second["deployment_id"]).reason,
    }
    assert reasons == {
        "its pipeline execution exec-a ended without ending it",
        "its pipeline execution exec-b is unknown to Step Functions",
    }
    assert pipeline.store.live_executions() == []


def test_a_succeeded_execution_with_every_deployment_ended_is_only_forgotten(
    pipeline: Pipeline,
) -> None:
    [first] = _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")["deployments"]
    stored = pipeline.store.get_deployment("web", first["deployment_id"])
    pipeline.store.finish_deployment(stored, DeploymentStatus.SUCCEEDED, "ok", stored.diagnosis)
    pipeline.executions.outcomes["exec-a"] = ExecutionOutcome("SUCCEEDED")
    swept = sweep_executions(pipeline.settle_deps)
    assert swept.checked == 1 and swept.settled == []
    assert pipeline.store.get_deployment("web", first["deployment_id"]).status is (
        DeploymentStatus.SUCCEEDED
    )
    assert pipeline.store.live_executions() == []


def test_the_sweep_stops_at_its_deadline_and_leaves_the_rest(pipeline: Pipeline) -> None:
    _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")
    _resolve(pipeline, ecr_push("web", "1.1.0", DIGEST_2), "exec-b")
    late = sweep_executions(pipeline.settle_deps, seconds=-1)
    assert late.checked == 0 and late.left_for_next_sweep == 2
    assert len(pipeline.store.live_executions()) == 2


def test_the_status_event_settles_and_forgets_the_execution(pipeline: Pipeline) -> None:
    _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")
    settle_execution(ended("exec-a"), pipeline.settle_deps)
    assert pipeline.store.live_executions() == []
    assert sweep_executions(pipeline.settle_deps).checked == 0


def test_the_scheduled_job_runs_the_sweep(pipeline: Pipeline) -> None:
    app = load_handler("settle_execution")
    _resolve(pipeline, ecr_push("web", "1.0.0", DIGEST_1), "exec-a")
    pipeline.executions.outcomes["exec-a"] = ExecutionOutcome("ABORTED")
    context = LambdaContext("settle_execution")
    result = app.lambda_handler({"job": "settle-executions"}, context, deps=pipeline.settle_deps)
    assert result["checked"] == 1 and result["settled"][0]["status"] == "ABORTED"
