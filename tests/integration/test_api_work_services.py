"""The services behind the API's releases and deployments, on the DynamoDB adapter
(moto) with fakes for ECR, task tokens and the pipeline: a `create-release` action
creates the release exactly as a push does, and cancel leaves no wait behind."""

from __future__ import annotations

from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import DeploymentStatus, TriggerKind
from shiplane.errors import ConflictError, InvalidRequestError, LifecycleViolationError
from shiplane.services.deployment_requests import (
    CANCELLED_ERROR,
    CancelDependencies,
    DeploymentRequestDependencies,
    PromoteRequest,
    cancel_deployment,
    promote_action,
)
from shiplane.services.gate_promotion import GateDependencies, gate_promotion
from shiplane.services.release_requests import (
    NewRelease,
    ReleaseRequestDependencies,
    choose_images,
    create_release_action,
)
from shiplane.services.resolve_release import ResolveDependencies, resolve_release
from tests.api_fakes import REGISTRY, FakePipeline, FakeRegistry, digest
from tests.helpers import FakeTaskTokens
from tests.integration.conftest import Clock


@pytest.fixture
def registry() -> FakeRegistry:
    found = FakeRegistry()
    found.push("web", "1.0.0", digest("1"))
    return found


def action(store: DynamoStore, registry: FakeRegistry, clock: Clock, **body: Any) -> Any:
    deps = ReleaseRequestDependencies(store, store, registry, clock)
    request = NewRelease.model_validate(body)
    return create_release_action("web", request, choose_images("web", request, deps), "bob", deps)


def test_a_create_release_action_creates_the_release_and_its_first_deployments_once(
    configured: DynamoStore, registry: FakeRegistry, clock: Clock
) -> None:
    document = action(configured, registry, clock, tags={"web": "1.0.0"})
    deps = ResolveDependencies(configured, configured, configured, registry, clock)
    result = resolve_release({"input": document.model_dump(mode="json"), "execution": "e-1"}, deps)
    assert [r.created for r in result.releases] == [True]
    assert [t.environment for t in result.deployments] == ["dev"]
    release = configured.get_release("web", "1.0.0")
    assert release is not None
    assert release.images["web"].image == f"{REGISTRY}/web@{digest('1')}"
    assert release.created_by.kind is TriggerKind.API
    [dev] = configured.list_deployments("web")
    assert dev.execution == "e-1"

    again = resolve_release({"input": document.model_dump(mode="json"), "execution": "e-2"}, deps)
    assert [r.created for r in again.releases] == [False]
    assert again.deployments == []
    assert len(configured.list_deployments("web")) == 1


def test_a_create_release_action_must_name_every_repository(
    configured: DynamoStore, registry: FakeRegistry, clock: Clock
) -> None:
    document = action(configured, registry, clock).model_dump(mode="json")
    document["images"] = {"other": {**document["images"]["web"], "repository": "other"}}
    deps = ResolveDependencies(configured, configured, configured, registry, clock)
    with pytest.raises(InvalidRequestError, match="names no image for web"):
        resolve_release({"input": document, "execution": "e-1"}, deps)
    assert configured.list_releases("web") == []


def test_a_version_that_exists_is_refused_before_the_pipeline(
    configured: DynamoStore, registry: FakeRegistry, clock: Clock
) -> None:
    pipeline = FakePipeline(configured, configured, configured, registry, clock)
    pipeline.start("first", action(configured, registry, clock).model_dump(mode="json"))
    with pytest.raises(ConflictError) as refused:
        action(configured, registry, clock, version="1.0.0")
    assert refused.value.details["field"] == "body.version"


def test_promoting_past_an_incomplete_phase_names_it(
    configured: DynamoStore, registry: FakeRegistry, clock: Clock
) -> None:
    pipeline = FakePipeline(configured, configured, configured, registry, clock)
    pipeline.start("first", action(configured, registry, clock).model_dump(mode="json"))
    deps = DeploymentRequestDependencies(configured, configured, configured)
    with pytest.raises(LifecycleViolationError) as refused:
        promote_action("web", PromoteRequest(release="1.0.0", environment="test"), "bob", deps)
    assert refused.value.details["phase"] == "development"
    assert refused.value.details["field"] == "body.environment"


def test_gate_promotion_records_the_execution_on_the_next_phase(
    configured: DynamoStore, registry: FakeRegistry, clock: Clock
) -> None:
    pipeline = FakePipeline(configured, configured, configured, registry, clock)
    pipeline.start("first", action(configured, registry, clock).model_dump(mode="json"))
    [dev] = configured.list_deployments("web")
    configured.finish_deployment(dev, DeploymentStatus.SUCCEEDED, "ok", dev.diagnosis)
    summary = {
        "deployment_id": dev.id,
        "project": "web",
        "release": "1.0.0",
        "environment": "dev",
        "tenant": "untenanted",
        "status": "SUCCEEDED",
        "reason": "ok",
    }
    gate = gate_promotion(
        {"finished": [summary], "execution": "first"},
        GateDependencies(configured, configured, configured, clock),
    )
    [task] = gate.deployments
    assert configured.get_deployment("web", task.deployment_id).execution == "first"


def cancel_deps(store: DynamoStore, pipeline: FakePipeline, tokens: FakeTaskTokens) -> Any:
    return CancelDependencies(
        deployments=store,
        releases=store,
        slots=store,
        tokens=tokens,
        approvals=store,
        pipeline=pipeline,
    )


def test_cancel_stops_every_unfinished_deployment_of_the_execution(
    configured: DynamoStore, registry: FakeRegistry, clock: Clock
) -> None:
    pipeline = FakePipeline(configured, configured, configured, registry, clock)
    pipeline.start("first", action(configured, registry, clock).model_dump(mode="json"))
    [dev] = configured.list_deployments("web")
    configured.finish_deployment(dev, DeploymentStatus.SUCCEEDED, "ok", dev.diagnosis)
    gate_promotion(
        {
            "finished": [
                {
                    "deployment_id": dev.id,
                    "project": "web",
                    "release": "1.0.0",
                    "environment": "dev",
                    "tenant": "untenanted",
                    "status": "SUCCEEDED",
                    "reason": "ok",
                }
            ],
            "execution": "first",
        },
        GateDependencies(configured, configured, configured, clock),
    )
    [test] = [d for d in configured.list_deployments("web") if d.environment == "test"]
    tokens = FakeTaskTokens()
    result = cancel_deployment("web", test.id, "bob", "", cancel_deps(configured, pipeline, tokens))
    assert result.execution_stopped is True
    assert result.also_cancelled == []  # dev had finished: it stays SUCCEEDED
    assert configured.get_deployment("web", dev.id).status is DeploymentStatus.SUCCEEDED
    assert configured.get_deployment("web", test.id).status is DeploymentStatus.CANCELLED


def test_cancel_without_a_known_execution_fails_the_queued_wait(
    configured: DynamoStore, registry: FakeRegistry, clock: Clock
) -> None:
    pipeline = FakePipeline(configured, configured, configured, registry, clock)
    pipeline.start("first", action(configured, registry, clock).model_dump(mode="json"))
    [dev] = configured.list_deployments("web")
    legacy = dev.model_copy(update={"id": "dev-legacy", "execution": ""})
    assert configured.create_deployments([legacy], [""])
    assert configured.try_acquire_slot("web", "dev", "untenanted", dev.id)
    configured.enqueue("web", "dev", "untenanted", legacy.id, "token-legacy")
    tokens = FakeTaskTokens()

    result = cancel_deployment(
        "web", legacy.id, "bob", "not now", cancel_deps(configured, pipeline, tokens)
    )
    assert (result.execution_arn, result.execution_stopped) == (None, False)
    assert tokens.failed["token-legacy"] == (CANCELLED_ERROR, "cancelled by bob: not now")
    assert configured.queued("web", "dev", "untenanted") == []
    assert configured.slot_holder("web", "dev", "untenanted") == dev.id, "the holder keeps it"
    assert pipeline.stopped == []
