"""The configuration API end to end: SigV4-signed HTTP requests to the local cloud's API
Gateway, the real api function, DynamoDB and SSM on the emulator."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shiplane.domain.models import Configuration
from shiplane_local.api_client import ApiClient, ApiResponse, local_credentials
from shiplane_local.cloud import LocalCloud
from tests.helpers import demo_configuration

pytestmark = pytest.mark.e2e

CALLER = "arn:aws:iam::123456789012:user/testing"


@pytest.fixture(scope="module")
def api(cloud: LocalCloud) -> Iterator[ApiClient]:
    yield ApiClient(cloud.api_url, local_credentials(), region=cloud.region)


def uid() -> str:
    return uuid.uuid4().hex[:6]


def apply(api: ApiClient, document: dict[str, Any]) -> ApiResponse:
    answer = api.put("/configuration", document)
    assert answer.status == 200, answer.body
    return answer


def table_text(cloud: LocalCloud) -> str:
    items = cloud.client("dynamodb").scan(TableName=cloud.outputs["TableName"])["Items"]
    return json.dumps(items)


def test_create_replace_delete_with_etags(api: ApiClient) -> None:
    path = f"/environments/qa-{uid()}"
    created = api.put(path, {"description": "first"})
    assert created.status == 201
    read = api.get(path)
    assert read.status == 200 and read.headers["ETag"] == created.headers["ETag"]

    missing = api.put(path, {"description": "second"})
    assert missing.status == 428 and missing.json()["field"] == "header.If-Match"
    stale = api.put(path, {"description": "second"}, headers={"If-Match": '"0000"'})
    assert stale.status == 412 and stale.json()["code"] == "PreconditionFailed"
    replaced = api.put(path, {"description": "second"}, headers={"If-Match": read.headers["ETag"]})
    assert replaced.status == 200 and replaced.json()["description"] == "second"

    assert api.delete(path).status == 428
    assert api.delete(path, headers={"If-Match": read.headers["ETag"]}).status == 412
    assert api.delete(path, headers={"If-Match": replaced.headers["ETag"]}).status == 204
    assert api.get(path).status == 404


def test_deleting_what_the_configuration_uses_is_refused_naming_it(api: ApiClient) -> None:
    apply(api, demo_configuration())
    test = api.get("/environments/test")
    refused = api.delete("/environments/test", headers={"If-Match": test.headers["ETag"]})
    body = refused.json()
    assert refused.status == 400 and body["code"] == "Configuration"
    assert body["field"] == "lifecycles.default.phases.testing"
    assert "environment 'test' cannot be deleted" in body["message"]
    assert api.get("/environments/test").status == 200


def test_lists_page_through_everything(api: ApiClient) -> None:
    prefix = f"pg{uid()}"
    names = [f"{prefix}-{i}" for i in range(5)]
    for name in names:
        assert api.put(f"/environments/{name}", {}).status == 201
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        answer = api.get("/environments", query={"limit": 2, "cursor": cursor})
        assert answer.status == 200
        page = answer.json()
        assert len(page["items"]) <= 2
        seen += [e["name"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [n for n in seen if n.startswith(prefix)] == names
    assert len(seen) == len(set(seen)) and pages == (len(seen) + 1) // 2
    assert seen == sorted(seen)


def test_sensitive_values_are_write_only(
    api: ApiClient,
    cloud: LocalCloud,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Everything Shiplane logs, at every level (the api function runs in this process).
    caplog.set_level(logging.DEBUG, logger="shiplane")
    caplog.set_level(logging.DEBUG, logger="shiplane_local")
    apply(api, demo_configuration())
    secret = f"pw-{uid()}{uid()}-never-answered"
    current = api.get("/projects/web/variables")
    answer = api.put(
        "/projects/web/variables",
        [{"name": "DbPassword", "sensitive": True, "value": secret}],
        headers={"If-Match": current.headers["ETag"]},
    )
    assert answer.status == 200
    [variable] = answer.json()
    assert variable["value"] == "" and variable["secret_ref"].startswith("arn:aws:ssm:")
    name = variable["secret_ref"].split(":parameter", 1)[1]
    ssm = cloud.client("ssm")
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == secret

    seen = [
        answer,
        api.get("/projects/web"),
        api.get("/projects/web/variables"),
        api.get("/configuration"),
        api.get("/audit", query={"limit": 100}),
    ]
    for response in seen:
        assert response.ok and secret.encode() not in response.body
    assert secret not in table_text(cloud)
    captured = capfd.readouterr()
    assert "sensitive value stored" in captured.out + captured.err + caplog.text
    assert secret not in captured.out + captured.err + caplog.text


def test_plan_apply_export_round_trip(api: ApiClient) -> None:
    document = demo_configuration()
    apply(api, document)
    assert api.post("/configuration/plan", document).json()["changes"] == []

    exported = api.get("/configuration")
    expected = Configuration.model_validate(document)
    assert Configuration.model_validate(exported.json()) == expected
    assert exported.json() == expected.model_dump(mode="json")

    modified = copy.deepcopy(document)
    modified["environments"].append({"name": "qa"})
    modified["projects"][0]["steps"][0]["service"]["desired_count"] = 3
    modified["targets"][0]["environments"] = ["dev", "qa"]
    planned = api.post("/configuration/plan", modified).json()
    assert sorted(
        (c["kind"], c["name"], c["action"], tuple(c["fields"])) for c in planned["changes"]
    ) == [
        ("environment", "qa", "add", ()),
        ("project", "web", "change", ("steps",)),
        ("target", "dev-cluster", "change", ("environments",)),
    ]
    assert planned["etag"] == exported.headers["ETag"]

    audit_before = len(api.pages("/audit"))
    first = api.put("/configuration", modified, headers={"If-Match": planned["etag"]})
    assert first.status == 200 and first.json()["changes"] == planned["changes"]
    assert len(api.pages("/audit")) == audit_before + 3
    second = apply(api, modified)
    assert second.json()["changes"] == []
    assert second.headers["ETag"] == first.headers["ETag"]
    assert len(api.pages("/audit")) == audit_before + 3
    assert Configuration.model_validate(api.get("/configuration").json()) == (
        Configuration.model_validate(modified)
    )

    # Declarative: what the document leaves out goes.
    removed = apply(api, document).json()["changes"]
    assert ("environment", "qa", "remove") in {(c["kind"], c["name"], c["action"]) for c in removed}
    assert api.get("/environments/qa").status == 404


def test_a_bad_document_writes_nothing(api: ApiClient, cloud: LocalCloud) -> None:
    apply(api, demo_configuration())
    before = api.get("/configuration")
    broken = demo_configuration()
    broken["environments"].append({"name": "staging"})
    broken["projects"][0]["lifecycle"] = "missing"
    refused = api.put("/configuration", broken)
    assert refused.status == 400 and refused.json()["field"] == "projects.web.lifecycle"
    after = api.get("/configuration")
    assert after.json() == before.json() and after.headers["ETag"] == before.headers["ETag"]


def test_changes_are_audited_with_who_before_and_after(api: ApiClient) -> None:
    path = f"/environments/au-{uid()}"
    created = api.put(path, {"description": "v1"})
    api.put(path, {"description": "v2"}, headers={"If-Match": created.headers["ETag"]})
    records = api.get("/audit", query={"limit": 2}).json()["items"]
    latest, earlier = records
    resource = "environment/" + path.rsplit("/", 1)[1]
    assert latest["resource"] == earlier["resource"] == resource
    assert latest["who"] == CALLER and latest["action"] == f"PUT {path}"
    assert latest["before"]["description"] == "v1" and latest["after"]["description"] == "v2"
    assert earlier["before"] is None and earlier["after"]["description"] == "v1"
