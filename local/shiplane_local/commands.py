"""The `shiplane` command line over Shiplane's REST API (docs/api.md).

Every command here talks to a deployed Shiplane, signing its requests with SigV4 (the
user's AWS credentials), or to the local cloud (`shiplane local up`). Where the API is:
`--api-url` (SHIPLANE_API_URL), `--stack` (SHIPLANE_STACK: the stack's `ApiUrl` output),
or the state file `shiplane local up` writes (see `shiplane_local.connection`).

Every command takes `--output json` (`-o json`): standard output then holds the API's
JSON and nothing else (a list is every page, as one `{"items": [...], "next_cursor":
null}`, unless `--limit`/`--cursor` ask for one page; `--wait` and `watch` print the
deployment as it ended). Errors go to standard error: the API's code, message and field
(in JSON mode, the API's error body).

Exit codes a script can rely on:

    0  success
    1  the operation ran but failed (a deployment FAILED, REJECTED or CANCELLED when waiting)
    2  bad usage, or the API refused the input (400, 422)
    3  not found (404)
    4  conflict or precondition (409, 412, 428)
    5  the API is unreachable, or answered 5xx
    6  timed out waiting
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape

from .api_client import ApiClient, ApiError, ApiResponse
from .connection import Connection, SetupError
from .output import (
    ExitCode,
    Unreachable,
    cell,
    deployment_finished,
    dumps,
    error_body,
    error_lines,
    exit_code_for_deployments,
    exit_code_for_status,
    print_table,
    short_time,
    styled_status,
)

console = Console(soft_wrap=False)
errors = Console(stderr=True, soft_wrap=True, highlight=False)

DEFAULT_WAIT_SECONDS = 1800.0


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class UsageError(Exception):
    """The command line itself is wrong (exit 2), found after parsing."""


class WaitTimeout(Exception):
    def __init__(self, message: str, last: Any) -> None:
        super().__init__(message)
        self.last = last


class DeploymentsFailed(Exception):
    def __init__(self, message: str, last: Any) -> None:
        super().__init__(message)
        self.last = last


# -- one invocation ---------------------------------------------------------------------
@dataclass
class Call:
    """What a command needs: the API (connected on first use) and how to answer."""

    connection: Connection
    output: OutputFormat = OutputFormat.TEXT
    _client: ApiClient | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.output is OutputFormat.JSON

    def client(self) -> ApiClient:
        if self._client is None:
            self._client = self.connection.client()
        return self._client

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        client = self.client()
        with self.reaching(client):
            response = client.request(method, path, body=body, query=query, headers=headers)
        if not response.ok:
            raise ApiError(response)
        return response

    @staticmethod
    @contextlib.contextmanager
    def reaching(client: ApiClient) -> Iterator[None]:
        """The network failing under a call is `Unreachable` (exit 5), naming the API."""
        try:
            yield
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach the API at {client.base_url}: {reason}") from None

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw).json()

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body=body if body is not None else {}, **kw).json()

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, body=body, **kw).json()

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw).json()

    def items(
        self,
        path: str,
        query: dict[str, Any] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """A list: one page when asked for (`limit`/`cursor`), else every page as one."""
        if limit is not None or cursor is not None:
            page: dict[str, Any] = self.get(
                path, query={**(query or {}), "limit": limit, "cursor": cursor}
            )
            return page
        client = self.client()
        with self.reaching(client):
            return {"items": client.pages(path, query), "next_cursor": None}

    def show(self, data: Any, text: Callable[[], None]) -> None:
        """The API's JSON in JSON mode, else what `text` prints."""
        if self.json:
            typer.echo(dumps(data))
        else:
            text()


def segment(value: str) -> str:
    """One path segment, quoted (a version may hold `+`, a tenant anything)."""
    return quote(value, safe="")


def project_path(project: str, *rest: str) -> str:
    return "/".join(["", "projects", segment(project), *rest])


# -- options every command takes --------------------------------------------------------
CONNECTION = "Connection"
_COMMON: list[inspect.Parameter] = [
    inspect.Parameter(
        "output",
        inspect.Parameter.KEYWORD_ONLY,
        default=OutputFormat.TEXT,
        annotation=Annotated[
            OutputFormat,
            typer.Option(
                "--output",
                "-o",
                case_sensitive=False,
                help="text (for people) or json (the API's JSON, nothing else)",
            ),
        ],
    ),
    inspect.Parameter(
        "api_url",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--api-url",
                envvar="SHIPLANE_API_URL",
                help="the API's URL (the stack output ApiUrl)",
                rich_help_panel=CONNECTION,
            ),
        ],
    ),
    inspect.Parameter(
        "stack",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--stack",
                envvar="SHIPLANE_STACK",
                help="a deployed Shiplane stack: its ApiUrl output is the API",
                rich_help_panel=CONNECTION,
            ),
        ],
    ),
    inspect.Parameter(
        "profile",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(help="AWS profile for the credentials", rich_help_panel=CONNECTION),
        ],
    ),
    inspect.Parameter(
        "region",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(help="AWS region (default: the profile's)", rich_help_panel=CONNECTION),
        ],
    ),
]
_COMMON_NAMES = [p.name for p in _COMMON]

# (group or None, name, function, typer.command keywords), in registration order.
_REGISTRY: list[tuple[str | None, str, Callable[..., None], dict[str, Any]]] = []


def command(name: str, group: str | None = None, **kw: Any) -> Callable[[Callable[..., None]], Any]:
    """Register `fn(call, ...)` as a command: its own parameters, then the common ones
    (output and connection); API errors become messages on stderr and exit codes."""

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(fn, eval_str=True)
        own = list(signature.parameters.values())[1:]  # after `call`

        @functools.wraps(fn)
        def run(**kwargs: Any) -> None:
            output = OutputFormat(kwargs.pop("output"))
            connection = Connection(
                **{name: kwargs.pop(name) for name in _COMMON_NAMES if name != "output"}
            )
            raise typer.Exit(invoke(lambda: fn(Call(connection, output), **kwargs), output))

        parameters = own + _COMMON
        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        _REGISTRY.append((group, name, run, kw))
        return fn

    return register


def invoke(body: Callable[[], None], output: OutputFormat = OutputFormat.TEXT) -> int:
    """Run a command's body; the exit code for how it ended (see the module's docstring)."""
    as_json = output is OutputFormat.JSON
    try:
        body()
    except ApiError as exc:
        report_api_error(exc, as_json)
        return exit_code_for_status(exc.status)
    except Unreachable as exc:
        errors.print(f"error: {escape(str(exc))}")
        return ExitCode.UNAVAILABLE
    except (SetupError, UsageError) as exc:
        errors.print(f"error: {escape(str(exc))}")
        return ExitCode.USAGE
    except WaitTimeout as exc:
        if as_json and exc.last is not None:
            typer.echo(dumps(exc.last))
        errors.print(f"timed out: {escape(str(exc))}")
        return ExitCode.TIMEOUT
    except DeploymentsFailed as exc:
        if as_json:
            typer.echo(dumps(exc.last))
        errors.print(escape(str(exc)))
        return ExitCode.FAILED
    return ExitCode.OK


def report_api_error(exc: ApiError, as_json: bool) -> None:
    body = error_body(exc.response.body)
    if as_json:
        typer.echo(dumps(body), err=True)
        return
    for line in error_lines(
        exc.status, body["code"], body["message"], body.get("field"), body.get("errors") or []
    ):
        errors.print(escape(line))


def register(app: typer.Typer) -> None:
    """Add the API's commands (and the `release`, `schedule` groups) to `app`."""
    groups = {
        "release": typer.Typer(no_args_is_help=True, help="Create, list and show releases."),
        "schedule": typer.Typer(no_args_is_help=True, help="Scheduled deployments."),
    }
    for group, name, fn, kw in _REGISTRY:
        (groups[group] if group else app).command(name, **kw)(fn)
    for name, sub in groups.items():
        app.add_typer(sub, name=name)


# -- shared arguments -------------------------------------------------------------------
Tenant = Annotated[
    str | None, typer.Option(help="a tenant, for tenanted projects (default: untenanted)")
]
Wait = Annotated[
    bool, typer.Option("--wait", help="follow the deployment until it ends (exit 1 if it fails)")
]
Timeout = Annotated[float, typer.Option(help="seconds to wait before giving up (exit 6)", min=0)]
Interval = Annotated[float, typer.Option(help="seconds between looks at the deployment", min=0)]
Limit = Annotated[int | None, typer.Option(help="one page of this many (1-100)")]
Cursor = Annotated[str | None, typer.Option(help="the page after this cursor (next_cursor)")]
IdempotencyKey = Annotated[
    str | None,
    typer.Option(help="the same key never starts the work twice (safe retries)"),
]


def _idempotency(key: str | None) -> dict[str, str] | None:
    return {"Idempotency-Key": key} if key else None


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


# -- configuration ----------------------------------------------------------------------
def read_document(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not YAML or JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path}: expected a mapping (environments, lifecycles, ...)")
    return document


def changes_of(answer: Any) -> list[dict[str, Any]]:
    if isinstance(answer, list):
        return [c for c in answer if isinstance(c, dict)]
    if isinstance(answer, dict):
        for key in ("changes", "items"):
            if isinstance(answer.get(key), list):
                return [c for c in answer[key] if isinstance(c, dict)]
    return []


@command("apply")
def apply(
    call: Call,
    file: Annotated[Path, typer.Argument(help="the configuration (YAML or JSON)")],
    plan: Annotated[bool, typer.Option("--plan", help="only show what would change")] = False,
    if_match: Annotated[
        str | None, typer.Option(help="apply only if the configuration's ETag is still this")
    ] = None,
) -> None:
    """Apply a configuration document, or with --plan show what it would change.

    Declarative: what the document leaves out is removed. The plan's ETag, passed as
    --if-match, applies exactly what was planned."""
    document = read_document(file)
    if plan:
        answer = call.post("/configuration/plan", document)
    else:
        headers = {"If-Match": if_match} if if_match else None
        answer = call.put("/configuration", document, headers=headers)

    def text() -> None:
        changes = changes_of(answer)
        verb = "would change" if plan else "changed"
        if not changes:
            console.print(f"{file}: nothing {'would change' if plan else 'changed'}")
            return
        print_table(console, changes, "", title=f"{file}: {len(changes)} {verb}")

    call.show(answer, text)


@command("export")
def export(
    call: Call,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="write it here instead of printing it")
    ] = None,
) -> None:
    """The whole configuration as a document `apply` takes (YAML)."""
    import yaml

    document = call.get("/configuration")
    text_form = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if file is not None:
        as_json = file.suffix.lower() == ".json"
        file.write_text(dumps(document) + "\n" if as_json else text_form)

    def text() -> None:
        if file is None:
            typer.echo(text_form, nl=False)
        else:
            console.print(f"exported the configuration to {escape(str(file))}")

    call.show(document, text)


# -- releases ---------------------------------------------------------------------------
def parse_packages(packages: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in packages:
        name, sep, tag = item.partition("=")
        if not sep or not name or not tag:
            raise UsageError(f"--package takes REPOSITORY=TAG, not {item!r}")
        found[name] = tag
    return found


def release_text(release: dict[str, Any]) -> None:
    console.print(
        f"release [bold]{escape(str(release.get('version')))}[/] of "
        f"{escape(str(release.get('project')))} (channel {escape(str(release.get('channel')))}, "
        f"lifecycle {escape(str(release.get('lifecycle', '-')))})"
    )
    created = release.get("created_at")
    by = release.get("created_by") or {}
    if created:
        console.print(
            f"  created {short_time(str(created))} by {cell(by.get('kind'))} {cell(by.get('by'))}"
        )
    images = release.get("images") or {}
    rows = [
        {
            "package": name,
            "repository": image.get("repository"),
            "tag": image.get("tag"),
            "digest": image.get("digest"),
        }
        for name, image in images.items()
    ]
    print_table(console, rows, "  no images")
    deployments = deployments_in(release)
    if deployments:
        console.print(f"  deployments started: {', '.join(d['id'] for d in deployments)}")


@command("create", group="release")
def release_create(
    call: Call,
    project: str,
    version: Annotated[str | None, typer.Option(help="default: from the images' tags")] = None,
    channel: Annotated[str | None, typer.Option(help="default: the project's default")] = None,
    package: Annotated[
        list[str] | None,
        typer.Option(
            help="REPOSITORY=TAG: the tag for one of the project's repositories (repeat); "
            "default: the newest tag the channel accepts"
        ),
    ] = None,
    wait: Wait = False,
    timeout: Timeout = DEFAULT_WAIT_SECONDS,
    interval: Interval = 1.0,
    idempotency_key: IdempotencyKey = None,
) -> None:
    """Create a release: chosen tags, or the latest that the channel's rules accept.

    The pipeline creates it with its first automatic deployments; --wait follows those
    until they end and prints the release as it is then."""
    body = _clean(
        {"version": version, "channel": channel, "tags": parse_packages(package or []) or None}
    )
    answer = call.post(
        project_path(project, "releases"), body, headers=_idempotency(idempotency_key)
    )
    if not wait:
        call.show(answer, lambda: accepted_release_text(answer))
        return
    created = (answer.get("release") if isinstance(answer, dict) else None) or version
    if not created:
        raise UsageError("the API did not say which version it creates: pass --version")
    if not call.json:
        accepted_release_text(answer)
    deadline = time.monotonic() + timeout
    release = wait_for_release(call, project, created, deadline, interval)
    if not call.json:
        release_text(release)
    ids = [str(d["id"]) for d in release.get("deployments") or []]
    if ids:
        remaining = max(0.0, deadline - time.monotonic())
        try:
            Follower(call, project, ids, quiet=call.json).follow(remaining, interval)
        except (WaitTimeout, DeploymentsFailed) as exc:
            exc.last = release_now(call, project, created)
            raise
    if call.json:
        typer.echo(dumps(release_now(call, project, created)))


def release_now(call: Call, project: str, version: str) -> Any:
    return call.get(project_path(project, "releases", segment(version)))


def accepted_release_text(answer: Any) -> None:
    if not isinstance(answer, dict) or "version" in answer:
        release_text(answer)
        return
    again = " (asked before: nothing new started)" if answer.get("started") is False else ""
    console.print(
        f"release {escape(str(answer.get('release') or '?'))} of "
        f"{escape(str(answer.get('project')))} accepted{again}",
        highlight=False,
    )


def wait_for_release(
    call: Call, project: str, version: str, deadline: float, interval: float
) -> Any:
    """The release once the pipeline has created it (with its first deployments)."""
    path = project_path(project, "releases", segment(version))
    while True:
        try:
            return call.get(path)
        except ApiError as exc:
            if exc.status != 404:
                raise
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"release {version} of {project} not created yet", None)
        time.sleep(interval)


@command("list", group="release")
def release_list(call: Call, project: str, limit: Limit = None, cursor: Cursor = None) -> None:
    """A project's releases."""
    page = call.items(project_path(project, "releases"), limit=limit, cursor=cursor)
    rows = [
        {
            "version": r.get("version"),
            "channel": r.get("channel"),
            "created_at": r.get("created_at"),
            "images": {name: i.get("tag") for name, i in (r.get("images") or {}).items()},
        }
        for r in page["items"]
    ]
    call.show(page, lambda: _list_text(rows, page, f"no release of {project}"))


def _list_text(rows: list[dict[str, Any]], page: dict[str, Any], empty: str, **kw: Any) -> None:
    print_table(console, rows, empty, **kw)
    if page.get("next_cursor"):
        console.print(f"more: --cursor {page['next_cursor']}")


@command("show", group="release")
def release_show(call: Call, project: str, version: str) -> None:
    """One release: its images (pinned by digest), channel and lifecycle."""
    release = call.get(project_path(project, "releases", segment(version)))
    call.show(release, lambda: release_text(release))


# -- deployments ------------------------------------------------------------------------
def deployments_in(answer: Any) -> list[dict[str, Any]]:
    """The deployments an answer names: a deployment, the `202 Accepted` of a request
    that starts one (`deployment_id`), a list, or a `deployments` field."""
    if isinstance(answer, list):
        return [d for d in answer if isinstance(d, dict) and "id" in d]
    if not isinstance(answer, dict):
        return []
    if "id" in answer and "status" in answer and "environment" in answer:
        return [answer]
    if answer.get("deployment_id"):
        return [{**answer, "id": answer["deployment_id"], "status": "ACCEPTED"}]
    for key in ("deployments", "items"):
        if isinstance(answer.get(key), list):
            return [d for d in answer[key] if isinstance(d, dict) and "id" in d]
    return []


def label(d: dict[str, Any]) -> str:
    tenant = d.get("tenant") or "untenanted"
    where = str(d.get("environment")) + ("" if tenant == "untenanted" else f"/{tenant}")
    return f"{d.get('project')} {d.get('release')} → {where}"


def deployment_line(d: dict[str, Any]) -> str:
    return (
        f"deployment [bold]{escape(str(d.get('id')))}[/]: {escape(label(d))} "
        f"{styled_status(d.get('status'))}"
        + (f" ({escape(str(d.get('mode')))})" if d.get("mode") not in (None, "deploy") else "")
    )


def started_text(answer: Any) -> None:
    found = deployments_in(answer)
    if not found:
        console.print("no deployment started")
    for d in found:
        console.print(deployment_line(d), highlight=False, soft_wrap=True)
    if isinstance(answer, dict) and answer.get("started") is False:
        console.print("(the same request was accepted before: nothing new started)")


class Follower:
    """Looks at deployments until they end, printing new timeline entries as they
    appear (in text mode)."""

    def __init__(self, call: Call, project: str, ids: list[str], *, quiet: bool) -> None:
        self.call = call
        self.project = project
        self.ids = ids
        self.quiet = quiet
        self.seen: dict[str, int] = {}
        self.status: dict[str, str] = {}
        self.last: dict[str, dict[str, Any]] = {}

    def look(self) -> None:
        for deployment_id in self.ids:
            path = project_path(self.project, "deployments", segment(deployment_id))
            try:
                d = self.call.get(path)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                # Accepted, not recorded yet: the pipeline records it when it starts.
                d = {"id": deployment_id, "project": self.project, "status": "ACCEPTED"}
            self.last[deployment_id] = d
            if not self.quiet:
                self._print(d)

    def _print(self, d: dict[str, Any]) -> None:
        prefix = f"{label(d)}: " if len(self.ids) > 1 else ""
        timeline = d.get("timeline") or []
        for entry in timeline[self.seen.get(d["id"], 0) :]:
            at = short_time(str(entry.get("at", "")))[-8:]
            console.print(
                f"{escape(at)} {escape(prefix)}{escape(str(entry.get('message', '')))}",
                highlight=False,
                soft_wrap=True,
            )
        self.seen[d["id"]] = len(timeline)
        status = str(d.get("status"))
        if self.status.get(d["id"]) != status:
            self.status[d["id"]] = status
            if deployment_finished(status):
                reason = f": {escape(str(d['reason']))}" if d.get("reason") else ""
                console.print(
                    f"{escape(prefix)}deployment {escape(d['id'])} {styled_status(status)}{reason}",
                    highlight=False,
                    soft_wrap=True,
                )

    def finished(self) -> bool:
        return all(deployment_finished(str(d.get("status"))) for d in self.last.values())

    def result(self) -> Any:
        found = [self.last[i] for i in self.ids]
        return found[0] if len(found) == 1 else {"items": found, "next_cursor": None}

    def follow(self, timeout: float, interval: float) -> Any:
        """The deployments as they ended; raises WaitTimeout or DeploymentsFailed."""
        deadline = time.monotonic() + timeout
        while True:
            self.look()
            if self.finished():
                break
            if time.monotonic() >= deadline:
                waiting = ", ".join(
                    f"{i} {self.last[i].get('status')}" for i in self.ids if i in self.last
                )
                raise WaitTimeout(f"after {timeout:g} s: {waiting}", self.result())
            time.sleep(interval)
        statuses = [str(self.last[i].get("status")) for i in self.ids]
        if exit_code_for_deployments(statuses) is not ExitCode.OK:
            failed = ", ".join(
                f"{i} {s}" for i, s in zip(self.ids, statuses, strict=True) if s != "SUCCEEDED"
            )
            raise DeploymentsFailed(f"deployment failed: {failed}", self.result())
        return self.result()


def follow_started(
    call: Call,
    project: str,
    answer: Any,
    timeout: float,
    interval: float,
    text: Callable[[], None],
) -> None:
    """--wait: what the command started, followed until it ends."""
    ids = [str(d["id"]) for d in deployments_in(answer)]
    if not call.json:
        text()
    if not ids:
        if call.json:
            typer.echo(dumps(answer))
        return
    result = Follower(call, project, ids, quiet=call.json).follow(timeout, interval)
    if call.json:
        typer.echo(dumps(result))


def start(
    call: Call,
    project: str,
    path: str,
    body: dict[str, Any],
    *,
    wait: bool,
    timeout: float,
    interval: float,
    idempotency_key: str | None,
) -> None:
    answer = call.post(path, _clean(body), headers=_idempotency(idempotency_key))
    if wait:
        follow_started(call, project, answer, timeout, interval, lambda: started_text(answer))
        return
    call.show(answer, lambda: started_text(answer))


@command("deploy")
def deploy(
    call: Call,
    project: str,
    release: str,
    environment: str,
    tenant: Tenant = None,
    redeploy: Annotated[
        bool, typer.Option("--redeploy", help="deploy again what is deployed already")
    ] = False,
    wait: Wait = False,
    timeout: Timeout = DEFAULT_WAIT_SECONDS,
    interval: Interval = 1.0,
    idempotency_key: IdempotencyKey = None,
) -> None:
    """Deploy a release to an environment (an older release: a rollback to it)."""
    body = {
        "release": release,
        "environment": environment,
        "tenant": tenant,
        "mode": "redeploy" if redeploy else None,
    }
    start(
        call,
        project,
        project_path(project, "deployments"),
        body,
        wait=wait,
        timeout=timeout,
        interval=interval,
        idempotency_key=idempotency_key,
    )


@command("promote")
def promote(
    call: Call,
    project: str,
    release: str,
    to: Annotated[
        str | None, typer.Option("--to", help="the environment (default: the next one)")
    ] = None,
    tenant: Tenant = None,
    wait: Wait = False,
    timeout: Timeout = DEFAULT_WAIT_SECONDS,
    interval: Interval = 1.0,
    idempotency_key: IdempotencyKey = None,
) -> None:
    """Promote a release to the next environment of its lifecycle (or a named one)."""
    start(
        call,
        project,
        project_path(project, "promote"),
        {"release": release, "environment": to, "tenant": tenant},
        wait=wait,
        timeout=timeout,
        interval=interval,
        idempotency_key=idempotency_key,
    )


@command("rollback")
def rollback(
    call: Call,
    project: str,
    environment: str,
    tenant: Tenant = None,
    release: Annotated[
        str | None, typer.Option(help="this release (default: the last good one before)")
    ] = None,
    wait: Wait = False,
    timeout: Timeout = DEFAULT_WAIT_SECONDS,
    interval: Interval = 1.0,
    idempotency_key: IdempotencyKey = None,
) -> None:
    """Redeploy the last good release before the current one (or a named release)."""
    start(
        call,
        project,
        project_path(project, "rollback"),
        {"environment": environment, "tenant": tenant, "release": release},
        wait=wait,
        timeout=timeout,
        interval=interval,
        idempotency_key=idempotency_key,
    )


@command("cancel")
def cancel(
    call: Call,
    project: str,
    deployment_id: str,
    reason: Annotated[str | None, typer.Option(help="why (recorded)")] = None,
) -> None:
    """Cancel a deployment that waits for approval, is queued, or runs."""
    answer = call.post(
        project_path(project, "deployments", segment(deployment_id), "cancel"),
        _clean({"reason": reason}),
    )

    def text() -> None:
        was = answer.get("previous_status")
        console.print(
            f"deployment {escape(deployment_id)}: {styled_status(answer.get('status'))}"
            + (f" (was {escape(str(was))})" if was else ""),
            highlight=False,
        )
        for other in answer.get("also_cancelled") or []:
            console.print(f"  also cancelled: {escape(str(other))}", highlight=False)

    call.show(answer, text)


@command("deployments")
def deployments(
    call: Call,
    project: str,
    environment: Annotated[str | None, typer.Option(help="only this environment")] = None,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    status: Annotated[str | None, typer.Option(help="only this status (FAILED...)")] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> None:
    """A project's deployments."""
    page = call.items(
        project_path(project, "deployments"),
        query=_clean({"environment": environment, "tenant": tenant, "status": status}),
        limit=limit,
        cursor=cursor,
    )
    rows = [
        {
            "id": d.get("id"),
            "release": d.get("release"),
            "environment": d.get("environment"),
            "tenant": d.get("tenant"),
            "mode": d.get("mode"),
            "status": d.get("status"),
            "created_at": d.get("created_at"),
        }
        for d in page["items"]
    ]
    call.show(page, lambda: _list_text(rows, page, f"no deployment of {project}"))


@command("watch")
def watch(
    call: Call,
    project: str,
    deployment_id: str,
    timeout: Timeout = DEFAULT_WAIT_SECONDS,
    interval: Interval = 1.0,
) -> None:
    """Follow a deployment live, its timeline as it grows, until it ends.

    Exit 0 when it succeeded, 1 when it failed (or was rejected or cancelled), 6 when
    --timeout passes first."""
    follower = Follower(call, project, [deployment_id], quiet=call.json)
    result = follower.follow(timeout, interval)
    if call.json:
        typer.echo(dumps(result))


@command("logs")
def logs(call: Call, project: str, deployment_id: str) -> None:
    """A deployment's timeline and, when it failed, the diagnosis."""
    d = call.get(project_path(project, "deployments", segment(deployment_id)))
    call.show(d, lambda: logs_text(d))


def logs_text(d: dict[str, Any]) -> None:
    console.print(deployment_line(d), highlight=False, soft_wrap=True)
    by = d.get("triggered_by") or {}
    console.print(
        f"  triggered by {cell(by.get('kind'))} {cell(by.get('by'))}, "
        f"created {cell(d.get('created_at'))}, finished {cell(d.get('finished_at'))}",
        highlight=False,
        soft_wrap=True,
    )
    if d.get("reason"):
        console.print(f"  reason: {escape(str(d['reason']))}", highlight=False, soft_wrap=True)
    for name in ("targets", "failed_units"):
        if d.get(name):
            console.print(f"  {name.replace('_', ' ')}: {cell(d[name])}", soft_wrap=True)
    console.print("timeline:")
    for entry in d.get("timeline") or []:
        console.print(
            f"  {short_time(str(entry.get('at', '')))} {escape(str(entry.get('message', '')))}",
            highlight=False,
            soft_wrap=True,
        )
    diagnosis = d.get("diagnosis") or {}
    for key, lines in diagnosis.items():
        if lines:
            console.print(f"{key.replace('_', ' ')}:")
            for line in lines if isinstance(lines, list) else [lines]:
                console.print(f"  {escape(str(line))}", highlight=False, soft_wrap=True)


# -- approvals --------------------------------------------------------------------------
@command("approvals")
def approvals(
    call: Call,
    project: Annotated[
        str | None,
        typer.Option(help="this project's approvals (pending ones unless --status says)"),
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="with --project: PENDING, APPROVED or REJECTED")
    ] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> None:
    """Deployments waiting for an approval, in every project (or one project's)."""
    if status and not project:
        raise UsageError("--status needs --project (GET /approvals lists pending ones)")
    if project:
        path = project_path(project, "approvals")
        query = {"status": (status or "PENDING").upper()}
    else:
        path, query = "/approvals", {}
    page = call.items(path, query=query, limit=limit, cursor=cursor)
    columns = ["project", "deployment_id", "release", "environment", "tenant", "requested_at"]
    if status:
        columns += ["status", "decided_by", "note"]
    call.show(page, lambda: _list_text(page["items"], page, "no pending approval", columns=columns))


def decide(call: Call, project: str, deployment_id: str, verdict: str, note: str | None) -> None:
    answer = call.post(
        project_path(project, "approvals", segment(deployment_id), verdict),
        _clean({"note": note}),
    )

    def text() -> None:
        status = str(answer.get("status", verdict)).lower() if isinstance(answer, dict) else ""
        by = answer.get("decided_by") if isinstance(answer, dict) else None
        console.print(
            f"deployment {escape(deployment_id)}: {escape(status)}"
            + (f" by {escape(str(by))}" if by else ""),
            highlight=False,
        )

    call.show(answer, text)


Note = Annotated[str | None, typer.Option(help="why (recorded with the decision)")]


@command("approve")
def approve(call: Call, project: str, deployment_id: str, note: Note = None) -> None:
    """Approve a deployment waiting for approval."""
    decide(call, project, deployment_id, "approve", note)


@command("reject")
def reject(call: Call, project: str, deployment_id: str, note: Note = None) -> None:
    """Reject a deployment waiting for approval (the lifecycle stops there)."""
    decide(call, project, deployment_id, "reject", note)


# -- status -----------------------------------------------------------------------------
def status_rows(data: Any) -> Iterator[dict[str, Any]]:
    """One row per project x environment x tenant, from GET /status."""
    for project in data.get("projects", []) if isinstance(data, dict) else []:
        pending: dict[tuple[str, str], int] = {}
        for approval in project.get("pending_approvals") or []:
            key = (approval.get("environment"), approval.get("tenant"))
            pending[key] = pending.get(key, 0) + 1
        for row in project.get("rows") or []:
            tenant = row.get("tenant") or "untenanted"
            for c in row.get("cells") or []:
                latest = c.get("latest") or {}
                environment = c.get("environment")
                yield {
                    "project": project.get("name"),
                    "environment": environment + ("" if tenant == "untenanted" else f"/{tenant}"),
                    "current": c.get("current_release"),
                    "latest": latest.get("release"),
                    "status": latest.get("status"),
                    "approvals": pending.get((environment, tenant), 0)
                    or (1 if c.get("awaiting_approval") else 0),
                    "queued": c.get("queued") or 0,
                    "drift": c.get("drift") or [],
                }


@command("status")
def status(
    call: Call,
    project: Annotated[str | None, typer.Argument(help="only this project")] = None,
) -> None:
    """The dashboard: every project x environment (x tenant).

    What runs there, the latest deployment and its status, pending approvals, queued
    deployments and drift."""
    data = call.get("/status", query=_clean({"project": project}))
    rows = list(status_rows(data))
    call.show(data, lambda: print_table(console, rows, "nothing deployed yet", title="Shiplane"))


# -- steps ------------------------------------------------------------------------------
def preview_text(kind: str, answer: dict[str, Any]) -> None:
    """Render and diff answers as `shiplane local render|diff` prints them."""
    from shiplane.services import preview

    from .cli import _preview_lines

    model = preview.RenderResult if kind == "render" else preview.DiffResult
    # typer.echo, not rich: paths like containerDefinitions[web] are not markup.
    for line in _preview_lines(model.model_validate(answer)):
        typer.echo(line)


def _preview(
    call: Call,
    kind: str,
    project: str,
    step: str,
    release: str,
    environment: str,
    tenant: str | None,
) -> None:
    answer = call.post(
        project_path(project, "steps", segment(step), kind),
        _clean({"release": release, "environment": environment, "tenant": tenant}),
    )
    call.show(answer, lambda: preview_text(kind, answer))


@command("render")
def render(
    call: Call, project: str, step: str, release: str, environment: str, tenant: Tenant = None
) -> None:
    """The task definition and stack a step would deploy (nothing is written)."""
    _preview(call, "render", project, step, release, environment, tenant)


@command("diff")
def diff(
    call: Call, project: str, step: str, release: str, environment: str, tenant: Tenant = None
) -> None:
    """How a step's deployment would differ from what runs now.

    Task definition fields, and the stack's change set (created, described, deleted)."""
    _preview(call, "diff", project, step, release, environment, tenant)


@command("convert")
def convert(
    call: Call,
    project: str,
    step: str,
    replace: Annotated[
        bool, typer.Option("--replace", help="replace the step in the project (in place)")
    ] = False,
) -> None:
    """An ecs-service step as an equivalent cloudformation step.

    Shown (read-only), or with --replace put in the project in place of the step."""
    answer = call.post(
        project_path(project, "steps", segment(step), "convert"), {"replace": replace}
    )

    def text() -> None:
        import yaml

        document = answer.get("yaml") if isinstance(answer, dict) else None
        if not document:
            document = yaml.safe_dump(answer.get("step", answer), sort_keys=False)
        typer.echo(document, nl=False)
        if replace:
            typer.echo(f"step {step!r} of project {project!r} replaced by its conversion", err=True)

    call.show(answer, text)


# -- schedules --------------------------------------------------------------------------
SCHEDULE_COLUMNS = ["id", "project", "release", "environment", "tenant", "at", "status"]


@command("create", group="schedule")
def schedule_create(
    call: Call,
    project: str,
    release: str,
    environment: str,
    at: Annotated[str, typer.Option(help="when: ISO 8601, e.g. 2030-01-02T02:00:00Z")],
    tenant: Tenant = None,
) -> None:
    """Deploy a release to an environment at a given time (once)."""
    answer = call.post(
        "/schedules",
        _clean(
            {
                "project": project,
                "release": release,
                "environment": environment,
                "tenant": tenant,
                "at": at,
            }
        ),
    )
    call.show(answer, lambda: print_table(console, [answer], "", columns=SCHEDULE_COLUMNS))


@command("list", group="schedule")
def schedule_list(call: Call, limit: Limit = None, cursor: Cursor = None) -> None:
    """Scheduled deployments."""
    page = call.items("/schedules", limit=limit, cursor=cursor)
    call.show(
        page,
        lambda: _list_text(
            page["items"], page, "no scheduled deployment", columns=SCHEDULE_COLUMNS
        ),
    )


@command("show", group="schedule")
def schedule_show(call: Call, schedule_id: str) -> None:
    """One scheduled deployment."""
    answer = call.get(f"/schedules/{segment(schedule_id)}")
    call.show(answer, lambda: print_table(console, [answer], "", columns=SCHEDULE_COLUMNS))


@command("cancel", group="schedule")
def schedule_cancel(call: Call, schedule_id: str) -> None:
    """Cancel a scheduled deployment before it fires."""
    answer = call.delete(f"/schedules/{segment(schedule_id)}")
    call.show(answer, lambda: console.print(f"schedule {escape(schedule_id)} cancelled"))


# -- dashboard --------------------------------------------------------------------------
@command("dashboard")
def dashboard(
    call: Call,
    port: Annotated[int, typer.Option(help="local port of the signing proxy (0: any)")] = 8765,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="open the page in the default browser")
    ] = False,
) -> None:
    """Open the dashboard: a read-only proxy on 127.0.0.1 signs the browser's requests
    (the API wants SigV4 on every route, which a browser cannot do). Ctrl-C stops it."""
    from .dashboard_proxy import DashboardProxy

    proxy = DashboardProxy(call.client(), port=port)
    call.show(
        {"url": proxy.url, "api_url": call.client().base_url},
        lambda: console.print(f"dashboard at [bold]{proxy.url}[/] (Ctrl-C stops it)"),
    )
    if open_browser:
        import webbrowser

        webbrowser.open(proxy.url)
    try:
        proxy.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
