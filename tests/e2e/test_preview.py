"""`shiplane local render` / `diff` on the local cloud: what a deployment of 1.1.0 to dev
would change while 1.0.0 runs there, without registering or deploying anything."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from shiplane_local.cli import app
from shiplane_local.cloud import LocalCloud
from tests.e2e.release_model_fixtures import World, environments, phase

pytestmark = pytest.mark.e2e
runner = CliRunner()


def shiplane(cloud: LocalCloud, *args: str) -> Any:
    result = runner.invoke(app, ["local", *args, "--endpoint", cloud.endpoint_url])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.fixture
def world(cloud: LocalCloud, store: Any) -> World:
    w = World(cloud, store, "pv")
    w.apply(
        {
            "environments": environments("dev", "prod"),
            "lifecycles": [
                {
                    "name": f"lc-{w.id}",
                    "phases": [
                        phase("development", ("dev", "manual")),
                        phase("production", ("prod", "manual")),
                    ],
                }
            ],
            "targets": [w.target("dev"), w.target("prod")],
            "projects": [w.project_document(f"lc-{w.id}")],
        }
    )
    return w


def _leftovers(w: World) -> tuple[list[str], list[str]]:
    """The stack's change sets and the dev family's task definition revisions."""
    change_sets = w.cloud.client("cloudformation").list_change_sets(StackName=w.stack_name("dev"))[
        "Summaries"
    ]
    revisions = w.cloud.client("ecs").list_task_definitions(familyPrefix=f"{w.family}-dev")[
        "taskDefinitionArns"
    ]
    return [c["ChangeSetName"] for c in change_sets], sorted(revisions)


def test_diff_of_the_next_release_shows_only_its_image(world: World, cloud: LocalCloud) -> None:
    w = world
    first = w.push("1.0.0")
    w.deploy("1.0.0", "dev")
    assert w.running_image("dev") == w.image(first)
    second = w.push("1.1.0")
    before = _leftovers(w)

    rendered = json.loads(shiplane(cloud, "render", w.project, "1.1.0", "dev", "--output", "json"))
    [unit] = rendered["units"]
    assert rendered["blocked_reason"] is None
    [container] = unit["task_definition"]["containerDefinitions"]
    assert container["image"] == w.image(second)
    assert unit["stack"]["parameters"] == {"TaskDefinitionArn": "<registered at deploy time>"}
    assert unit["stack"]["template"]["Resources"]["Service"]["Type"] == "AWS::ECS::Service"

    diffed = json.loads(shiplane(cloud, "diff", w.project, "1.1.0", "dev", "--output", "json"))
    [unit] = diffed["units"]
    assert unit["task_definition"] == [
        {
            "path": "containerDefinitions[app].image",
            "change": "changed",
            "old": w.image(first),
            "new": w.image(second),
        }
    ]
    assert unit["stack"]["exists"] is True
    assert unit["stack"]["summary"] == "no changes"
    assert unit["stack"]["changes"] == []

    text = " ".join(shiplane(cloud, "diff", w.project, "1.1.0", "dev").split())
    assert f"~ containerDefinitions[app].image: {w.image(first)} → {w.image(second)}" in text
    assert _leftovers(w) == before  # no change set, no new revision left behind
    assert before[0] == []


def test_prod_renders_but_says_which_phase_blocks_it(world: World, cloud: LocalCloud) -> None:
    w = world
    w.push("1.0.0")
    diffed = json.loads(shiplane(cloud, "diff", w.project, "1.0.0", "prod", "--output", "json"))
    assert diffed["blocked_by_phase"] == "development"
    [unit] = diffed["units"]
    assert unit["running_task_definition_arn"] is None
    assert unit["stack"]["exists"] is False
    assert unit["stack"]["summary"] == "the stack would be created"
    assert {c["logical_id"] for c in unit["stack"]["changes"]} >= {"Service"}
