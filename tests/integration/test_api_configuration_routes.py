"""The configuration routes through the api function's resolver (API Gateway proxy
events), on moto's DynamoDB and SSM."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.adapters.ssm import SsmSecrets
from shiplane.api.app import handle
from shiplane.api.deps import ApiDependencies
from shiplane.domain.audit import AuditRecord
from shiplane.domain.health import TargetHealth
from shiplane.errors import PreconditionFailedError
from shiplane.ports import ConfigWrite
from shiplane_local.api_gateway import proxy_event
from tests.helpers import demo_configuration
from tests.integration.conftest import TABLE, Clock

ACCOUNT = "123456789012"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def etag(self) -> str:
        return self.headers["ETag"]


class Api:
    def __init__(self, deps: ApiDependencies) -> None:
        self.deps = deps

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        sent = {"Authorization": "AWS4-HMAC-SHA256 Credential=alice/20260101/us-east-1"}
        data = json.dumps(body).encode() if body is not None else b""
        if data:
            sent["Content-Type"] = "application/json"
        event = proxy_event(method, path, sent | (headers or {}), data, account_id=ACCOUNT)
        response = handle(event, None, self.deps)  # type: ignore[arg-type]
        raw = response.get("multiValueHeaders") or {}
        answered = {k: v[0] for k, v in raw.items()} | (response.get("headers") or {})
        text = response.get("body")
        return Answer(int(response["statusCode"]), answered, json.loads(text) if text else None)

    def get(self, path: str, **kw: Any) -> Answer:
        return self.call("GET", path, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> Answer:
        return self.call("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Answer:
        return self.call("DELETE", path, **kw)


@pytest.fixture
def ssm(aws: None) -> Any:
    return boto3.client("ssm", region_name="us-east-1")


@pytest.fixture
def api(store: DynamoStore, ssm: Any, clock: Clock) -> Api:
    return Api(ApiDependencies(store=store, now=clock, secrets=SsmSecrets(ssm)))


@pytest.fixture
def configured_api(api: Api) -> Api:
    answer = api.put("/configuration", demo_configuration())
    assert answer.status == 200, answer.body
    return api


def every_item(dynamodb: Any) -> str:
    return json.dumps(dynamodb.scan(TableName=TABLE)["Items"])


# --------------------------------------------------------------------------- one resource


def test_create_get_replace_delete_with_etags(api: Api) -> None:
    created = api.put("/environments/qa", {"description": "first"})
    assert created.status == 201 and created.body["name"] == "qa"
    got = api.get("/environments/qa")
    assert got.status == 200 and got.etag == created.etag

    unconditional = api.put("/environments/qa", {"description": "second"})
    assert unconditional.status == 428 and unconditional.body["field"] == "header.If-Match"
    stale = api.put("/environments/qa", {"description": "second"}, headers={"If-Match": '"stale"'})
    assert stale.status == 412 and stale.body["code"] == "PreconditionFailed"
    only_create = api.put("/environments/qa", {}, headers={"If-None-Match": "*"})
    assert only_create.status == 412

    replaced = api.put(
        "/environments/qa", {"description": "second"}, headers={"If-Match": got.etag}
    )
    assert replaced.status == 200 and replaced.etag != got.etag
    assert api.get("/environments/qa").body["description"] == "second"

    assert api.delete("/environments/qa").status == 428
    assert api.delete("/environments/qa", headers={"If-Match": got.etag}).status == 412
    assert api.delete("/environments/qa", headers={"If-Match": replaced.etag}).status == 204
    gone = api.get("/environments/qa")
    assert gone.status == 404 and gone.body["field"] == "path.name"


def test_the_body_name_must_be_the_path_name(api: Api) -> None:
    answer = api.put("/environments/qa", {"name": "prod"})
    assert answer.status == 400 and answer.body["field"] == "body.name"
    assert api.get("/environments/qa").status == 404
    assert api.put("/environments/qa", {"name": "qa"}).status == 201


def test_a_bad_path_name_or_body_is_named(api: Api) -> None:
    bad_name = api.put("/environments/Not_A_Name", {})
    assert bad_name.status == 400 and bad_name.body["field"] == "path.name"
    bad_body = api.put("/environments/qa", {"requires_approval": "maybe"})
    assert bad_body.status == 422 and bad_body.body["field"] == "body.requires_approval"


def test_deleting_an_environment_a_lifecycle_uses_is_refused(
    configured_api: Api, dynamodb: Any
) -> None:
    test = configured_api.get("/environments/test")
    before = every_item(dynamodb)
    refused = configured_api.delete("/environments/test", headers={"If-Match": test.etag})
    assert refused.status == 400
    assert "environment 'test' cannot be deleted" in refused.body["message"]
    assert "lifecycle 'default'" in refused.body["message"]
    assert refused.body["field"] == "lifecycles.default.phases.testing"
    assert every_item(dynamodb) == before


def test_lists_page_through_every_resource(api: Api) -> None:
    names = [f"env-{i:02d}" for i in range(7)]
    for name in reversed(names):
        assert api.put(f"/environments/{name}", {}).status == 201
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(f"/environments{query}").body
        seen += [e["name"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == names and pages == 3
    assert api.get("/environments?limit=0").status == 422
    assert api.get("/environments?cursor=____").body["field"] == "query.cursor"


def test_a_write_that_lost_the_race_is_refused_whole(store: DynamoStore, dynamodb: Any) -> None:
    store.write_config(
        [ConfigWrite("ENVIRONMENT", "qa", {"name": "qa"}, etag='"one"', position=0)], []
    )
    before = every_item(dynamodb)
    record = {
        "id": "20260101T000000.000000Z#race",
        "at": datetime(2026, 1, 1, tzinfo=UTC),
        "who": "alice",
        "action": "PUT /environments/qa",
        "resource": "environment/qa",
    }
    with pytest.raises(PreconditionFailedError):
        store.write_config(
            [
                ConfigWrite("ENVIRONMENT", "dev", {"name": "dev"}, etag='"d"', position=1),
                ConfigWrite(
                    "ENVIRONMENT",
                    "qa",
                    {"name": "qa", "x": 1},
                    etag='"two"',
                    expected_etag='"not-one"',
                ),
            ],
            [AuditRecord.model_validate(record)],
        )
    assert every_item(dynamodb) == before


def test_items_saved_by_apply_configuration_carry_their_etag(configured: DynamoStore) -> None:
    stored = configured.get_config("ENVIRONMENT", "dev")
    assert stored is not None
    raw = configured.client.get_item(
        TableName=TABLE, Key={"pk": {"S": "CONFIG#ENVIRONMENT"}, "sk": {"S": "dev"}}
    )["Item"]
    assert raw["etag"]["S"] == stored.etag
    assert [e.name for e in configured.list_environments()] == ["dev", "test", "prod"]


def test_target_get_includes_its_last_health(configured_api: Api, store: DynamoStore) -> None:
    assert configured_api.get("/targets/dev-cluster").body["health"] is None
    store.save_target_health(
        TargetHealth.model_validate(
            {
                "target": "dev-cluster",
                "checked_at": "2026-01-01T00:00:00Z",
                "status": "HEALTHY",
            }
        )
    )
    target = configured_api.get("/targets/dev-cluster")
    assert target.body["health"]["status"] == "HEALTHY"
    # What GET answers can be PUT back (health is read-only and ignored).
    again = configured_api.put(
        "/targets/dev-cluster", target.body, headers={"If-Match": target.etag}
    )
    assert again.status == 200 and again.etag == target.etag


# --------------------------------------------------------------------------- project parts


def test_project_steps_and_channels_change_with_the_project_etag(configured_api: Api) -> None:
    api = configured_api
    project = api.get("/projects/web")
    steps = api.get("/projects/web/steps").body
    assert [s["name"] for s in steps["items"]] == ["web-service"]
    step = api.get("/projects/web/steps/web-service")
    assert step.etag == project.etag
    changed = copy.deepcopy(step.body)
    changed["service"]["desired_count"] = 4
    assert api.put("/projects/web/steps/web-service", changed).status == 428
    put = api.put("/projects/web/steps/web-service", changed, headers={"If-Match": step.etag})
    assert put.status == 200 and put.body["service"]["desired_count"] == 4
    renamed = api.put("/projects/web/steps/other", changed, headers={"If-Match": put.etag})
    assert renamed.status == 400 and renamed.body["field"] == "body.name"
    assert api.get("/projects/web/steps/nothing").body["field"] == "path.step"

    channels = api.get("/projects/web/channels")
    assert [c["name"] for c in channels.body] == ["default"]
    hotfix = [
        *channels.body,
        {"name": "hotfix", "rules": [{"package": "web", "prerelease": "^hotfix"}]},
    ]
    updated = api.put("/projects/web/channels", hotfix, headers={"If-Match": channels.etag})
    assert updated.status == 200 and [c["name"] for c in updated.body] == ["default", "hotfix"]
    bad = api.put(
        "/projects/web/channels",
        [{"name": "x", "lifecycle": "nowhere"}],
        headers={"If-Match": updated.etag},
    )
    assert bad.status == 400 and bad.body["field"] == "projects.web.channels.x.lifecycle"


def test_sensitive_values_are_write_only(
    configured_api: Api, dynamodb: Any, ssm: Any, store: DynamoStore
) -> None:
    api = configured_api
    secret = "pw-never-answered-1234"
    variables = api.get("/projects/web/variables")
    sent = [
        {"name": "DbPassword", "sensitive": True, "value": secret},
        {"name": "LogLevel", "value": "info"},
    ]
    put = api.put("/projects/web/variables", sent, headers={"If-Match": variables.etag})
    assert put.status == 200
    answers = [put, api.get("/projects/web/variables"), api.get("/projects/web")]
    answers.append(api.get("/configuration"))
    answers.append(api.get("/audit"))
    for answer in answers:
        assert secret not in json.dumps(answer.body)
    assert secret not in every_item(dynamodb)
    password = next(v for v in put.body if v["name"] == "DbPassword")
    assert password["value"] == "" and password["secret_ref"]
    name = password["secret_ref"].split(":parameter", 1)[1]
    assert name.startswith("/shiplane/web/DbPassword/")
    stored = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString" and stored["Value"] == secret
    record = store.list_audit(1)[0]
    assert record.resource == "project/web" and record.after is not None
    assert record.after["variables"][0]["secret_ref"] == password["secret_ref"]


def test_tenant_sensitive_values_are_write_only(api: Api, dynamodb: Any) -> None:
    document = demo_configuration()
    document["projects"][0]["tenanted_mode"] = "both"
    assert api.put("/configuration", document).status == 200
    secret = "tenant-key-never-answered"
    tenant = {
        "projects": {"web": ["dev"]},
        "variables": [{"name": "ApiKey", "sensitive": True, "value": secret}],
    }
    created = api.put("/tenants/acme", tenant)
    assert created.status == 201
    assert secret not in json.dumps(created.body) + json.dumps(api.get("/tenants/acme").body)
    assert secret not in every_item(dynamodb)
    assert "/shiplane/_tenants/acme/ApiKey/" in created.body["variables"][0]["secret_ref"]


# --------------------------------------------------------------------------- as code


def test_plan_apply_export(api: Api) -> None:
    document = demo_configuration()
    planned = api.call("POST", "/configuration/plan", document)
    assert planned.status == 200 and len(planned.body["changes"]) == 8
    applied = api.put("/configuration", document, headers={"If-Match": planned.body["etag"]})
    assert applied.status == 200 and applied.body["changes"] == planned.body["changes"]
    exported = api.get("/configuration")
    assert exported.etag == applied.etag
    assert api.call("POST", "/configuration/plan", exported.body).body["changes"] == []

    stale = api.put("/configuration", document, headers={"If-Match": planned.body["etag"]})
    assert stale.status == 412

    document["environments"][0]["requires_approval"] = True
    plan = api.call("POST", "/configuration/plan", document).body["changes"]
    assert plan == [
        {"kind": "environment", "name": "dev", "action": "change", "fields": ["requires_approval"]}
    ]


def test_a_document_with_an_inline_sensitive_value_is_refused(api: Api, dynamodb: Any) -> None:
    document = demo_configuration()
    document["projects"][0]["variables"] = [
        {"name": "Pw", "sensitive": True, "value": "inline-secret"}
    ]
    refused = api.put("/configuration", document)
    assert refused.status == 400 and refused.body["field"] == "project 'web'.variables.Pw"
    assert "inline-secret" not in json.dumps(refused.body)
    assert dynamodb.scan(TableName=TABLE)["Items"] == []


def test_an_invalid_document_names_its_fields(api: Api) -> None:
    document = demo_configuration()
    document["targets"][0]["region"] = "moon-1"
    answer = api.call("POST", "/configuration/plan", document)
    assert answer.status == 422
    assert answer.body["field"] == "body.targets.0.region"


def test_the_schema_route_answers_the_document_schema(api: Api) -> None:
    schema = api.get("/configuration/schema").body
    assert schema["title"] == "Shiplane configuration"
    assert set(schema["properties"]) == {
        "environments",
        "lifecycles",
        "targets",
        "projects",
        "tenants",
    }
