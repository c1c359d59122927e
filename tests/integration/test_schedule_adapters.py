"""The scheduler, ECR history and DynamoDB schedule/drift adapters, on moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.adapters.ecr import EcrRegistry
from shiplane.adapters.scheduler import EventBridgeScheduler
from shiplane.domain.drift import DriftReport, DriftStatus
from shiplane.domain.schedules import ScheduledDeployment, ScheduleStatus
from shiplane.errors import ConfigurationError
from shiplane_local.ecr import image_manifest

GROUP = "shiplane-schedules"
ROLE = "arn:aws:iam::123456789012:role/shiplane-scheduler"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:shiplane-deploy-pipeline"
AT = datetime(2030, 1, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def scheduler_client(aws: None) -> Any:
    client = boto3.client("scheduler", region_name="us-east-1")
    client.create_schedule_group(Name=GROUP)
    return client


def test_a_one_time_schedule_starts_the_pipeline_under_a_chosen_name(scheduler_client: Any) -> None:
    scheduler = EventBridgeScheduler(GROUP, ROLE, client=scheduler_client)
    payload = {"action": "deploy", "project": "web", "release": "1.0.0", "environment": "prod"}
    assert scheduler.create_pipeline_start("deploy-1", AT, MACHINE, "schedule-1", payload)
    described = scheduler_client.get_schedule(Name="deploy-1", GroupName=GROUP)
    assert described["ScheduleExpression"] == "at(2030-01-02T02:00:00)"
    assert described["ScheduleExpressionTimezone"] == "UTC"
    assert described["ActionAfterCompletion"] == "DELETE"
    target = described["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:sfn:startExecution"
    assert target["RoleArn"] == ROLE
    start = json.loads(target["Input"])
    assert start["StateMachineArn"] == MACHINE
    assert start["Name"] == "schedule-1"
    assert json.loads(start["Input"]) == payload
    # a retried create finds it; delete says whether there was one
    assert not scheduler.create_pipeline_start("deploy-1", AT, MACHINE, "schedule-1", payload)
    assert scheduler.get("deploy-1") is not None
    assert scheduler.delete("deploy-1")
    assert not scheduler.delete("deploy-1")
    assert scheduler.get("deploy-1") is None


def test_without_a_group_and_role_scheduling_is_a_configuration_error(
    scheduler_client: Any,
) -> None:
    with pytest.raises(ConfigurationError):
        EventBridgeScheduler("", "", client=scheduler_client).create_pipeline_start(
            "deploy-2", AT, MACHINE, "schedule-2", {}
        )


def test_pushed_since_lists_recent_tagged_images(aws: None) -> None:
    ecr = boto3.client("ecr", region_name="us-east-1")
    ecr.create_repository(repositoryName="web")
    manifest = image_manifest("web", "1.0.0")
    digest = ecr.put_image(repositoryName="web", imageManifest=manifest, imageTag="1.0.0")["image"][
        "imageId"
    ]["imageDigest"]
    history = EcrRegistry(client=ecr)
    now = datetime.now(UTC)
    [image] = history.pushed_since("web", now - timedelta(minutes=5))
    assert (image.repository, image.tag, image.digest) == ("web", "1.0.0", digest)
    assert image.registry_id == "123456789012"
    assert history.pushed_since("web", now + timedelta(minutes=5)) == []
    assert history.pushed_since("no-such-repository", now - timedelta(days=1)) == []


def schedule(sid: str = "a" * 20, **changes: Any) -> ScheduledDeployment:
    fields: dict[str, Any] = {
        "id": sid,
        "project": "web",
        "release": "1.0.0",
        "environment": "prod",
        "at": AT,
        "schedule_name": f"deploy-{sid}",
        "execution_name": f"schedule-{sid}",
        "created_at": AT - timedelta(days=1),
        "created_by": "arn:aws:iam::123456789012:user/ana",
    }
    return ScheduledDeployment(**(fields | changes))


def test_schedules_are_written_once_and_change_state_only_from_the_expected_one(
    store: DynamoStore,
) -> None:
    first = schedule()
    assert store.put_schedule(first)
    assert not store.put_schedule(first)
    assert store.get_schedule(first.id) == first
    assert store.get_schedule("b" * 20) is None
    cancelled = first.model_copy(update={"status": ScheduleStatus.CANCELLED})
    assert store.update_schedule(cancelled, ScheduleStatus.SCHEDULED)
    fired = first.model_copy(update={"status": ScheduleStatus.FIRED})
    assert not store.update_schedule(fired, ScheduleStatus.SCHEDULED)  # lost the race
    store.put_schedule(schedule("c" * 20))
    assert {(s.id, s.status) for s in store.list_schedules()} == {
        ("a" * 20, ScheduleStatus.CANCELLED),
        ("c" * 20, ScheduleStatus.SCHEDULED),
    }


def test_drift_is_kept_per_cell_and_never_rewound(store: DynamoStore) -> None:
    def report(target: str, minutes: int, status: DriftStatus) -> DriftReport:
        return DriftReport(
            project="web",
            environment="dev",
            target=target,
            release="1.0.0",
            deployment_id="dev-1",
            status=status,
            differences=["x"] if status is DriftStatus.DRIFTED else [],
            checked_at=AT + timedelta(minutes=minutes),
        )

    store.save_drift(report("dev-a", 10, DriftStatus.DRIFTED))
    store.save_drift(report("dev-a", 5, DriftStatus.IN_SYNC))  # older: ignored
    store.save_drift(report("dev-b", 1, DriftStatus.IN_SYNC))
    found = {r.target: r.status for r in store.list_drift("web")}
    assert found == {"dev-a": DriftStatus.DRIFTED, "dev-b": DriftStatus.IN_SYNC}
    assert store.list_drift("other") == []
