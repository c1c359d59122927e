"""Configuration resources and configuration as code (services/configuration.py), on an
in-memory store that keeps the real store's promises: conditional writes, all or nothing."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shiplane.domain.audit import AuditRecord
from shiplane.domain.models import Configuration, Environment, Project, Tenant
from shiplane.errors import (
    ConfigurationError,
    PreconditionFailedError,
    PreconditionRequiredError,
)
from shiplane.ports import ConfigWrite, StoredResource
from shiplane.services import configuration as service
from shiplane.services.configuration import (
    ENVIRONMENT,
    LIFECYCLE,
    PROJECT,
    TENANT,
    ConfigState,
    place,
    plan,
)
from tests.helpers import demo_configuration


class FakeStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], StoredResource] = {}
        self.repositories: set[tuple[str, str]] = set()
        self.audit: list[AuditRecord] = []
        self.transactions = 0

    def list_config(self, kind: str) -> list[StoredResource]:
        found = [r for (k, _), r in self.items.items() if k == kind]
        return sorted(found, key=lambda r: (r.position, r.name))

    def get_config(self, kind: str, name: str) -> StoredResource | None:
        return self.items.get((kind, name))

    def write_config(self, writes: Sequence[ConfigWrite], audit: Sequence[AuditRecord]) -> None:
        for write in writes:
            current = self.items.get((write.kind, write.name))
            expected_missing = write.expected_etag is None
            if (current is None) != expected_missing or (
                current is not None and current.etag != write.expected_etag
            ):
                raise PreconditionFailedError("moved", field="header.If-Match")
        self.transactions += 1
        for write in writes:
            key = (write.kind, write.name)
            if write.data is None:
                del self.items[key]
            else:
                self.items[key] = StoredResource(
                    write.kind, write.name, copy.deepcopy(write.data), write.etag, write.position
                )
            self.repositories -= {(r, write.name) for r in write.repositories_removed}
            self.repositories |= {(r, write.name) for r in write.repositories_added}
        self.audit.extend(audit)


class FakeSecrets:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def put_secret(self, name: str, value: str) -> str:
        self.values[name] = value
        return f"arn:aws:ssm:us-east-1:123456789012:parameter{name}"

    def delete_secret(self, reference: str) -> None:
        self.values.pop(reference.split(":parameter", 1)[1], None)


def audit(resource: str, before: Any, after: Any) -> AuditRecord:
    return AuditRecord(
        id=f"{resource}#{len(resource)}",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        who="arn:aws:iam::123456789012:user/alice",
        action="test",
        resource=resource,
        before=before,
        after=after,
    )


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def applied(store: FakeStore, document: dict[str, Any] | None = None) -> Configuration:
    config = Configuration.model_validate(document or demo_configuration())
    service.apply_document(store, config, if_match=None, audit=audit)
    return config


# --------------------------------------------------------------------------- order


def test_place_appends_new_names_after_the_last_kept_one() -> None:
    placed, moved = place(["a", "b", "c"], {"a": Decimal(0), "b": Decimal(1)})
    assert placed == {"c": Decimal(2)} and moved == set()


def test_place_puts_an_inserted_name_between_its_neighbours_without_moving_them() -> None:
    placed, moved = place(["a", "x", "b"], {"a": Decimal(0), "b": Decimal(1)})
    assert moved == set()
    assert Decimal(0) < placed["x"] < Decimal(1) and set(placed) == {"x"}


def test_place_moves_only_what_left_its_order() -> None:
    positions = {"a": Decimal(0), "b": Decimal(1), "c": Decimal(2), "d": Decimal(3)}
    placed, moved = place(["a", "c", "d", "b"], positions)
    assert moved == {"b"}
    assert placed["b"] > positions["d"]


def test_place_before_the_first_name() -> None:
    placed, _ = place(["x", "y", "a"], {"a": Decimal(5)})
    assert placed["x"] < placed["y"] < Decimal(5)


# --------------------------------------------------------------------------- plan / apply


def test_apply_writes_the_document_in_one_transaction_with_an_audit_record_each(
    store: FakeStore,
) -> None:
    config = applied(store)
    assert store.transactions == 1
    kinds = {r.resource.split("/")[0] for r in store.audit}
    assert kinds == {"environment", "lifecycle", "target", "project"}
    assert len(store.audit) == 3 + 1 + 3 + 1
    state = ConfigState.load(store)
    assert Configuration.model_validate(state.document()) == config
    assert store.repositories == {("web", "web")}


def test_applying_the_same_document_again_changes_nothing(store: FakeStore) -> None:
    config = applied(store)
    before = dict(store.items)
    result = service.apply_document(store, config, if_match=None, audit=audit)
    assert result.changes == []
    assert store.transactions == 1 and store.items == before
    assert result.etag == ConfigState.load(store).etag()


def test_plan_names_each_change_and_its_fields(store: FakeStore) -> None:
    applied(store)
    document = demo_configuration()
    document["environments"].append({"name": "qa"})
    document["targets"] = [t for t in document["targets"] if t["name"] != "prod-cluster"]
    document["targets"].append(
        {**demo_configuration()["targets"][2], "name": "prod-cluster-2", "cluster": "p2"}
    )
    document["projects"][0]["steps"][0]["service"]["desired_count"] = 3
    document["projects"][0]["variables"] = [{"name": "Color", "value": "blue"}]
    changes, writes = plan(ConfigState.load(store), Configuration.model_validate(document))
    summary = {(c.kind, c.name, c.action, tuple(c.fields)) for c in changes}
    assert summary == {
        ("environment", "qa", "add", ()),
        ("target", "prod-cluster-2", "add", ()),
        ("target", "prod-cluster", "remove", ()),
        ("project", "web", "change", ("steps", "variables")),
    }
    assert len(writes) == 4


def test_a_reordered_document_reports_the_moved_resource(store: FakeStore) -> None:
    applied(store)
    document = demo_configuration()
    document["environments"] = [document["environments"][i] for i in (0, 2, 1)]
    document["lifecycles"][0]["phases"] = [
        {"name": "all", "environments": [{"environment": "dev"}]}
    ]
    config = Configuration.model_validate(document)
    changes = service.apply_document(store, config, if_match=None, audit=audit).changes
    moved = [c for c in changes if c.kind == "environment"]
    assert len(moved) == 1 and moved[0].fields == ["position"]
    exported = ConfigState.load(store).document()
    assert [e["name"] for e in exported["environments"]] == ["dev", "prod", "test"]


def test_a_bad_document_writes_nothing(store: FakeStore) -> None:
    applied(store)
    before = dict(store.items)
    document = demo_configuration()
    document["projects"][0]["lifecycle"] = "nowhere"
    with pytest.raises(ConfigurationError) as raised:
        service.apply_document(
            store, Configuration.model_validate(document), if_match=None, audit=audit
        )
    assert raised.value.details["field"] == "projects.web.lifecycle"
    assert store.items == before and store.transactions == 1


def test_apply_with_a_stale_if_match_is_refused(store: FakeStore) -> None:
    applied(store)
    with pytest.raises(PreconditionFailedError):
        service.apply_document(
            store,
            Configuration.model_validate(demo_configuration()),
            if_match='"stale"',
            audit=audit,
        )


def test_removing_a_project_removes_its_repository_index(store: FakeStore) -> None:
    applied(store)
    document = demo_configuration()
    document["projects"] = []
    service.apply_document(
        store, Configuration.model_validate(document), if_match=None, audit=audit
    )
    assert store.repositories == set()


# --------------------------------------------------------------------------- one resource


def test_put_creates_then_needs_the_etag_to_replace(store: FakeStore) -> None:
    dev = Environment(name="dev")
    created = service.put_resource(
        store, ENVIRONMENT, dev, if_match=None, if_none_match=None, audit=audit
    )
    assert created.created
    changed = dev.model_copy(update={"description": "new"})
    with pytest.raises(PreconditionRequiredError):
        service.put_resource(
            store, ENVIRONMENT, changed, if_match=None, if_none_match=None, audit=audit
        )
    with pytest.raises(PreconditionFailedError):
        service.put_resource(
            store, ENVIRONMENT, changed, if_match='"other"', if_none_match=None, audit=audit
        )
    with pytest.raises(PreconditionFailedError):
        service.put_resource(
            store, ENVIRONMENT, changed, if_match=None, if_none_match="*", audit=audit
        )
    replaced = service.put_resource(
        store, ENVIRONMENT, changed, if_match=created.etag, if_none_match=None, audit=audit
    )
    assert not replaced.created and replaced.etag != created.etag
    assert [r.before for r in store.audit] == [None, {**created.resource}]


def test_an_unchanged_put_writes_nothing(store: FakeStore) -> None:
    dev = Environment(name="dev")
    created = service.put_resource(
        store, ENVIRONMENT, dev, if_match=None, if_none_match=None, audit=audit
    )
    again = service.put_resource(
        store, ENVIRONMENT, dev, if_match=created.etag, if_none_match=None, audit=audit
    )
    assert not again.changed and store.transactions == 1 and len(store.audit) == 1


def test_a_change_that_breaks_the_configuration_is_refused_naming_the_field(
    store: FakeStore,
) -> None:
    applied(store)
    lifecycle = ConfigState.load(store).get(LIFECYCLE, "default")
    assert lifecycle is not None
    with pytest.raises(ConfigurationError) as raised:
        service.delete_resource(store, LIFECYCLE, "default", if_match=lifecycle.etag, audit=audit)
    assert "lifecycle 'default' cannot be deleted" in raised.value.message
    assert raised.value.details["field"] == "projects.web.lifecycle"
    assert ConfigState.load(store).get(LIFECYCLE, "default") is not None


def test_delete_needs_if_match(store: FakeStore) -> None:
    service.put_resource(
        store, ENVIRONMENT, Environment(name="qa"), if_match=None, if_none_match=None, audit=audit
    )
    with pytest.raises(PreconditionRequiredError):
        service.delete_resource(store, ENVIRONMENT, "qa", if_match=None, audit=audit)


# --------------------------------------------------------------------------- sensitive values


def project_with(store: FakeStore, variables: list[dict[str, Any]]) -> Project:
    data = copy.deepcopy(demo_configuration()["projects"][0])
    return Project.model_validate(data | {"variables": variables})


def test_a_sensitive_value_goes_to_the_secret_store_and_only_its_reference_stays(
    store: FakeStore,
) -> None:
    applied(store)
    secrets = FakeSecrets()
    current = ConfigState.load(store).get(PROJECT, "web")
    assert current is not None
    project = project_with(store, [{"name": "DbPassword", "sensitive": True, "value": "s3cr3t"}])
    written = service.put_resource(
        store,
        PROJECT,
        project,
        if_match=current.etag,
        if_none_match=None,
        audit=audit,
        secrets=secrets,
        secret_token="t1",
    )
    assert list(secrets.values.values()) == ["s3cr3t"]
    [name] = secrets.values
    assert name.startswith("/shiplane/web/DbPassword/")
    variable = written.resource["variables"][0]
    assert variable["value"] == "" and variable["secret_ref"].endswith(name)
    assert "s3cr3t" not in repr(store.items) and "s3cr3t" not in repr(store.audit)

    # Sent again without value or reference: the reference it had stays.
    again = project_with(store, [{"name": "DbPassword", "sensitive": True}])
    kept = service.put_resource(
        store, PROJECT, again, if_match=written.etag, if_none_match=None, audit=audit
    )
    assert not kept.changed


def test_a_tenant_sensitive_value_is_stored_under_the_tenant(store: FakeStore) -> None:
    document = demo_configuration()
    document["projects"][0]["tenanted_mode"] = "both"
    applied(store, document)
    secrets = FakeSecrets()
    tenant = Tenant(
        name="acme",
        projects={"web": ["dev"]},
        variables=[{"name": "ApiKey", "sensitive": True, "value": "k-123"}],  # type: ignore[list-item]
    )
    written = service.put_resource(
        store, TENANT, tenant, if_match=None, if_none_match=None, audit=audit, secrets=secrets
    )
    [name] = secrets.values
    assert name.startswith("/shiplane/_tenants/acme/ApiKey/")
    assert "k-123" not in repr(written.resource) and "k-123" not in repr(store.items)


def test_a_failed_write_takes_back_the_secret_it_stored(store: FakeStore) -> None:
    applied(store)
    secrets = FakeSecrets()
    current = ConfigState.load(store).get(PROJECT, "web")
    assert current is not None

    def lose_the_race(writes: Sequence[ConfigWrite], records: Sequence[AuditRecord]) -> None:
        raise PreconditionFailedError("moved", field="header.If-Match")

    store.write_config = lose_the_race  # type: ignore[method-assign]
    project = project_with(store, [{"name": "DbPassword", "sensitive": True, "value": "s3cr3t"}])
    with pytest.raises(PreconditionFailedError):
        service.put_resource(
            store,
            PROJECT,
            project,
            if_match=current.etag,
            if_none_match=None,
            audit=audit,
            secrets=secrets,
        )
    assert secrets.values == {}


def test_a_sensitive_value_is_not_stored_when_the_checks_fail(store: FakeStore) -> None:
    applied(store)
    secrets = FakeSecrets()
    project = project_with(store, [{"name": "DbPassword", "sensitive": True, "value": "s3cr3t"}])
    with pytest.raises(PreconditionRequiredError):
        service.put_resource(
            store, PROJECT, project, if_match=None, if_none_match=None, audit=audit, secrets=secrets
        )
    assert secrets.values == {}


def test_audit_keeps_only_the_etag_of_a_huge_resource() -> None:
    big = {"name": "web", "blob": "x" * (service.AUDIT_VIEW_LIMIT + 1)}
    view = service.audit_view(big)
    assert view is not None and set(view) == {"name", "etag", "note"}
    assert service.audit_view({"name": "dev"}) == {"name": "dev"}
