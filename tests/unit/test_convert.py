"""Convert: an ecs-service step as an equivalent cloudformation step (DESIGN §1.4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from shiplane.domain.cfn_template import strings_in
from shiplane.domain.models import CloudFormationStep, EcsServiceStep, Project, Target
from shiplane.domain.variables import system_variables
from shiplane.errors import ConfigurationError
from shiplane.rendering.convert import convert_step, converted_project
from shiplane.services.convert import export_converted, replace_with_converted
from shiplane.services.evaluation import target_settings

EXEC = "arn:aws:iam::123456789012:role/exec"
SECRET_REF = "arn:aws:ssm:us-east-1:123456789012:parameter/shiplane/p/DbPassword"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"


def rich_step(**service: Any) -> dict[str, Any]:
    return {
        "name": "svc",
        "type": "ecs-service",
        "target_role": "web",
        "task": {
            "family": "web",
            "cpu": 1024,
            "memory": 2048,
            "execution_role_arn": EXEC,
            "logging": {"mode": "automatic"},
            "tags": {"team": "a"},
            "volumes": [
                {"name": "shared", "efs": {"file_system_id": "fs-0123456789abcdef0"}},
            ],
            "containers": [
                {
                    "name": "app",
                    "image": "team/app",
                    "port_mappings": [{"container_port": 8080}],
                    "environment": {"DB_PASSWORD": "#{DbPassword}", "LEVEL": "#{Level}"},
                    "secrets": {"API_KEY": SECRET_REF},
                    "health_check": {"command": ["CMD-SHELL", "true"]},
                    "depends_on": [{"container_name": "init", "condition": "SUCCESS"}],
                    "ulimits": [{"name": "nofile", "soft_limit": 1, "hard_limit": 2}],
                    "mount_points": [{"source_volume": "shared", "container_path": "/d"}],
                },
                {"name": "init", "image": "team/init", "essential": False},
                {"name": "side", "image": "team/app", "essential": False},
            ],
        },
        "service": {
            "name": "web",
            "load_balancers": [
                {"target_group_arn": TG, "container_name": "app", "container_port": 8080}
            ],
            **service,
        },
    }


def project(step: dict[str, Any] | None = None, **extra: Any) -> Project:
    return Project.model_validate(
        {
            "name": "p",
            "lifecycle": "lc",
            "steps": [step or rich_step()],
            "variables": [
                {"name": "DbPassword", "sensitive": True, "secret_ref": SECRET_REF},
                {"name": "Level", "value": "info"},
            ],
            **extra,
        }
    )


def converted(p: Project | None = None) -> CloudFormationStep:
    p = p or project()
    step = p.steps[0]
    assert isinstance(step, EcsServiceStep)
    return convert_step(step, p)


def resource(step: CloudFormationStep, name: str) -> dict[str, Any]:
    return dict(step.parsed_template()["Resources"][name]["Properties"])


def test_task_definition_in_cloudformation_casing() -> None:
    step = converted()
    task = resource(step, "TaskDefinition")
    assert task["Cpu"] == "1024" and task["Memory"] == "2048"
    assert task["NetworkMode"] == "awsvpc" and task["RequiresCompatibilities"] == ["FARGATE"]
    assert task["ExecutionRoleArn"] == EXEC and task["Family"] == {"Ref": "Family"}
    assert task["Volumes"][0]["EFSVolumeConfiguration"]["FilesystemId"] == "fs-0123456789abcdef0"
    assert task["Tags"] == [{"Key": "team", "Value": "a"}]
    app = task["ContainerDefinitions"][0]
    assert app["Image"] == {"Ref": "Image1"}
    assert app["PortMappings"] == [{"ContainerPort": 8080, "Protocol": "tcp"}]
    assert app["Environment"] == [{"Name": "LEVEL", "Value": "#{Level}"}]
    assert sorted(app["Secrets"], key=lambda s: s["Name"]) == [
        {"Name": "API_KEY", "ValueFrom": SECRET_REF},
        {"Name": "DB_PASSWORD", "ValueFrom": SECRET_REF},
    ]
    assert app["HealthCheck"]["Command"] == ["CMD-SHELL", "true"]
    assert app["DependsOn"] == [{"ContainerName": "init", "Condition": "SUCCESS"}]
    assert app["Ulimits"] == [{"Name": "nofile", "SoftLimit": 1, "HardLimit": 2}]
    assert app["MountPoints"][0]["SourceVolume"] == "shared"
    assert app["LogConfiguration"]["Options"] == {
        "awslogs-group": {"Ref": "LogGroup"},
        "awslogs-region": {"Ref": "AWS::Region"},
        "awslogs-stream-prefix": "app",
    }
    service = resource(step, "Service")
    assert service["TaskDefinition"] == {"Ref": "TaskDefinition"}
    assert service["Cluster"] == {"Ref": "Cluster"}
    assert service["LoadBalancers"][0]["TargetGroupArn"] == TG


def test_parameters_are_declared_used_and_shiplane_variables() -> None:
    step = converted()
    template = step.parsed_template()
    assert set(step.parameters) == set(template["Parameters"])
    text = json.dumps(template["Resources"]) + json.dumps(template.get("Conditions", {}))
    for name in step.parameters:
        assert json.dumps({"Ref": name}) in text, name
    assert step.parameters["Family"] == "web-#{Shiplane.Environment.Name}"
    assert step.parameters["Cluster"] == "#{Shiplane.Target.Cluster}"
    assert step.parameters["Subnets"] == "#{Shiplane.Target.Subnets}"
    assert step.parameters["LogGroupName"] == (
        "/shiplane/#{Shiplane.Project.Name}/#{Shiplane.Environment.Name}"
    )
    images = {step.parameters[k] for k in step.parameters if k.startswith("Image")}
    assert images == {
        "#{Shiplane.Package[team-app].Image}",
        "#{Shiplane.Package[team-init].Image}",
    }
    assert {(p.name, p.repository) for p in step.packages} == {
        ("team-app", "team/app"),
        ("team-init", "team/init"),
    }
    # no sensitive value anywhere: only the reference
    assert not any("#{DbPassword}" in s for s in strings_in(template))


def test_tenanted_projects_and_network_overrides() -> None:
    p = project(
        rich_step(network={"subnets": ["subnet-0123abcd"], "assign_public_ip": True}),
        tenanted_mode="tenanted",
    )
    step = converted(p)
    assert step.parameters["ServiceName"] == "web-#{Shiplane.Tenant.Name}"
    assert step.parameters["Subnets"] == "subnet-0123abcd"
    assert step.parameters["AssignPublicIp"] == "ENABLED"
    assert step.parameters["SecurityGroups"] == "#{Shiplane.Target.SecurityGroups}"
    with pytest.raises(ConfigurationError, match="both with and without tenants"):
        converted(project(tenanted_mode="both"))


def test_sensitive_variables_that_cannot_become_a_secret_reference_are_refused() -> None:
    inside = rich_step()
    inside["task"]["containers"][0]["environment"]["URL"] = "postgres://u:#{DbPassword}@h"
    with pytest.raises(ConfigurationError, match=r"URL.*DbPassword"):
        converted(project(inside))
    scoped = project()
    scoped.variables.append(
        scoped.variables[0].model_copy(
            update={
                "secret_ref": SECRET_REF + "-prod",
                "scope": scoped.variables[0].scope.model_copy(update={"environments": ["prod"]}),
            }
        )
    )
    with pytest.raises(ConfigurationError, match="different secret_ref per scope"):
        converted(scoped)


def test_converted_step_passes_validation_and_cfn_lint() -> None:
    step = converted()
    again = CloudFormationStep.model_validate(step.model_dump())
    assert again == step
    matches = lint(json.dumps(step.parsed_template()), config=ManualArgs(regions=["us-east-1"]))
    findings = [(m.rule.id, m.message) for m in matches]
    assert [f for f in findings if f[0].startswith("E")] == [], findings
    assert [f for f in findings if f[0].startswith("W")] == [], findings


def test_target_system_variables() -> None:
    target = Target.model_validate(
        {
            "name": "t",
            "environments": ["dev"],
            "roles": ["web"],
            "region": "eu-west-1",
            "cluster": "c",
            "deploy_role_arn": "arn:aws:iam::123456789012:role/d",
            "subnets": ["subnet-0123abcd", "subnet-0123abce"],
        }
    )
    values = system_variables(
        "1", "default", "dev", None, "p", "d", "t", target_settings=target_settings(target)
    )
    assert values["shiplane.target.subnets"] == "subnet-0123abcd,subnet-0123abce"
    assert values["shiplane.target.securitygroups"] == ""
    assert values["shiplane.target.assignpublicip"] == "DISABLED"
    assert values["shiplane.target.cluster"] == "c"
    assert values["shiplane.target.region"] == "eu-west-1"


class FakeStore:
    def __init__(self, p: Project) -> None:
        self.project = p
        self.saved: list[Any] = []

    def get_project(self, name: str) -> Project:
        return self.project

    def list_projects(self) -> list[Project]:
        return [self.project]

    def list_environments(self) -> list[Any]:
        from shiplane.domain.models import Environment

        return [Environment(name="dev")]

    def get_lifecycle(self, name: str) -> Any:
        from shiplane.domain.models import Lifecycle

        return Lifecycle(name=name)

    def list_targets(self) -> list[Target]:
        return []

    def list_tenants(self) -> list[Any]:
        return []

    def save_configuration(self, config: Any) -> None:
        self.saved.append(config)


def test_export_is_read_only_and_replace_saves_the_project() -> None:
    store = FakeStore(project())
    exported = export_converted("p", "svc", store)
    assert store.saved == [] and "type: cloudformation" in exported.yaml
    # no target with the role in dev: the replacement is checked like an applied config
    with pytest.raises(ConfigurationError, match="no target"):
        replace_with_converted("p", "svc", store)
    assert store.saved == []
    replaced = converted_project(project(), "svc")
    assert isinstance(replaced.steps[0], CloudFormationStep)
    with pytest.raises(ConfigurationError, match="only an ecs-service step"):
        export_converted("p", "svc", FakeStore(replaced))
