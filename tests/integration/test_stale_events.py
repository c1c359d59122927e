"""A status event of another stack operation or another ECS deployment never changes the
deployment waiting now; and Deploy Stack retried after starting its stack operation waits
on that operation (adopts it) instead of failing while the stack completes."""

from __future__ import annotations

from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.naming import client_request_token
from shiplane.services.deploy_stack import deploy_stack
from shiplane.services.deployment_events import handle_deployment_event
from shiplane.services.register_task_definition import register_task_definition
from tests.helpers import ecr_push, load_event, stack_event
from tests.integration.pipeline_harness import DIGEST_1, DIGEST_2, Pipeline

SERVICE_ARN = "arn:aws:ecs:us-east-1:123456789012:service/shiplane-dev/web"


@pytest.fixture
def pipeline(configured: DynamoStore, clock: Any) -> Pipeline:
    return Pipeline(configured, clock)


def _updating(pipeline: Pipeline) -> tuple[dict[str, Any], str]:
    """1.0.0 runs in dev; 1.1.0's update of the same stack is in flight, waited on."""
    first = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    pipeline.deploy_units(first["deployments"])
    [task] = pipeline.resolve(ecr_push("web", "1.1.0", DIGEST_2))["deployments"]
    pipeline.acquire(task)
    return pipeline.start_unit(task["units"][0])


def test_a_late_failure_of_an_older_stack_operation_is_ignored(pipeline: Pipeline) -> None:
    unit, token = _updating(pipeline)
    name = unit["stack_name"]
    wait = pipeline.store.get_wait(f"123456789012#us-east-1#{name}")
    assert wait is not None
    assert wait.client_request_token == client_request_token(
        unit["deployment_id"], unit["step"], unit["target"], "update"
    )
    older = client_request_token("dev-older", unit["step"], unit["target"], "update")
    late = stack_event(name, "UPDATE_ROLLBACK_COMPLETE", "old failure", token=older)

    result = handle_deployment_event(late, pipeline.events_deps)

    assert not result.handled and "not the operation waited on" in result.message
    assert token not in pipeline.tokens.succeeded
    deployment = pipeline.store.get_deployment("web", unit["deployment_id"])
    assert deployment.failed_units == []
    # the operation waited on still decides
    assert pipeline.finish_unit(unit, token)["status"] == "SUCCEEDED"


def test_an_event_without_the_token_waited_on_is_ignored(pipeline: Pipeline) -> None:
    # CloudFormation gives every event of an operation started with a ClientRequestToken
    # that token: an event without one comes from another operation (a console update).
    unit, token = _updating(pipeline)
    name = unit["stack_name"]
    result = handle_deployment_event(
        stack_event(name, "UPDATE_ROLLBACK_COMPLETE", "someone else's update", token=""),
        pipeline.events_deps,
    )
    assert not result.handled and "(no token)" in result.message
    assert token not in pipeline.tokens.succeeded
    assert pipeline.finish_unit(unit, token)["status"] == "SUCCEEDED"


def test_an_event_of_a_deleted_stack_of_the_same_name_is_ignored(pipeline: Pipeline) -> None:
    unit, token = _updating(pipeline)
    name = unit["stack_name"]
    gone = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/uuid-old"
    result = handle_deployment_event(
        stack_event(name, "DELETE_COMPLETE", token="", stack_id=gone), pipeline.events_deps
    )
    assert not result.handled
    assert token not in pipeline.tokens.succeeded


def test_an_ecs_failure_of_an_older_deployment_is_ignored(pipeline: Pipeline) -> None:
    from shiplane.ports import ServiceState

    unit, token = _updating(pipeline)
    name = unit["stack_name"]
    gateway = pipeline.gateway
    # the stack completes while ECS still rolls out deployment ecs-svc/new
    gateway._set(name, "UPDATE_COMPLETE", gateway.stacks[name].parameters)
    gateway.services[("shiplane-dev", "web")] = ServiceState(
        task_definition_arn=unit["task_definition_arn"],
        rollout_state="IN_PROGRESS",
        deployment_id="ecs-svc/new",
    )
    event = stack_event(name, "UPDATE_COMPLETE", token=gateway.operation_tokens[name])
    assert not handle_deployment_event(event, pipeline.events_deps).outcome
    wait = pipeline.store.get_wait(f"123456789012#us-east-1#{name}")
    assert wait is not None and wait.ecs_deployment_id == "ecs-svc/new"

    old_failure = load_event("ecs_deployment_failed")
    old_failure["resources"] = [SERVICE_ARN]
    old_failure["detail"]["deploymentId"] = "ecs-svc/old"
    result = handle_deployment_event(old_failure, pipeline.events_deps)
    assert not result.handled and "ecs-svc/old" in result.message
    assert token not in pipeline.tokens.succeeded

    gateway.services[("shiplane-dev", "web")] = ServiceState(
        task_definition_arn=unit["task_definition_arn"],
        rollout_state="COMPLETED",
        deployment_id="ecs-svc/new",
    )
    done = load_event("ecs_deployment_completed")
    done["resources"] = [SERVICE_ARN]
    done["detail"]["deploymentId"] = "ecs-svc/new"
    assert handle_deployment_event(done, pipeline.events_deps).handled
    assert pipeline.tokens.succeeded[token]["status"] == "SUCCEEDED"


class Crash(Exception):
    pass


def _crash_after_create(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    original = pipeline.gateway.create_stack

    def create_then_crash(*args: Any, **kwargs: Any) -> str:
        original(*args, **kwargs)
        monkeypatch.setattr(pipeline.gateway, "create_stack", original)
        raise Crash("the function died right after CreateStack")

    monkeypatch.setattr(pipeline.gateway, "create_stack", create_then_crash)


def _registered(pipeline: Pipeline) -> dict[str, Any]:
    [task] = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))["deployments"]
    pipeline.acquire(task)
    unit = register_task_definition(task["units"][0], pipeline.register_deps)
    return unit.model_dump(mode="json")


@pytest.mark.parametrize("token_known", [True, False])
def test_deploy_stack_retried_after_create_stack_adopts_the_create(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, token_known: bool
) -> None:
    unit = _registered(pipeline)
    _crash_after_create(pipeline, monkeypatch)
    with pytest.raises(Crash):
        deploy_stack({"unit": unit, "task_token": "attempt-1"}, pipeline.deploy_deps)
    name = unit["stack_name"]
    if not token_known:  # CloudFormation named no token: the parameters tell it is ours
        pipeline.gateway.operation_tokens[name] = None
    # the retry neither fails nor fights the create in flight: it waits on it
    deploy_stack({"unit": unit, "task_token": "attempt-2"}, pipeline.deploy_deps)
    assert pipeline.gateway.calls.count("create_stack") == 1
    timeline = pipeline.store.get_deployment("web", unit["deployment_id"]).timeline
    assert "earlier attempt: waiting for it" in timeline[-1].message

    outcome = pipeline.finish_unit(unit, "attempt-2")
    assert outcome["status"] == "SUCCEEDED"
    assert outcome["task_definition_arn"] == unit["task_definition_arn"]


def test_deploy_stack_retried_after_the_create_completed_succeeds(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit = _registered(pipeline)
    _crash_after_create(pipeline, monkeypatch)
    with pytest.raises(Crash):
        deploy_stack({"unit": unit, "task_token": "attempt-1"}, pipeline.deploy_deps)
    pipeline.gateway.finish_rollout(unit["stack_name"], "shiplane-dev", "web")
    deploy_stack({"unit": unit, "task_token": "attempt-2"}, pipeline.deploy_deps)
    assert pipeline.tokens.succeeded["attempt-2"]["status"] == "SUCCEEDED"
