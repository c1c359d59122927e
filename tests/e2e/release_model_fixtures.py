"""Helpers for the release-model e2e tests: configuration documents with names of their
own (project, repository, clusters, deploy role, target role), applied to the local
cloud's table, and the views a user has of the result."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import Configuration, Deployment
from shiplane.services.apply_configuration import apply_configuration
from shiplane_local.cloud import LocalCloud
from shiplane_local.targets import prepare_targets

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
# The bootstrap's own task execution role (bootstrap/target-account.yaml): it reads
# Shiplane's /shiplane/* parameters, as ECS does before starting a task with secrets.
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/shiplane-task-execution"
SETTLE_SECONDS = 120


def uid() -> str:
    return uuid.uuid4().hex[:8]


def environments(*names: str, approval: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{"name": n, "requires_approval": n in approval} for n in names]


def phase(name: str, *entries: tuple[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "environments": [{"environment": e, "trigger": t} for e, t in entries],
    }


class World:
    """One test's own world: names derived from a fresh id, so tests never share a
    project, repository, cluster, service, target role or external ID. The deploy role is
    the one the template's functions may assume (DeployRoleName), as on AWS."""

    def __init__(self, cloud: LocalCloud, store: DynamoStore, prefix: str) -> None:
        self.cloud = cloud
        self.store = store
        self.id = uid()
        self.project = f"{prefix}{self.id}"
        self.repository = f"repo-{self.project}"
        self.role = f"role-{self.id}"
        self.step = "svc"
        self.svc = f"svc-{self.id}"
        self.family = f"fam-{self.id}"
        self.deploy_role = "arn:aws:iam::123456789012:role/shiplane-deploy"

    # -- configuration
    def cluster(self, environment: str) -> str:
        return f"c-{self.id}-{environment}"

    def target(self, environment: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": f"t-{self.id}-{environment}",
            "environments": [environment],
            "roles": [self.role],
            "region": "us-east-1",
            "cluster": self.cluster(environment),
            "deploy_role_arn": self.deploy_role,
            "external_id": f"ext-{self.id}",
            "subnets": ["subnet-0a1de0000000000d1"],
            "security_groups": ["sg-0a1de0000000000d1"],
            **extra,
        }

    def project_document(
        self,
        lifecycle: str,
        *,
        environment: dict[str, str] | None = None,
        variables: list[dict[str, Any]] | None = None,
        execution_role: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        task: dict[str, Any] = {
            "family": self.family,
            "cpu": 256,
            "memory": 512,
            "containers": [
                {
                    "name": "app",
                    "image": self.repository,
                    "port_mappings": [{"container_port": 8080}],
                    "environment": environment or {"LOG_FORMAT": "json"},
                }
            ],
        }
        if execution_role:
            task["execution_role_arn"] = EXECUTION_ROLE
        return {
            "name": self.project,
            "lifecycle": lifecycle,
            "variables": variables or [],
            "steps": [
                {
                    "name": self.step,
                    "type": "ecs-service",
                    "target_role": self.role,
                    "task": task,
                    "service": {"name": self.svc, "desired_count": 1},
                    "wait": {"mode": "complete", "timeout_seconds": 120},
                }
            ],
            **extra,
        }

    def apply(self, document: dict[str, Any]) -> Configuration:
        config = apply_configuration(document, self.store)
        prepare_targets(self.cloud, config)
        return config

    # -- acting
    def settle(self) -> None:
        self.cloud.wait_idle(timeout=SETTLE_SECONDS)

    def push(self, tag: str, *, settle: bool = True) -> str:
        digest = self.cloud.push_image(self.repository, tag)
        if settle:
            self.settle()
        return digest

    def start(self, document: dict[str, Any], *, settle: bool = True) -> str:
        arn = self.cloud.client("stepfunctions").start_execution(
            stateMachineArn=self.cloud.outputs["StateMachineArn"],
            name=f"e2e-{uuid.uuid4().hex[:12]}",
            input=json.dumps(document),
        )["executionArn"]
        if settle:
            self.settle()
        return str(arn)

    def deploy(self, release: str, environment: str, tenant: str | None = None) -> str:
        document = {
            "action": "deploy",
            "project": self.project,
            "release": release,
            "environment": environment,
        }
        if tenant is not None:
            document["tenant"] = tenant
        return self.start(document)

    # -- looking
    def deployments(self, environment: str | None = None) -> list[Deployment]:
        return [
            d
            for d in self.store.list_deployments(self.project)
            if environment is None or d.environment == environment
        ]

    def stack_name(self, environment: str, tenant: str = "untenanted") -> str:
        return f"shiplane-{self.project}-{self.step}-{environment}-{tenant}"

    def stack(self, environment: str, tenant: str = "untenanted") -> dict[str, Any] | None:
        cfn = self.cloud.client("cloudformation")
        try:
            stacks = cfn.describe_stacks(StackName=self.stack_name(environment, tenant))
        except cfn.exceptions.ClientError:
            return None
        return dict(stacks["Stacks"][0])

    def service(self, environment: str, name: str | None = None) -> dict[str, Any]:
        services = self.cloud.client("ecs").describe_services(
            cluster=self.cluster(environment), services=[name or self.svc]
        )["services"]
        active = [s for s in services if s.get("status") == "ACTIVE"]
        return active[0] if active else {}

    def service_names(self, environment: str) -> list[str]:
        arns = self.cloud.client("ecs").list_services(cluster=self.cluster(environment))[
            "serviceArns"
        ]
        return sorted(arn.rsplit("/", 1)[-1] for arn in arns)

    def task_definition(self, environment: str, name: str | None = None) -> dict[str, Any]:
        arn = self.service(environment, name)["taskDefinition"]
        described = self.cloud.client("ecs").describe_task_definition(taskDefinition=arn)
        return dict(described["taskDefinition"])

    def running_image(self, environment: str, name: str | None = None) -> str:
        container = self.task_definition(environment, name)["containerDefinitions"][0]
        return str(container["image"])

    def image(self, digest: str) -> str:
        return f"{REGISTRY}/{self.repository}@{digest}"

    def executions(self) -> list[dict[str, Any]]:
        """This world's executions, oldest first."""
        sfn = self.cloud.client("stepfunctions")
        listed = sfn.list_executions(stateMachineArn=self.cloud.outputs["StateMachineArn"])
        found = []
        for execution in listed["executions"]:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if self.project in described.get("input", "") or self.repository in described.get(
                "input", ""
            ):
                found.append(described)
        return sorted(found, key=lambda e: e["startDate"])


def scan_table(cloud: LocalCloud) -> list[dict[str, Any]]:
    """Every item of Shiplane's table, as DynamoDB returns it."""
    dynamodb = cloud.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": cloud.outputs["TableName"]}
    while True:
        page = dynamodb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll `check` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout:g} s for {what}")
        time.sleep(0.05)


def physical_resource(cloud: LocalCloud, logical_id: str) -> str:
    cfn = cloud.client("cloudformation")
    resources = cfn.describe_stack_resources(StackName=cloud.stack_name)
    for resource in resources["StackResources"]:
        if resource["LogicalResourceId"] == logical_id:
            return str(resource["PhysicalResourceId"])
    raise KeyError(logical_id)
