"""The `shiplane` command line over the REST API, against the local cloud's API, as a
person (text) and a script (`-o json`, exit codes) use it: configuration, releases,
deployments through a lifecycle with an approval, watch and logs, rollback, cancel,
status, preview and convert, schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import Configuration
from shiplane_local.cli import app
from shiplane_local.cloud import LocalCloud
from shiplane_local.connection import write_local_state
from shiplane_local.targets import prepare_targets
from tests.e2e.release_model_fixtures import World, environments, phase, wait_for

pytestmark = pytest.mark.e2e
runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as a roomy terminal, whatever width the console found at import."""
    from shiplane_local import commands

    monkeypatch.setattr(commands.console, "width", 200)


FAST = ["--interval", "0.1", "--timeout", "120"]


def cli_lines(text: str) -> str:
    """What the command printed. The local cloud runs the Lambda functions in this process,
    so their one-line JSON logs and metrics land in the same captured stdout; the command's
    own JSON is indented, so none of its lines starts with `{"`."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith('{"'))


class Ran:
    def __init__(self, result: Result) -> None:
        self.exit_code = result.exit_code
        self.stdout = cli_lines(result.stdout)
        self.stderr = cli_lines(result.stderr)
        self.text = " ".join(result.stdout.split())  # the terminal wraps long lines
        self.exception = result.exception

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"exit {self.exit_code}: {self.stdout!r} {self.stderr!r} {self.exception!r}"


def shiplane(cloud: LocalCloud, *args: str, env: dict[str, str] | None = None) -> Ran:
    """The command with the API's URL in SHIPLANE_API_URL, as a script would set it."""
    return Ran(
        runner.invoke(
            app,
            list(args),
            env={"SHIPLANE_API_URL": cloud.api_url, "COLUMNS": "200", **(env or {})},
        )
    )


def ok_json(cloud: LocalCloud, *args: str) -> Any:
    ran = shiplane(cloud, *args, "-o", "json")
    assert ran.exit_code == 0, ran
    return ran.json()


def document_for(w: World) -> dict[str, Any]:
    project = w.project_document(f"lc-{w.id}")
    # Releases come from `release create`, not from pushes.
    project["channels"] = [{"name": "default", "auto_create_releases": False}]
    return {
        "environments": environments("dev", "gate", "prod", approval=("gate",)),
        "lifecycles": [
            {
                "name": f"lc-{w.id}",
                "phases": [
                    phase("development", ("dev", "automatic")),
                    phase("gated", ("gate", "automatic")),
                    phase("production", ("prod", "manual")),
                ],
            }
        ],
        "targets": [w.target(e) for e in ("dev", "gate", "prod")],
        "projects": [project],
    }


@pytest.fixture(scope="module")
def world(cloud: LocalCloud, store: DynamoStore, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The configuration, applied with `shiplane apply`, and three images in ECR."""
    w = World(cloud, store, "cli")
    document = document_for(w)
    path = tmp_path_factory.mktemp("config") / "shiplane.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    applied = shiplane(cloud, "apply", str(path))
    assert applied.exit_code == 0, applied
    prepare_targets(cloud, Configuration.model_validate(document))
    for tag in ("1.0.0", "1.1.0", "1.2.0"):
        w.push(tag)
    return w


def pending_for(cloud: LocalCloud, w: World, release: str) -> dict[str, Any]:
    """The approval a release's gate deployment waits for (its execution waits on it, so
    the cloud is never idle meanwhile)."""

    def found() -> list[dict[str, Any]]:
        pending = ok_json(cloud, "approvals")["items"]
        return [a for a in pending if a["project"] == w.project and a["release"] == release]

    [approval] = wait_for(f"the approval of {release}", found)
    return dict(approval)


def create_release(cloud: LocalCloud, w: World, version: str) -> Any:
    """`release create --wait`: the release, once its first deployment (dev) has ended."""
    return ok_json(
        cloud, "release", "create", w.project, "--package", f"{w.repository}={version}",
        "--wait", *FAST,
    )  # fmt: skip


# -- configuration ----------------------------------------------------------------------
def test_apply_plan_and_export_round_trip(cloud: LocalCloud, world: World, tmp_path: Path) -> None:
    exported = ok_json(cloud, "export")
    assert [p["name"] for p in exported["projects"]] == [world.project]
    assert [e["name"] for e in exported["environments"]] == ["dev", "gate", "prod"]

    out = tmp_path / "exported.yaml"
    written = shiplane(cloud, "export", "--file", str(out))
    assert written.exit_code == 0 and "exported" in written.text
    assert yaml.safe_load(out.read_text()) == exported
    assert yaml.safe_load(shiplane(cloud, "export").stdout) == exported

    unchanged = ok_json(cloud, "apply", str(out), "--plan")
    assert unchanged["changes"] == []
    assert "nothing would change" in shiplane(cloud, "apply", str(out), "--plan").text

    changed = yaml.safe_load(out.read_text())
    changed["environments"].append({"name": "qa", "description": "for the plan"})
    changed_path = tmp_path / "changed.yaml"
    changed_path.write_text(yaml.safe_dump(changed))
    plan = ok_json(cloud, "apply", str(changed_path), "--plan")
    assert [(c["kind"], c["name"], c["action"]) for c in plan["changes"]] == [
        ("environment", "qa", "add")
    ]
    shown = shiplane(cloud, "apply", str(changed_path), "--plan")
    assert shown.exit_code == 0 and "qa" in shown.text and "add" in shown.text
    assert [e["name"] for e in ok_json(cloud, "export")["environments"]] == ["dev", "gate", "prod"]

    stale = shiplane(cloud, "apply", str(changed_path), "--if-match", '"not-the-etag"')
    assert stale.exit_code == 4, stale
    assert "412" in stale.stderr

    applied = ok_json(cloud, "apply", str(changed_path), "--if-match", plan["etag"])
    assert [c["action"] for c in applied["changes"]] == ["add"]
    restored = ok_json(cloud, "apply", str(out))
    assert [(c["name"], c["action"]) for c in restored["changes"]] == [("qa", "remove")]


def test_a_bad_configuration_exits_2_naming_the_field(cloud: LocalCloud, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"environments": [{"name": "dev"}], "lifecycles": "no"}))
    refused = shiplane(cloud, "apply", str(bad), "--plan")
    assert refused.exit_code == 2, refused
    assert refused.stdout == ""
    assert "lifecycles" in refused.stderr
    as_json = shiplane(cloud, "apply", str(bad), "-o", "json")
    assert as_json.exit_code == 2 and as_json.stdout == ""
    body = json.loads(as_json.stderr)
    assert body["code"] == "InvalidRequest"
    assert any("lifecycles" in e["field"] for e in body["errors"])

    not_yaml = tmp_path / "list.yaml"
    not_yaml.write_text("- just\n- a list\n")
    assert shiplane(cloud, "apply", str(not_yaml)).exit_code == 2
    assert shiplane(cloud, "apply", str(tmp_path / "missing.yaml")).exit_code == 2


# -- a release through its lifecycle ----------------------------------------------------
def test_a_release_goes_through_its_lifecycle_from_the_command_line(
    cloud: LocalCloud, world: World
) -> None:
    w = world
    release = create_release(cloud, w, "1.0.0")
    assert release["version"] == "1.0.0"
    assert release["images"][w.repository]["tag"] == "1.0.0"
    [dev] = [d for d in release["deployments"] if d["environment"] == "dev"]
    assert dev["status"] == "SUCCEEDED"

    listed = ok_json(cloud, "release", "list", w.project)
    assert [r["version"] for r in listed["items"]] == ["1.0.0"]
    assert listed["next_cursor"] is None
    assert "1.0.0" in shiplane(cloud, "release", "list", w.project).text
    shown = ok_json(cloud, "release", "show", w.project, "1.0.0")
    assert shown["images"][w.repository]["digest"].startswith("sha256:")
    assert "digest" in shiplane(cloud, "release", "show", w.project, "1.0.0").text

    # gate requires an approval: the deployment waits for it
    approval = pending_for(cloud, w, "1.0.0")
    gate_id = approval["deployment_id"]
    listed_text = shiplane(cloud, "approvals", "--project", w.project)
    assert listed_text.exit_code == 0 and "1.0.0" in listed_text.text

    timed_out = shiplane(cloud, "watch", w.project, gate_id, "--timeout", "0", "-o", "json")
    assert timed_out.exit_code == 6, timed_out
    assert timed_out.json()["id"] == gate_id
    assert "timed out" in timed_out.stderr

    approved = ok_json(cloud, "approve", w.project, gate_id, "--note", "CHG-7")
    assert approved["status"] == "APPROVED" and approved["note"] == "CHG-7"
    watched = shiplane(cloud, "watch", w.project, gate_id, *FAST)
    assert watched.exit_code == 0, watched
    assert f"deployment {gate_id} SUCCEEDED" in watched.text
    again = shiplane(cloud, "approve", w.project, gate_id)
    assert again.exit_code == 4, again
    assert "409" in again.stderr

    promoted = ok_json(cloud, "promote", w.project, "1.0.0", "--to", "prod", "--wait", *FAST)
    assert (promoted["environment"], promoted["status"]) == ("prod", "SUCCEEDED")
    assert promoted["timeline"]

    status = ok_json(cloud, "status", w.project)
    [project] = status["projects"]
    cells = {c["environment"]: c for row in project["rows"] for c in row["cells"]}
    assert {e: c["current_release"] for e, c in cells.items()} == {
        "dev": "1.0.0",
        "gate": "1.0.0",
        "prod": "1.0.0",
    }
    table = shiplane(cloud, "status", w.project)
    assert table.exit_code == 0 and table.text.count("SUCCEEDED") == 3

    logs = shiplane(cloud, "logs", w.project, promoted["id"])
    assert logs.exit_code == 0 and "timeline:" in logs.text
    for entry in promoted["timeline"]:
        assert " ".join(entry["message"].split()) in logs.text
    assert ok_json(cloud, "logs", w.project, promoted["id"])["id"] == promoted["id"]


def test_reject_deploy_rollback_and_cancel(cloud: LocalCloud, world: World) -> None:
    w = world
    if not ok_json(cloud, "release", "list", w.project)["items"]:
        create_release(cloud, w, "1.0.0")
    release = create_release(cloud, w, "1.1.0")
    # (The gate's deployment may be queued by then too: only dev's first one is waited for.)
    assert [d["status"] for d in release["deployments"] if d["environment"] == "dev"] == [
        "SUCCEEDED"
    ]
    gate_id = pending_for(cloud, w, "1.1.0")["deployment_id"]
    rejected = ok_json(cloud, "reject", w.project, gate_id, "--note", "freeze")
    assert (rejected["status"], rejected["note"]) == ("REJECTED", "freeze")
    watched = shiplane(cloud, "watch", w.project, gate_id, *FAST)
    assert watched.exit_code == 1, watched
    assert "REJECTED" in watched.text
    assert "freeze" in shiplane(cloud, "logs", w.project, gate_id).text

    # deploying what runs already is a conflict; a redeploy is not
    conflict = shiplane(cloud, "deploy", w.project, "1.1.0", "dev")
    assert conflict.exit_code == 4, conflict
    assert "redeploy" in conflict.stderr
    redeployed = ok_json(cloud, "deploy", w.project, "1.1.0", "dev", "--redeploy", "--wait", *FAST)
    assert (redeployed["mode"], redeployed["status"]) == ("redeploy", "SUCCEEDED")
    missing = shiplane(cloud, "deploy", w.project, "9.9.9", "dev")
    assert missing.exit_code == 3, missing

    accepted = ok_json(cloud, "rollback", w.project, "dev")
    assert accepted["release"] == "1.0.0" and accepted["deployment_id"]
    followed = shiplane(cloud, "watch", w.project, accepted["deployment_id"], *FAST)
    assert followed.exit_code == 0, followed
    deployments = ok_json(cloud, "deployments", w.project, "--environment", "dev")
    newest = deployments["items"][0]
    assert (newest["id"], newest["release"], newest["mode"]) == (
        accepted["deployment_id"],
        "1.0.0",
        "rollback",
    )
    one = ok_json(cloud, "deployments", w.project, "--limit", "1")
    assert len(one["items"]) == 1 and one["next_cursor"]
    assert "rollback" in shiplane(cloud, "deployments", w.project).text

    create_release(cloud, w, "1.2.0")
    waiting = pending_for(cloud, w, "1.2.0")["deployment_id"]
    cancelled = ok_json(cloud, "cancel", w.project, waiting, "--reason", "not today")
    assert cancelled["status"] == "CANCELLED"
    assert ok_json(cloud, "logs", w.project, waiting)["status"] == "CANCELLED"
    twice = shiplane(cloud, "cancel", w.project, waiting)
    assert twice.exit_code == 4, twice
    ended = shiplane(cloud, "watch", w.project, waiting, *FAST)
    assert ended.exit_code == 1 and "CANCELLED" in ended.text


def test_release_create_without_wait_and_its_conflicts(cloud: LocalCloud, world: World) -> None:
    w = world
    if not ok_json(cloud, "release", "list", w.project)["items"]:
        create_release(cloud, w, "1.0.0")
    same = shiplane(cloud, "release", "create", w.project, "--package", f"{w.repository}=1.0.0")
    assert same.exit_code == 0, same  # the same request: answered again, nothing started
    assert "release 1.0.0" in same.text and "nothing new started" in same.text
    key = ["--idempotency-key", "cli-test-again"]
    again = shiplane(
        cloud, "release", "create", w.project, "--package", f"{w.repository}=1.0.0", *key
    )
    assert again.exit_code == 4, again
    assert "1.0.0" in again.stderr

    unknown = shiplane(cloud, "release", "create", w.project, "--package", "nope=1.0.0")
    assert unknown.exit_code == 2 and "nope" in unknown.stderr
    bad_usage = shiplane(cloud, "release", "create", w.project, "--package", "no-tag")
    assert bad_usage.exit_code == 2 and "REPOSITORY=TAG" in bad_usage.stderr

    assert shiplane(cloud, "release", "show", w.project, "7.7.7").exit_code == 3
    no_project = shiplane(cloud, "release", "list", "no-such-project")
    assert no_project.exit_code == 3 and "NotFound" in no_project.stderr
    too_many = shiplane(cloud, "release", "list", w.project, "--limit", "500")
    assert too_many.exit_code == 2 and "limit" in too_many.stderr


# -- preview and convert ----------------------------------------------------------------
def test_render_diff_and_convert_a_step(cloud: LocalCloud, world: World) -> None:
    w = world
    if not ok_json(cloud, "release", "list", w.project)["items"]:
        create_release(cloud, w, "1.0.0")
    rendered = ok_json(cloud, "render", w.project, w.step, "1.0.0", "prod")
    [unit] = rendered["units"]
    assert unit["task_definition"]["family"].startswith(w.family)
    assert w.repository in json.dumps(unit["task_definition"])
    text = shiplane(cloud, "render", w.project, w.step, "1.0.0", "prod")
    assert text.exit_code == 0 and "task definition:" in text.text

    diffed = ok_json(cloud, "diff", w.project, w.step, "1.0.0", "dev")
    assert diffed["units"][0]["stack"]["exists"] is True
    assert shiplane(cloud, "diff", w.project, w.step, "1.0.0", "dev").exit_code == 0

    converted = ok_json(cloud, "convert", w.project, w.step)
    assert converted["converted"]["type"] == "cloudformation"
    as_yaml = shiplane(cloud, "convert", w.project, w.step)
    assert yaml.safe_load(as_yaml.stdout)["type"] == "cloudformation"
    assert shiplane(cloud, "convert", w.project, "no-such-step").exit_code == 3


# -- schedules --------------------------------------------------------------------------
def test_schedule_create_list_show_and_cancel(cloud: LocalCloud, world: World) -> None:
    w = world
    if not ok_json(cloud, "release", "list", w.project)["items"]:
        create_release(cloud, w, "1.0.0")
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    created = ok_json(cloud, "schedule", "create", w.project, "1.0.0", "prod", "--at", at)
    assert created["status"] == "scheduled" and created["environment"] == "prod"
    listed = ok_json(cloud, "schedule", "list")
    assert created["id"] in [s["id"] for s in listed["items"]]
    assert "scheduled" in shiplane(cloud, "schedule", "list").text
    assert ok_json(cloud, "schedule", "show", created["id"])["release"] == "1.0.0"

    cancelled = ok_json(cloud, "schedule", "cancel", created["id"])
    assert cancelled["status"] == "cancelled"
    again = shiplane(cloud, "schedule", "cancel", created["id"])  # idempotent
    assert again.exit_code == 0 and "cancelled" in again.text, again
    assert shiplane(cloud, "schedule", "show", "0" * 20).exit_code == 3
    past = shiplane(cloud, "schedule", "create", w.project, "1.0.0", "prod", "--at", "2001-01-01")
    assert past.exit_code == 2, past


# -- where the API is, and when it is not there -----------------------------------------
def test_status_of_an_unknown_project_is_not_found(cloud: LocalCloud, world: World) -> None:
    everything = ok_json(cloud, "status")
    assert world.project in [p["name"] for p in everything["projects"]]
    missing = shiplane(cloud, "status", "no-such-project")
    assert missing.exit_code == 3, missing
    assert "no-such-project" in missing.stderr and "NotFound" in missing.stderr
    assert missing.stdout == ""


def test_the_api_is_found_by_option_and_by_the_local_state_file(
    cloud: LocalCloud, world: World, tmp_path: Path
) -> None:
    by_option = Ran(runner.invoke(app, ["status", "--api-url", cloud.api_url, "-o", "json"]))
    assert by_option.exit_code == 0, by_option
    assert world.project in [p["name"] for p in by_option.json()["projects"]]

    env = {"SHIPLANE_API_URL": None, "SHIPLANE_STACK": None, "XDG_STATE_HOME": str(tmp_path)}
    nowhere = Ran(runner.invoke(app, ["status"], env=env))  # type: ignore[arg-type]
    assert nowhere.exit_code == 2 and "shiplane local up" in nowhere.stderr
    write_local_state(cloud.api_url, cloud.endpoint_url, tmp_path / "shiplane" / "local.json")
    found = Ran(runner.invoke(app, ["status", "-o", "json"], env=env))  # type: ignore[arg-type]
    assert found.exit_code == 0, found
    assert world.project in [p["name"] for p in found.json()["projects"]]


def test_an_unreachable_api_exits_5() -> None:
    gone = Ran(runner.invoke(app, ["approvals", "--api-url", "http://127.0.0.1:9/"]))
    assert gone.exit_code == 5, gone
    assert "cannot reach the API" in gone.stderr


def test_dashboard_serves_the_page_through_its_signing_proxy(
    cloud: LocalCloud, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    from shiplane_local.dashboard_proxy import DashboardProxy

    fetched: list[tuple[str, bytes]] = []

    def serve_once(proxy: DashboardProxy) -> None:
        # Instead of serving until Ctrl-C: serve, fetch what a browser would, stop.
        proxy.start()
        for path in ("/dashboard", "/status"):
            url = proxy.url.replace("/dashboard", path)
            with urllib.request.urlopen(url, timeout=30) as response:
                fetched.append((path, response.read()))

    monkeypatch.setattr(DashboardProxy, "serve_forever", serve_once)
    answer = ok_json(cloud, "dashboard", "--port", "0")
    assert answer["url"].startswith("http://127.0.0.1:") and answer["url"].endswith("/dashboard")
    assert answer["api_url"] == cloud.api_url
    page, data = dict(fetched)["/dashboard"], dict(fetched)["/status"]
    assert b"<title>Shiplane</title>" in page
    assert world.project in {p["name"] for p in json.loads(data)["projects"]}
