"""How the `shiplane` command line answers: exit codes a script can rely on, errors on
standard error, JSON exactly as the API sent it, and tables for people.

Exit codes (also in the README and `shiplane_local.commands`):

| code | meaning |
|---|---|
| 0 | success |
| 1 | the operation ran but failed (a deployment ended FAILED, REJECTED or CANCELLED) |
| 2 | bad usage, or the API refused the input (400, 422, other 4xx) |
| 3 | not found (404) |
| 4 | conflict or precondition (409, 412, 428) |
| 5 | the API is unreachable, or answered 5xx |
| 6 | timed out waiting |
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import IntEnum
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    UNAVAILABLE = 5
    TIMEOUT = 6


# Deployment statuses that end a deployment, and what each means to a script.
SUCCEEDED = frozenset({"SUCCEEDED", "SKIPPED"})
FAILED = frozenset({"FAILED", "REJECTED", "CANCELLED", "CANCELED"})


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code for an API answer's HTTP status."""
    if 200 <= status < 400:
        return ExitCode.OK
    if status == 404:
        return ExitCode.NOT_FOUND
    if status in (409, 412, 428):
        return ExitCode.CONFLICT
    if status >= 500:
        return ExitCode.UNAVAILABLE
    return ExitCode.USAGE  # 400, 422 and the rest of 4xx: the request is wrong


def deployment_finished(status: str) -> bool:
    return status.upper() in SUCCEEDED | FAILED


def exit_code_for_deployments(statuses: Iterable[str]) -> ExitCode:
    """0 when every deployment succeeded (or was skipped), 1 when any did not."""
    return ExitCode.FAILED if any(s.upper() not in SUCCEEDED for s in statuses) else ExitCode.OK


class Unreachable(Exception):
    """The API did not answer: no connection, DNS, a timeout."""


def error_lines(
    status: int, code: str, message: str, field: str | None, errors: Sequence[Any]
) -> list[str]:
    """An API error for a person: status, code, message, the field, every field error."""
    lines = [f"error {status} {code}: {message}" + (f" (field: {field})" if field else "")]
    for item in errors:
        if isinstance(item, Mapping):
            lines.append(f"  {item.get('field', '?')}: {item.get('message', '')}")
    return lines


def error_body(raw: bytes) -> dict[str, Any]:
    """The API's ErrorBody, or one made from whatever came back (a gateway's answer)."""
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return {"code": "Error", "message": raw.decode(errors="replace").strip(), "field": None}
    body.setdefault("code", "Error")
    body.setdefault("message", "")
    return body


def dumps(data: Any) -> str:
    """JSON for stdout: the API's data, indented, nothing added."""
    return json.dumps(data, indent=2, ensure_ascii=False)


# -- tables -----------------------------------------------------------------------------
STATUS_STYLE = {
    "QUEUED": "yellow",
    "DEPLOYING": "cyan",
    "PENDING": "yellow",
    "WAITING_FOR_APPROVAL": "yellow",
    "SUCCEEDED": "green",
    "FAILED": "bold red",
    "REJECTED": "magenta",
    "CANCELLED": "magenta",
    "SKIPPED": "dim",
    "SCHEDULED": "yellow",
}


def styled_status(status: Any) -> str:
    text = "-" if status in (None, "") else str(status)
    style = STATUS_STYLE.get(text.upper())
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def cell(value: Any) -> str:
    """One table cell from any JSON value, escaped for rich markup."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return escape(", ".join(_scalar(v) for v in value))
    if isinstance(value, dict):
        return escape(", ".join(f"{k}={_scalar(v)}" for k, v in value.items()))
    return escape(_scalar(value))


def _scalar(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, str):
        return short_time(value)
    return str(value)


_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def short_time(value: str) -> str:
    """`2025-01-02T03:04:05.678901Z` as `2025-01-02 03:04:05`; anything else unchanged."""
    if not _TIMESTAMP.match(value):
        return value
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    title: str | None = None,
    status_column: str = "status",
) -> Table:
    """A table of dicts: the given columns, or every key the rows have, in order seen."""
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            for key in row:
                seen.setdefault(key, None)
        columns = list(seen)
    result = Table(title=title, header_style="bold")
    for column in columns:
        # A status is one word: never broken across lines (other columns fold instead).
        whole = column == status_column
        result.add_column(
            column.replace("_", " "), overflow="fold", no_wrap=whole, min_width=9 if whole else None
        )
    for row in rows:
        result.add_row(
            *(
                styled_status(row.get(c)) if c == status_column else cell(row.get(c))
                for c in columns
            )
        )
    return result


def print_table(console: Console, rows: Sequence[Mapping[str, Any]], empty: str, **kw: Any) -> None:
    if not rows:
        console.print(empty)
        return
    console.print(table(rows, **kw))
