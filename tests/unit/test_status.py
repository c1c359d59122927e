"""The dashboard's data: projects x environments x tenants, from fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shiplane.domain.models import (
    Deployment,
    DeploymentStatus,
    Environment,
    Lifecycle,
    Project,
    Tenant,
    TriggeredBy,
    TriggerKind,
)
from shiplane.ports import Approval
from shiplane.services.status import StatusDependencies, status
from tests.helpers import demo_configuration

T0 = datetime(2026, 11, 29, tzinfo=UTC)


def deployment(
    i: int, release: str, environment: str, tenant: str, state: DeploymentStatus
) -> Deployment:
    return Deployment(
        id=f"d{i}",
        project="web",
        release=release,
        environment=environment,
        tenant=tenant,
        triggered_by=TriggeredBy(kind=TriggerKind.ECR_PUSH, by="push"),
        status=state,
        created_at=T0 + timedelta(minutes=i),
    )


class FakeStore:
    def __init__(self, tenanted_mode: str = "tenanted") -> None:
        config = demo_configuration()
        self.environments = [Environment.model_validate(e) for e in config["environments"]]
        self.lifecycles = {lc["name"]: Lifecycle.model_validate(lc) for lc in config["lifecycles"]}
        project = config["projects"][0] | {"tenanted_mode": tenanted_mode}
        self.projects = [Project.model_validate(project)]
        self.tenants = [
            Tenant(name="acme", projects={"web": ["dev", "test", "prod"]}),
            Tenant(name="globex", projects={"web": ["dev", "prod"]}),
        ]
        self.deployments: list[Deployment] = []
        self.current: dict[tuple[str, str], str] = {}
        self.approvals: list[Approval] = []

    def list_projects(self) -> list[Project]:
        return self.projects

    def list_environments(self) -> list[Environment]:
        return self.environments

    def list_tenants(self) -> list[Tenant]:
        return self.tenants

    def get_lifecycle(self, name: str) -> Lifecycle:
        return self.lifecycles[name]

    def list_deployments(self, project: str) -> list[Deployment]:
        return list(reversed(self.deployments))  # the order must not matter

    def list_current(self, project: str) -> list[dict[str, Any]]:
        return [
            {"environment": environment, "tenant": tenant, "release": release}
            for (environment, tenant), release in self.current.items()
        ]

    def list_approvals(self, project: str) -> list[Approval]:
        return self.approvals


def test_every_tenant_gets_a_row_with_a_cell_per_connected_environment() -> None:
    store = FakeStore()
    store.deployments = [
        deployment(1, "1.0.0", "dev", "acme", DeploymentStatus.SUCCEEDED),
        deployment(2, "1.1.0", "dev", "acme", DeploymentStatus.FAILED),
        deployment(3, "1.2.0", "dev", "acme", DeploymentStatus.SKIPPED),
        deployment(4, "1.0.0", "prod", "acme", DeploymentStatus.QUEUED),
        deployment(5, "1.0.0", "dev", "globex", DeploymentStatus.QUEUED),
        deployment(6, "1.1.0", "dev", "globex", DeploymentStatus.QUEUED),
    ]
    store.current = {("dev", "acme"): "1.0.0"}
    store.approvals = [
        Approval("web", "d4", "1.0.0", "prod", "acme", "PENDING"),
        Approval("web", "d0", "0.9.0", "prod", "acme", "APPROVED"),
    ]
    drift = {("dev", "acme"): ["desired count 2 → 5"]}
    result = status(StatusDependencies(store=store, now=lambda: T0, drift=lambda project: drift))
    (web,) = result.projects
    assert web.environments == ["dev", "test", "prod"]
    assert [r.tenant for r in web.rows] == ["acme", "globex"]
    acme = {c.environment: c for c in web.rows[0].cells}
    globex = {c.environment: c for c in web.rows[1].cells}
    assert set(globex) == {"dev", "prod"}  # not connected to test

    # The latest deployment shows, a skipped one does not; what runs stays visible.
    assert acme["dev"].latest is not None and acme["dev"].latest.status == "FAILED"
    assert acme["dev"].latest.release == "1.1.0"
    assert acme["dev"].current_release == "1.0.0"
    assert acme["dev"].drift == ["desired count 2 → 5"]
    assert acme["test"].latest is None and acme["test"].current_release is None
    assert acme["prod"].awaiting_approval and acme["prod"].queued == 1
    assert globex["dev"].queued == 2 and not globex["dev"].awaiting_approval
    assert [a.deployment_id for a in web.pending_approvals] == ["d4"]


def test_a_project_in_both_modes_has_an_untenanted_row_first() -> None:
    store = FakeStore(tenanted_mode="both")
    (web,) = status(StatusDependencies(store=store, now=lambda: T0)).projects
    assert [r.tenant for r in web.rows] == ["untenanted", "acme", "globex"]
    assert [c.environment for c in web.rows[0].cells] == ["dev", "test", "prod"]


def test_an_untenanted_project_ignores_tenants_and_one_project_can_be_asked_for() -> None:
    store = FakeStore(tenanted_mode="untenanted")
    result = status(StatusDependencies(store=store, now=lambda: T0), project="web")
    assert [r.tenant for r in result.projects[0].rows] == ["untenanted"]
    assert status(StatusDependencies(store=store, now=lambda: T0), project="nope").projects == []


def test_drift_reports_become_what_each_cell_shows() -> None:
    from shiplane.domain.drift import DriftReport, DriftStatus
    from shiplane.services.status import drift_by_cell

    def report(target: str, state: DriftStatus, *differences: str) -> DriftReport:
        return DriftReport(
            project="web",
            environment="prod",
            tenant="acme",
            target=target,
            release="1.0.0",
            deployment_id="d1",
            status=state,
            differences=list(differences),
            checked_at=T0,
        )

    cells = drift_by_cell(
        [
            report("b-cluster", DriftStatus.DRIFTED, "desired count is 5, deployed 2"),
            report("a-cluster", DriftStatus.UNKNOWN, "role cannot be assumed"),
            report("c-cluster", DriftStatus.IN_SYNC),
        ]
    )
    assert cells == {
        ("prod", "acme"): [
            "a-cluster: drift unknown (role cannot be assumed)",
            "b-cluster: desired count is 5, deployed 2",
        ]
    }


def test_the_api_function_answers_the_sample_status_event() -> None:
    """events/api_get_status.json (what API Gateway sends) through the api handler."""
    import importlib.util
    import json

    from shiplane.api.deps import ApiDependencies
    from tests.helpers import ROOT, load_event

    spec = importlib.util.spec_from_file_location("api_handler", ROOT / "functions/api/app.py")
    assert spec is not None and spec.loader is not None
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)

    class Store(FakeStore):
        def list_drift(self, project: str) -> list[Any]:
            return []

    class Context:
        function_name = "api"
        memory_limit_in_mb = 1024
        aws_request_id = "unit"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"

    store = Store(tenanted_mode="untenanted")
    store.deployments = [deployment(1, "1.0.0", "dev", "untenanted", DeploymentStatus.SUCCEEDED)]
    store.current = {("dev", "untenanted"): "1.0.0"}
    response = handler.lambda_handler(
        load_event("api_get_status"),
        Context(),
        deps=ApiDependencies(store=store, now=lambda: T0),
    )
    assert response["statusCode"] == 200
    (web,) = json.loads(response["body"])["projects"]
    assert web["rows"][0]["cells"][0]["current_release"] == "1.0.0"
