"""Step Functions' "Execution Status Change" events on the local cloud (Shiplane's own
template.yaml): every execution's status changes reach EventBridge in AWS's shape, so a
pipeline execution that fails or is stopped is settled by settle_execution with nobody
emitting anything by hand; and StopExecution ends an execution ABORTED, as in AWS."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import DeploymentStatus
from shiplane_local import LocalCloud
from tests.e2e.conftest import Project

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(ROOT, rollout_delay=0.05, time_scale=0.01) as local:
        local.wait_idle()
        yield local


@pytest.fixture
def project(cloud: LocalCloud) -> Iterator[Project]:
    store = DynamoStore(cloud.outputs["TableName"], client=cloud.client("dynamodb"))
    yield Project(cloud, store, "p" + uuid.uuid4().hex[:8])
    cloud.faults.clear()
    cloud.wait_idle(timeout=60)


def _states_events(cloud: LocalCloud) -> tuple[str, str]:
    """A queue receiving every aws.states event of the account (rule + SQS target)."""
    sqs, events = cloud.client("sqs"), cloud.client("events")
    name = f"states-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name=name, EventPattern=json.dumps({"source": ["aws.states"]}))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    return url, name


def _received(cloud: LocalCloud, url: str) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    found = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        found.extend(json.loads(m["Body"]) for m in batch)
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def _machine(cloud: LocalCloud, definition: dict[str, Any]) -> str:
    sfn, iam = cloud.client("stepfunctions"), cloud.client("iam")
    name = f"m-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "states.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    allow = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}
    iam.put_role_policy(
        RoleName=name,
        PolicyName="send",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
    )
    return str(
        sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role["Arn"])[
            "stateMachineArn"
        ]
    )


def test_every_status_change_is_sent_in_aws_s_shape(cloud: LocalCloud) -> None:
    url, _ = _states_events(cloud)
    ok = _machine(cloud, {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    bad = _machine(
        cloud,
        {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "E", "Cause": "why"}}},
    )
    sfn = cloud.client("stepfunctions")
    first = sfn.start_execution(stateMachineArn=ok, name="ok-1", input='{"a": 1}')
    second = sfn.start_execution(stateMachineArn=bad, name="bad-1", input="{}")
    cloud.wait_idle()

    events = _received(cloud, url)
    seen = {(e["detail"]["name"], e["detail"]["status"]) for e in events}
    assert seen == {("ok-1", "RUNNING"), ("ok-1", "SUCCEEDED"), ("bad-1", "RUNNING"),
                    ("bad-1", "FAILED")}  # fmt: skip
    by = {(e["detail"]["name"], e["detail"]["status"]): e for e in events}
    done = by[("ok-1", "SUCCEEDED")]
    assert done["source"] == "aws.states"
    assert done["detail-type"] == "Step Functions Execution Status Change"
    assert done["resources"] == [first["executionArn"]]
    detail = done["detail"]
    assert detail["executionArn"] == first["executionArn"]
    assert detail["stateMachineArn"] == ok
    assert json.loads(detail["input"]) == {"a": 1} and json.loads(detail["output"]) == {"a": 1}
    assert isinstance(detail["startDate"], int) and detail["stopDate"] >= detail["startDate"]
    assert detail["error"] is None and detail["cause"] is None
    running = by[("ok-1", "RUNNING")]["detail"]
    assert running["stopDate"] is None and running["output"] is None
    failed = by[("bad-1", "FAILED")]["detail"]
    assert failed["executionArn"] == second["executionArn"]
    assert (failed["error"], failed["cause"], failed["output"]) == ("E", "why", None)


def test_a_stopped_execution_ends_aborted_with_the_stop_s_error(cloud: LocalCloud) -> None:
    url, _ = _states_events(cloud)
    waits = _machine(
        cloud,
        {
            "StartAt": "Wait",
            "States": {
                "Wait": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {
                        "QueueUrl": cloud.client("sqs").create_queue(
                            QueueName=f"tokens-{uuid.uuid4().hex[:8]}"
                        )["QueueUrl"],
                        "MessageBody": {"token.$": "$$.Task.Token"},
                    },
                    "End": True,
                }
            },
        },
    )
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=waits, name="stopped-1", input="{}")["executionArn"]
    time.sleep(0.3)  # let it reach the task and wait on its token
    sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by hand")
    cloud.wait_idle()

    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED"
    [aborted] = [e for e in _received(cloud, url) if e["detail"]["status"] != "RUNNING"]
    assert aborted["detail"]["status"] == "ABORTED"
    assert (aborted["detail"]["error"], aborted["detail"]["cause"]) == (
        "Operator",
        "stopped by hand",
    )


def test_a_failed_pipeline_execution_is_settled_by_its_event(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = DynamoStore.release_slot
    failures: list[Any] = []

    def release_slot_fails_once(self: DynamoStore, *args: Any) -> bool:
        if not failures:
            failures.append(args)
            raise RuntimeError("Record Deployment died before freeing the slot")
        return original(self, *args)

    monkeypatch.setattr(DynamoStore, "release_slot", release_slot_fails_once)
    project.push("1.0.0")

    [execution] = project.executions()
    assert execution["status"] == "FAILED"
    [dev] = project.deployments("dev")
    assert dev.status is DeploymentStatus.SUCCEEDED
    # nobody emitted anything: the execution's FAILED event reached settle_execution
    assert failures and project.store.slot_holder(project.name, "dev", "untenanted") is None


def test_a_stopped_pipeline_execution_ends_its_deployment_and_frees_the_slot(
    project: Project,
) -> None:
    # CloudFormation's events are lost: the deployment waits on its stack (30 min).
    project.cloud.faults.load({"faults": [{"events": {"source": "aws.cloudformation", "drop": 1}}]})
    project.cloud.push_image(project.repository, "1.0.0")
    deadline = time.monotonic() + 30
    while not [d for d in project.deployments("dev") if d.status is DeploymentStatus.DEPLOYING]:
        assert time.monotonic() < deadline, project.deployments("dev")
        time.sleep(0.1)
    time.sleep(0.5)  # Deploy Stack has stored its wait and waits on its task token
    sfn = project.cloud.client("stepfunctions")
    [running] = [e for e in project.executions() if e["status"] == "RUNNING"]
    sfn.stop_execution(executionArn=running["executionArn"], cause="an operator stopped it")
    deadline = time.monotonic() + 30
    while project.store.slot_holder(project.name, "dev", "untenanted") is not None:
        assert time.monotonic() < deadline, "the slot was never freed"
        time.sleep(0.1)

    [dev] = project.deployments("dev")
    assert dev.status is DeploymentStatus.FAILED
    assert "was aborted" in dev.reason and "an operator stopped it" in dev.reason
    assert sfn.describe_execution(executionArn=running["executionArn"])["status"] == "ABORTED"
