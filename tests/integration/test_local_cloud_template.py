"""The local cloud on Shiplane's own template.yaml: the wiring a user relies on.

Skipped while the repository has no template.yaml yet.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shiplane_local import LocalCloud

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (ROOT / "template.yaml").is_file(), reason="template.yaml does not exist yet"
)


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(ROOT, rollout_delay=0.05) as local:
        local.wait_idle()
        yield local


def _executions_with(cloud: LocalCloud, text: str) -> list[dict[str, str]]:
    sfn = cloud.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=cloud.outputs["StateMachineArn"])["executions"]
    described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]
    return [d for d in described if text in d["input"]]


def test_stack_is_created_with_the_outputs_others_rely_on(cloud: LocalCloud) -> None:
    assert {"TableName", "StateMachineArn"} <= set(cloud.outputs)
    status = cloud.client("cloudformation").describe_stacks(StackName="shiplane")["Stacks"][0]
    assert status["StackStatus"] == "CREATE_COMPLETE"
    definition = cloud.client("stepfunctions").describe_state_machine(
        stateMachineArn=cloud.outputs["StateMachineArn"]
    )["definition"]
    assert "${" not in definition  # every DefinitionSubstitution was applied


def test_every_function_points_at_its_code(cloud: LocalCloud) -> None:
    assert cloud.translation is not None
    assert cloud.translation.code_dirs, "the template declares functions"
    for logical_id, code_dir in cloud.translation.code_dirs.items():
        assert (code_dir / "app.py").is_file(), logical_id


def test_a_push_of_an_unknown_repository_runs_the_pipeline_to_success(
    cloud: LocalCloud,
) -> None:
    digest = cloud.push_image("nobody-uses-this", "1.0.0")
    cloud.wait_idle()

    started = _executions_with(cloud, digest)
    assert len(started) == 1
    assert started[0]["status"] == "SUCCEEDED", started[0]
    assert not cloud.activity.errors


def test_a_second_cloud_in_the_same_process_starts_cold(cloud: LocalCloud) -> None:
    first_table = cloud.outputs["TableName"]
    cloud.stop()
    assert os.environ.get("TABLE_NAME") != first_table
    with LocalCloud(ROOT, rollout_delay=0.05) as second:
        assert second.outputs["TableName"] != first_table
        digest = second.push_image("nobody-uses-this", "2.0.0")
        second.wait_idle()
        started = _executions_with(second, digest)
        assert [e["status"] for e in started] == ["SUCCEEDED"]
        assert second.startup_seconds < 10
    print(json.dumps({"second_start_seconds": round(second.startup_seconds, 2)}))
