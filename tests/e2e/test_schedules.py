"""Schedules on the embedded local cloud: scheduled deployments made through the API fire
when the scheduler's clock passes their time (and never once cancelled), a push whose
ECR event was lost is released by the reconcile job, and drift shows up once the live
service is changed behind Shiplane's back. The scheduler's clock is the test's: the
wall-clock thread is off and every tick names its time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shiplane.domain.drift import DriftStatus
from shiplane.domain.models import DeploymentStatus
from shiplane_local.api_client import ApiClient, local_credentials
from shiplane_local.cloud import LocalCloud
from tests.e2e.conftest import ROLLOUT_DELAY, Project

pytestmark = pytest.mark.e2e

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
SECOND = timedelta(seconds=1)


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(
        rollout_delay=ROLLOUT_DELAY, parameters={"LogLevel": "WARNING"}, scheduler_interval=None
    ) as running:
        yield running


@pytest.fixture(scope="module")
def api(cloud: LocalCloud) -> ApiClient:
    return ApiClient(cloud.api_url, local_credentials(), region=cloud.region)


def execution_names(project: Project) -> list[str]:
    return sorted(e["name"] for e in project.executions())


def schedule_body(target: Project, at: datetime) -> dict[str, Any]:
    return {
        "project": target.name,
        "release": "1.0.0",
        "environment": "prod",
        "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_a_scheduled_deployment_fires_when_its_time_comes(project: Project, api: ApiClient) -> None:
    digest = project.push("1.0.0")
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)

    created = api.post("/schedules", schedule_body(project, at))
    assert created.status == 201, created.body
    schedule = created.json()
    assert schedule["status"] == "scheduled"
    assert api.post("/schedules", schedule_body(project, at)).status == 200  # a retry
    audit = api.get("/audit").json()["items"]
    assert any(r["resource"] == f"schedule/{schedule['id']}" for r in audit)

    def fires(now: datetime) -> list[str]:  # this schedule's fires (not the recurring jobs')
        return [f for f in project.cloud.scheduler.tick(now) if schedule["schedule_name"] in f]

    assert fires(at - SECOND) == []
    project.settle()
    assert project.deployments("prod") == []

    fired = fires(at)
    assert fired == [f"{schedule['schedule_name']}: execution schedule-{schedule['id']}"]
    project.settle()
    [prod] = project.deployments("prod")
    assert prod.status is DeploymentStatus.SUCCEEDED
    assert project.running_image("prod") == f"{REGISTRY}/{project.repository}@{digest}"
    assert f"schedule {schedule['id']}" in prod.triggered_by.by

    shown = api.get(f"/schedules/{schedule['id']}").json()
    assert shown["status"] == "fired"
    assert shown["execution_status"] == "SUCCEEDED"
    scheduler = project.cloud.client("scheduler")
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name=schedule["schedule_name"], GroupName="shiplane-schedules")
    # the one-time schedule was deleted: a later tick starts nothing
    assert fires(at + timedelta(minutes=1)) == []
    assert api.delete(f"/schedules/{schedule['id']}").status == 409


def test_bad_schedules_are_refused_naming_the_field(project: Project, api: ApiClient) -> None:
    project.push("1.0.0")
    soon = datetime.now(UTC) + timedelta(hours=1)
    for changes, status, field in (
        ({"release": "9.9.9"}, 404, "body.release"),
        ({"environment": "staging"}, 404, "body.environment"),
        ({"project": "no-such-project"}, 404, "body.project"),
        ({"at": "2001-01-01T00:00:00Z"}, 400, "body.at"),
    ):
        response = api.post("/schedules", schedule_body(project, soon) | changes)
        assert (response.status, response.json()["field"]) == (status, field), response.body
    assert api.get("/schedules", query={"project": project.name}).json()["items"] == []


def test_a_cancelled_schedule_never_fires(project: Project, api: ApiClient) -> None:
    project.push("1.0.0")
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=20)
    schedule = api.post("/schedules", schedule_body(project, at)).json()

    cancelled = api.delete(f"/schedules/{schedule['id']}")
    assert cancelled.status == 200
    assert cancelled.json()["status"] == "cancelled"
    listed = api.get("/schedules", query={"project": project.name, "status": "cancelled"})
    assert [s["id"] for s in listed.json()["items"]] == [schedule["id"]]

    fired = project.cloud.scheduler.tick(at + timedelta(hours=1))  # (the recurring jobs run)
    assert not [line for line in fired if schedule["schedule_name"] in line]
    project.settle()
    assert project.deployments("prod") == []
    assert f"schedule-{schedule['id']}" not in execution_names(project)
    assert api.get(f"/schedules/{schedule['id']}").json()["status"] == "cancelled"
    assert api.delete("/schedules/" + "0" * 20).status == 404


def test_a_push_whose_event_was_lost_is_released_by_the_reconcile_job(project: Project) -> None:
    cloud = project.cloud
    digest = cloud.push_image(project.repository, "1.0.0", emit_event=False)
    project.settle()
    assert project.store.list_releases(project.name) == []
    assert project.executions() == []

    job = cloud.scheduler.job("ReconcilePushesFunction")
    due = job.next_due
    assert not any("ReconcilePushes" in line for line in cloud.scheduler.tick(due - SECOND))
    assert any("ReconcilePushes" in line for line in cloud.scheduler.tick(due))
    project.settle()
    [release] = project.store.list_releases(project.name)
    assert (release.version, release.images[project.repository].digest) == ("1.0.0", digest)
    statuses = {(d.environment, d.status) for d in project.deployments()}
    assert statuses == {("dev", DeploymentStatus.SUCCEEDED), ("test", DeploymentStatus.SUCCEEDED)}

    # the next run finds the image released: nothing starts again
    started = len(project.executions())
    assert any("ReconcilePushes" in line for line in cloud.scheduler.tick(job.next_due))
    project.settle()
    assert len(project.executions()) == started


def test_drift_is_reported_once_the_live_service_changes(project: Project) -> None:
    cloud = project.cloud
    project.push("1.0.0")
    job = cloud.scheduler.job("DetectDriftFunction")

    cloud.scheduler.tick(job.next_due)
    project.settle()
    reports = {r.environment: r for r in project.store.list_drift(project.name)}
    assert {e: r.status for e, r in reports.items()} == {
        "dev": DriftStatus.IN_SYNC,
        "test": DriftStatus.IN_SYNC,
    }, [r.differences for r in reports.values()]

    cloud.client("ecs").update_service(cluster="shiplane-dev", service=project.name, desiredCount=5)
    cloud.scheduler.tick(job.next_due)
    project.settle()
    reports = {r.environment: r for r in project.store.list_drift(project.name)}
    assert reports["dev"].status is DriftStatus.DRIFTED
    assert reports["dev"].differences == [f"service {project.name}: desired count is 5, deployed 2"]
    assert reports["test"].status is DriftStatus.IN_SYNC

    # The dashboard's data shows it in the dev cell, and only there.
    from shiplane_local.api_client import ApiClient, local_credentials

    answer = ApiClient(cloud.api_url, local_credentials()).get(
        "/status", query={"project": project.name}
    )
    assert answer.status == 200, answer.body
    cells = {c["environment"]: c for c in answer.json()["projects"][0]["rows"][0]["cells"]}
    assert cells["dev"]["drift"] == [
        f"dev-cluster: service {project.name}: desired count is 5, deployed 2"
    ]
    assert cells["test"]["drift"] == []
