"""Faults on the local cloud, injected by wrapping what a function calls: a failed create
on a cluster that does not exist, and an execution that dies with a slot held."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import DeploymentStatus
from shiplane.services.apply_configuration import apply_configuration
from tests.e2e.conftest import Project
from tests.helpers import demo_configuration, load_event

pytestmark = pytest.mark.e2e


def _document(project: Project, dev_cluster: str) -> dict[str, Any]:
    """The project's configuration, with dev's target on the cluster given."""
    document = demo_configuration()
    step = copy.deepcopy(document["projects"][0])
    step["name"] = project.name
    step["steps"][0]["task"]["containers"][0]["image"] = project.repository
    step["steps"][0]["service"]["name"] = project.name
    step["steps"][0]["task"]["family"] = project.name
    document["projects"] = [step]
    for target in document["targets"]:
        if target["name"] == "dev-cluster":
            target["cluster"] = dev_cluster
    return document


@pytest.fixture
def no_dev_cluster(project: Project) -> Iterator[Project]:
    """dev's target names a cluster that does not exist (targets are shared: restored)."""
    apply_configuration(_document(project, "no-such-cluster"), project.store)
    yield project
    apply_configuration(_document(project, "shiplane-dev"), project.store)


def test_a_create_on_a_missing_cluster_fails_promptly_and_the_next_push_starts_afresh(
    no_dev_cluster: Project,
) -> None:
    project = no_dev_cluster
    started = time.monotonic()
    project.push("1.0.0")
    took = time.monotonic() - started
    [dev] = project.deployments("dev")
    assert dev.status is DeploymentStatus.FAILED
    assert "ROLLBACK_COMPLETE" in dev.reason and "ClusterNotFoundException" in dev.reason
    # ended by the stack's events, not by the wait's timeout (1800 s by default)
    assert took < 60, took
    assert project.stack("dev")["StackStatus"] == "ROLLBACK_COMPLETE"

    project.push("1.0.1")
    [second] = [d for d in project.deployments("dev") if d.release == "1.0.1"]
    assert second.status is DeploymentStatus.FAILED
    assert "ClusterNotFoundException" in second.reason
    assert "ResponseParserError" not in second.reason
    notes = [entry.message for entry in second.timeline]
    assert any("was ROLLBACK_COMPLETE (a failed create): deleting it" in n for n in notes)


def _execution_ended(project: Project, execution: dict[str, Any]) -> dict[str, Any]:
    """Step Functions' "Execution Status Change" event for an execution, as AWS sends it."""
    event = load_event("execution_failed")
    event["resources"] = [execution["executionArn"]]
    event["detail"].update(
        {
            "executionArn": execution["executionArn"],
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": execution["status"],
            "error": execution.get("error"),
            "cause": execution.get("cause"),
            "input": execution["input"],
        }
    )
    return event


def test_an_execution_that_dies_holding_a_slot_frees_it_when_it_ends(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = DynamoStore.release_slot
    failures = []

    def release_slot_crashes_once(self: DynamoStore, *args: Any) -> bool:
        if not failures:
            failures.append(args)
            raise RuntimeError("Record Deployment died before freeing the slot")
        return original(self, *args)

    monkeypatch.setattr(DynamoStore, "release_slot", release_slot_crashes_once)
    project.push("1.0.0")
    [execution] = project.executions()
    assert execution["status"] == "FAILED"  # the recording failed: the execution says so
    [dev] = project.deployments("dev")
    assert dev.status is DeploymentStatus.SUCCEEDED  # its end was recorded before the crash
    # the local cloud sent the execution's FAILED event: settle_execution freed the slot
    assert failures
    assert project.store.slot_holder(project.name, "dev", "untenanted") is None

    # a second delivery of that event (at-least-once) changes nothing
    project.cloud.emit_event(_execution_ended(project, execution))
    project.settle()
    assert project.store.slot_holder(project.name, "dev", "untenanted") is None

    # the next push is not queued behind a dead holder
    project.push("1.1.0")
    assert {d.release: d.status for d in project.deployments("dev")}["1.1.0"] is (
        DeploymentStatus.SUCCEEDED
    )


def _start_at_once(project: Project, document: dict[str, Any], names: list[str]) -> None:
    sfn = project.cloud.client("stepfunctions")
    for name in names:
        sfn.start_execution(
            stateMachineArn=project.cloud.outputs["StateMachineArn"],
            name=name,
            input=json.dumps(document),
        )
    project.settle()


def test_the_same_console_input_started_twice_at_once_rolls_out_once(project: Project) -> None:
    project.push("1.0.0")
    project.promote("1.0.0", "prod")
    document = {"action": "deploy", "project": project.name, "release": "1.0.0"}
    document["environment"] = "test"
    _start_at_once(project, document, [f"{project.name}-a", f"{project.name}-b"])

    console = [d for d in project.deployments("test") if d.triggered_by.kind == "console"]
    assert sorted(d.status.value for d in console) == ["SKIPPED", "SUCCEEDED"]
    [skipped] = [d for d in console if d.status is DeploymentStatus.SKIPPED]
    assert skipped.reason.startswith("duplicate: deployment ")
    assert skipped.task_definition_arns == {} and skipped.stacks == {}  # it touched nothing

    # a redeploy asked for explicitly runs, even started twice
    document["mode"] = "redeploy"
    _start_at_once(project, document, [f"{project.name}-c", f"{project.name}-d"])
    redeploys = [d for d in project.deployments("test") if d.redeploy]
    assert [d.status.value for d in redeploys] == ["SUCCEEDED", "SUCCEEDED"]
