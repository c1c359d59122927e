"""The target health check on moto (STS, ECS, DynamoDB), event arrivals recorded by
deployment events, and Register Task Definition failing fast on an unhealthy target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.adapters.targets import AssumedRoleGateways
from shiplane.domain.health import EVENTS_NOT_ARRIVING, HealthStatus, TargetHealth
from shiplane.errors import TargetUnavailableError
from shiplane.services.deployment_events import handle_deployment_event
from shiplane.services.target_health import HealthDependencies, check_targets
from tests.helpers import ecr_push, stack_event
from tests.integration.pipeline_harness import DIGEST_1, Pipeline

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CLUSTERS = ("shiplane-dev", "shiplane-test", "shiplane-prod")


@pytest.fixture
def ecs(aws: None) -> Any:
    client = boto3.client("ecs", region_name="us-east-1")
    for cluster in CLUSTERS:
        client.create_cluster(clusterName=cluster)
    return client


def deps(store: DynamoStore, gateways: Any = None) -> HealthDependencies:
    return HealthDependencies(
        config=store,
        health=store,
        gateways=gateways or AssumedRoleGateways(sts=boto3.client("sts", region_name="us-east-1")),
        now=lambda: NOW,
    )


def health_of(store: DynamoStore, target: str) -> TargetHealth:
    health = store.get_target_health(target)
    assert health is not None, f"{target} was not checked"
    return health


def test_targets_with_an_active_cluster_are_healthy(configured: DynamoStore, ecs: Any) -> None:
    report = check_targets(deps(configured))
    assert {h.target for h in report.checked} == {"dev-cluster", "test-cluster", "prod-cluster"}
    for target in ("dev-cluster", "test-cluster", "prod-cluster"):
        health = health_of(configured, target)
        assert health.status is HealthStatus.HEALTHY
        assert health.reasons == []
        assert health.checked_at == NOW


def test_a_missing_cluster_makes_the_target_unhealthy(configured: DynamoStore, aws: None) -> None:
    client = boto3.client("ecs", region_name="us-east-1")
    client.create_cluster(clusterName="shiplane-dev")
    client.create_cluster(clusterName="shiplane-test")
    check_targets(deps(configured))
    prod = health_of(configured, "prod-cluster")
    assert prod.status is HealthStatus.UNHEALTHY
    assert prod.reasons == [
        "cluster shiplane-prod does not exist in account 123456789012 (us-east-1)"
    ]
    assert health_of(configured, "dev-cluster").healthy


def test_an_inactive_cluster_makes_the_target_unhealthy(configured: DynamoStore, ecs: Any) -> None:
    ecs.delete_cluster(cluster="shiplane-test")
    check_targets(deps(configured))
    test = health_of(configured, "test-cluster")
    assert test.status is HealthStatus.UNHEALTHY
    assert test.reasons == ["cluster shiplane-test is INACTIVE, not ACTIVE"]


class DenyingSts:
    def assume_role(self, **kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not authorized to assume"}},
            "AssumeRole",
        )


def test_a_role_that_cannot_be_assumed_makes_the_target_unhealthy(
    configured: DynamoStore, ecs: Any
) -> None:
    check_targets(deps(configured, AssumedRoleGateways(sts=DenyingSts())))
    dev = health_of(configured, "dev-cluster")
    assert dev.status is HealthStatus.UNHEALTHY
    assert dev.reasons == [
        "cannot assume role arn:aws:iam::123456789012:role/shiplane-deploy: "
        "not authorized to assume"
    ]


def test_a_deployment_without_events_means_events_are_not_arriving(
    configured: DynamoStore, ecs: Any
) -> None:
    configured.record_target_deployment("123456789012", "us-east-1", NOW - timedelta(hours=2))
    check_targets(deps(configured))
    dev = health_of(configured, "dev-cluster")
    assert dev.status is HealthStatus.UNHEALTHY
    assert dev.reasons == [EVENTS_NOT_ARRIVING]
    assert "bootstrap/target-account.yaml" in dev.reasons[0]

    # An event after that deployment: forwarding works again.
    configured.record_target_event("123456789012", "us-east-1", NOW - timedelta(hours=1))
    later = deps(configured)
    later.now = lambda: NOW + timedelta(minutes=15)
    check_targets(later)
    assert health_of(configured, "dev-cluster").healthy


def test_quiet_or_just_started_accounts_are_not_blamed(configured: DynamoStore, ecs: Any) -> None:
    # no deployment for a day: no event is expected
    configured.record_target_deployment("123456789012", "us-east-1", NOW - timedelta(hours=25))
    check_targets(deps(configured))
    assert health_of(configured, "dev-cluster").healthy
    # a deployment a minute ago may not have produced its first event yet
    configured.record_target_deployment("123456789012", "us-east-1", NOW - timedelta(minutes=1))
    check_targets(deps(configured))
    assert health_of(configured, "dev-cluster").healthy


def test_an_older_health_check_never_overwrites_a_newer_one(configured: DynamoStore) -> None:
    newer = TargetHealth(target="dev-cluster", status=HealthStatus.HEALTHY, checked_at=NOW)
    older = TargetHealth(
        target="dev-cluster",
        status=HealthStatus.UNHEALTHY,
        reasons=["stale"],
        checked_at=NOW - timedelta(minutes=15),
    )
    configured.save_target_health(newer)
    configured.save_target_health(older)
    assert health_of(configured, "dev-cluster") == newer


@pytest.fixture
def pipeline(configured: DynamoStore, clock: Any) -> Pipeline:
    return Pipeline(configured, clock)


def test_deployment_events_record_that_events_arrive(pipeline: Pipeline) -> None:
    assert pipeline.store.target_activity("123456789012", "us-east-1").last_event_at is None
    handle_deployment_event(
        stack_event("shiplane-unrelated", "UPDATE_COMPLETE"), pipeline.events_deps
    )
    activity = pipeline.store.target_activity("123456789012", "us-east-1")
    assert activity.last_event_at is not None


def test_register_task_definition_refuses_an_unhealthy_target(pipeline: Pipeline) -> None:
    pipeline.store.save_target_health(
        TargetHealth(
            target="dev-cluster",
            status=HealthStatus.UNHEALTHY,
            reasons=["cluster shiplane-dev is INACTIVE, not ACTIVE"],
            checked_at=NOW,
        )
    )
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    unit = resolved["deployments"][0]["units"][0]
    with pytest.raises(TargetUnavailableError) as raised:
        pipeline.start_unit(unit)
    assert "'dev-cluster'" in raised.value.message
    assert "cluster shiplane-dev is INACTIVE, not ACTIVE" in raised.value.message
    assert raised.value.details["target"] == "dev-cluster"
    assert pipeline.gateway.task_definitions == {}  # nothing registered
    assert pipeline.store.target_activity("123456789012", "us-east-1").last_deployment_at is None


def test_register_task_definition_deploys_to_a_healthy_or_unchecked_target(
    pipeline: Pipeline,
) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    unit = resolved["deployments"][0]["units"][0]
    registered, _ = pipeline.start_unit(unit)  # never checked: counts as healthy
    assert registered["task_definition_arn"]
    activity = pipeline.store.target_activity("123456789012", "us-east-1")
    assert activity.last_deployment_at is not None
