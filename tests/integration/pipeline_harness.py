"""A hand-driven pipeline: the services chained the way the state machine chains them,
on the real DynamoDB adapter (moto) with an in-memory target account."""

from __future__ import annotations

from typing import Any

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.ports import ExecutionOutcome
from shiplane.services.approvals import ApprovalDependencies
from shiplane.services.deploy_stack import DeployDependencies, deploy_stack
from shiplane.services.deployment_events import EventsDependencies, handle_deployment_event
from shiplane.services.gate_promotion import GateDependencies, gate_promotion
from shiplane.services.reconcile_deployment import ReconcileDependencies
from shiplane.services.record_deployment import RecordDependencies, record_deployment
from shiplane.services.register_task_definition import (
    RegisterDependencies,
    register_task_definition,
)
from shiplane.services.resolve_release import ResolveDependencies, resolve_release
from shiplane.services.settle_execution import SettleDependencies
from shiplane.services.slots import SlotDependencies, acquire_slot
from tests.helpers import FakeGateways, FakeTaskTokens, stack_event

DIGEST_1 = "sha256:" + "1" * 64
DIGEST_2 = "sha256:" + "2" * 64


class NoRegistry:
    def image_digest(self, repository: str, tag: str) -> str | None:
        return None

    def latest_tag(self, repository: str) -> tuple[str, str] | None:
        return None

    def tags(self, repository: str) -> list[tuple[str, str]]:
        return []


class FakeExecutions:
    """Step Functions' answer to DescribeExecution: RUNNING unless told otherwise; None
    (does not exist) for a name in `unknown`."""

    def __init__(self) -> None:
        self.outcomes: dict[str, ExecutionOutcome] = {}
        self.unknown: set[str] = set()
        self.described: list[str] = []

    def execution_arn(self, name: str) -> str:
        return f"arn:aws:states:us-east-1:123456789012:execution:shiplane-deploy-pipeline:{name}"

    def outcome(self, execution_arn: str) -> ExecutionOutcome | None:
        name = execution_arn.rsplit(":", 1)[1]
        self.described.append(name)
        if name in self.unknown:
            return None
        return self.outcomes.get(name, ExecutionOutcome("RUNNING"))


class Pipeline:
    """Runs the services the way the state machine chains them."""

    def __init__(self, store: DynamoStore, clock: Any) -> None:
        self.store = store
        self.gateways = FakeGateways()
        self.gateway = self.gateways.gateway
        self.tokens = FakeTaskTokens()
        self.resolve_deps = ResolveDependencies(store, store, store, NoRegistry(), clock)
        self.register_deps = RegisterDependencies(store, store, store, self.gateways, health=store)
        self.deploy_deps = DeployDependencies(
            store, store, store, store, self.gateways, self.tokens
        )
        self.events_deps = EventsDependencies(
            store, store, store, self.gateways, self.tokens, health=store
        )
        self.reconcile_deps = ReconcileDependencies(store, store, store, store, self.gateways)
        self.slot_deps = SlotDependencies(store, store, store, self.tokens)
        self.record_deps = RecordDependencies(store, store, store, self.tokens)
        self.approval_deps = ApprovalDependencies(store, store, self.tokens)
        self.gate_deps = GateDependencies(store, store, store, clock)
        self.executions = FakeExecutions()
        self.settle_deps = SettleDependencies(
            store, store, store, self.tokens, live=store, executions=self.executions
        )
        self.counter = 0

    def resolve(self, event: dict[str, Any]) -> dict[str, Any]:
        self.counter += 1
        payload = {"input": event, "execution": f"exec-{self.counter}"}
        return resolve_release(payload, self.resolve_deps).model_dump(mode="json")

    def start_unit(self, unit: dict[str, Any]) -> tuple[dict[str, Any], str]:
        registered = register_task_definition(unit, self.register_deps).model_dump(mode="json")
        self.counter += 1
        token = f"token-{registered['deployment_id']}-{self.counter}"
        deploy_stack({"unit": registered, "task_token": token}, self.deploy_deps)
        return registered, token

    def finish_unit(self, unit: dict[str, Any], token: str, *, crash: bool = False) -> Any:
        service = "web" if unit["tenant"] == "untenanted" else f"web-{unit['tenant']}"
        status = self.gateway.finish_rollout(
            unit["stack_name"], f"shiplane-{unit['environment']}", service, crash=crash
        )
        name = unit["stack_name"]
        event = stack_event(
            name,
            status,
            token=self.gateway.operation_tokens.get(name),
            stack_id=self.gateway.stacks[name].stack_id,
        )
        handle_deployment_event(event, self.events_deps)
        return self.tokens.succeeded.get(token)

    def acquire(self, task: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        self.counter += 1
        token = f"slot-{task['deployment_id']}-{self.counter}"
        acquire_slot({"task": task, "task_token": token}, self.slot_deps)
        return token, self.tokens.succeeded.get(token)

    def run_units(self, task: dict[str, Any], *, crash: bool = False) -> list[dict[str, Any]]:
        results = []
        for unit in task["units"]:
            registered, token = self.start_unit(unit)
            outcome = self.finish_unit(registered, token, crash=crash)
            results.append(registered | {"outcome": outcome})
        return results

    def record(self, task: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return record_deployment(task | extra, self.record_deps).model_dump(mode="json")

    def run_task(self, task: dict[str, Any], *, crash: bool = False) -> dict[str, Any]:
        _, slot = self.acquire(task)
        assert slot is not None, "the slot was taken"
        if slot.get("superseded_by"):
            return self.record(task, slot=slot)
        return self.record(task, slot=slot, results=self.run_units(task, crash=crash))

    def gate(self, finished: list[dict[str, Any]]) -> dict[str, Any]:
        return gate_promotion({"finished": finished}, self.gate_deps).model_dump(mode="json")

    def deploy_units(self, tasks: list[dict[str, Any]], *, crash: bool = False) -> dict[str, Any]:
        """Deploy Each, then Gate Promotion."""
        return self.gate([self.run_task(task, crash=crash) for task in tasks])
