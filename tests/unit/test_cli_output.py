"""The command line's answers: exit codes, errors, tables, where it finds the API, and
how it follows a deployment (no network: fakes stand in for the API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from shiplane_local import commands
from shiplane_local.api_client import ApiError, ApiResponse
from shiplane_local.commands import (
    Call,
    DeploymentsFailed,
    Follower,
    OutputFormat,
    UsageError,
    WaitTimeout,
    deployments_in,
    invoke,
    parse_packages,
    status_rows,
)
from shiplane_local.connection import (
    Connection,
    SetupError,
    is_local,
    read_local_state,
    region_of,
    remove_local_state,
    stack_api_url,
    write_local_state,
)
from shiplane_local.output import (
    ExitCode,
    Unreachable,
    cell,
    error_body,
    error_lines,
    exit_code_for_deployments,
    exit_code_for_status,
    short_time,
    table,
)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (200, ExitCode.OK),
        (201, ExitCode.OK),
        (204, ExitCode.OK),
        (400, ExitCode.USAGE),
        (403, ExitCode.USAGE),
        (422, ExitCode.USAGE),
        (404, ExitCode.NOT_FOUND),
        (409, ExitCode.CONFLICT),
        (412, ExitCode.CONFLICT),
        (428, ExitCode.CONFLICT),
        (500, ExitCode.UNAVAILABLE),
        (502, ExitCode.UNAVAILABLE),
        (503, ExitCode.UNAVAILABLE),
    ],
)
def test_an_http_status_has_the_documented_exit_code(status: int, code: ExitCode) -> None:
    assert exit_code_for_status(status) is code


def test_exit_codes_are_the_documented_numbers() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 6]
    for code in ExitCode:
        assert f"    {int(code)}  " in commands.__doc__  # type: ignore[operator]


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["SUCCEEDED"], ExitCode.OK),
        (["SUCCEEDED", "SKIPPED"], ExitCode.OK),
        (["SUCCEEDED", "FAILED"], ExitCode.FAILED),
        (["REJECTED"], ExitCode.FAILED),
        (["CANCELLED"], ExitCode.FAILED),
    ],
)
def test_deployments_that_did_not_all_succeed_exit_1(statuses: list[str], code: ExitCode) -> None:
    assert exit_code_for_deployments(statuses) is code


def test_an_error_names_status_code_message_field_and_every_field_error() -> None:
    lines = error_lines(
        422,
        "InvalidRequest",
        "invalid request",
        None,
        [{"field": "body.cpu", "message": "too small"}, {"field": "body.memory", "message": "x"}],
    )
    assert lines == [
        "error 422 InvalidRequest: invalid request",
        "  body.cpu: too small",
        "  body.memory: x",
    ]
    [line] = error_lines(404, "NotFound", "project 'web' does not exist", "project", [])
    assert line == "error 404 NotFound: project 'web' does not exist (field: project)"


def test_an_answer_that_is_not_an_error_body_still_gives_code_and_message() -> None:
    assert error_body(b"Bad Gateway") == {
        "code": "Error",
        "message": "Bad Gateway",
        "field": None,
    }
    assert error_body(b'{"message": "Missing Authentication Token"}')["code"] == "Error"
    body = error_body(b'{"code": "Conflict", "message": "m", "field": "f", "errors": []}')
    assert (body["code"], body["field"]) == ("Conflict", "f")


def render(renderable: Any) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_a_table_shows_every_key_and_keeps_brackets_as_text() -> None:
    text = render(
        table(
            [
                {"path": "containerDefinitions[web].image", "status": "FAILED", "ok": True},
                {"path": "x", "extra": ["a", "b"], "status": None},
            ]
        )
    )
    assert "containerDefinitions[web].image" in text
    for header in ("path", "status", "ok", "extra"):
        assert header in text
    assert "FAILED" in text and "yes" in text and "a, b" in text


def test_cells_and_times_read_well() -> None:
    assert cell(None) == "-" and cell([]) == "-" and cell(False) == "no"
    assert cell({"web": "1.0.0"}) == "web=1.0.0"
    assert short_time("2025-01-02T03:04:05.678901Z") == "2025-01-02 03:04:05"
    assert short_time("1.0.0") == "1.0.0"


def test_package_options_are_name_equals_tag() -> None:
    assert parse_packages(["web=1.2.3", "worker=v2"]) == {"web": "1.2.3", "worker": "v2"}
    for bad in ("web", "=1.0", "web="):
        with pytest.raises(UsageError, match="REPOSITORY=TAG"):
            parse_packages([bad])


def test_deployments_are_found_in_every_answer_shape() -> None:
    one = {"id": "d1", "status": "QUEUED", "environment": "dev"}
    assert deployments_in(one) == [one]
    assert deployments_in({"deployments": [one], "version": "1.0.0"}) == [one]
    assert deployments_in({"items": [one], "next_cursor": None}) == [one]
    assert deployments_in([one]) == [one]
    assert deployments_in({"version": "1.0.0", "project": "web"}) == []


def test_status_rows_flatten_projects_environments_and_tenants() -> None:
    data = {
        "generated_at": "2025-01-01T00:00:00Z",
        "projects": [
            {
                "name": "web",
                "tenanted_mode": "both",
                "environments": ["dev", "prod"],
                "rows": [
                    {
                        "tenant": "untenanted",
                        "cells": [
                            {
                                "environment": "dev",
                                "current_release": "1.0.0",
                                "latest": {"id": "d1", "release": "1.1.0", "status": "FAILED"},
                                "queued": 0,
                                "drift": [],
                            }
                        ],
                    },
                    {
                        "tenant": "acme",
                        "cells": [
                            {
                                "environment": "prod",
                                "current_release": None,
                                "latest": None,
                                "awaiting_approval": True,
                                "queued": 1,
                                "drift": ["desired count 2 → 3"],
                            }
                        ],
                    },
                ],
                "pending_approvals": [
                    {
                        "deployment_id": "d2",
                        "release": "1.0.0",
                        "environment": "prod",
                        "tenant": "acme",
                    }
                ],
            }
        ],
    }
    rows = list(status_rows(data))
    assert [(r["environment"], r["current"], r["latest"], r["status"]) for r in rows] == [
        ("dev", "1.0.0", "1.1.0", "FAILED"),
        ("prod/acme", None, None, None),
    ]
    assert [r["approvals"] for r in rows] == [0, 1]
    assert rows[1]["drift"] == ["desired count 2 → 3"]


# -- where the API is -------------------------------------------------------------------
class FakeCloudFormation:
    def __init__(self, outputs: list[dict[str, str]]) -> None:
        self.outputs = outputs
        self.asked: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.asked.append(StackName)
        return {"Stacks": [{"StackName": StackName, "Outputs": self.outputs}]}


class FakeSession:
    def __init__(self, cfn: FakeCloudFormation) -> None:
        self.cfn = cfn

    def client(self, service: str) -> FakeCloudFormation:
        assert service == "cloudformation"
        return self.cfn


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory and state home with no state file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


def test_the_api_url_comes_from_the_option_then_the_stack_then_the_state_file(
    nowhere: Path,
) -> None:
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/"
    cfn = FakeCloudFormation(
        [
            {"OutputKey": "TableName", "OutputValue": "t"},
            {"OutputKey": "ApiUrl", "OutputValue": url},
        ]
    )
    session = lambda: FakeSession(cfn)  # noqa: E731
    assert Connection(api_url="http://x/", stack="shiplane").resolve(session) == (
        "http://x/",
        "--api-url",
    )
    assert Connection(stack="shiplane").resolve(session) == (url, "stack shiplane")
    assert cfn.asked == ["shiplane"]

    with pytest.raises(SetupError, match="--api-url"):
        Connection().resolve(session)
    path = write_local_state("http://127.0.0.1:4600/", "http://127.0.0.1:4599")
    assert path == nowhere / "state" / "shiplane" / "local.json"
    assert Connection().resolve(session) == ("http://127.0.0.1:4600/", str(path))


def test_a_stack_without_an_api_url_output_is_a_usage_error() -> None:
    with pytest.raises(SetupError, match="no ApiUrl output"):
        stack_api_url("other", FakeCloudFormation([{"OutputKey": "X", "OutputValue": "y"}]))


def test_the_state_file_is_in_the_current_directory_without_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert read_local_state() is None
    path = write_local_state("http://127.0.0.1:1234/", "http://127.0.0.1:4599")
    assert path == tmp_path / ".shiplane" / "local.json"
    assert read_local_state() == ("http://127.0.0.1:1234/", path)
    assert json.loads(path.read_text())["endpoint_url"] == "http://127.0.0.1:4599"
    remove_local_state(path)
    assert not path.exists()


def test_a_state_file_another_process_wrote_is_left_alone(nowhere: Path) -> None:
    path = write_local_state("http://127.0.0.1:1234/", "e")
    path.write_text(json.dumps({"api_url": "http://127.0.0.1:9/", "pid": -1}))
    remove_local_state(path)
    assert path.exists()


def test_the_local_api_is_signed_with_test_credentials_a_deployed_one_for_its_region() -> None:
    assert is_local("http://127.0.0.1:4600/") and is_local("http://localhost:1/")
    assert not is_local("https://abc.execute-api.us-east-2.amazonaws.com/v1/")
    assert region_of("https://abc.execute-api.us-east-2.amazonaws.com/v1/") == "us-east-2"
    assert region_of("https://api.example.com/") is None
    client = Connection(api_url="http://127.0.0.1:4600/").client()
    assert client.credentials.access_key == "testing"
    assert client.region == "us-east-1"


# -- how a command ends -----------------------------------------------------------------
def api_error(status: int, body: dict[str, Any]) -> ApiError:
    return ApiError(ApiResponse(status, {}, json.dumps(body).encode()))


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (api_error(404, {"code": "NotFound", "message": "no", "field": "project"}), 3),
        (api_error(409, {"code": "Conflict", "message": "no"}), 4),
        (api_error(422, {"code": "InvalidRequest", "message": "no"}), 2),
        (api_error(503, {"code": "Throttled", "message": "later"}), 5),
        (Unreachable("cannot reach the API"), 5),
        (SetupError("where is the API?"), 2),
        (UsageError("--package takes NAME=TAG"), 2),
        (WaitTimeout("after 1 s", None), 6),
        (DeploymentsFailed("deployment failed", {"id": "d"}), 1),
    ],
)
def test_how_a_command_ends_decides_its_exit_code(raised: Exception, code: int) -> None:
    def body() -> None:
        raise raised

    assert invoke(body) == code


def test_an_api_error_prints_code_message_and_field_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body() -> None:
        raise api_error(404, {"code": "NotFound", "message": "project 'x'", "field": "project"})

    assert invoke(body) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "404 NotFound: project 'x' (field: project)" in captured.err

    assert invoke(body, OutputFormat.JSON) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err)["field"] == "project"


# -- following a deployment -------------------------------------------------------------
class ScriptedApi(Call):
    """A Call whose GETs answer the next deployment state of a script."""

    def __init__(self, states: dict[str, list[dict[str, Any]]]) -> None:
        super().__init__(Connection(api_url="http://127.0.0.1:1/"))
        self.states = states
        self.gets: list[str] = []

    def get(self, path: str, **kw: Any) -> Any:
        self.gets.append(path)
        deployment_id = path.rsplit("/", 1)[-1]
        script = self.states[deployment_id]
        return script.pop(0) if len(script) > 1 else script[0]


def state(deployment_id: str, status: str, *messages: str) -> dict[str, Any]:
    return {
        "id": deployment_id,
        "project": "web",
        "release": "1.0.0",
        "environment": "dev",
        "tenant": "untenanted",
        "status": status,
        "timeline": [
            {"at": f"2025-01-01T00:00:0{i}Z", "message": m} for i, m in enumerate(messages)
        ],
    }


def test_following_prints_each_timeline_entry_once_and_ends_with_the_outcome(
    capsys: pytest.CaptureFixture[str],
) -> None:
    api = ScriptedApi(
        {
            "d1": [
                state("d1", "QUEUED", "queued"),
                state("d1", "DEPLOYING", "queued", "stack update started"),
                state("d1", "SUCCEEDED", "queued", "stack update started", "rollout completed"),
            ]
        }
    )
    result = Follower(api, "web", ["d1"], quiet=False).follow(timeout=60, interval=0)
    assert result["status"] == "SUCCEEDED"
    assert api.gets == ["/projects/web/deployments/d1"] * 3
    out = capsys.readouterr().out
    for message in ("queued", "stack update started", "rollout completed"):
        assert out.count(message) == 1
    assert "deployment d1 SUCCEEDED" in out


def test_a_failed_deployment_raises_with_its_last_state() -> None:
    api = ScriptedApi(
        {"d1": [state("d1", "DEPLOYING"), state("d1", "FAILED")], "d2": [state("d2", "SUCCEEDED")]}
    )
    with pytest.raises(DeploymentsFailed, match="d1 FAILED") as failed:
        Follower(api, "web", ["d1", "d2"], quiet=True).follow(timeout=60, interval=0)
    assert [d["status"] for d in failed.value.last["items"]] == ["FAILED", "SUCCEEDED"]


def test_a_deployment_that_does_not_end_in_time_raises_wait_timeout() -> None:
    api = ScriptedApi({"d1": [state("d1", "QUEUED")]})
    with pytest.raises(WaitTimeout, match="d1 QUEUED") as timed_out:
        Follower(api, "web", ["d1"], quiet=True).follow(timeout=0, interval=0)
    assert timed_out.value.last["status"] == "QUEUED"
