"""render and diff with the real DynamoDB adapter (moto) and an in-memory target account;
and the change-set preview of the target gateway on moto's CloudFormation."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.adapters.targets import BotoTargetGateway
from shiplane.services.preview import PreviewDependencies, diff, render
from tests.helpers import ecr_push
from tests.integration.pipeline_harness import DIGEST_1, DIGEST_2, Pipeline


@pytest.fixture
def pipeline(configured: DynamoStore, clock: Any) -> Pipeline:
    return Pipeline(configured, clock)


def deps(pipeline: Pipeline) -> PreviewDependencies:
    s = pipeline.store
    return PreviewDependencies(config=s, releases=s, deployments=s, gateways=pipeline.gateways)


def test_diff_of_the_next_release_in_dev_is_its_image(pipeline: Pipeline) -> None:
    pipeline.deploy_units(pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))["deployments"])
    pipeline.resolve(ecr_push("web", "1.1.0", DIGEST_2))  # its dev deployment is not run
    registered = dict(pipeline.gateway.task_definitions)
    calls = len(pipeline.gateway.calls)

    result = diff("web", "1.1.0", "dev", deps(pipeline))

    assert result.blocked_reason is None
    [unit] = result.units
    [change] = unit.task_definition
    assert change.path == "containerDefinitions[web].image"
    assert change.old.endswith(f"/web@{DIGEST_1}") and change.new.endswith(f"/web@{DIGEST_2}")
    assert unit.stack.exists and unit.stack.summary == "no changes"
    _template, parameters = pipeline.gateway.previewed
    assert parameters == {"TaskDefinitionArn": unit.running_task_definition_arn}
    assert pipeline.gateway.task_definitions == registered  # nothing registered
    assert "register_task_definition" not in pipeline.gateway.calls[calls:]
    assert "update_stack" not in pipeline.gateway.calls[calls:]


def test_render_shows_what_would_be_registered_and_which_phase_blocks_prod(
    pipeline: Pipeline,
) -> None:
    pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    result = render("web", "1.0.0", "prod", deps(pipeline))
    assert result.blocked_by_phase is not None
    assert "not complete" in (result.blocked_reason or "")
    [unit] = result.units
    [container] = [c for c in unit.task_definition["containerDefinitions"] if c["name"] == "web"]
    assert container["image"].endswith(f"/web@{DIGEST_1}")
    assert unit.stack.parameters == {"TaskDefinitionArn": "<registered at deploy time>"}
    assert pipeline.gateway.calls == []  # rendering touches no account


def test_a_stack_that_does_not_exist_would_be_created(pipeline: Pipeline) -> None:
    pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))
    [unit] = diff("web", "1.0.0", "test", deps(pipeline)).units
    assert unit.running_task_definition_arn is None
    assert unit.stack.summary == "the stack would be created"
    assert "Service" in {c.logical_id for c in unit.stack.changes}
    assert "preview_stack_update" not in pipeline.gateway.calls


# Shiplane always names the stack role (the target account's CloudFormation execution role).
STACK_ROLE = "arn:aws:iam::123456789012:role/shiplane-deploy-cfn-exec"

TEMPLATE: dict[str, Any] = {
    "Parameters": {"TaskDefinitionArn": {"Type": "String"}},
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
}


def test_change_set_preview_on_cloudformation(aws: None) -> None:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    gateway = BotoTargetGateway(
        ecs=boto3.client("ecs", region_name="us-east-1"), cloudformation=cfn
    )
    parameters = {"TaskDefinitionArn": "arn:1"}
    cfn.create_stack(
        StackName="shiplane-x",
        TemplateBody=json.dumps(TEMPLATE),
        Parameters=[{"ParameterKey": "TaskDefinitionArn", "ParameterValue": "arn:1"}],
    )

    assert gateway.preview_stack_update("shiplane-x", TEMPLATE, parameters, STACK_ROLE) == []
    bigger = {"Resources": {**TEMPLATE["Resources"], "Queue": {"Type": "AWS::SQS::Queue"}}}
    changes = gateway.preview_stack_update("shiplane-x", TEMPLATE | bigger, parameters, STACK_ROLE)
    # moto also reports the unchanged Topic as modified; AWS would not
    assert ("Add", "Queue", "AWS::SQS::Queue") in [
        (c.action, c.logical_id, c.resource_type) for c in changes
    ]
    assert cfn.list_change_sets(StackName="shiplane-x")["Summaries"] == []
    assert cfn.describe_stacks(StackName="shiplane-x")["Stacks"][0]["StackStatus"] == (
        "CREATE_COMPLETE"
    )


def test_a_step_asked_for_is_the_only_one_rendered_and_diffed(
    store: DynamoStore, clock: Any
) -> None:
    import copy

    from shiplane.services.apply_configuration import apply_configuration
    from tests.helpers import demo_configuration

    config = demo_configuration()
    [project] = config["projects"]
    worker = copy.deepcopy(project["steps"][0])
    worker["name"] = "worker"
    worker["service"]["name"] = "worker"
    project["steps"].append(worker)
    apply_configuration(config, store)
    pipeline = Pipeline(store, clock)
    pipeline.resolve(ecr_push("web", "1.0.0", DIGEST_1))

    assert {u.step for u in render("web", "1.0.0", "dev", deps(pipeline)).units} == {
        "web-service",
        "worker",
    }
    rendered = render("web", "1.0.0", "dev", deps(pipeline), step="worker")
    assert [u.step for u in rendered.units] == ["worker"]
    diffed = diff("web", "1.0.0", "dev", deps(pipeline), step="worker")
    assert [u.step for u in diffed.units] == ["worker"]
