"""The API's shared pieces: error shape and statuses, cursors, ETags and preconditions,
redaction of audit records, and a request through the resolver with fakes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shiplane import errors
from shiplane.api.app import handle, openapi_document
from shiplane.api.concurrency import check_preconditions, etag_of
from shiplane.api.deps import ApiDependencies
from shiplane.api.errors import body_of, status_of, validation_body
from shiplane.api.pagination import decode_cursor, encode_cursor, paginate
from shiplane.domain.audit import REDACTED, AuditRecord, redact
from shiplane.domain.models import Environment
from shiplane_local.api_gateway import proxy_event

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.NotFoundError("project 'x' does not exist"), 404, "NotFound"),
        (errors.PreconditionFailedError("changed"), 412, "PreconditionFailed"),
        (errors.PreconditionRequiredError("send If-Match"), 428, "PreconditionRequired"),
        (errors.ConflictError("exists"), 409, "Conflict"),
        (errors.LifecycleViolationError("phase testing"), 409, "LifecycleViolation"),
        (errors.ConfigurationError("unknown environment"), 400, "Configuration"),
        (errors.InvalidVersionRangeError("bad range"), 400, "InvalidVersionRange"),
        (errors.ThrottledError("slow down"), 503, "Throttled"),
    ],
)
def test_each_error_has_one_status_and_a_machine_readable_code(
    error: errors.ShiplaneError, status: int, code: str
) -> None:
    assert status_of(error) == status
    assert body_of(error).code == code


def test_the_error_body_names_the_field() -> None:
    body = body_of(errors.ConfigurationError("unknown lifecycle", field="projects.web.lifecycle"))
    assert body.field == "projects.web.lifecycle"
    several = body_of(errors.InvalidRequestError("bad", fields=["body.cpu", "body.memory"]))
    assert several.field is None
    assert [e.field for e in several.errors] == ["body.cpu", "body.memory"]


def test_a_validation_error_lists_every_field_without_echoing_the_input() -> None:
    body = validation_body(
        [
            {"loc": ("body", "cpu"), "msg": "Input should be a valid integer", "input": "x"},
            {"loc": ("query", "limit"), "msg": "Value error, too big", "input": 1000},
        ]
    )
    assert body.code == "InvalidRequest"
    assert [e.field for e in body.errors] == ["body.cpu", "query.limit"]
    assert body.errors[1].message == "too big"
    assert "'x'" not in body.message and "1000" not in body.message


# ----------------------------------------------------------------- pagination


def test_pages_follow_the_cursor_to_the_end_without_repeats() -> None:
    names = [f"env-{i:02d}" for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page, cursor = paginate(names, key=lambda n: n, cursor=cursor, limit=3)
        seen.extend(page)
        pages += 1
        if cursor is None:
            break
    assert seen == names
    assert pages == 3


def test_a_cursor_survives_an_item_removed_between_pages() -> None:
    names = ["a", "b", "c", "d"]
    first, cursor = paginate(names, key=lambda n: n, cursor=None, limit=2)
    second, _ = paginate(["a", "c", "d"], key=lambda n: n, cursor=cursor, limit=2)
    assert first == ["a", "b"] and second == ["c", "d"]


def test_a_cursor_this_api_did_not_give_is_a_400_naming_it() -> None:
    assert decode_cursor(encode_cursor("PROJECT#web")) == "PROJECT#web"
    with pytest.raises(errors.InvalidRequestError) as bad:
        decode_cursor("%%%not-base64")
    assert bad.value.details["field"] == "query.cursor"


# ----------------------------------------------------------------- ETags


def test_the_etag_changes_with_the_resource_and_only_with_it() -> None:
    a = Environment(name="dev")
    assert etag_of(a) == etag_of(Environment(name="dev"))
    assert etag_of(a) != etag_of(Environment(name="dev", requires_approval=True))
    assert etag_of(a).startswith('"') and etag_of(a).endswith('"')


def test_preconditions() -> None:
    tag = '"abc"'
    check_preconditions("environment 'dev'", None, None)  # create
    check_preconditions("environment 'dev'", tag, tag)  # update with the right tag
    check_preconditions("environment 'dev'", tag, f'"old", {tag}')
    check_preconditions("environment 'dev'", None, None, "*")  # create-only
    with pytest.raises(errors.PreconditionRequiredError):
        check_preconditions("environment 'dev'", tag, None)
    with pytest.raises(errors.PreconditionFailedError):
        check_preconditions("environment 'dev'", tag, '"old"')
    with pytest.raises(errors.PreconditionFailedError):
        check_preconditions("environment 'dev'", None, '"old"')
    with pytest.raises(errors.PreconditionFailedError):
        check_preconditions("environment 'dev'", tag, None, "*")


# ----------------------------------------------------------------- audit


def test_redaction_removes_sensitive_values_at_any_depth() -> None:
    project = {
        "name": "web",
        "variables": [
            {"name": "DbPassword", "sensitive": True, "value": "hunter2", "secret_ref": "arn:x"},
            {"name": "LogLevel", "value": "info"},
        ],
    }
    redacted = redact(project)
    assert "hunter2" not in json.dumps(redacted)
    assert redacted["variables"][0]["value"] == REDACTED
    assert redacted["variables"][0]["secret_ref"] == "arn:x"
    assert redacted["variables"][1]["value"] == "info"
    assert project["variables"][0]["value"] == "hunter2"  # a copy, not in place


# ----------------------------------------------------------------- through the resolver


class FakeAudit:
    def __init__(self, records: list[AuditRecord]) -> None:
        self.records = sorted(records, key=lambda r: r.id, reverse=True)

    def list_audit(self, limit: int, before_id: str | None = None) -> list[AuditRecord]:
        found = [r for r in self.records if before_id is None or r.id < before_id]
        return found[:limit]


def call(method: str, path: str, store: Any, body: Any = None) -> dict[str, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    event = proxy_event(
        method,
        path,
        {"Authorization": "AWS4-HMAC-SHA256 Credential=alice/20261129/us-east-1/execute-api"},
        raw,
        account_id="123456789012",
    )
    return handle(event, None, ApiDependencies(store=store, now=lambda: NOW))  # type: ignore[arg-type]


def record(i: int) -> AuditRecord:
    return AuditRecord(
        id=f"20261129T0000{i:02d}.000000Z#abc",
        at=NOW,
        who="arn:aws:iam::123456789012:user/alice",
        action="PUT /environments/dev",
        resource="environment/dev",
    )


def test_the_audit_log_pages_newest_first() -> None:
    store = FakeAudit([record(i) for i in range(5)])
    first = call("GET", "/audit?limit=2", store)
    assert first["statusCode"] == 200
    page = json.loads(first["body"])
    assert [r["id"][:15] for r in page["items"]] == ["20261129T000004", "20261129T000003"]
    second = json.loads(call("GET", f"/audit?limit=2&cursor={page['next_cursor']}", store)["body"])
    assert [r["id"][:15] for r in second["items"]] == ["20261129T000002", "20261129T000001"]
    last = json.loads(call("GET", f"/audit?limit=2&cursor={second['next_cursor']}", store)["body"])
    assert len(last["items"]) == 1 and last["next_cursor"] is None


def test_bad_input_is_a_4xx_in_the_one_error_shape() -> None:
    store = FakeAudit([])
    for path in ("/audit?limit=0", "/audit?limit=abc", "/audit?cursor=%25%25"):
        response = call("GET", path, store)
        assert 400 <= response["statusCode"] < 500, path
        body = json.loads(response["body"])
        assert set(body) == {"code", "message", "field", "errors"}
        assert body["field"].startswith("query."), body
    unknown = call("GET", "/no-such-route", store)
    assert unknown["statusCode"] == 404
    assert json.loads(unknown["body"])["code"] == "NotFound"


def test_the_openapi_document_describes_errors_as_they_are_answered() -> None:
    document = openapi_document()
    operation = document["paths"]["/audit"]["get"]
    error = {"$ref": "#/components/schemas/ErrorBody"}
    assert operation["responses"]["422"]["content"]["application/json"]["schema"] == error
    assert operation["responses"]["default"]["content"]["application/json"]["schema"] == error
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["security"] == [{"sigv4": []}]


def test_swagger_ui_is_served_with_its_assets_inline() -> None:
    """No CDN: the page works where the browser cannot reach the internet."""
    response = call("GET", "/docs", FakeAudit([]))
    assert response["statusCode"] == 200
    assert "<title>Swagger UI</title>" in response["body"]
    assert "cdn.jsdelivr" not in response["body"] and "unpkg.com" not in response["body"]
    # The page shows this API's own document: its error body and its SigV4 scheme.
    assert '"ErrorBody"' in response["body"] and '"sigv4"' in response["body"]
