"""Convert, proven on the local cloud: a rich `ecs-service` step (three containers,
secrets by ARN and through a sensitive variable, health checks, a load-balancer target
group, an EFS volume, automatic logging) is deployed to two environments; the step is then
replaced in place by its conversion, and a release with the very same images is deployed
to the same two environments. The task definitions are equal field by field after
normalisation, and the services' settings are equal."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.adapters.ssm import SsmSecrets
from shiplane.domain.models import CloudFormationStep, DeploymentStatus
from shiplane.services.convert import export_converted, replace_with_converted
from shiplane.services.variables import store_sensitive_value
from shiplane_local.cloud import LocalCloud
from tests.e2e.release_model_fixtures import EXECUTION_ROLE, World, environments, phase

pytestmark = pytest.mark.e2e

ENVIRONMENTS = ("dev", "staging")
TARGET_GROUP = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/convert-e2e/0123456789abcdef"
)
API_KEY = "arn:aws:ssm:us-east-1:123456789012:parameter/shiplane/convert-e2e/api-key"
# What ECS adds, or what names the deployment rather than the task (DESIGN §1.4).
DROPPED = {
    "family",
    "revision",
    "taskDefinitionArn",
    "status",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "tags",
    "requiresAttributes",
    "compatibilities",
}
SERVICE_FIELDS = (
    "launchType",
    "desiredCount",
    "deploymentConfiguration",
    "networkConfiguration",
    "loadBalancers",
    "platformVersion",
    "propagateTags",
    "enableExecuteCommand",
    "healthCheckGracePeriodSeconds",
    "clusterArn",
    "serviceName",
)


def rich_step(w: World) -> dict[str, Any]:
    check = {"interval": 10, "timeout": 5, "retries": 3, "start_period": 15}
    return {
        "name": w.step,
        "type": "ecs-service",
        "target_role": w.role,
        "task": {
            "family": w.family,
            "cpu": 1024,
            "memory": 2048,
            "cpu_architecture": "ARM64",
            "task_role_arn": "arn:aws:iam::123456789012:role/shiplane-task-convert-e2e",
            "execution_role_arn": EXECUTION_ROLE,
            "logging": {"mode": "automatic", "retention_days": 14},
            "tags": {"team": "payments"},
            "volumes": [
                {
                    "name": "shared",
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
                    "name": "app",
                    "image": w.repository,
                    "cpu": 512,
                    "memory": 1024,
                    "port_mappings": [{"container_port": 8080, "name": "http"}],
                    "environment": {
                        "DB_PASSWORD": "#{DbPassword}",
                        "LOG_LEVEL": "#{LogLevel}",
                        "ENVIRONMENT": "#{Shiplane.Environment.Name}",
                    },
                    "secrets": {"API_KEY": API_KEY},
                    "health_check": {"command": ["CMD-SHELL", "curl -f localhost:8080"], **check},
                    "command": ["serve", "--env", "#{Shiplane.Environment.Name}"],
                    "working_directory": "/srv",
                    "depends_on": [{"container_name": "migrate", "condition": "SUCCESS"}],
                    "readonly_root_filesystem": True,
                    "ulimits": [{"name": "nofile", "soft_limit": 4096, "hard_limit": 8192}],
                    "mount_points": [
                        {"source_volume": "shared", "container_path": "/data"},
                        {"source_volume": "scratch", "container_path": "/tmp"},
                    ],
                },
                {
                    "name": "sidecar",
                    "image": w.repository,
                    "essential": False,
                    "memory_reservation": 128,
                    "entry_point": ["/bin/sidecar"],
                    "port_mappings": [{"container_port": 9901}],
                    "health_check": {"command": ["CMD", "/bin/sidecar", "--check"], **check},
                    "mount_points": [
                        {"source_volume": "shared", "container_path": "/data", "read_only": True}
                    ],
                },
                {
                    "name": "migrate",
                    "image": w.repository,
                    "essential": False,
                    "memory": 256,
                    "command": ["migrate", "up"],
                    "environment": {"DB_PASSWORD": "#{DbPassword}"},
                },
            ],
        },
        "service": {
            "name": w.svc,
            "desired_count": 2,
            "minimum_healthy_percent": 50,
            "maximum_percent": 150,
            "health_check_grace_period_seconds": 60,
            "load_balancers": [
                {"target_group_arn": TARGET_GROUP, "container_name": "app", "container_port": 8080}
            ],
            "platform_version": "1.4.0",
            "enable_execute_command": True,
            "propagate_tags": "TASK_DEFINITION",
            "tags": {"team": "payments"},
        },
        "wait": {"mode": "complete", "timeout_seconds": 120},
    }


def _by_name(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: str(i.get("name", i.get("containerPath", ""))))


def normalised(definition: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in definition.items() if k not in DROPPED}
    containers = []
    for container in out.get("containerDefinitions", []):
        for key in ("environment", "secrets"):
            if key in container:
                container[key] = _by_name(container[key])
        containers.append(container)
    out["containerDefinitions"] = sorted(containers, key=lambda c: c["name"])
    if "volumes" in out:
        out["volumes"] = _by_name(out["volumes"])
    return out


def service_settings(service: dict[str, Any]) -> dict[str, Any]:
    settings = {k: service.get(k) for k in SERVICE_FIELDS}
    config = copy.deepcopy(settings["deploymentConfiguration"] or {})
    settings["deploymentConfiguration"] = config
    return settings


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            found += differences(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def succeeded(w: World, release: str, environment: str) -> bool:
    return any(
        d.release == release and d.status is DeploymentStatus.SUCCEEDED
        for d in w.deployments(environment)
    )


def test_converted_step_deploys_the_same_task_definition_and_service(
    cloud: LocalCloud, store: DynamoStore
) -> None:
    w = World(cloud, store, "cv")
    lifecycle = f"lc-{w.id}"
    password = store_sensitive_value(
        w.project, "DbPassword", "pw-not-in-any-template", SsmSecrets(cloud.client("ssm"))
    )
    # the secret referenced by ARN exists too: ECS reads every secret before a task starts
    cloud.client("ssm").put_parameter(
        Name=API_KEY.split(":parameter", 1)[1], Value="key", Type="SecureString", Overwrite=True
    )
    project = w.project_document(
        lifecycle,
        variables=[
            {"name": "DbPassword", "sensitive": True, "secret_ref": password.secret_ref},
            {"name": "LogLevel", "value": "debug"},
            {"name": "LogLevel", "value": "info", "scope": {"environments": ["staging"]}},
        ],
    )
    project["steps"] = [rich_step(w)]
    w.apply(
        {
            "environments": environments(*ENVIRONMENTS),
            "lifecycles": [
                {
                    "name": lifecycle,
                    "phases": [phase("all", *((e, "automatic") for e in ENVIRONMENTS))],
                }
            ],
            "targets": [w.target(e) for e in ENVIRONMENTS],
            "projects": [project],
        }
    )

    # The original step, to both environments.
    w.push("1.0.0")
    for environment in ENVIRONMENTS:
        (deployment,) = w.deployments(environment)
        assert deployment.status is DeploymentStatus.SUCCEEDED, deployment.reason
    original = {e: (w.task_definition(e), w.service(e)) for e in ENVIRONMENTS}

    # Read-only export first: nothing changes.
    exported = export_converted(w.project, w.step, store)
    assert store.get_project(w.project).step(w.step).type == "ecs-service"
    assert password.secret_ref and password.secret_ref in exported.yaml
    assert "pw-not-in-any-template" not in exported.yaml

    # In place, then a release with the same images and the converted process.
    replaced = replace_with_converted(w.project, w.step, store)
    assert replaced.converted == exported.converted
    saved = store.get_project(w.project)
    assert isinstance(saved.step(w.step), CloudFormationStep)
    first = store.get_release(w.project, "1.0.0")
    assert first is not None
    second = first.model_copy(
        update={
            "version": "1.0.0-converted",
            "sequence": store.next_release_sequence(w.project),
            "process": saved.steps,
            "created_at": dt.datetime.now(dt.UTC),
        }
    )
    assert store.create_release(second, [], [])
    for environment in ENVIRONMENTS:
        if not succeeded(w, second.version, environment):  # promotion may have deployed it
            w.deploy(second.version, environment)
        assert succeeded(w, second.version, environment), w.deployments(environment)

    report: dict[str, Any] = {}
    for environment in ENVIRONMENTS:
        before_td, before_svc = original[environment]
        after_td, after_svc = w.task_definition(environment), w.service(environment)
        assert after_td["taskDefinitionArn"] != before_td["taskDefinitionArn"]
        assert after_td["family"] == before_td["family"]
        app = next(c for c in after_td["containerDefinitions"] if c["name"] == "app")
        assert {s["name"] for s in app["secrets"]} == {"API_KEY", "DB_PASSWORD"}
        assert app["healthCheck"] and app["logConfiguration"]["logDriver"] == "awslogs"
        assert after_td["volumes"][0]["efsVolumeConfiguration"]["fileSystemId"]
        assert after_svc["loadBalancers"][0]["targetGroupArn"] == TARGET_GROUP
        td_diff = differences(normalised(before_td), normalised(after_td))
        svc_diff = differences(service_settings(before_svc), service_settings(after_svc))
        report[environment] = {
            "task_definition_fields": sorted(normalised(before_td)),
            "task_definition_differences": td_diff,
            "service_fields": list(SERVICE_FIELDS),
            "service_differences": svc_diff,
        }
    print("Convert equivalence:", json.dumps(report, indent=2))
    for environment, result in report.items():
        assert result["task_definition_differences"] == [], (environment, result)
        assert result["service_differences"] == [], (environment, result)
    # The environment-specific values really differ between the two environments.
    envs = {
        e: {
            v["name"]: v["value"]
            for c in original[e][0]["containerDefinitions"]
            for v in c.get("environment", [])
        }
        for e in ENVIRONMENTS
    }
    assert envs["dev"]["LOG_LEVEL"] == "debug" and envs["staging"]["LOG_LEVEL"] == "info"


def test_convert_on_the_command_line(cloud: LocalCloud, store: DynamoStore) -> None:
    from typer.testing import CliRunner

    from shiplane_local.cli import app

    w = World(cloud, store, "cvcli")
    lifecycle = f"lc-{w.id}"
    w.apply(
        {
            "environments": environments("dev"),
            "lifecycles": [{"name": lifecycle, "phases": [phase("only", ("dev", "manual"))]}],
            "targets": [w.target("dev")],
            "projects": [w.project_document(lifecycle)],
        }
    )
    runner = CliRunner()

    def convert(*args: str) -> Any:
        command = ["local", "convert", w.project, w.step, *args, "--endpoint", cloud.endpoint_url]
        return runner.invoke(app, command)

    exported = convert()
    assert exported.exit_code == 0, exported.output
    assert "type: cloudformation" in exported.output
    assert store.get_project(w.project).step(w.step).type == "ecs-service"
    as_json = convert("--output", "json")
    assert json.loads(as_json.output)["converted"]["type"] == "cloudformation"
    replaced = convert("--replace")
    assert replaced.exit_code == 0, replaced.output
    assert store.get_project(w.project).step(w.step).type == "cloudformation"
    again = convert()
    assert again.exit_code == 2 and "only an ecs-service step" in again.output
