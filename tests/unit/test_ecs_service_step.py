"""The full `ecs-service` step: a rich step (three containers, secrets, health checks,
depends-on, a target group, EFS, ulimits, explicit and automatic logging) renders a task
definition botocore's ECS model accepts and a stack cfn-lint passes; bad input is refused
with a message naming the field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters
from cfnlint.api import ManualArgs, lint
from pydantic import ValidationError

from shiplane.domain.models import (
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
from shiplane.rendering.task_definition import ContainerSettings, render_task_definition

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
DB_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:web/db-AbCdEf"
API_KEY = "arn:aws:ssm:eu-west-1:123456789012:parameter/web/api-key"
SPLUNK_TOKEN = "arn:aws:ssm:eu-west-1:123456789012:parameter/splunk/token"
TARGET_GROUP = (
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-tg/0123456789abcdef"
)


def rich() -> dict[str, Any]:
    return {
        "name": "web-service",
        "target_role": "web-server",
        "task": {
            "family": "web",
            "cpu": 1024,
            "memory": 3072,
            "cpu_architecture": "ARM64",
            "task_role_arn": "arn:aws:iam::123456789012:role/web-task",
            "execution_role_arn": "arn:aws:iam::123456789012:role/web-exec",
            "logging": {"mode": "automatic", "retention_days": 14},
            "tags": {"team": "payments"},
            "volumes": [
                {
                    "name": "uploads",
                    "efs": {
                        "file_system_id": "fs-0123456789abcdef0",
                        "access_point_id": "fsap-0123456789abcdef0",
                        "iam_authorization": True,
                    },
                },
                {"name": "scratch"},
            ],
            "containers": [
                {
                    "name": "web",
                    "image": "web",
                    "cpu": 512,
                    "memory": 1024,
                    "memory_reservation": 512,
                    "port_mappings": [{"container_port": 8080, "name": "http"}],
                    "environment": {"LOG_FORMAT": "json"},
                    "secrets": {"DB_PASSWORD": DB_SECRET, "API_KEY": API_KEY},
                    "health_check": {
                        "command": ["CMD-SHELL", "curl -f http://localhost:8080/health"],
                        "interval": 10,
                        "timeout": 3,
                        "retries": 5,
                        "start_period": 20,
                    },
                    "entry_point": ["/app/run"],
                    "command": ["serve", "--port", "8080"],
                    "working_directory": "/app",
                    "depends_on": [
                        {"container_name": "migrate", "condition": "SUCCESS"},
                        {"container_name": "proxy", "condition": "HEALTHY"},
                    ],
                    "readonly_root_filesystem": True,
                    "ulimits": [{"name": "nofile", "soft_limit": 65536, "hard_limit": 65536}],
                    "mount_points": [
                        {"source_volume": "uploads", "container_path": "/app/uploads"},
                        {"source_volume": "scratch", "container_path": "/tmp"},
                    ],
                },
                {
                    "name": "proxy",
                    "image": "mesh/envoy",
                    "memory_reservation": 256,
                    "port_mappings": [{"container_port": 9901}],
                    "health_check": {"command": ["CMD", "/healthcheck"]},
                    "log_configuration": {
                        "log_driver": "splunk",
                        "options": {"splunk-url": "https://splunk.example.com:8088"},
                        "secret_options": {"splunk-token": SPLUNK_TOKEN},
                    },
                },
                {
                    "name": "migrate",
                    "image": "web",
                    "essential": False,
                    "memory": 256,
                    "command": ["migrate", "--to", "latest"],
                },
            ],
        },
        "service": {
            "name": "web",
            "desired_count": 3,
            "minimum_healthy_percent": 50,
            "maximum_percent": 150,
            "health_check_grace_period_seconds": 60,
            "load_balancers": [
                {"target_group_arn": TARGET_GROUP, "container_name": "web", "container_port": 8080}
            ],
            "network": {"assign_public_ip": True},
            "platform_version": "1.4.0",
            "enable_execute_command": True,
            "tags": {"cost-centre": "cc-42"},
            "propagate_tags": "TASK_DEFINITION",
        },
    }


def target() -> Target:
    return Target(
        name="prod-cluster",
        environments=["prod"],
        roles=["web-server"],
        region="eu-west-1",
        cluster="shiplane-prod",
        deploy_role_arn="arn:aws:iam::123456789012:role/shiplane-deploy",
        subnets=["subnet-0a1b2c3d4e5f60718", "subnet-0123abcd"],
        security_groups=["sg-0a1b2c3d4e5f60718"],
    )


def release(step: EcsServiceStep) -> Release:
    return Release(
        project="shop",
        version="2.0.0",
        images={
            repo: ImageRef(
                repository=repo, registry=REGISTRY, tag="2.0.0", digest="sha256:" + c * 64
            )
            for repo, c in (("web", "a"), ("mesh/envoy", "b"))
        },
        process=[step],
        lifecycle="default",
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
        created_by=TriggeredBy(kind=TriggerKind.API, by="test"),
    )


UNIT = DeploymentUnit(
    deployment_id="prod-0123456789ab",
    project="shop",
    release="2.0.0",
    environment="prod",
    target="prod-cluster",
    step="web-service",
)


def render(step: EcsServiceStep, **kwargs: Any) -> dict[str, Any]:
    return render_task_definition(step, release(step), UNIT, region="eu-west-1", **kwargs)


def containers(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in definition["containerDefinitions"]}


@pytest.fixture(scope="module")
def step() -> EcsServiceStep:
    return EcsServiceStep.model_validate(rich())


# --------------------------------------------------------------------------- task definition


def test_rich_task_definition_is_a_valid_register_call(step: EcsServiceStep) -> None:
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    validate_parameters(render(step), shape)  # raises ParamValidationError


def test_task_level_fields(step: EcsServiceStep) -> None:
    definition = render(step)
    assert (definition["cpu"], definition["memory"]) == ("1024", "3072")
    assert definition["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    assert definition["taskRoleArn"].endswith("role/web-task")
    assert definition["executionRoleArn"].endswith("role/web-exec")
    assert definition["volumes"] == [
        {
            "name": "uploads",
            "efsVolumeConfiguration": {
                "fileSystemId": "fs-0123456789abcdef0",
                "transitEncryption": "ENABLED",
                "authorizationConfig": {
                    "iam": "ENABLED",
                    "accessPointId": "fsap-0123456789abcdef0",
                },
            },
        },
        {"name": "scratch"},
    ]
    tags = {t["key"]: t["value"] for t in definition["tags"]}
    assert tags["team"] == "payments"
    assert tags["shiplane:deployment"] == "prod-0123456789ab"


def test_container_fields(step: EcsServiceStep) -> None:
    web = containers(render(step))["web"]
    assert web["portMappings"] == [{"containerPort": 8080, "protocol": "tcp", "name": "http"}]
    assert (web["cpu"], web["memory"], web["memoryReservation"]) == (512, 1024, 512)
    assert web["healthCheck"] == {
        "command": ["CMD-SHELL", "curl -f http://localhost:8080/health"],
        "interval": 10,
        "timeout": 3,
        "retries": 5,
        "startPeriod": 20,
    }
    assert web["entryPoint"] == ["/app/run"]
    assert web["command"] == ["serve", "--port", "8080"]
    assert web["workingDirectory"] == "/app"
    assert web["dependsOn"] == [
        {"containerName": "migrate", "condition": "SUCCESS"},
        {"containerName": "proxy", "condition": "HEALTHY"},
    ]
    assert web["readonlyRootFilesystem"] is True
    assert web["ulimits"] == [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}]
    assert web["mountPoints"] == [
        {"sourceVolume": "uploads", "containerPath": "/app/uploads", "readOnly": False},
        {"sourceVolume": "scratch", "containerPath": "/tmp", "readOnly": False},
    ]


def test_secrets_are_value_from_references_never_environment(step: EcsServiceStep) -> None:
    # A sensitive variable (resolved by evaluation) and the ARNs the step names directly.
    settings = {
        "web": ContainerSettings(
            environment=[{"name": "LOG_FORMAT", "value": "json"}],
            secrets=[{"name": "SESSION_KEY", "valueFrom": "arn:aws:ssm:eu-west-1:1:parameter/k"}],
            command=["serve"],
        )
    }
    web = containers(render(step, settings=settings))["web"]
    assert web["environment"] == [{"name": "LOG_FORMAT", "value": "json"}]
    assert {s["name"]: s["valueFrom"] for s in web["secrets"]} == {
        "SESSION_KEY": "arn:aws:ssm:eu-west-1:1:parameter/k",
        "DB_PASSWORD": DB_SECRET,
        "API_KEY": API_KEY,
    }
    assert DB_SECRET not in json.dumps(web["environment"])


def test_logging_automatic_or_explicit(step: EcsServiceStep) -> None:
    rendered = containers(render(step))
    for name in ("web", "migrate"):
        assert rendered[name]["logConfiguration"] == {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": "/shiplane/shop/prod",
                "awslogs-region": "eu-west-1",
                "awslogs-stream-prefix": name,
            },
        }
    assert rendered["proxy"]["logConfiguration"] == {
        "logDriver": "splunk",
        "options": {"splunk-url": "https://splunk.example.com:8088"},
        "secretOptions": [{"name": "splunk-token", "valueFrom": SPLUNK_TOKEN}],
    }


def test_automatic_logging_needs_the_region(step: EcsServiceStep) -> None:
    with pytest.raises(ConfigurationError) as caught:
        render_task_definition(step, release(step), UNIT)
    assert caught.value.details["field"] == "steps.web-service.task.logging"


def test_without_logging_no_log_configuration() -> None:
    data = rich()
    data["task"]["logging"] = {"mode": "none"}
    step = EcsServiceStep.model_validate(data)
    rendered = containers(render_task_definition(step, release(step), UNIT))
    assert "logConfiguration" not in rendered["web"]
    assert rendered["proxy"]["logConfiguration"]["logDriver"] == "splunk"
    assert "LogGroup" not in render_service_stack(step, target())["Resources"]


# --------------------------------------------------------------------------- service stack


def stack(step: EcsServiceStep, tenant: str = "untenanted") -> dict[str, Any]:
    return render_service_stack(step, target(), tenant, project="shop", environment="prod")


def test_service_fields(step: EcsServiceStep) -> None:
    rendered = stack(step)
    service = rendered["Resources"]["Service"]
    props = service["Properties"]
    assert props["DesiredCount"] == 3
    assert props["DeploymentConfiguration"]["MinimumHealthyPercent"] == 50
    assert props["DeploymentConfiguration"]["MaximumPercent"] == 150
    assert props["HealthCheckGracePeriodSeconds"] == 60
    assert props["LoadBalancers"] == [
        {"TargetGroupArn": TARGET_GROUP, "ContainerName": "web", "ContainerPort": 8080}
    ]
    assert props["PlatformVersion"] == "1.4.0"
    assert props["EnableExecuteCommand"] is True
    assert props["PropagateTags"] == "TASK_DEFINITION"
    assert {"Key": "cost-centre", "Value": "cc-42"} in props["Tags"]
    # Only assign_public_ip is overridden: subnets and groups stay the target's.
    assert props["NetworkConfiguration"]["AwsvpcConfiguration"] == {
        "Subnets": ["subnet-0a1b2c3d4e5f60718", "subnet-0123abcd"],
        "SecurityGroups": ["sg-0a1b2c3d4e5f60718"],
        "AssignPublicIp": "ENABLED",
    }
    assert service["DependsOn"] == ["LogGroup"]
    assert rendered["Resources"]["LogGroup"]["Properties"]["LogGroupName"] == "/shiplane/shop/prod"
    assert rendered["Resources"]["LogGroup"]["Properties"]["RetentionInDays"] == 14


def test_step_network_overrides_the_target() -> None:
    data = rich()
    data["service"]["network"] = {"subnets": ["subnet-0fffffff"], "security_groups": []}
    props = stack(EcsServiceStep.model_validate(data))["Resources"]["Service"]["Properties"]
    assert props["NetworkConfiguration"]["AwsvpcConfiguration"] == {
        "Subnets": ["subnet-0fffffff"],
        "SecurityGroups": [],
        "AssignPublicIp": "DISABLED",  # not overridden: the target's
    }


def test_propagate_tags_none_leaves_the_property_out() -> None:
    data = rich()
    data["service"]["propagate_tags"] = "NONE"
    props = stack(EcsServiceStep.model_validate(data))["Resources"]["Service"]["Properties"]
    assert "PropagateTags" not in props


def test_log_group_defaults_and_is_per_tenant_stack() -> None:
    data = rich()
    data["task"]["logging"] = {"mode": "automatic"}
    step = EcsServiceStep.model_validate(data)
    group = stack(step, "acme")["Resources"]["LogGroup"]["Properties"]
    assert group == {
        "LogGroupName": "/shiplane/shop/prod/acme",
        "RetentionInDays": 30,
        "Tags": group["Tags"],
    }
    with pytest.raises(ConfigurationError):
        render_service_stack(step, target())  # no project/environment to name the group


def test_rich_stack_passes_cfn_lint(step: EcsServiceStep) -> None:
    rendered = stack(step)
    # A deliberately broken copy proves, in the same lint run, that lint checks at all.
    broken = copy.deepcopy(rendered["Resources"]["LogGroup"])
    broken["Properties"].update(LogGroupName="/shiplane/broken", RetentionInDays=8)
    rendered["Resources"]["BrokenCopy"] = broken
    matches = lint(json.dumps(rendered), config=ManualArgs(regions=["eu-west-1"]))

    assert any(m.path[:2] == ["Resources", "BrokenCopy"] for m in matches)
    findings = [
        (m.rule.id, m.message) for m in matches if m.path[:2] != ["Resources", "BrokenCopy"]
    ]
    assert findings == []


# --------------------------------------------------------------------------- bad input


def containers_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in data["task"]["containers"]}


def _cpu_memory(d: dict[str, Any]) -> None:
    d["task"].update(cpu=256, memory=4096)


def _cpu_size(d: dict[str, Any]) -> None:
    d["task"].update(cpu=300)


def _ghost_dependency(d: dict[str, Any]) -> None:
    containers_of(d)["web"]["depends_on"].append({"container_name": "ghost"})


def _healthy_without_check(d: dict[str, Any]) -> None:
    containers_of(d)["web"]["depends_on"][0]["condition"] = "HEALTHY"


def _success_on_essential(d: dict[str, Any]) -> None:
    containers_of(d)["migrate"]["essential"] = True


def _missing_volume(d: dict[str, Any]) -> None:
    containers_of(d)["web"]["mount_points"].append(
        {"source_volume": "nope", "container_path": "/x"}
    )


def _lb_container(d: dict[str, Any]) -> None:
    d["service"]["load_balancers"][0]["container_name"] = "ghost"


def _lb_port(d: dict[str, Any]) -> None:
    d["service"]["load_balancers"][0]["container_port"] = 9999


def _secret_arn(d: dict[str, Any]) -> None:
    containers_of(d)["web"]["secrets"]["BAD"] = "plain-text-password"


def _secret_in_environment(d: dict[str, Any]) -> None:
    containers_of(d)["web"]["environment"]["API_KEY"] = "x"


def _secrets_without_role(d: dict[str, Any]) -> None:
    d["task"]["logging"] = {"mode": "none"}
    containers_of(d)["proxy"].pop("log_configuration")
    del d["task"]["execution_role_arn"]


def _logging_without_role(d: dict[str, Any]) -> None:
    for c in d["task"]["containers"]:
        c.pop("secrets", None)
        c.pop("log_configuration", None)
    del d["task"]["execution_role_arn"]


def _health_command(d: dict[str, Any]) -> None:
    containers_of(d)["proxy"]["health_check"]["command"] = ["curl", "localhost"]


def _ulimit(d: dict[str, Any]) -> None:
    containers_of(d)["web"]["ulimits"][0]["soft_limit"] = 70000


def _efs_root(d: dict[str, Any]) -> None:
    d["task"]["volumes"][0]["efs"]["root_directory"] = "/data"


def _efs_encryption(d: dict[str, Any]) -> None:
    d["task"]["volumes"][0]["efs"]["transit_encryption"] = False


def _propagate(d: dict[str, Any]) -> None:
    d["service"]["propagate_tags"] = "EVERYTHING"


def _platform(d: dict[str, Any]) -> None:
    d["service"]["platform_version"] = "newest"


def _reserved_tag(d: dict[str, Any]) -> None:
    d["service"]["tags"]["shiplane:project"] = "other"


def _reservation(d: dict[str, Any]) -> None:
    containers_of(d)["web"]["memory_reservation"] = 2048


def _shared_port(d: dict[str, Any]) -> None:
    containers_of(d)["proxy"]["port_mappings"] = [{"container_port": 8080}]


def _too_much_memory(d: dict[str, Any]) -> None:
    containers_of(d)["web"]["memory"] = 3000


def _subnet(d: dict[str, Any]) -> None:
    d["service"]["network"]["subnets"] = ["subnet-xyz"]


def _retention(d: dict[str, Any]) -> None:
    d["task"]["logging"]["retention_days"] = 10


def _no_essential(d: dict[str, Any]) -> None:
    for c in d["task"]["containers"]:
        c["essential"] = False
        c.pop("depends_on", None)


def _grace(d: dict[str, Any]) -> None:
    d["service"]["health_check_grace_period_seconds"] = -1


def _condition(d: dict[str, Any]) -> None:
    containers_of(d)["web"]["depends_on"][0]["condition"] = "READY"


BAD_INPUT = [
    (_cpu_memory, ["task.cpu=256 with task.memory=4096", "512, 1024, 2048"]),
    (_cpu_size, ["task.cpu=300"]),
    (_ghost_dependency, ["containers.web.depends_on", "'ghost'"]),
    (_healthy_without_check, ["containers.web.depends_on", "HEALTHY", "'migrate'"]),
    (_success_on_essential, ["containers.web.depends_on", "essential"]),
    (_missing_volume, ["containers.web.mount_points", "'nope'", "uploads, scratch"]),
    (_lb_container, ["service.load_balancers.0", "container_name 'ghost'", "8080"]),
    (_lb_port, ["service.load_balancers.0", "'web'", "container_port 9999"]),
    (_secret_arn, ["secrets.BAD"]),
    (_secret_in_environment, ["API_KEY", "environment and secrets"]),
    (_secrets_without_role, ["task.execution_role_arn", "web"]),
    (_logging_without_role, ["task.execution_role_arn", "automatic"]),
    (_health_command, ["health_check.command", "'curl'"]),
    (_ulimit, ["ulimits.nofile", "soft_limit"]),
    (_efs_root, ["efs.root_directory"]),
    (_efs_encryption, ["efs.transit_encryption"]),
    (_propagate, ["service.propagate_tags"]),
    (_platform, ["service.platform_version"]),
    (_reserved_tag, ["service.tags", "'shiplane:project'"]),
    (_reservation, ["container 'web'", "memory_reservation"]),
    (_shared_port, ["containers.proxy.port_mappings", "8080/tcp", "'web'"]),
    (_too_much_memory, ["task.memory"]),
    (_subnet, ["service.network.subnets"]),
    (_retention, ["task.logging.retention_days"]),
    (_no_essential, ["essential"]),
    (_grace, ["service.health_check_grace_period_seconds"]),
    (_condition, ["depends_on.0.condition"]),
]


@pytest.mark.parametrize(
    ("change", "expected"), BAD_INPUT, ids=[change.__name__[1:] for change, _ in BAD_INPUT]
)
def test_bad_input_is_refused_naming_the_field(change: Any, expected: list[str]) -> None:
    data = rich()
    change(data)
    with pytest.raises(ValidationError) as caught:
        EcsServiceStep.model_validate(data)
    message = str(caught.value)
    for text in expected:
        assert text in message, message


def test_every_fargate_combination_is_accepted() -> None:
    accepted = 0
    for cpu, memories in {
        256: [512, 1024, 2048],
        512: [1024, 2048, 3072, 4096],
        1024: list(range(2048, 8193, 1024)),
        2048: list(range(4096, 16385, 1024)),
        4096: list(range(8192, 30721, 1024)),
        8192: list(range(16384, 61441, 4096)),
        16384: list(range(32768, 122881, 8192)),
    }.items():
        for memory in memories:
            data = rich()
            data["task"].update(cpu=cpu, memory=memory)
            for container in data["task"]["containers"]:
                for key in ("cpu", "memory", "memory_reservation"):
                    container.pop(key, None)
            EcsServiceStep.model_validate(data)
            accepted += 1
    assert accepted == 3 + 4 + 7 + 13 + 23 + 12 + 12
    for cpu, memory in [(512, 512), (1024, 1024), (8192, 18432), (16384, 36864), (4096, 31744)]:
        data = rich()
        data["task"].update(cpu=cpu, memory=memory)
        with pytest.raises(ValidationError, match=f"task.cpu={cpu} with task.memory={memory}"):
            EcsServiceStep.model_validate(data)
