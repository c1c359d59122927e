"""The pipeline's services chained by hand, on the real DynamoDB adapter (moto) with an
in-memory target account: what the state machine does, step by step."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import DeploymentStatus, DeploymentUnit
from shiplane.errors import InvalidRequestError, LifecycleViolationError, StackBusyError
from shiplane.services.deploy_stack import deploy_stack
from shiplane.services.deployment_events import handle_deployment_event
from shiplane.services.reconcile_deployment import reconcile_deployment
from shiplane.services.register_task_definition import (
    register_task_definition,
)
from tests.helpers import ecr_push, load_event, stack_event
from tests.integration.pipeline_harness import DIGEST_1, DIGEST_2, Pipeline


@pytest.fixture
def pipeline(configured: DynamoStore, clock: Any) -> Pipeline:
    return Pipeline(configured, clock)


def test_a_push_deploys_dev_then_test_and_waits_for_prod(pipeline: Pipeline) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    assert resolved["releases"] == [
        {"project": "web", "version": "1.0.0", "channel": "default", "created": True}
    ]
    assert [d["environment"] for d in resolved["deployments"]] == ["dev"]

    after_dev = pipeline.deploy_units(resolved["deployments"])
    assert [f["status"] for f in after_dev["finished"]] == ["SUCCEEDED"]
    assert [u["environment"] for u in after_dev["deployments"]] == ["test"]

    after_test = pipeline.deploy_units(after_dev["deployments"])
    assert after_test["deployments"] == []
    assert after_test["waiting_for"] == ["prod"]
    assert after_test["failed"] is False

    task_definition = next(iter(pipeline.gateway.task_definitions.values()))
    assert task_definition["containerDefinitions"][0]["image"].endswith(f"/web@{DIGEST_1}")
    current = pipeline.store.get_current("web", "test", "untenanted")
    assert current is not None and current["release"] == "1.0.0"


def test_the_same_push_three_times_gives_one_release_and_one_deployment(
    pipeline: Pipeline,
) -> None:
    event = ecr_push("web", "1.0.0", DIGEST_1)
    first = pipeline.resolve(event)
    second = pipeline.resolve(event)
    third = pipeline.resolve(event)
    assert len(first["deployments"]) == 1
    assert second["deployments"] == [] and third["deployments"] == []
    assert second["releases"][0]["created"] is False
    assert len(pipeline.store.list_releases("web")) == 1
    assert len(pipeline.store.list_deployments("web")) == 1


def test_a_moved_tag_never_changes_the_release(pipeline: Pipeline) -> None:
    pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    moved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_2))
    assert moved["deployments"] == []
    release = pipeline.store.get_release("web", "1.0.0")
    assert release is not None and release.images["web"].digest == DIGEST_1


def test_a_push_to_an_unused_repository_is_not_an_error(pipeline: Pipeline) -> None:
    result = pipeline.resolve(load_event("ecr_push_unknown_repository"))
    assert result["deployments"] == [] and result["releases"] == []
    assert "no project uses repository 'nobody-uses-this'" in result["message"]


def test_a_malformed_event_names_the_fields_and_writes_nothing(pipeline: Pipeline) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        pipeline.resolve(load_event("ecr_push_malformed"))
    message = str(raised.value)
    assert "detail.image-digest" in message and "detail.action-type" in message
    assert pipeline.store.list_releases("web") == []


def test_promoting_to_prod_before_test_names_the_incomplete_phase(pipeline: Pipeline) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    pipeline.deploy_units(resolved["deployments"])  # dev only
    with pytest.raises(LifecycleViolationError, match="phase 'testing' is not complete"):
        pipeline.resolve(load_event("promote_to_prod"))


def test_manual_promotion_to_prod_after_test(pipeline: Pipeline) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    after_dev = pipeline.deploy_units(resolved["deployments"])
    pipeline.deploy_units(after_dev["deployments"])
    promoted = pipeline.resolve(load_event("promote_to_prod"))
    assert [u["environment"] for u in promoted["deployments"]] == ["prod"]
    gate = pipeline.deploy_units(promoted["deployments"])
    assert gate["finished"][0]["status"] == "SUCCEEDED"
    deployment = pipeline.store.get_deployment("web", promoted["deployments"][0]["deployment_id"])
    assert deployment.triggered_by.kind == "console"
    assert deployment.mode == "deploy"


def test_a_crashing_rollout_fails_with_its_diagnosis_and_does_not_advance(
    pipeline: Pipeline,
) -> None:
    first = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    pipeline.deploy_units(first["deployments"])
    second = pipeline.resolve(ecr_push("web", "1.1.0", DIGEST_2))
    gate = pipeline.deploy_units(second["deployments"], crash=True)

    assert gate["failed"] is True and gate["deployments"] == []
    deployment = pipeline.store.get_deployment("web", second["deployments"][0]["deployment_id"])
    assert deployment.status is DeploymentStatus.FAILED
    assert "UPDATE_ROLLBACK_COMPLETE" in deployment.reason
    assert deployment.diagnosis.stopped_tasks == ["task/abc: Essential container in task exited"]
    assert "Circuit Breaker" in deployment.diagnosis.stack_events[0]
    current = pipeline.store.get_current("web", "dev", "untenanted")
    assert current is not None and current["release"] == "1.0.0"


def test_a_stack_in_progress_is_waited_for_not_fought(pipeline: Pipeline) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    unit, _ = pipeline.start_unit(resolved["deployments"][0]["units"][0])
    # another deployment's operation (its own ClientRequestToken) runs on the stack
    other = unit | {"deployment_id": "dev-another"}
    with pytest.raises(StackBusyError, match="CREATE_IN_PROGRESS"):
        deploy_stack({"unit": other, "task_token": "another"}, pipeline.deploy_deps)


def test_a_failed_create_is_cleaned_up_before_the_next_deployment(pipeline: Pipeline) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    pipeline.deploy_units(resolved["deployments"], crash=True)
    stack = resolved["deployments"][0]["units"][0]["stack_name"]
    assert pipeline.gateway.stacks[stack].status == "ROLLBACK_COMPLETE"

    retry = pipeline.resolve(ecr_push("web", "1.0.1", DIGEST_2))
    registered = register_task_definition(
        retry["deployments"][0]["units"][0], pipeline.register_deps
    )
    with pytest.raises(StackBusyError, match="deleting it"):
        deploy_stack(
            {"unit": registered.model_dump(mode="json"), "task_token": "t"}, pipeline.deploy_deps
        )
    assert pipeline.gateway.deleted == [stack]
    deploy_stack(
        {"unit": registered.model_dump(mode="json"), "task_token": "t2"}, pipeline.deploy_deps
    )
    assert pipeline.gateway.stacks[stack].status == "CREATE_IN_PROGRESS"


def test_events_arriving_twice_complete_the_token_once(pipeline: Pipeline) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    unit, token = pipeline.start_unit(resolved["deployments"][0]["units"][0])
    pipeline.gateway.finish_rollout(unit["stack_name"], "shiplane-dev", "web")
    name = unit["stack_name"]
    event = stack_event(
        name,
        "CREATE_COMPLETE",
        token=pipeline.gateway.operation_tokens.get(name),
        stack_id=pipeline.gateway.stacks[name].stack_id,
    )
    first = handle_deployment_event(event, pipeline.events_deps)
    second = handle_deployment_event(event, pipeline.events_deps)
    assert first.handled and first.outcome is not None
    assert first.outcome.status == "SUCCEEDED"
    assert not second.handled
    assert list(pipeline.tokens.succeeded) == [token]


def test_a_lost_event_is_reconciled_after_the_timeout(pipeline: Pipeline) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    unit, _ = pipeline.start_unit(resolved["deployments"][0]["units"][0])
    pipeline.gateway.finish_rollout(unit["stack_name"], "shiplane-dev", "web")
    outcome = reconcile_deployment(unit, pipeline.reconcile_deps)
    assert outcome.status == "SUCCEEDED"
    assert outcome.task_definition_arn == unit["task_definition_arn"]
    assert pipeline.store.get_wait(f"123456789012#us-east-1#{unit['stack_name']}") is None


def test_a_rollout_still_running_at_the_timeout_is_recorded_as_timed_out(
    pipeline: Pipeline,
) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    unit, _ = pipeline.start_unit(resolved["deployments"][0]["units"][0])
    outcome = reconcile_deployment(unit, pipeline.reconcile_deps)
    assert outcome.status == "FAILED"
    assert "timed out after 600s" in outcome.reason and "CREATE_IN_PROGRESS" in outcome.reason
    task = resolved["deployments"][0]
    summary = pipeline.record(task, results=[unit | {"outcome": outcome.model_dump(mode="json")}])
    assert pipeline.gate([summary])["failed"] is True
    assert pipeline.store.get_wait(f"123456789012#us-east-1#{unit['stack_name']}") is None


def test_a_unit_that_raised_is_recorded_with_the_error(pipeline: Pipeline) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    task = resolved["deployments"][0]
    unit = DeploymentUnit.model_validate(task["units"][0]).model_dump(mode="json")
    error = {
        "Error": "TargetUnavailableError",
        "Cause": json.dumps(
            {"errorMessage": "cannot assume the role", "errorType": "TargetUnavailableError"}
        ),
    }
    _, slot = pipeline.acquire(task)
    summary = pipeline.record(task, slot=slot, results=[unit | {"error": error}])
    result = pipeline.gate([summary])
    assert result["failed"] is True
    deployment = pipeline.store.get_deployment("web", unit["deployment_id"])
    assert deployment.reason == "dev-cluster: TargetUnavailableError: cannot assume the role"


def test_after_a_failed_unit_the_rest_of_the_deployment_is_not_deployed(
    configured: DynamoStore, clock: Any
) -> None:
    from shiplane.errors import EarlierStepFailedError
    from shiplane.services.apply_configuration import apply_configuration
    from shiplane.services.record_deployment import note_unit_failure
    from tests.helpers import demo_configuration

    config = demo_configuration()
    second = dict(config["targets"][0], name="dev-cluster-2", cluster="shiplane-dev-2")
    config["targets"].append(second)
    apply_configuration(config, configured)
    pipeline = Pipeline(configured, clock)
    task = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))["deployments"][0]
    first_unit, later_unit = task["units"]
    registered, token = pipeline.start_unit(first_unit)
    pipeline.finish_unit(registered, token, crash=True)  # rollout fails: the events mark it

    with pytest.raises(EarlierStepFailedError, match="web-service on dev-cluster failed"):
        register_task_definition(later_unit, pipeline.register_deps)
    assert len(pipeline.gateway.task_definitions) == 1, "nothing registered for the later unit"

    # An error (not a rollout outcome) marks the deployment the same way.
    other = pipeline.resolve(ecr_push("web", "1.0.1", DIGEST_2))["deployments"][0]
    note_unit_failure(other["units"][0] | {"error": {"Error": "X"}}, pipeline.record_deps)
    with pytest.raises(EarlierStepFailedError):
        register_task_definition(other["units"][1], pipeline.register_deps)


@pytest.mark.parametrize("repository", ["web", "nobody-uses-this"])
def test_a_push_by_digest_is_ignored_not_an_error(pipeline: Pipeline, repository: str) -> None:
    event = load_event("ecr_push_by_digest")
    event["detail"]["repository-name"] = repository
    result = pipeline.resolve(event)
    assert result["deployments"] == [] and result["releases"] == []
    assert f"ignored a push by digest to {repository!r}" in result["message"]
    assert pipeline.store.list_releases("web") == []
