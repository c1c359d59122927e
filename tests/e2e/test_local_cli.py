"""The `shiplane local …` commands against a running local cloud, as a person in another
terminal uses them: apply, push, approvals, approve/reject, secret, promote, status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from shiplane.domain.models import DeploymentStatus
from shiplane_local.cli import app
from shiplane_local.cloud import LocalCloud
from tests.e2e.release_model_fixtures import World, environments, phase, wait_for

pytestmark = pytest.mark.e2e
runner = CliRunner()


class Ran:
    def __init__(self, exit_code: int, output: str, exception: BaseException | None) -> None:
        self.exit_code = exit_code
        self.output = " ".join(output.split())  # the terminal wraps long lines
        self.exception = exception

    def __repr__(self) -> str:
        return f"exit {self.exit_code}: {self.output!r} {self.exception!r}"


def shiplane(cloud: LocalCloud, *args: str, stdin: str | None = None) -> Ran:
    result = runner.invoke(app, ["local", *args, "--endpoint", cloud.endpoint_url], input=stdin)
    return Ran(result.exit_code, result.output, result.exception)


@pytest.fixture
def world(cloud: LocalCloud, store: Any, tmp_path: Path) -> World:
    w = World(cloud, store, "cli")
    gate = f"gate-{w.id}"
    w.gate = gate  # type: ignore[attr-defined]
    document = {
        "environments": environments("dev", gate, approval=(gate,)),
        "lifecycles": [
            {
                "name": f"lc-{w.id}",
                "phases": [
                    phase("development", ("dev", "automatic")),
                    phase("gated", (gate, "automatic")),
                ],
            }
        ],
        "targets": [w.target(e) for e in ("dev", gate)],
        "projects": [w.project_document(f"lc-{w.id}")],
    }
    path = tmp_path / "shiplane.yaml"
    path.write_text(yaml.safe_dump(document))
    result = shiplane(cloud, "apply", str(path))
    assert result.exit_code == 0, result.output
    assert "applied" in result.output
    from shiplane_local.targets import prepare_targets

    prepare_targets(cloud, _config(document))
    return w


def _config(document: dict[str, Any]) -> Any:
    from shiplane.domain.models import Configuration

    return Configuration.model_validate(document)


def pending(w: World) -> list[Any]:
    return [a for a in w.store.list_approvals(w.project) if a.status == "PENDING"]


def test_push_approve_and_reject_from_the_command_line(world: World, cloud: LocalCloud) -> None:
    w = world
    result = shiplane(cloud, "push", f"{w.repository}:1.0.0")
    assert result.exit_code == 0 and "pushed" in result.output
    [approval] = wait_for("an approval for 1.0.0", lambda: pending(w))

    listed = shiplane(cloud, "approvals", "--project", w.project)
    assert approval.deployment_id in listed.output

    approved = shiplane(
        cloud, "approve", w.project, approval.deployment_id, "--by", "ana", "--note", "CHG-7"
    )
    assert approved.exit_code == 0 and "approved by ana" in approved.output
    w.settle()
    [deployment] = w.deployments(w.gate)  # type: ignore[attr-defined]
    assert deployment.status is DeploymentStatus.SUCCEEDED

    again = shiplane(cloud, "reject", w.project, approval.deployment_id, "--by", "bo")
    assert again.exit_code == 2 and "already approved by ana" in again.output

    shiplane(cloud, "push", f"{w.repository}:1.1.0")
    [second] = wait_for("an approval for 1.1.0", lambda: pending(w))
    rejected = shiplane(
        cloud, "reject", w.project, second.deployment_id, "--by", "bo", "--note", "freeze"
    )
    assert rejected.exit_code == 0 and "rejected by bo" in rejected.output
    w.settle()
    refused = w.store.get_deployment(w.project, second.deployment_id)
    assert refused.status is DeploymentStatus.REJECTED
    assert refused.reason == "rejected by bo: freeze"

    status = shiplane(cloud, "status", "--project", w.project)
    assert status.exit_code == 0, status
    assert "REJECTED" in status.output and "SUCCEEDED" in status.output


@pytest.fixture
def plain_world(cloud: LocalCloud, store: Any) -> World:
    w = World(cloud, store, "clip")
    w.apply(
        {
            "environments": environments("dev"),
            "lifecycles": [
                {"name": f"lc-{w.id}", "phases": [phase("development", ("dev", "automatic"))]}
            ],
            "targets": [w.target("dev")],
            "projects": [w.project_document(f"lc-{w.id}")],
        }
    )
    return w


def test_promote_and_rollback_from_the_command_line(plain_world: World, cloud: LocalCloud) -> None:
    w = plain_world
    first = w.push("1.0.0")
    w.push("1.1.0")
    result = shiplane(cloud, "promote", w.project, "1.0.0", "dev")
    assert result.exit_code == 0 and "started" in result.output
    w.settle()
    rollback = [d for d in w.deployments("dev") if d.mode.value == "rollback"]
    assert [d.release for d in rollback] == ["1.0.0"]
    assert w.running_image("dev") == w.image(first)


def test_a_secret_is_stored_and_only_its_reference_printed(world: World, cloud: LocalCloud) -> None:
    result = shiplane(cloud, "secret", world.project, "DbPassword", stdin="correct horse\n")
    assert result.exit_code == 0, result.output
    assert "correct horse" not in result.output
    ref = result.output.split("secret_ref:")[1].strip()
    assert ref.endswith(f"/shiplane/{world.project}/DbPassword")
    parameter = cloud.client("ssm").get_parameter(Name=ref.split(":parameter")[1])["Parameter"]
    assert parameter["Type"] == "SecureString"


def test_a_bad_configuration_is_refused_with_the_field(cloud: LocalCloud, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"environments": [{"name": "dev"}], "lifecycles": []}))
    result = shiplane(cloud, "apply", str(path))
    assert result.exit_code == 2
    assert "lifecycles" in result.output
