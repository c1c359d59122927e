"""Drift detection, with fakes: the live service against what was deployed."""

from __future__ import annotations

from typing import Any

import pytest

from shiplane.domain.drift import DriftStatus, task_definition_differences
from shiplane.domain.models import Deployment, DeploymentUnit, TriggeredBy, TriggerKind
from shiplane.errors import TargetUnavailableError
from shiplane.ports import ServiceState
from shiplane.rendering.task_definition import render_task_definition
from shiplane.services.detect_drift import DriftDependencies, detect_drift
from tests.helpers import FakeGateways, FakeTargetGateway
from tests.unit.fakes_schedules import NOW, FakeStore, release

CLUSTER = "shiplane-dev"


class Deployed:
    """web 1.0.0 running in dev as Shiplane deployed it."""

    def __init__(self) -> None:
        self.store = FakeStore()
        self.release = release("1.0.0")
        self.store.add_release(self.release)
        self.gateway = FakeTargetGateway()
        self.gateways = FakeGateways(self.gateway)
        step = self.release.process[0]
        unit = DeploymentUnit(
            deployment_id="dev-1",
            project="web",
            release="1.0.0",
            environment="dev",
            target="dev-cluster",
            step=step.name,
        )
        self.definition = render_task_definition(step, self.release, unit)  # type: ignore[arg-type]
        self.arn = self.gateway.register_task_definition(self.definition)
        self.run(self.arn, desired=2)
        self.store.current["web"] = [
            {
                "project": "web",
                "environment": "dev",
                "tenant": "untenanted",
                "release": "1.0.0",
                "deployment_id": "dev-1",
                "task_definition_arns": {"dev-cluster": self.arn},
            }
        ]

    def run(self, arn: str, desired: int) -> None:
        self.gateway.services[(CLUSTER, "web")] = ServiceState(
            task_definition_arn=arn, rollout_state="COMPLETED", desired_count=desired
        )

    def deps(self) -> DriftDependencies:
        return DriftDependencies(
            config=self.store,
            releases=self.store,
            deployments=self.store,  # type: ignore[arg-type]
            current=self.store,
            drift=self.store,
            gateways=self.gateways,
            now=lambda: NOW,
        )

    def report(self) -> Any:
        return self.store.drift[("web", "dev", "untenanted", "dev-cluster")]


@pytest.fixture
def deployed() -> Deployed:
    return Deployed()


def test_nothing_changed_is_in_sync(deployed: Deployed) -> None:
    result = detect_drift({}, deployed.deps())
    assert result.checked == 1 and result.drifted == []
    assert deployed.report().status is DriftStatus.IN_SYNC
    assert deployed.report().differences == []
    assert deployed.gateways.assumed == [("dev-cluster", "drift-check")]


def test_a_changed_desired_count_is_drift(deployed: Deployed) -> None:
    deployed.run(deployed.arn, desired=5)
    result = detect_drift({}, deployed.deps())
    assert result.drifted == ["web/dev/untenanted/dev-cluster"]
    assert deployed.report().differences == ["service web: desired count is 5, deployed 2"]


def test_a_task_definition_changed_outside_shiplane_is_drift(deployed: Deployed) -> None:
    changed = dict(deployed.definition)
    container = dict(changed["containerDefinitions"][0])
    container["image"] = "nginx:latest"
    container["environment"] = [*container.get("environment", []), {"name": "DEBUG", "value": "1"}]
    changed["containerDefinitions"] = [container]
    changed["memory"] = "1024"
    deployed.run(deployed.gateway.register_task_definition(changed), desired=2)
    detect_drift({}, deployed.deps())
    report = deployed.report()
    assert report.status is DriftStatus.DRIFTED
    text = "\n".join(report.differences)
    assert "task definition is web-dev:2, deployed web-dev:1" in text
    assert "container web image is nginx:latest" in text
    assert "container web environment added DEBUG" in text
    assert "task memory is 1024, deployed 512" in text


def test_a_deleted_service_is_drift(deployed: Deployed) -> None:
    del deployed.gateway.services[(CLUSTER, "web")]
    detect_drift({}, deployed.deps())
    assert deployed.report().differences == ["service web is missing from cluster shiplane-dev"]


def test_a_deployment_in_progress_is_not_judged(deployed: Deployed) -> None:
    deployed.run(deployed.arn, desired=5)
    deployed.store.deployments.append(
        Deployment(
            id="dev-2",
            project="web",
            release="1.1.0",
            environment="dev",
            triggered_by=TriggeredBy(kind=TriggerKind.ECR_PUSH),
            created_at=NOW,
        )
    )
    result = detect_drift({}, deployed.deps())
    assert result.skipped == {"web/dev/untenanted": "a deployment is in progress"}
    assert deployed.store.drift == {}


def test_an_unreachable_target_is_unknown_not_in_sync(deployed: Deployed) -> None:
    class Unreachable:
        def for_target(self, target: Any, session: str) -> Any:
            raise TargetUnavailableError("cannot assume role")

    deps = deployed.deps()
    deps.gateways = Unreachable()
    result = detect_drift({}, deps)
    assert result.unknown == ["web/dev/untenanted/dev-cluster"]
    assert deployed.report().status is DriftStatus.UNKNOWN


def test_task_definition_differences_name_what_changed() -> None:
    expected = {
        "cpu": "256",
        "containerDefinitions": [{"name": "web", "image": "a", "environment": [{"name": "X"}]}],
    }
    live = {
        "cpu": "512",
        "containerDefinitions": [
            {"name": "web", "image": "a", "environment": []},
            {"name": "sidecar", "image": "b"},
        ],
    }
    assert task_definition_differences(expected, live) == [
        "task cpu is 512, deployed 256",
        "container sidecar was added",
        "container web environment removed X",
    ]
    assert task_definition_differences(expected, expected) == []
