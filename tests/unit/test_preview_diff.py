"""The task-definition diff of a preview: matched by name, blind to order and to what
ECS adds on its own."""

from __future__ import annotations

from typing import Any

import pytest

from shiplane.services.preview import task_definition_changes


def definition(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "family": "web-dev",
        "cpu": "256",
        "memory": "512",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [
            {
                "name": "web",
                "image": "repo/web@sha256:1",
                "essential": True,
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                "environment": [
                    {"name": "LOG_LEVEL", "value": "INFO"},
                    {"name": "LOG_FORMAT", "value": "json"},
                ],
                "secrets": [{"name": "DB", "valueFrom": "arn:ssm:/db"}],
            },
            {"name": "sidecar", "image": "repo/side@sha256:9"},
        ],
    }
    return base | overrides


def described(**overrides: Any) -> dict[str, Any]:
    """As ECS describes `definition()`: reordered, with its own fields and defaults."""
    d = definition(**overrides)
    web, sidecar = d["containerDefinitions"]
    web = web | {
        "cpu": 0,
        "environment": list(reversed(web["environment"])),
        "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
        "mountPoints": [],
        "volumesFrom": [],
    }
    return d | {
        "containerDefinitions": [sidecar | {"essential": True}, web],
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web-dev:3",
        "revision": 3,
        "status": "ACTIVE",
        "registeredAt": "2026-11-28T12:00:00Z",
        "requiresAttributes": [{"name": "ecs.capability.task-eni"}],
        "compatibilities": ["EC2", "FARGATE"],
        "placementConstraints": [],
        "volumes": [],
    }


def with_container(name: str, **changes: Any) -> dict[str, Any]:
    d = definition()
    d["containerDefinitions"] = [
        c | changes if c["name"] == name else c for c in d["containerDefinitions"]
    ]
    return d


def env(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in pairs]


CASES = [
    ("the same, as described", definition(), []),
    (
        "a new image",
        with_container("web", image="repo/web@sha256:2"),
        ["~ containerDefinitions[web].image: repo/web@sha256:1 → repo/web@sha256:2"],
    ),
    (
        "an environment value changed",
        with_container("web", environment=env(("LOG_FORMAT", "json"), ("LOG_LEVEL", "DEBUG"))),
        ["~ containerDefinitions[web].environment.LOG_LEVEL: INFO → DEBUG"],
    ),
    (
        "a variable added and one removed",
        with_container("web", environment=env(("LOG_LEVEL", "INFO"), ("REGION", "eu"))),
        [
            "- containerDefinitions[web].environment.LOG_FORMAT: json",
            "+ containerDefinitions[web].environment.REGION: eu",
        ],
    ),
    (
        "a secret's reference changed",
        with_container("web", secrets=[{"name": "DB", "valueFrom": "arn:ssm:/db2"}]),
        ["~ containerDefinitions[web].secrets.DB: arn:ssm:/db → arn:ssm:/db2"],
    ),
    ("a bigger task", definition(cpu="512"), ["~ cpu: 256 → 512"]),
    (
        "a container removed",
        definition(containerDefinitions=definition()["containerDefinitions"][:1]),
        [
            "- containerDefinitions[sidecar].image: repo/side@sha256:9",
            "- containerDefinitions[sidecar].name: sidecar",
        ],
    ),
]


@pytest.mark.parametrize(
    ("rendered", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_changes_against_what_runs(rendered: dict[str, Any], expected: list[str]) -> None:
    assert [str(c) for c in task_definition_changes(described(), rendered)] == expected


def test_nothing_running_means_every_field_is_added() -> None:
    changes = task_definition_changes(None, definition())
    assert {c.change for c in changes} == {"added"}
    assert "containerDefinitions[web].image" in {c.path for c in changes}


def test_shiplane_tags_never_count_as_a_change() -> None:
    tagged = definition(tags=[{"key": "shiplane:release", "value": "1.1.0"}])
    assert task_definition_changes(described(), tagged) == []
