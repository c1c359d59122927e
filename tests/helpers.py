"""Test helpers: sample events from events/, the demo configuration, small fakes."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/ (a fresh copy each time)."""
    return copy.deepcopy(json.loads((ROOT / "events" / f"{name}.json").read_text()))


def load_handler(folder: str) -> Any:
    """functions/<folder>/app.py as a module of its own (every handler is named app.py)."""
    path = ROOT / "functions" / folder / "app.py"
    spec = importlib.util.spec_from_file_location(f"handler_{folder}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LambdaContext:
    """What Powertools' inject_lambda_context reads of Lambda's context."""

    def __init__(self, function: str, remaining_ms: int = 300_000) -> None:
        self.function_name = function
        self.memory_limit_in_mb = 1024
        self.aws_request_id = "test"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function}"
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


def demo_configuration() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "examples" / "shiplane.yaml").read_text())


def ecr_push(repository: str, tag: str, digest: str) -> dict[str, Any]:
    event = load_event("ecr_push")
    event["detail"].update(
        {"repository-name": repository, "image-tag": tag, "image-digest": digest}
    )
    return event


class FakeTaskTokens:
    """Records task-token callbacks; a token completes once, like Step Functions."""

    def __init__(self) -> None:
        self.succeeded: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, tuple[str, str]] = {}

    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        if task_token in self.succeeded or task_token in self.failed:
            return False
        self.succeeded[task_token] = output
        return True

    def fail(self, task_token: str, error: str, cause: str) -> bool:
        if task_token in self.succeeded or task_token in self.failed:
            return False
        self.failed[task_token] = (error, cause)
        return True


class FakeTargetGateway:
    """An in-memory ECS + CloudFormation of one account, with the states AWS goes through."""

    def __init__(self) -> None:
        from shiplane.ports import ServiceState, StackState

        self._service_state = ServiceState
        self._stack_state = StackState
        self.task_definitions: dict[str, dict[str, Any]] = {}
        self.stacks: dict[str, Any] = {}
        self.stack_parameters: dict[str, dict[str, str]] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.services: dict[tuple[str, str], Any] = {}
        self.stack_events: dict[str, list[str]] = {}
        self.stopped: list[str] = []
        self.deleted: list[str] = []
        self.calls: list[str] = []
        # ClientRequestToken of each stack's latest operation; how many times each was created
        self.operation_tokens: dict[str, str | None] = {}
        self.created: dict[str, int] = {}

    def register_task_definition(self, definition: dict[str, Any]) -> str:
        self.calls.append("register_task_definition")
        family = definition["family"]
        revision = 1 + sum(1 for a in self.task_definitions if f"/{family}:" in a)
        arn = f"arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:{revision}"
        self.task_definitions[arn] = definition
        return arn

    def describe_stack(self, stack_name: str) -> Any:
        self.calls.append("describe_stack")
        return self.stacks.get(stack_name)

    def _set(self, stack_name: str, status: str, parameters: dict[str, str]) -> str:
        # a stack deleted and created again has a new id (uuid-2...)
        generation = self.created.get(stack_name, 1)
        stack_id = (
            f"arn:aws:cloudformation:us-east-1:123456789012:stack/{stack_name}/uuid-{generation}"
        )
        self.stacks[stack_name] = self._stack_state(
            stack_id=stack_id, status=status, parameters=dict(parameters)
        )
        return stack_id

    def create_stack(
        self,
        stack_name,
        template,
        parameters,
        tags,
        role_arn,
        *,
        capabilities=(),
        client_request_token=None,
    ) -> str:  # type: ignore[no-untyped-def]
        self.calls.append("create_stack")
        if stack_name in self.deleted or stack_name in self.created:
            self.created[stack_name] = self.created.get(stack_name, 1) + 1
        else:
            self.created[stack_name] = 1
        self.operation_tokens[stack_name] = client_request_token
        self.templates[stack_name] = template
        self.last_template = template
        self.last_tags = tags
        self.last_role = role_arn
        self.last_capabilities = list(capabilities)
        return self._set(stack_name, "CREATE_IN_PROGRESS", parameters)

    def update_stack(  # type: ignore[no-untyped-def]
        self,
        stack_name,
        template,
        parameters,
        tags,
        role_arn,
        *,
        capabilities=(),
        client_request_token=None,
    ):
        self.calls.append("update_stack")
        self.last_template = template
        if self.stacks[stack_name].parameters == parameters and template == self.templates.get(
            stack_name, template
        ):
            return None
        self.last_template = template
        self.templates[stack_name] = template
        self.previous = self.stacks[stack_name].parameters
        self.operation_tokens[stack_name] = client_request_token
        return self._set(stack_name, "UPDATE_IN_PROGRESS", parameters)

    def delete_stack(self, stack_name: str, client_request_token: str | None = None) -> None:
        self.calls.append("delete_stack")
        self.operation_tokens[stack_name] = client_request_token
        self.deleted.append(stack_name)
        self.stacks.pop(stack_name, None)

    def continue_update_rollback(self, stack_name: str, role_arn: str | None) -> None:
        self.calls.append("continue_update_rollback")

    def stack_operation_token(self, stack_name: str) -> str | None:
        self.calls.append("stack_operation_token")
        return self.operation_tokens.get(stack_name)

    def stack_failure_events(self, stack_name: str, limit: int = 10) -> list[str]:
        return self.stack_events.get(stack_name, [])[:limit]

    def describe_service(self, cluster: str, service: str) -> Any:
        return self.services.get((cluster, service))

    def stopped_task_reasons(self, cluster: str, family: str, limit: int = 10) -> list[str]:
        return self.stopped[:limit]

    def describe_task_definition(self, arn: str) -> dict[str, Any]:
        """As ECS describes it: with the fields ECS adds, without the tags."""
        self.calls.append("describe_task_definition")
        definition = {k: v for k, v in self.task_definitions[arn].items() if k != "tags"}
        return definition | {
            "taskDefinitionArn": arn,
            "revision": int(arn.rsplit(":", 1)[-1]),
            "status": "ACTIVE",
            "compatibilities": ["EC2", "FARGATE"],
            "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.task-eni"}],
        }

    def preview_stack_update(self, stack_name, template, parameters, role_arn):  # type: ignore[no-untyped-def]
        """A change set created, described and deleted: Modify Service when the template
        differs from the stack's last one, nothing otherwise."""
        from shiplane.ports import ResourceChange

        self.calls.append("preview_stack_update")
        self.previewed = (template, parameters)
        if template == getattr(self, "last_template", None):
            return []
        return [ResourceChange("Modify", "Service", "AWS::ECS::Service", "False")]

    # -- what the cloud does after a stack change
    def finish_rollout(
        self, stack_name: str, cluster: str, service: str, *, crash: bool = False
    ) -> str:
        """Complete (or fail and roll back) the rollout; returns the stack's final status."""
        stack = self.stacks[stack_name]
        new_arn = stack.parameters["TaskDefinitionArn"]
        creating = stack.status.startswith("CREATE")
        if not crash:
            self.services[(cluster, service)] = self._service_state(
                task_definition_arn=new_arn,
                rollout_state="COMPLETED",
                running_count=1,
                desired_count=1,
                events=("(service web) has reached a steady state.",),
            )
            status = "CREATE_COMPLETE" if creating else "UPDATE_COMPLETE"
            self._set(stack_name, status, stack.parameters)
            return status
        self.stopped = ["task/abc: Essential container in task exited"]
        self.stack_events[stack_name] = [
            "Service UPDATE_FAILED: ECS Deployment Circuit Breaker was triggered"
        ]
        if creating:
            self.services.pop((cluster, service), None)
            self._set(stack_name, "ROLLBACK_COMPLETE", stack.parameters)
            return "ROLLBACK_COMPLETE"
        old = self.previous
        self.services[(cluster, service)] = self._service_state(
            task_definition_arn=old["TaskDefinitionArn"],
            rollout_state="COMPLETED",
            events=("(service web) rolling back to deployment ecs-svc/1.",),
        )
        self._set(stack_name, "UPDATE_ROLLBACK_COMPLETE", old)
        return "UPDATE_ROLLBACK_COMPLETE"


class FakeGateways:
    def __init__(self, gateway: FakeTargetGateway | None = None) -> None:
        self.gateway = gateway or FakeTargetGateway()
        self.assumed: list[tuple[str, str]] = []

    def for_target(self, target: Any, deployment_id: str) -> FakeTargetGateway:
        self.assumed.append((target.name, deployment_id))
        return self.gateway


def stack_event(
    stack_name: str,
    status: str,
    reason: str = "",
    *,
    token: str | None = "",
    stack_id: str | None = None,
) -> dict[str, Any]:
    """A "Stack Status Change" event as CloudFormation sends it: the operation's
    ClientRequestToken ("" when started without one) and the stack id."""
    event = load_event("stack_update_complete")
    arn = stack_id or f"arn:aws:cloudformation:us-east-1:123456789012:stack/{stack_name}/uuid-1"
    event["resources"] = [arn]
    event["detail"]["stack-id"] = arn
    event["detail"]["status-details"] = {"status": status, "status-reason": reason}
    event["detail"]["client-request-token"] = token or ""
    return event
