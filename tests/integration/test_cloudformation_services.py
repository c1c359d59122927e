"""A project with a `cloudformation` step before its `ecs-service` step, through the
pipeline's services on the real DynamoDB adapter (moto) and an in-memory target account:
the stack is rendered and judged by its status alone, and its outputs reach the next
step's container environment."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import DeploymentStatus
from shiplane.services.apply_configuration import apply_configuration
from shiplane.services.deploy_stack import deploy_stack
from shiplane.services.deployment_events import handle_deployment_event
from shiplane.services.reconcile_deployment import reconcile_deployment
from shiplane.services.register_task_definition import register_task_definition
from tests.helpers import demo_configuration, ecr_push, stack_event
from tests.integration.pipeline_harness import DIGEST_1, Pipeline

TEMPLATE = """\
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: "web-#{Shiplane.Package[app].Tag}-#{Shiplane.Environment.Name}"
Outputs:
  QueueUrl:
    Value: !Ref Queue
"""
ROLE = "arn:aws:iam::123456789012:role/shiplane-stack-infra"


@pytest.fixture
def pipeline(store: DynamoStore, clock: Any) -> Pipeline:
    config = demo_configuration()
    project = config["projects"][0]
    web = project["steps"][0]
    web["task"]["containers"][0]["environment"]["QUEUE_URL"] = (
        "#{Shiplane.Step[infra].Output[QueueUrl]}"
    )
    project["steps"].insert(
        0,
        {
            "name": "infra",
            "type": "cloudformation",
            "target_role": web["target_role"],
            "template": TEMPLATE,
            "capabilities": ["CAPABILITY_IAM"],
            "role_arn": ROLE,
            "packages": [{"name": "app", "repository": "web"}],
        },
    )
    apply_configuration(config, store)
    return Pipeline(store, clock)


def complete_infra(pipeline: Pipeline, unit: dict[str, Any], url: str) -> None:
    gateway = pipeline.gateway
    stack = gateway.stacks[unit["stack_name"]]
    gateway.stacks[unit["stack_name"]] = dataclasses.replace(
        stack, status="CREATE_COMPLETE", outputs={"QueueUrl": url}
    )
    handle_deployment_event(
        _event(pipeline, unit["stack_name"], "CREATE_COMPLETE"), pipeline.events_deps
    )


def _event(pipeline: Pipeline, name: str, status: str) -> dict[str, Any]:
    """The stack's status event as CloudFormation sends it: with its operation's token."""
    return stack_event(
        name,
        status,
        token=pipeline.gateway.operation_tokens.get(name),
        stack_id=pipeline.gateway.stacks[name].stack_id,
    )


def test_the_stack_outputs_of_a_cloudformation_step_reach_the_next_step(
    pipeline: Pipeline,
) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    (task,) = resolved["deployments"]
    assert [u["step"] for u in task["units"]] == ["infra", "web-service"]
    pipeline.acquire(task)
    infra_unit, web_unit = task["units"]

    registered = register_task_definition(infra_unit, pipeline.register_deps)
    assert registered.task_definition_arn is None  # nothing to register for a template
    deploy_stack(
        {"unit": registered.model_dump(mode="json"), "task_token": "t-infra"}, pipeline.deploy_deps
    )
    gateway = pipeline.gateway
    queue = gateway.last_template["Resources"]["Queue"]
    assert queue["Properties"]["QueueName"] == "web-1.0.0-dev"
    assert gateway.last_template["Outputs"]["QueueUrl"]["Value"] == {"Ref": "Queue"}
    assert (gateway.last_role, gateway.last_capabilities) == (ROLE, ["CAPABILITY_IAM"])
    assert gateway.last_tags["shiplane:release"] == "1.0.0"

    url = "https://sqs.us-east-1.amazonaws.com/123456789012/web-1.0.0-dev"
    complete_infra(pipeline, infra_unit, url)
    outcome = pipeline.tokens.succeeded["t-infra"]
    assert outcome["status"] == "SUCCEEDED" and outcome["task_definition_arn"] is None
    deployment = pipeline.store.get_deployment("web", task["deployment_id"])
    assert deployment.outputs == {"infra": {"QueueUrl": url}}

    registered_web, web_token = pipeline.start_unit(web_unit)
    # no role configured: the service stack runs as the bootstrap's execution role, never
    # as the deploy role itself
    assert gateway.last_role == "arn:aws:iam::123456789012:role/shiplane-deploy-cfn-exec"
    definition = gateway.task_definitions[registered_web["task_definition_arn"]]
    environment = {
        e["name"]: e["value"] for e in definition["containerDefinitions"][0]["environment"]
    }
    assert environment["QUEUE_URL"] == url
    web_outcome = pipeline.finish_unit(registered_web, web_token)
    summary = pipeline.record(
        task,
        results=[
            registered.model_dump(mode="json") | {"outcome": outcome},
            registered_web | {"outcome": web_outcome},
        ],
    )
    assert summary["status"] == DeploymentStatus.SUCCEEDED


def test_a_failed_stack_is_judged_by_its_status_and_a_lost_event_is_reconciled(
    pipeline: Pipeline,
) -> None:
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    (task,) = resolved["deployments"]
    pipeline.acquire(task)
    infra_unit = task["units"][0]
    deploy_stack({"unit": infra_unit, "task_token": "t-1"}, pipeline.deploy_deps)
    gateway = pipeline.gateway
    name = infra_unit["stack_name"]
    gateway.stack_events[name] = ["Queue CREATE_FAILED: name taken"]
    gateway.stacks[name] = dataclasses.replace(gateway.stacks[name], status="ROLLBACK_COMPLETE")
    handle_deployment_event(_event(pipeline, name, "ROLLBACK_COMPLETE"), pipeline.events_deps)
    failed = pipeline.tokens.succeeded["t-1"]
    assert failed["status"] == "FAILED"
    assert "name taken" in failed["reason"]
    assert failed["diagnosis"]["stack_events"] == ["Queue CREATE_FAILED: name taken"]

    # The next attempt: the dead stack is deleted first, then created; its event is lost.
    with pytest.raises(Exception, match="failed create"):
        deploy_stack({"unit": infra_unit, "task_token": "t-2"}, pipeline.deploy_deps)
    deploy_stack({"unit": infra_unit, "task_token": "t-3"}, pipeline.deploy_deps)
    gateway.stacks[name] = dataclasses.replace(
        gateway.stacks[name], status="CREATE_COMPLETE", outputs={"QueueUrl": "u"}
    )
    outcome = reconcile_deployment(infra_unit, pipeline.reconcile_deps)
    assert outcome.status == "SUCCEEDED"
    assert pipeline.store.get_deployment("web", task["deployment_id"]).outputs == {
        "infra": {"QueueUrl": "u"}
    }
