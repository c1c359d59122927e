"""The walking skeleton on the embedded local cloud: pushes, promotions and failures as a
user sees them — what runs in each environment, and what each deployment recorded."""

from __future__ import annotations

import json

import pytest

from shiplane.domain.models import DeploymentStatus
from tests.e2e.conftest import Project
from tests.e2e.release_model_fixtures import wait_for
from tests.helpers import ecr_push, load_event

pytestmark = pytest.mark.e2e

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def statuses(project: Project) -> dict[tuple[str, str], str]:
    return {(d.environment, d.release): d.status.value for d in project.deployments()}


def test_a_push_goes_through_dev_and_test_then_waits_and_is_promoted_to_prod(
    project: Project,
) -> None:
    digest_1 = project.push("1.0.0")
    assert statuses(project) == {("dev", "1.0.0"): "SUCCEEDED", ("test", "1.0.0"): "SUCCEEDED"}
    for environment in ("dev", "test"):
        assert project.running_image(environment) == f"{REGISTRY}/{project.repository}@{digest_1}"
        assert project.service(environment)["deployments"][0]["rolloutState"] == "COMPLETED"
    assert project.service("prod") == {}
    [execution] = project.executions()
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["waiting_for"] == ["prod"]

    project.promote("1.0.0", "prod")
    assert statuses(project)[("prod", "1.0.0")] == "SUCCEEDED"
    assert project.running_image("prod") == f"{REGISTRY}/{project.repository}@{digest_1}"
    [prod] = project.deployments("prod")
    assert prod.triggered_by.kind == "console"
    assert prod.task_definition_arns["prod-cluster"] == project.service("prod")["taskDefinition"]

    digest_2 = project.push("1.1.0")
    assert statuses(project)[("dev", "1.1.0")] == "SUCCEEDED"
    assert statuses(project)[("test", "1.1.0")] == "SUCCEEDED"
    assert project.running_image("test") == f"{REGISTRY}/{project.repository}@{digest_2}"
    assert project.running_image("prod") == f"{REGISTRY}/{project.repository}@{digest_1}"
    assert project.stack("dev")["StackStatus"] == "UPDATE_COMPLETE"


def test_the_same_push_event_three_times_gives_one_release_and_one_deployment_each(
    project: Project,
) -> None:
    digest = project.push("1.0.0")
    event = ecr_push(project.repository, "1.0.0", digest)
    project.cloud.emit_event(event)
    project.cloud.emit_event(event)
    project.settle()
    assert len(project.executions()) == 3
    assert [r.version for r in project.store.list_releases(project.name)] == ["1.0.0"]
    assert sorted(d.environment for d in project.deployments()) == ["dev", "test"]
    assert all(d.status is DeploymentStatus.SUCCEEDED for d in project.deployments())


def test_a_push_to_a_repository_no_project_uses_releases_nothing(project: Project) -> None:
    before = len(project.store.list_deployments(project.name))
    project.cloud.push_image("nobody-uses-" + project.name, "1.0.0")
    project.settle()
    sfn = project.cloud.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=project.cloud.outputs["StateMachineArn"])
    mine = [
        sfn.describe_execution(executionArn=e["executionArn"]) for e in executions["executions"]
    ]
    mine = [e for e in mine if "nobody-uses-" + project.name in e["input"]]
    assert [e["status"] for e in mine] == ["SUCCEEDED"]
    assert "no project uses repository" in json.loads(mine[0]["output"])["message"]
    assert len(project.store.list_deployments(project.name)) == before


def test_a_malformed_event_fails_naming_the_field_and_writes_nothing(project: Project) -> None:
    event = load_event("ecr_push_malformed")
    event["detail"]["repository-name"] = project.repository
    arn = project.start(event)
    described = project.cloud.client("stepfunctions").describe_execution(executionArn=arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidRequestError"
    assert "detail.image-digest" in described["cause"]
    assert "detail.action-type" in described["cause"]
    assert project.store.list_releases(project.name) == []


def test_a_crashing_image_fails_rolls_back_and_stops_the_lifecycle(project: Project) -> None:
    good = project.push("1.0.0")
    good_task_definition = project.service("dev")["taskDefinition"]

    project.push("1.1.0", crash=True)

    [failed] = [d for d in project.deployments("dev") if d.release == "1.1.0"]
    assert failed.status is DeploymentStatus.FAILED
    assert "UPDATE_ROLLBACK_COMPLETE" in failed.reason
    assert failed.diagnosis.stopped_tasks, "the stopped tasks' reasons are recorded"
    assert any("Essential container" in r for r in failed.diagnosis.stopped_tasks)
    assert any("Circuit Breaker" in e for e in failed.diagnosis.stack_events)
    assert failed.diagnosis.service_events

    # The stack and the service are back on the previous task definition.
    assert project.service("dev")["taskDefinition"] == good_task_definition
    assert project.running_image("dev").endswith(f"@{good}")
    stack = project.stack("dev")
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["TaskDefinitionArn"] == good_task_definition

    # The lifecycle does not advance: test still runs 1.0.0, no 1.1.0 deployment there.
    assert [d.release for d in project.deployments("test")] == ["1.0.0"]
    failed_runs = [e for e in project.executions() if e["status"] == "FAILED"]
    assert [e["error"] for e in failed_runs] == ["DeploymentFailed"]

    # And the next good release goes through (the rolled-back stack is updatable).
    project.push("1.2.0")
    assert {d.release for d in project.deployments("test")} == {"1.0.0", "1.2.0"}


def test_a_rollback_the_stack_role_may_not_make_is_continued_by_the_next_release(
    project: Project,
) -> None:
    """UPDATE_ROLLBACK_FAILED (the stack's role lost ecs:UpdateService while a crashing
    release rolled out): the deployment fails naming the state; once the role is mended,
    the next release continues the rollback (ContinueUpdateRollback) and then deploys."""
    project.push("1.0.0")
    iam, cfn = project.cloud.client("iam"), project.cloud.client("cloudformation")
    sim = project.cloud.rollouts
    deny = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "ecs:UpdateService", "Resource": "*"}]}  # fmt: skip
    delay, sim.delay_seconds = sim.delay_seconds, 3.0  # time to change the role mid-rollout
    try:
        project.cloud.push_image(project.repository, "1.1.0", crash=True)
        wait_for(
            "the 1.1.0 update under way",
            lambda: (
                cfn.describe_stacks(StackName=project.stack_name("dev"))["Stacks"][0]["StackStatus"]
                == "UPDATE_IN_PROGRESS"
            ),
        )
        iam.put_role_policy(
            RoleName="shiplane-deploy-cfn-exec",
            PolicyName="lost-update-service",
            PolicyDocument=json.dumps(deny),
        )
        project.settle()
    finally:
        sim.delay_seconds = delay
    assert project.stack("dev")["StackStatus"] == "UPDATE_ROLLBACK_FAILED"
    [failed] = [d for d in project.deployments("dev") if d.release == "1.1.0"]
    assert failed.status is DeploymentStatus.FAILED
    assert "UPDATE_ROLLBACK_FAILED" in failed.reason

    iam.delete_role_policy(RoleName="shiplane-deploy-cfn-exec", PolicyName="lost-update-service")
    digest = project.push("1.2.0")
    [mended] = [d for d in project.deployments("dev") if d.release == "1.2.0"]
    assert mended.status is DeploymentStatus.SUCCEEDED, mended.reason
    assert any("continuing the rollback" in t.message for t in mended.timeline)
    assert project.running_image("dev").endswith(f"@{digest}")


def test_a_crash_on_the_first_deployment_leaves_a_stack_that_the_next_release_replaces(
    project: Project,
) -> None:
    project.push("0.9.0", crash=True)
    [failed] = project.deployments("dev")
    assert failed.status is DeploymentStatus.FAILED
    assert project.stack("dev")["StackStatus"] == "ROLLBACK_COMPLETE"

    digest = project.push("1.0.0")
    assert statuses(project)[("dev", "1.0.0")] == "SUCCEEDED"
    assert project.running_image("dev").endswith(f"@{digest}")


def test_promoting_before_the_lifecycle_allows_it_names_the_phase(project: Project) -> None:
    project.push("1.0.0", crash=True)  # dev fails: testing never completes
    arn = project.promote("1.0.0", "prod")
    described = project.cloud.client("stepfunctions").describe_execution(executionArn=arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "LifecycleViolationError"
    assert "phase 'development' is not complete" in described["cause"]
    assert project.deployments("prod") == []
