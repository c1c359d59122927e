"""One embedded local cloud per e2e module; each test deploys its own project."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import Configuration
from shiplane.services.apply_configuration import apply_configuration
from shiplane_local.cloud import LocalCloud
from shiplane_local.faults import FaultPlan, Faults
from shiplane_local.targets import prepare_targets
from tests.helpers import demo_configuration

ROLLOUT_DELAY = 0.2
# AWS's delays at 1 %: Lambda's async retries after 0.6 s and 1.2 s instead of 1 and 2 min.
TIME_SCALE = 0.01


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(
        rollout_delay=ROLLOUT_DELAY, parameters={"LogLevel": "WARNING"}, time_scale=TIME_SCALE
    ) as running:
        yield running


@pytest.fixture
def fault_plan(
    cloud: LocalCloud,
) -> Iterator[Callable[[FaultPlan | dict[str, Any] | str | Path], Faults]]:
    """Load a fault plan (a mapping, YAML text or a YAML file) for one test:
    `faults = fault_plan({...})`, then `faults.fired()` to see what fired. Cleared after."""

    def load(plan: FaultPlan | dict[str, Any] | str | Path) -> Faults:
        cloud.faults.load(plan)
        return cloud.faults

    yield load
    cloud.faults.clear()


@pytest.fixture(scope="module")
def store(cloud: LocalCloud) -> DynamoStore:
    return DynamoStore(cloud.outputs["TableName"], client=cloud.client("dynamodb"))


class Project:
    """The demo's project under a name of its own (own repository, service and stacks)."""

    def __init__(self, cloud: LocalCloud, store: DynamoStore, name: str) -> None:
        self.cloud = cloud
        self.store = store
        self.name = name
        self.repository = name
        document = demo_configuration()
        project = copy.deepcopy(document["projects"][0])
        project["name"] = name
        container = project["steps"][0]["task"]["containers"][0]
        container["image"] = self.repository
        project["steps"][0]["service"]["name"] = name
        project["steps"][0]["task"]["family"] = name
        document["projects"] = [project]
        self.config: Configuration = apply_configuration(document, store)
        prepare_targets(cloud, self.config)
        self.step = project["steps"][0]["name"]

    # -- acting like a user
    def push(self, tag: str, *, crash: bool = False) -> str:
        digest = self.cloud.push_image(self.repository, tag, crash=crash)
        self.settle()
        return digest

    def start(self, document: dict[str, Any], name: str | None = None) -> str:
        sfn = self.cloud.client("stepfunctions")
        arn = sfn.start_execution(
            stateMachineArn=self.cloud.outputs["StateMachineArn"],
            name=name or f"e2e-{uuid.uuid4().hex[:12]}",
            input=json.dumps(document),
        )["executionArn"]
        self.settle()
        return str(arn)

    def promote(self, release: str, environment: str) -> str:
        return self.start(
            {
                "action": "deploy",
                "project": self.name,
                "release": release,
                "environment": environment,
            }
        )

    def settle(self) -> None:
        self.cloud.wait_idle(timeout=90)

    # -- looking like a user
    def deployments(self, environment: str | None = None) -> list[Any]:
        return [
            d
            for d in self.store.list_deployments(self.name)
            if environment is None or d.environment == environment
        ]

    def stack_name(self, environment: str) -> str:
        return f"shiplane-{self.name}-{self.step}-{environment}-untenanted"

    def service(self, environment: str) -> dict[str, Any]:
        services = self.cloud.client("ecs").describe_services(
            cluster=f"shiplane-{environment}", services=[self.name]
        )["services"]
        return services[0] if services else {}

    def running_image(self, environment: str) -> str:
        arn = self.service(environment)["taskDefinition"]
        definition = self.cloud.client("ecs").describe_task_definition(taskDefinition=arn)
        return str(definition["taskDefinition"]["containerDefinitions"][0]["image"])

    def stack(self, environment: str) -> dict[str, Any]:
        cfn = self.cloud.client("cloudformation")
        return dict(cfn.describe_stacks(StackName=self.stack_name(environment))["Stacks"][0])

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.cloud.client("stepfunctions")
        found = []
        for execution in sfn.list_executions(stateMachineArn=self.cloud.outputs["StateMachineArn"])[
            "executions"
        ]:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if f'"{self.name}"' in described.get("input", "") or self.repository in described.get(
                "input", ""
            ):
                found.append(described)
        return found


@pytest.fixture
def project(cloud: LocalCloud, store: DynamoStore, request: pytest.FixtureRequest) -> Project:
    name = "p" + uuid.uuid4().hex[:8]
    return Project(cloud, store, name)
