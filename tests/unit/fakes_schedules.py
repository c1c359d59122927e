"""In-memory fakes and a release for the schedules and recurring-job tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shiplane.domain.drift import DriftReport
from shiplane.domain.models import (
    Configuration,
    Deployment,
    Environment,
    ImageRef,
    Lifecycle,
    Project,
    Release,
    Target,
    Tenant,
    TriggeredBy,
    TriggerKind,
)
from shiplane.domain.schedules import ScheduledDeployment, ScheduleStatus
from shiplane.errors import NotFoundError
from tests.helpers import demo_configuration

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def digest(char: str) -> str:
    return "sha256:" + char * 64


def demo() -> Configuration:
    return Configuration.model_validate(demo_configuration())


def release(version: str = "1.0.0", image_digest: str = digest("a")) -> Release:
    project = demo().projects[0]
    return Release(
        project=project.name,
        version=version,
        images={
            "web": ImageRef(repository="web", registry=REGISTRY, tag=version, digest=image_digest)
        },
        process=project.steps,
        lifecycle=project.lifecycle,
        created_at=NOW,
        created_by=TriggeredBy(kind=TriggerKind.ECR_PUSH),
    )


class FakeStore:
    """Configuration, releases, deployments, CURRENT items, schedules and drift."""

    def __init__(self, config: Configuration | None = None) -> None:
        self.config = config or demo()
        self.releases: dict[tuple[str, str], Release] = {}
        self.deployments: list[Deployment] = []
        self.current: dict[str, list[dict[str, Any]]] = {}
        self.schedules: dict[str, ScheduledDeployment] = {}
        self.drift: dict[tuple[str, str, str, str], DriftReport] = {}
        self.fail_put_schedule = False

    # ConfigStore (what the services read)
    def list_environments(self) -> list[Environment]:
        return self.config.environments

    def get_lifecycle(self, name: str) -> Lifecycle:
        return next(lc for lc in self.config.lifecycles if lc.name == name)

    def get_project(self, name: str) -> Project:
        for project in self.config.projects:
            if project.name == name:
                return project
        raise NotFoundError(f"project {name!r} does not exist")

    def list_projects(self) -> list[Project]:
        return self.config.projects

    def list_targets(self) -> list[Target]:
        return self.config.targets

    def get_target(self, name: str) -> Target:
        return next(t for t in self.config.targets if t.name == name)

    def list_tenants(self) -> list[Tenant]:
        return self.config.tenants

    def get_tenant(self, name: str) -> Tenant:
        for tenant in self.config.tenants:
            if tenant.name == name:
                return tenant
        raise NotFoundError(f"tenant {name!r} does not exist")

    def projects_for_repository(self, repository: str) -> list[str]:
        return [p.name for p in self.config.projects if repository in p.repositories]

    def save_configuration(self, config: Configuration) -> None:
        self.config = config

    # ReleaseStore (reads)
    def get_release(self, project: str, version: str) -> Release | None:
        return self.releases.get((project, version))

    def list_releases(self, project: str) -> list[Release]:
        return [r for (p, _), r in self.releases.items() if p == project]

    def add_release(self, item: Release) -> None:
        self.releases[(item.project, item.version)] = item

    # DeploymentStore (reads) and CURRENT
    def list_deployments(self, project: str) -> list[Deployment]:
        return [d for d in self.deployments if d.project == project]

    def list_current(self, project: str) -> list[dict[str, Any]]:
        return list(self.current.get(project, []))

    # ScheduleStore
    def put_schedule(self, schedule: ScheduledDeployment) -> bool:
        if self.fail_put_schedule:
            raise RuntimeError("DynamoDB is down")
        if schedule.id in self.schedules:
            return False
        self.schedules[schedule.id] = schedule
        return True

    def get_schedule(self, schedule_id: str) -> ScheduledDeployment | None:
        return self.schedules.get(schedule_id)

    def list_schedules(self) -> list[ScheduledDeployment]:
        return list(self.schedules.values())

    def update_schedule(self, schedule: ScheduledDeployment, expected: ScheduleStatus) -> bool:
        stored = self.schedules.get(schedule.id)
        if stored is None or stored.status is not expected:
            return False
        self.schedules[schedule.id] = schedule
        return True

    # DriftStore
    def save_drift(self, report: DriftReport) -> None:
        self.drift[(report.project, report.environment, report.tenant, report.target)] = report

    def list_drift(self, project: str) -> list[DriftReport]:
        return [r for k, r in self.drift.items() if k[0] == project]


class FakeScheduler:
    def __init__(self) -> None:
        self.schedules: dict[str, dict[str, Any]] = {}

    def create_pipeline_start(
        self,
        name: str,
        at: datetime,
        state_machine_arn: str,
        execution_name: str,
        payload: dict[str, Any],
        description: str = "",
    ) -> bool:
        if name in self.schedules:
            return False
        self.schedules[name] = {
            "at": at,
            "state_machine_arn": state_machine_arn,
            "execution_name": execution_name,
            "payload": payload,
        }
        return True

    def delete(self, name: str) -> bool:
        return self.schedules.pop(name, None) is not None

    def fire(self, name: str, pipeline: FakePipeline) -> None:
        """What EventBridge Scheduler does at the schedule's time."""
        schedule = self.schedules.pop(name)
        pipeline.start(schedule["execution_name"], schedule["payload"])


class FakePipeline:
    ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:shiplane-deploy-pipeline"

    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}
        self.state_machine_arn = self.ARN

    def execution_arn(self, name: str) -> str:
        return self.ARN.replace(":stateMachine:", ":execution:") + f":{name}"

    def start(self, name: str, payload: dict[str, Any]) -> tuple[str, bool]:
        if name in self.executions:
            return self.execution_arn(name), False
        self.executions[name] = payload
        return self.execution_arn(name), True

    def status(self, execution_arn: str) -> str | None:
        name = execution_arn.rsplit(":", 1)[-1]
        return "SUCCEEDED" if name in self.executions else None
