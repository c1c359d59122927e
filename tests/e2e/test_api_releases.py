"""Releases, deployments and approvals through the REST API on the embedded local cloud:
SigV4-signed HTTP requests to the local API Gateway, the real pipeline behind it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane_local.api_client import ApiClient, ApiResponse, local_credentials
from shiplane_local.cloud import LocalCloud
from tests.e2e.release_model_fixtures import World, environments, phase, wait_for

pytestmark = pytest.mark.e2e

AUTO, MANUAL = "automatic", "manual"


@pytest.fixture(scope="module")
def api(cloud: LocalCloud) -> Iterator[ApiClient]:
    yield ApiClient(cloud.api_url, local_credentials())


@pytest.fixture
def w(cloud: LocalCloud, store: DynamoStore) -> World:
    """dev (automatic) → test (automatic) → prod (manual, requires approval)."""
    world = World(cloud, store, "api")
    lifecycle = f"lc-{world.id}"
    world.apply(
        {
            "environments": environments("dev", "test", "prod", approval=("prod",)),
            "lifecycles": [
                {
                    "name": lifecycle,
                    "phases": [
                        phase("development", ("dev", AUTO)),
                        phase("testing", ("test", AUTO)),
                        phase("production", ("prod", MANUAL)),
                    ],
                }
            ],
            "targets": [world.target(e) for e in ("dev", "test", "prod")],
            "projects": [world.project_document(lifecycle)],
        }
    )
    return world


def ok(response: ApiResponse, status: int = 200) -> Any:
    assert response.status == status, (response.status, response.body[:500])
    return response.json()


def refused(response: ApiResponse, status: int, field: str) -> dict[str, Any]:
    body = response.json()
    assert (response.status, body["field"]) == (status, field), body
    return dict(body)


def deployment(api: ApiClient, w: World, deployment_id: str) -> dict[str, Any]:
    return dict(ok(api.get(f"/projects/{w.project}/deployments/{deployment_id}")))


def statuses(api: ApiClient, w: World) -> dict[tuple[str, str], str]:
    found = api.pages(f"/projects/{w.project}/deployments")
    return {(d["environment"], d["release"]): d["status"] for d in found}


def pending(api: ApiClient, w: World) -> list[dict[str, Any]]:
    return [a for a in api.pages("/approvals") if a["project"] == w.project]


def test_a_release_with_a_chosen_tag_goes_through_the_lifecycle_then_waits_for_approval(
    api: ApiClient, w: World
) -> None:
    chosen = w.cloud.push_image(w.repository, "1.0.0")
    second = w.cloud.push_image(w.repository, "1.1.0")
    w.settle()  # the pushes made releases 1.0.0 and 1.1.0 already
    body = {"tags": {w.repository: "1.0.0"}, "version": "3.0.0"}
    accepted = ok(api.post(f"/projects/{w.project}/releases", body), 202)
    assert accepted["started"] is True
    w.settle()
    release = ok(api.get(accepted["poll"]))
    assert release["images"][w.repository]["digest"] == chosen
    assert release["created_by"]["kind"] == "api"
    assert statuses(api, w)[("test", "3.0.0")] == "SUCCEEDED"
    assert w.running_image("test") == w.image(chosen)

    # Promote: the next environment is prod, which waits for an approval.
    promoted = ok(api.post(f"/projects/{w.project}/promote", {"release": "3.0.0"}), 202)
    assert promoted["environment"] == "prod"
    [approval] = wait_for("the approval", lambda: pending(api, w))
    assert approval["deployment_id"] == promoted["deployment_id"]
    decided = ok(
        api.post(
            f"/projects/{w.project}/approvals/{approval['deployment_id']}/approve",
            {"note": "CHG-42"},
        )
    )
    assert decided["decided_by"].endswith(":user/testing")
    w.settle()
    prod = deployment(api, w, promoted["deployment_id"])
    assert prod["status"] == "SUCCEEDED"
    assert any(
        t["message"] == f"approved by {decided['decided_by']}: CHG-42" for t in prod["timeline"]
    )
    assert prod["approval"]["status"] == "APPROVED"
    assert w.running_image("prod") == w.image(chosen)

    # Rollback of prod: nothing succeeded there before 3.0.0.
    refused(
        api.post(f"/projects/{w.project}/rollback", {"environment": "prod"}), 409, "body.release"
    )
    # Rollback of test: to the last good release before the current one (1.1.0).
    rolled = ok(api.post(f"/projects/{w.project}/rollback", {"environment": "test"}), 202)
    assert rolled["release"] == "1.1.0"
    w.settle()
    rollback = deployment(api, w, rolled["deployment_id"])
    assert (rollback["status"], rollback["mode"]) == ("SUCCEEDED", "rollback")
    assert w.running_image("test") == w.image(second)


def test_a_release_from_latest_a_rejection_and_a_retried_post(api: ApiClient, w: World) -> None:
    w.cloud.push_image(w.repository, "1.0.0")
    w.settle()
    latest = w.cloud.push_image(w.repository, "1.2.0")
    w.settle()
    # The push made 1.2.0; an API release of the latest needs a version of its own.
    refused(api.post(f"/projects/{w.project}/releases", {}), 409, "body.version")
    body = {"version": "1.3.0"}
    one = ok(api.post(f"/projects/{w.project}/releases", body), 202)
    two = ok(api.post(f"/projects/{w.project}/releases", body), 202)
    assert (one["started"], two["started"]) == (True, False)
    assert one["execution_arn"] == two["execution_arn"]
    w.settle()
    release = ok(api.get(f"/projects/{w.project}/releases/1.3.0"))
    assert release["images"][w.repository]["digest"] == latest
    page = ok(api.get(f"/projects/{w.project}/releases", query={"limit": 1}))
    assert [r["version"] for r in page["items"]] == ["1.3.0"]
    assert page["next_cursor"]

    # Deploy to prod directly: its phase is reachable (testing completed), approval rejected.
    key = {"Idempotency-Key": f"deploy-{w.id}"}
    deploy = {"release": "1.3.0", "environment": "prod"}
    first = ok(api.post(f"/projects/{w.project}/deployments", deploy, headers=key), 202)
    retried = ok(api.post(f"/projects/{w.project}/deployments", deploy, headers=key), 202)
    assert (first["started"], retried["started"]) == (True, False)
    assert retried["deployment_id"] == first["deployment_id"]
    wait_for("the approval", lambda: pending(api, w))
    ok(
        api.post(
            f"/projects/{w.project}/approvals/{first['deployment_id']}/reject",
            {"note": "freeze"},
        )
    )
    w.settle()
    rejected = deployment(api, w, first["deployment_id"])
    assert rejected["status"] == "REJECTED" and "freeze" in rejected["reason"]
    assert w.service("prod") == {}
    refused(
        api.post(f"/projects/{w.project}/approvals/{first['deployment_id']}/approve"),
        409,
        "path.deployment_id",
    )


def test_cancelling_a_deployment_waiting_for_approval(api: ApiClient, w: World) -> None:
    w.cloud.push_image(w.repository, "1.0.0")
    w.settle()
    promoted = ok(api.post(f"/projects/{w.project}/promote", {"release": "1.0.0"}), 202)
    wait_for("the approval", lambda: pending(api, w))
    cancelled = ok(
        api.post(
            f"/projects/{w.project}/deployments/{promoted['deployment_id']}/cancel",
            {"reason": "wrong day"},
        )
    )
    assert (cancelled["status"], cancelled["execution_stopped"]) == ("CANCELLED", True)
    w.settle()
    got = deployment(api, w, promoted["deployment_id"])
    assert got["status"] == "CANCELLED"
    assert got["reason"].endswith(":user/testing: wrong day")
    assert pending(api, w) == []
    execution = w.cloud.client("stepfunctions").describe_execution(
        executionArn=promoted["execution_arn"]
    )
    # AWS aborts a stopped execution (so does the local cloud: stepfunctions_events.py)
    assert execution["status"] == "ABORTED"
    refused(
        api.post(f"/projects/{w.project}/deployments/{promoted['deployment_id']}/cancel"),
        409,
        "path.deployment_id",
    )


def test_a_failed_deployment_shows_its_diagnosis(api: ApiClient, w: World) -> None:
    w.cloud.push_image(w.repository, "1.0.0", crash=True)
    w.settle()
    [failed] = [
        d for d in api.pages(f"/projects/{w.project}/deployments") if d["status"] == "FAILED"
    ]
    got = deployment(api, w, failed["id"])
    assert got["environment"] == "dev"
    diagnosis = got["diagnosis"]
    assert diagnosis["stopped_tasks"] or diagnosis["service_events"] or diagnosis["stack_events"]
    assert got["timeline"]
    listed = api.pages(f"/projects/{w.project}/deployments", {"status": "FAILED"})
    assert [d["id"] for d in listed] == [failed["id"]]


def test_bad_requests_name_the_field_and_start_nothing(api: ApiClient, w: World) -> None:
    w.cloud.push_image(w.repository, "1.0.0", crash=True)  # fails in dev
    w.settle()
    before = len(w.executions())
    path = f"/projects/{w.project}"
    refused(
        api.post(f"{path}/releases", {"tags": {w.repository: "0.0.9"}}),
        404,
        f"body.tags.{w.repository}",
    )
    refused(api.post(f"{path}/releases", {"channel": "nope"}), 404, "body.channel")
    refused(
        api.post(f"{path}/deployments", {"release": "9.9.9", "environment": "dev"}),
        404,
        "body.release",
    )
    refused(
        api.post(f"{path}/deployments", {"release": "1.0.0", "environment": "qa"}),
        404,
        "body.environment",
    )
    refused(api.post(f"{path}/deployments", {"release": "1.0.0"}), 422, "body.environment")
    violation = refused(
        api.post(f"{path}/promote", {"release": "1.0.0", "environment": "prod"}),
        409,
        "body.environment",
    )
    assert violation["code"] == "LifecycleViolation"
    assert "'development'" in violation["message"]
    refused(api.post("/projects/nope/rollback", {"environment": "dev"}), 404, "path.name")
    refused(api.get(f"{path}/deployments", query={"status": "LOST"}), 422, "query.status")
    assert len(w.executions()) == before
