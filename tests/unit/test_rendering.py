"""What Shiplane registers and deploys: the task definition (images pinned by digest) and
the service stack (checked by cfn-lint and botocore's ECS model, offline)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters
from cfnlint.api import ManualArgs, lint

from shiplane.domain.models import (
    Configuration,
    DeploymentUnit,
    EcsServiceStep,
    ImageRef,
    Release,
    Target,
    TriggeredBy,
    TriggerKind,
)
from shiplane.errors import ConfigurationError
from shiplane.rendering.service_stack import render_service_stack
from shiplane.rendering.task_definition import render_task_definition
from tests.helpers import demo_configuration

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
WEB_DIGEST = "sha256:" + "1" * 64
ENVOY_DIGEST = "sha256:" + "e" * 64
PINNED = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$"
)
# cfn-lint findings accepted on the rendered stack, by rule id (none so far).
ACCEPTED_WARNINGS: set[str] = set()


def demo() -> Configuration:
    return Configuration.model_validate(demo_configuration())


def two_container_step() -> EcsServiceStep:
    data = demo().projects[0].steps[0].model_dump()
    data["task"]["containers"].append(
        {"name": "envoy", "image": "mesh/envoy", "essential": False, "memory": 128}
    )
    data["task"]["task_role_arn"] = "arn:aws:iam::123456789012:role/web-task"
    data["task"]["execution_role_arn"] = "arn:aws:iam::123456789012:role/web-exec"
    return EcsServiceStep.model_validate(data)


def release(step: EcsServiceStep, images: dict[str, str]) -> Release:
    return Release(
        project="web",
        version="1.4.0",
        images={
            repo: ImageRef(repository=repo, registry=REGISTRY, tag="1.4.0", digest=digest)
            for repo, digest in images.items()
        },
        process=[step],
        lifecycle="default",
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
        created_by=TriggeredBy(kind=TriggerKind.ECR_PUSH, by="exec-1"),
    )


def unit(environment: str = "prod", tenant: str = "untenanted") -> DeploymentUnit:
    return DeploymentUnit(
        deployment_id="prod-0123456789ab",
        project="web",
        release="1.4.0",
        environment=environment,
        tenant=tenant,
        target="prod-cluster",
        step="web-service",
    )


@pytest.fixture
def rendered() -> dict[str, Any]:
    step = two_container_step()
    return render_task_definition(
        step, release(step, {"web": WEB_DIGEST, "mesh/envoy": ENVOY_DIGEST}), unit()
    )


# --------------------------------------------------------------------------- task definition


def test_every_image_is_pinned_by_digest(rendered: dict[str, Any]) -> None:
    images = {c["name"]: c["image"] for c in rendered["containerDefinitions"]}
    assert images == {
        "web": f"{REGISTRY}/web@{WEB_DIGEST}",
        "envoy": f"{REGISTRY}/mesh/envoy@{ENVOY_DIGEST}",
    }
    for image in images.values():
        assert PINNED.match(image), image
        assert ":1.4.0" not in image


def test_family_is_suffixed_with_environment_and_tenant() -> None:
    step = two_container_step()
    rel = release(step, {"web": WEB_DIGEST, "mesh/envoy": ENVOY_DIGEST})
    assert render_task_definition(step, rel, unit("dev"))["family"] == "web-dev"
    assert render_task_definition(step, rel, unit("prod"))["family"] == "web-prod"
    assert render_task_definition(step, rel, unit("prod", "acme"))["family"] == "web-prod-acme"


def test_fargate_fields(rendered: dict[str, Any]) -> None:
    assert rendered["networkMode"] == "awsvpc"
    assert rendered["requiresCompatibilities"] == ["FARGATE"]
    assert (rendered["cpu"], rendered["memory"]) == ("256", "512")
    assert rendered["runtimePlatform"] == {
        "cpuArchitecture": "ARM64",
        "operatingSystemFamily": "LINUX",
    }
    assert rendered["taskRoleArn"] == "arn:aws:iam::123456789012:role/web-task"
    assert rendered["executionRoleArn"] == "arn:aws:iam::123456789012:role/web-exec"


def test_containers_carry_their_settings(rendered: dict[str, Any]) -> None:
    web, envoy = rendered["containerDefinitions"]
    assert web["name"] == "web"
    assert web["essential"] is True
    assert web["portMappings"] == [{"containerPort": 8080, "protocol": "tcp"}]
    assert web["environment"] == [{"name": "LOG_FORMAT", "value": "json"}]
    assert envoy["essential"] is False
    assert envoy["memory"] == 128


def test_shiplane_tags(rendered: dict[str, Any]) -> None:
    tags = {t["key"]: t["value"] for t in rendered["tags"]}
    assert tags == {
        "shiplane:project": "web",
        "shiplane:release": "1.4.0",
        "shiplane:environment": "prod",
        "shiplane:tenant": "untenanted",
        "shiplane:deployment": "prod-0123456789ab",
    }


def test_rendered_task_definition_is_a_valid_register_call(rendered: dict[str, Any]) -> None:
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    validate_parameters(rendered, shape)  # raises ParamValidationError


def test_container_whose_repository_the_release_lacks_is_named() -> None:
    step = two_container_step()
    with pytest.raises(ConfigurationError) as caught:
        render_task_definition(step, release(step, {"web": WEB_DIGEST}), unit())
    assert "'envoy'" in str(caught.value)
    assert "'mesh/envoy'" in str(caught.value)


# --------------------------------------------------------------------------- service stack


def prod_target(**changes: Any) -> Target:
    return demo().targets[2].model_copy(update=changes)


def service(stack: dict[str, Any]) -> dict[str, Any]:
    services = [r for r in stack["Resources"].values() if r["Type"] == "AWS::ECS::Service"]
    assert len(services) == 1
    return services[0]["Properties"]


def test_service_takes_the_task_definition_as_a_parameter() -> None:
    stack = render_service_stack(demo().projects[0].steps[0], prod_target())
    assert service(stack)["TaskDefinition"] == {"Ref": "TaskDefinitionArn"}
    assert stack["Parameters"]["TaskDefinitionArn"]["Type"] == "String"
    assert "shiplane-prod" in json.dumps(stack)  # the cluster
    assert service(stack)["Cluster"] == "shiplane-prod"
    assert service(stack)["LaunchType"] == "FARGATE"
    assert service(stack)["DesiredCount"] == 2
    assert "@sha256" not in json.dumps(stack)  # images live in the task definition only


def test_circuit_breaker_with_rollback_is_on_by_default() -> None:
    step = demo().projects[0].steps[0]
    breaker = service(render_service_stack(step, prod_target()))["DeploymentConfiguration"][
        "DeploymentCircuitBreaker"
    ]
    assert breaker == {"Enable": True, "Rollback": True}

    off = step.model_copy(
        update={"service": step.service.model_copy(update={"circuit_breaker_rollback": False})}
    )
    breaker = service(render_service_stack(off, prod_target()))["DeploymentConfiguration"][
        "DeploymentCircuitBreaker"
    ]
    assert breaker["Rollback"] is False


def test_network_comes_from_the_target() -> None:
    step = demo().projects[0].steps[0]
    network = service(render_service_stack(step, prod_target()))["NetworkConfiguration"]
    assert network == {
        "AwsvpcConfiguration": {
            "Subnets": ["subnet-0c3f70000000000f1", "subnet-0c3f70000000000f2"],
            "SecurityGroups": ["sg-0c3f70000000000f1"],
            "AssignPublicIp": "DISABLED",
        }
    }
    public = render_service_stack(step, prod_target(assign_public_ip=True))
    assert service(public)["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == (
        "ENABLED"
    )


def test_rendered_stack_passes_cfn_lint() -> None:
    target = prod_target(
        subnets=["subnet-0a1b2c3d4e5f60718", "subnet-0123abcd"],
        security_groups=["sg-0a1b2c3d4e5f60718"],
    )
    stack = render_service_stack(demo().projects[0].steps[0], target)
    # A deliberately broken copy proves, in the same (slow) lint run, that lint checks
    # the resources at all.
    broken = json.loads(json.dumps(stack["Resources"]["Service"]))
    broken["Properties"]["LaunchType"] = "SPACESHIP"
    stack["Resources"]["BrokenCopy"] = broken
    matches = lint(json.dumps(stack), config=ManualArgs(regions=["us-east-1"]))

    assert any(m.path[:2] == ["Resources", "BrokenCopy"] for m in matches)
    findings = [
        (m.rule.id, m.message) for m in matches if m.path[:2] != ["Resources", "BrokenCopy"]
    ]
    assert [f for f in findings if f[0].startswith("E")] == []
    assert {rule for rule, _ in findings} <= ACCEPTED_WARNINGS, findings


def test_each_tenant_gets_its_own_service_on_a_shared_cluster() -> None:
    step = demo().projects[0].steps[0]
    untenanted = service(render_service_stack(step, prod_target()))
    acme = service(render_service_stack(step, prod_target(), "acme"))
    assert untenanted["ServiceName"] == "web"
    assert acme["ServiceName"] == "web-acme"
