"""The release, deployment, approval and step routes, called through the API's handler
with API Gateway proxy events, on the DynamoDB adapter (moto), with a fake ECR and a fake
pipeline that runs Resolve Release when an execution starts."""

from __future__ import annotations

from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.api.deps import ApiDependencies
from shiplane.domain.models import Deployment, DeploymentStatus, Diagnosis
from shiplane.services.apply_configuration import apply_configuration
from shiplane.services.approvals import ApprovalDependencies, request_approval
from tests.api_fakes import Api, FakePipeline, FakeRegistry, digest
from tests.helpers import FakeGateways, FakeTaskTokens, demo_configuration
from tests.integration.conftest import Clock


@pytest.fixture
def registry() -> FakeRegistry:
    found = FakeRegistry()
    found.push("web", "1.0.0", digest("1"))
    return found


@pytest.fixture
def api(configured: DynamoStore, registry: FakeRegistry, clock: Clock) -> Api:
    pipeline = FakePipeline(configured, configured, configured, registry, clock)
    deps = ApiDependencies(
        store=configured,
        now=clock,
        pipeline=pipeline,
        tokens=FakeTaskTokens(),
        registry=registry,
        gateways=FakeGateways(),
    )
    return Api(deps)


def pipeline(api: Api) -> FakePipeline:
    assert isinstance(api.deps.pipeline, FakePipeline)
    return api.deps.pipeline


def store(api: Api) -> DynamoStore:
    assert isinstance(api.deps.store, DynamoStore)
    return api.deps.store


def deployments(api: Api, environment: str | None = None) -> list[Deployment]:
    return [
        d
        for d in store(api).list_deployments("web")
        if environment is None or d.environment == environment
    ]


def finish(api: Api, deployment_id: str, status: DeploymentStatus, **diagnosis: Any) -> None:
    deployment = store(api).get_deployment("web", deployment_id)
    assert store(api).finish_deployment(deployment, status, "done", Diagnosis(**diagnosis))


def release(api: Api, tag: str = "1.0.0", **body: Any) -> dict[str, Any]:
    status, answer = api.post("/projects/web/releases", {"tags": {"web": tag}, **body})
    assert status == 202, answer
    return dict(answer)


def released_to_test(api: Api, tag: str = "1.0.0") -> None:
    """The release succeeded in dev and test (what the pipeline does for a push)."""
    release(api, tag)
    [dev] = [d for d in deployments(api, "dev") if d.release == tag]
    finish(api, dev.id, DeploymentStatus.SUCCEEDED)
    status, answer = api.post("/projects/web/promote", {"release": tag})
    assert status == 202 and answer["environment"] == "test", answer
    finish(api, answer["deployment_id"], DeploymentStatus.SUCCEEDED)


def audit_resources(api: Api) -> list[tuple[str, str]]:
    return [(r.resource, r.who) for r in store(api).list_audit(100)]


# ----------------------------------------------------------------------------- releases


def test_a_release_with_a_chosen_tag_is_pinned_and_created_like_a_push(api: Api) -> None:
    answer = release(api)
    assert answer["started"] is True
    assert answer["poll"] == "/projects/web/releases/1.0.0"
    [started] = pipeline(api).started()
    assert started["action"] == "create-release"
    assert started["images"]["web"]["digest"] == digest("1")

    status, got = api.get("/projects/web/releases/1.0.0")
    assert status == 200
    assert got["images"]["web"]["digest"] == digest("1")
    assert got["created_by"]["kind"] == "api"
    assert api.caller_arn in got["created_by"]["by"]
    [dev] = got["deployments"]
    assert (dev["environment"], dev["status"]) == ("dev", "QUEUED")
    [deployment] = deployments(api)
    assert deployment.execution == answer["execution_arn"].rsplit(":", 1)[-1]
    assert ("project/web/release/1.0.0", api.caller_arn) in audit_resources(api)


def test_without_tags_a_release_takes_the_newest_image_its_channel_accepts(
    api: Api, registry: FakeRegistry
) -> None:
    document = demo_configuration()
    document["projects"][0]["channels"] = [
        {"name": "default", "rules": [{"package": "web", "prerelease": "^$"}]}
    ]
    apply_configuration(document, store(api))
    registry.push("web", "1.1.0", digest("2"))
    registry.push("web", "1.2.0-rc.1", digest("3"))

    status, answer = api.post("/projects/web/releases", {})
    assert status == 202, answer
    assert answer["release"] == "1.1.0"
    status, got = api.get("/projects/web/releases/1.1.0")
    assert got["images"]["web"]["digest"] == digest("2")

    status, refused = api.post("/projects/web/releases", {"tags": {"web": "1.2.0-rc.1"}})
    assert (status, refused["field"]) == (400, "body.tags.web")
    assert "does not accept" in refused["message"]


def test_a_retried_create_starts_nothing_twice(api: Api) -> None:
    first = release(api)
    again = release(api)
    assert again["started"] is False
    assert again["execution_arn"] == first["execution_arn"]
    assert len(pipeline(api).executions) == 1

    keyed = {"Idempotency-Key": "create-1.1"}
    api.deps.registry.push("web", "1.1.0", digest("2"))
    status, one = api.post("/projects/web/releases", {"tags": {"web": "1.1.0"}}, keyed)
    repeated, two = api.post("/projects/web/releases", {"tags": {"web": "1.1.0"}}, keyed)
    assert (status, repeated) == (202, 202)
    assert (one["started"], two["started"]) == (True, False)
    assert len(pipeline(api).executions) == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"tags": {"web": "9.9.9"}}, 404, "body.tags.web"),
        ({"tags": {"api": "1.0.0"}}, 400, "body.tags.api"),
        ({"channel": "hotfix"}, 404, "body.channel"),
        ({"version": "1.0.0#x"}, 422, "body.version"),
        ({"tags": "1.0.0"}, 422, "body.tags"),
        ({"colour": "red"}, 422, "body.colour"),
    ],
)
def test_a_bad_release_request_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], status: int, field: str
) -> None:
    got, answer = api.post("/projects/web/releases", body)
    assert (got, answer["field"]) == (status, field), answer
    assert pipeline(api).executions == {}


def test_an_existing_version_is_a_conflict_and_an_unknown_project_is_not_found(api: Api) -> None:
    release(api)
    api.deps.registry.push("web", "1.0.1", digest("2"))
    status, answer = api.post(
        "/projects/web/releases", {"version": "1.0.0", "tags": {"web": "1.0.1"}}
    )
    assert (status, answer["code"], answer["field"]) == (409, "Conflict", "body.version")
    status, answer = api.post("/projects/nope/releases", {})
    assert (status, answer["field"]) == (404, "path.name")
    status, answer = api.get("/projects/web/releases/7.7.7")
    assert (status, answer["field"]) == (404, "path.version")


def test_releases_list_newest_first_a_page_at_a_time(api: Api, registry: FakeRegistry) -> None:
    for n, char in ((1, "1"), (2, "2"), (3, "3")):
        registry.push("web", f"1.{n}.0", digest(char))
        release(api, f"1.{n}.0")
    status, page = api.get("/projects/web/releases?limit=2")
    assert status == 200
    assert [r["version"] for r in page["items"]] == ["1.3.0", "1.2.0"]
    status, rest = api.get(f"/projects/web/releases?limit=2&cursor={page['next_cursor']}")
    assert [r["version"] for r in rest["items"]] == ["1.1.0"]
    assert rest["next_cursor"] is None
    status, bad = api.get("/projects/web/releases?limit=0")
    assert (status, bad["field"]) == (422, "query.limit")


def test_the_variable_snapshot_is_refreshed_and_audited(api: Api) -> None:
    release(api)
    document = demo_configuration()
    document["projects"][0]["variables"] = [{"name": "Greeting", "value": "hello"}]
    apply_configuration(document, store(api))
    status, got = api.post("/projects/web/releases/1.0.0/snapshot")
    assert status == 200, got
    assert [v["value"] for v in got["variables"]] == ["hello"]
    assert store(api).get_release("web", "1.0.0").variables[0].value == "hello"
    record = store(api).list_audit(1)[0]
    assert record.resource == "project/web/release/1.0.0"
    assert record.before == {"variables": []}


# ----------------------------------------------------------------------------- deployments


def test_the_lifecycle_refuses_prod_before_testing_naming_the_phase(api: Api) -> None:
    release(api)
    status, answer = api.post(
        "/projects/web/deployments", {"release": "1.0.0", "environment": "prod"}
    )
    assert (status, answer["code"], answer["field"]) == (
        409,
        "LifecycleViolation",
        "body.environment",
    )
    assert "'development'" in answer["message"]
    assert len(pipeline(api).executions) == 1  # the release's only


def test_promote_goes_to_the_next_environment_then_refuses_past_the_end(api: Api) -> None:
    released_to_test(api)
    status, answer = api.post("/projects/web/promote", {"release": "1.0.0"})
    assert status == 202, answer
    assert answer["environment"] == "prod"
    [prod] = deployments(api, "prod")
    assert prod.id == answer["deployment_id"]
    assert prod.triggered_by.kind == "api"
    assert prod.triggered_by.by == api.caller_arn
    status, retried = api.post("/projects/web/promote", {"release": "1.0.0"})
    assert (status, retried["started"], retried["deployment_id"]) == (202, False, prod.id)
    another = {"Idempotency-Key": "another"}
    status, busy = api.post("/projects/web/promote", {"release": "1.0.0"}, another)
    assert (status, busy["field"]) == (409, "body.environment")
    assert "being deployed to: prod" in busy["message"]
    finish(api, prod.id, DeploymentStatus.SUCCEEDED)
    status, done = api.post("/projects/web/promote", {"release": "1.0.0"})
    assert (status, done["field"]) == (409, "body.environment")
    assert "reached every environment" in done["message"]


def test_deploy_and_redeploy_modes(api: Api) -> None:
    released_to_test(api)
    status, answer = api.post(
        "/projects/web/deployments", {"release": "1.0.0", "environment": "test"}
    )
    assert (status, answer["field"]) == (409, "body.mode")
    status, answer = api.post(
        "/projects/web/deployments", {"environment": "test", "mode": "redeploy"}
    )
    assert status == 202, answer
    assert answer["release"] == "1.0.0"
    redeploy = store(api).get_deployment("web", answer["deployment_id"])
    assert redeploy.mode == "redeploy"
    status, answer = api.post(
        "/projects/web/deployments", {"environment": "prod", "mode": "redeploy"}
    )
    assert (status, answer["field"]) == (409, "body.mode")
    for body, field in (
        ({"release": "1.0.0", "environment": "qa"}, "body.environment"),
        ({"release": "2.0.0", "environment": "dev"}, "body.release"),
        ({"release": "1.0.0", "environment": "dev", "tenant": "acme"}, "body.tenant"),
        ({"release": "1.0.0", "environment": "dev", "mode": "sideways"}, "body.mode"),
        ({"environment": "dev"}, "body.release"),
    ):
        status, answer = api.post("/projects/web/deployments", body)
        assert (status // 100, answer["field"]) == (4, field), answer


def test_a_retried_deploy_starts_one_execution_and_a_later_one_is_new(api: Api) -> None:
    released_to_test(api)
    before = len(pipeline(api).executions)
    body = {"environment": "test", "mode": "redeploy"}
    first = api.post("/projects/web/deployments", body)[1]
    second = api.post("/projects/web/deployments", body)[1]
    assert (first["started"], second["started"]) == (True, False)
    assert first["deployment_id"] == second["deployment_id"]
    assert len(pipeline(api).executions) == before + 1
    finish(api, first["deployment_id"], DeploymentStatus.SUCCEEDED)
    third = api.post("/projects/web/deployments", body)[1]
    assert third["started"] is True and third["deployment_id"] != first["deployment_id"]


def test_rollback_goes_to_the_last_good_release_before_the_current_one(
    api: Api, registry: FakeRegistry
) -> None:
    released_to_test(api, "1.0.0")
    status, answer = api.post("/projects/web/rollback", {"environment": "test"})
    assert (status, answer["field"]) == (409, "body.release")
    registry.push("web", "1.1.0", digest("2"))
    released_to_test(api, "1.1.0")
    status, answer = api.post("/projects/web/rollback", {"environment": "test"})
    assert status == 202, answer
    assert answer["release"] == "1.0.0"
    rollback = store(api).get_deployment("web", answer["deployment_id"])
    assert rollback.mode == "rollback"
    status, answer = api.post("/projects/web/rollback", {"environment": "prod"})
    assert (status, answer["field"]) == (409, "body.environment")


def test_a_failed_deployment_shows_its_timeline_and_diagnosis(api: Api) -> None:
    release(api)
    [dev] = deployments(api, "dev")
    store(api).add_timeline("web", dev.id, "deploying to dev-cluster")
    finish(
        api,
        dev.id,
        DeploymentStatus.FAILED,
        stopped_tasks=["Essential container in task exited"],
        stack_events=["Service: CREATE_FAILED"],
    )
    status, got = api.get(f"/projects/web/deployments/{dev.id}")
    assert status == 200
    assert got["status"] == "FAILED"
    assert got["diagnosis"]["stopped_tasks"] == ["Essential container in task exited"]
    assert [t["message"] for t in got["timeline"]] == ["deploying to dev-cluster"]
    assert got["execution_arn"].endswith(dev.execution)
    status, missing = api.get("/projects/web/deployments/nope")
    assert (status, missing["field"]) == (404, "path.deployment_id")


def test_deployments_list_with_filters(api: Api) -> None:
    released_to_test(api)
    status, page = api.get("/projects/web/deployments?environment=test")
    assert [d["environment"] for d in page["items"]] == ["test"]
    status, page = api.get("/projects/web/deployments?status=SUCCEEDED")
    assert [d["environment"] for d in page["items"]] == ["test", "dev"]
    status, page = api.get("/projects/web/deployments?status=QUEUED")
    assert page["items"] == []
    status, bad = api.get("/projects/web/deployments?status=LOST")
    assert (status, bad["field"]) == (422, "query.status")


def test_cancel_stops_the_execution_records_who_and_frees_the_slot(api: Api) -> None:
    released_to_test(api)
    first = api.post("/projects/web/deployments", {"environment": "test", "mode": "redeploy"})[1]
    second = api.post(
        "/projects/web/deployments",
        {"environment": "test", "mode": "redeploy"},
        {"Idempotency-Key": "second"},
    )[1]
    assert store(api).try_acquire_slot("web", "test", "untenanted", first["deployment_id"])
    store(api).enqueue("web", "test", "untenanted", second["deployment_id"], "token-second")

    status, result = api.post(
        f"/projects/web/deployments/{first['deployment_id']}/cancel", {"reason": "wrong build"}
    )
    assert status == 200, result
    assert result["status"] == "CANCELLED" and result["execution_stopped"] is True
    assert result["slot_handed_to"] == [second["deployment_id"]]
    cancelled = store(api).get_deployment("web", first["deployment_id"])
    assert cancelled.status is DeploymentStatus.CANCELLED
    assert cancelled.reason == f"cancelled by {api.caller_arn}: wrong build"
    assert [s[0] for s in pipeline(api).stopped] == [first["execution_arn"]]
    assert api.deps.tokens.succeeded["token-second"] == {"granted": True}
    assert store(api).slot_holder("web", "test", "untenanted") == second["deployment_id"]
    record = store(api).list_audit(1)[0]
    assert (record.resource, record.who) == (
        f"project/web/deployment/{first['deployment_id']}",
        api.caller_arn,
    )

    status, again = api.post(f"/projects/web/deployments/{first['deployment_id']}/cancel")
    assert (status, again["code"], again["field"]) == (409, "Conflict", "path.deployment_id")


# ----------------------------------------------------------------------------- approvals


def approval_waiting(api: Api) -> str:
    """A deployment to prod, which requires an approval, waiting for it."""
    document = demo_configuration()
    document["environments"][2]["requires_approval"] = True
    apply_configuration(document, store(api))
    released_to_test(api)
    answer = api.post("/projects/web/promote", {"release": "1.0.0", "environment": "prod"})[1]
    deployment = store(api).get_deployment("web", answer["deployment_id"])
    approvals = ApprovalDependencies(store(api), store(api), api.deps.tokens)
    task = {
        "deployment_id": deployment.id,
        "project": "web",
        "release": "1.0.0",
        "environment": "prod",
        "requires_approval": True,
        "units": [
            {
                "deployment_id": deployment.id,
                "project": "web",
                "release": "1.0.0",
                "environment": "prod",
                "target": "prod-cluster",
                "step": "web-service",
            }
        ],
    }
    request_approval({"task": task, "task_token": f"token-{deployment.id}"}, approvals)
    return deployment.id


def test_a_pending_approval_is_listed_then_approved_by_the_caller(api: Api) -> None:
    deployment_id = approval_waiting(api)
    status, page = api.get("/approvals")
    assert status == 200
    [pending] = page["items"]
    assert (pending["deployment_id"], pending["status"]) == (deployment_id, "PENDING")
    assert "task_token" not in pending
    status, decided = api.post(
        f"/projects/web/approvals/{deployment_id}/approve", {"note": "CHG-7"}
    )
    assert status == 200, decided
    assert (decided["status"], decided["decided_by"], decided["note"]) == (
        "APPROVED",
        api.caller_arn,
        "CHG-7",
    )
    assert api.deps.tokens.succeeded[f"token-{deployment_id}"]["approved_by"] == api.caller_arn
    assert api.get("/approvals")[1]["items"] == []
    status, project = api.get("/projects/web/approvals?status=APPROVED")
    assert [a["deployment_id"] for a in project["items"]] == [deployment_id]
    status, again = api.post(f"/projects/web/approvals/{deployment_id}/reject")
    assert (status, again["field"]) == (409, "path.deployment_id")
    assert store(api).list_audit(1)[0].resource == f"project/web/approval/{deployment_id}"


def test_a_rejection_fails_the_wait_and_an_unknown_approval_is_not_found(api: Api) -> None:
    deployment_id = approval_waiting(api)
    status, decided = api.post(f"/projects/web/approvals/{deployment_id}/reject", {"note": "no"})
    assert (status, decided["status"]) == (200, "REJECTED")
    error, cause = api.deps.tokens.failed[f"token-{deployment_id}"]
    assert error == "ApprovalRejectedError" and "no" in cause
    status, missing = api.post("/projects/web/approvals/prod-000000000000/approve")
    assert (status, missing["field"]) == (404, "path.deployment_id")


def test_cancelling_a_deployment_waiting_for_approval_closes_the_approval(api: Api) -> None:
    deployment_id = approval_waiting(api)
    status, result = api.post(f"/projects/web/deployments/{deployment_id}/cancel")
    assert (status, result["previous_status"]) == (200, "QUEUED")
    assert api.get("/approvals")[1]["items"] == []
    status, got = api.get(f"/projects/web/deployments/{deployment_id}")
    assert got["status"] == "CANCELLED"
    assert got["approval"]["status"] == "REJECTED"
    assert got["approval"]["decided_by"] == api.caller_arn


# ----------------------------------------------------------------------------- steps


def test_render_shows_the_step_on_its_target_without_writing(api: Api) -> None:
    release(api)
    status, got = api.post(
        "/projects/web/steps/web-service/render", {"release": "1.0.0", "environment": "dev"}
    )
    assert status == 200, got
    [unit] = got["units"]
    assert (unit["target"], unit["step"]) == ("dev-cluster", "web-service")
    image = unit["task_definition"]["containerDefinitions"][0]["image"]
    assert image.endswith(f"web@{digest('1')}")
    status, blocked = api.post(
        "/projects/web/steps/web-service/render", {"release": "1.0.0", "environment": "prod"}
    )
    assert blocked["blocked_by_phase"] == "development"
    for path, body, field in (
        (
            "/projects/web/steps/nope/render",
            {"release": "1.0.0", "environment": "dev"},
            "path.step",
        ),
        (
            "/projects/web/steps/web-service/render",
            {"release": "9", "environment": "dev"},
            "body.release",
        ),
        (
            "/projects/web/steps/web-service/diff",
            {"release": "1.0.0", "environment": "qa"},
            "body.environment",
        ),
    ):
        status, answer = api.post(path, body)
        assert (status, answer["field"]) == (404, field)


def test_diff_against_nothing_running_adds_every_field(api: Api) -> None:
    release(api)
    status, got = api.post(
        "/projects/web/steps/web-service/diff", {"release": "1.0.0", "environment": "dev"}
    )
    assert status == 200, got
    [unit] = got["units"]
    assert unit["running_task_definition_arn"] is None
    assert unit["stack"]["exists"] is False
    assert {c["change"] for c in unit["task_definition"]} == {"added"}


def test_convert_shows_then_replaces_the_step(api: Api) -> None:
    status, shown = api.post("/projects/web/steps/web-service/convert")
    assert status == 200, shown
    assert shown["converted"]["type"] == "cloudformation"
    assert store(api).get_project("web").steps[0].type == "ecs-service"
    status, replaced = api.post("/projects/web/steps/web-service/convert", {"replace": True})
    assert status == 200, replaced
    assert store(api).get_project("web").steps[0].type == "cloudformation"
    assert store(api).list_audit(1)[0].resource == "project/web/step/web-service"
    status, answer = api.post("/projects/web/steps/web-service/convert")
    assert (status, answer["code"]) == (400, "Configuration")
    status, answer = api.post("/projects/web/steps/nope/convert")
    assert (status, answer["field"]) == (404, "path.step")
