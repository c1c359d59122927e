"""Configuration resources one at a time (the REST API) and as code (plan and apply a
whole document).

Every change is checked against the whole configuration it leads to, written with the
ETag it was read with (a write that lost a race is refused, not merged), and audited in
the same transaction. Sensitive values are written to the secret store and only their
references are kept; a change that fails after that removes what it stored.

Order: environments are ordered (a lifecycle without phases follows their order), and
every kind keeps the order it was given in, so an export reads like the document that
was applied. Each stored resource has a `position`; a resource added or moved gets one
between its neighbours, so the resources around it are not rewritten."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from shiplane.api.concurrency import check_preconditions, etag_of
from shiplane.domain.audit import AuditRecord
from shiplane.domain.base import Model
from shiplane.domain.models import (
    Configuration,
    Environment,
    Lifecycle,
    Project,
    Target,
    Tenant,
)
from shiplane.domain.variables import Variable
from shiplane.errors import ConfigurationError, InvalidRequestError, NotFoundError
from shiplane.ports import ConfigWrite, SecretStore, StoredResource
from shiplane.services.apply_configuration import check_configuration
from shiplane.services.variables import secret_name, store_sensitive_value

# Before and after of one resource in an audit record: past this, the record keeps the
# resource's ETag instead (a DynamoDB item holds at most 400 KB).
AUDIT_VIEW_LIMIT = 100_000
# One resource is one DynamoDB item (at most 400 KB with its keys and attributes).
RESOURCE_LIMIT = 350_000
# An SSM standard parameter holds at most 4 KB.
SECRET_VALUE_LIMIT = 4096
PENDING_SECRET = "(pending)"


KindName = Literal["environment", "lifecycle", "target", "project", "tenant"]


@dataclass(frozen=True)
class Kind:
    name: KindName  # in messages, audit resources and plans
    store: str  # "ENVIRONMENT": keys.CONFIG_KINDS
    field: str  # "environments": the document's list
    model: type[Model]


ENVIRONMENT = Kind("environment", "ENVIRONMENT", "environments", Environment)
LIFECYCLE = Kind("lifecycle", "LIFECYCLE", "lifecycles", Lifecycle)
TARGET = Kind("target", "TARGET", "targets", Target)
PROJECT = Kind("project", "PROJECT", "projects", Project)
TENANT = Kind("tenant", "TENANT", "tenants", Tenant)
KINDS: tuple[Kind, ...] = (ENVIRONMENT, LIFECYCLE, TARGET, PROJECT, TENANT)

Action = Literal["add", "change", "remove"]


class Change(BaseModel):
    kind: KindName
    name: str
    action: Action
    fields: list[str] = Field(
        default_factory=list,
        description="for a change: the top-level fields that differ (`position`: moved)",
    )


class ConfigurationChanges(BaseModel):
    """What a document changes (plan) or changed (apply)."""

    changes: list[Change]
    etag: str = Field(
        description="plan: the current configuration's ETag (send it as If-Match to apply "
        "exactly what was planned); apply: the ETag of the configuration now"
    )


class ConfigResources(Protocol):
    def list_config(self, kind: str) -> list[StoredResource]: ...
    def get_config(self, kind: str, name: str) -> StoredResource | None: ...
    def write_config(self, writes: Sequence[ConfigWrite], audit: Sequence[AuditRecord]) -> None: ...


# Builds the audit record of one change: (resource, before, after) -> record.
Audit = Callable[[str, dict[str, Any] | None, dict[str, Any] | None], AuditRecord]


# --------------------------------------------------------------------------- the state


class ConfigState:
    """The stored configuration, every kind in its order, read once per request."""

    def __init__(self, resources: dict[str, list[StoredResource]]) -> None:
        self._resources = {kind.store: list(resources.get(kind.store, [])) for kind in KINDS}
        self._models: dict[tuple[str, str], Model] = {}

    @classmethod
    def load(cls, store: ConfigResources) -> ConfigState:
        return cls({kind.store: store.list_config(kind.store) for kind in KINDS})

    def of(self, kind: Kind) -> list[StoredResource]:
        return list(self._resources[kind.store])

    def get(self, kind: Kind, name: str) -> StoredResource | None:
        return next((r for r in self._resources[kind.store] if r.name == name), None)

    def require(self, kind: Kind, name: str) -> StoredResource:
        found = self.get(kind, name)
        if found is None:
            raise NotFoundError(f"{kind.name} {name!r} does not exist", field="path.name")
        return found

    def model(self, kind: Kind, resource: StoredResource) -> Model:
        key = (kind.store, resource.name)
        if key not in self._models:
            self._models[key] = kind.model.model_validate(resource.data)
        return self._models[key]

    def models(self, kind: Kind) -> list[Model]:
        return [self.model(kind, r) for r in self._resources[kind.store]]

    def document(self) -> dict[str, Any]:
        """The export: what GET /configuration answers (and its ETag hashes)."""
        return {kind.field: [r.data for r in self._resources[kind.store]] for kind in KINDS}

    def etag(self) -> str:
        return etag_of(self.document())

    def configuration(self, replace: tuple[Kind, str, Model | None] | None = None) -> Configuration:
        """The configuration as stored, or as it would be with one resource replaced,
        added (at the end) or removed (None). Not validated as a document: an empty
        configuration is allowed while it is being built one resource at a time."""
        lists: dict[str, list[Model]] = {}
        for kind in KINDS:
            models = self.models(kind)
            if replace is not None and replace[0] is kind:
                _, name, resource = replace
                index = next((i for i, m in enumerate(models) if _name(m) == name), None)
                if index is None and resource is not None:
                    models.append(resource)
                elif index is not None and resource is None:
                    del models[index]
                elif index is not None and resource is not None:
                    models[index] = resource
            lists[kind.field] = models
        return Configuration.model_construct(**lists)


def _name(model: BaseModel) -> str:
    return str(getattr(model, "name"))  # noqa: B009 - every configuration model has one


def _data(model: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json")
    return dumped


def _repositories(kind: Kind, data: dict[str, Any] | None) -> set[str]:
    if kind is not PROJECT or data is None:
        return set()
    return set(Project.model_validate(data).repositories)


def audit_view(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """A resource as an audit record keeps it: whole, unless it is too large."""
    if data is None or len(json.dumps(data)) <= AUDIT_VIEW_LIMIT:
        return data
    return {
        "name": data.get("name"),
        "etag": etag_of(data),
        "note": "too large for the audit log: only its ETag is kept",
    }


def _write(
    kind: Kind,
    name: str,
    before: StoredResource | None,
    after: dict[str, Any] | None,
    position: Decimal,
) -> ConfigWrite:
    size = len(json.dumps(after)) if after is not None else 0
    if size > RESOURCE_LIMIT:
        raise InvalidRequestError(
            f"{kind.name} {name!r} is {size} bytes as JSON; a resource is stored as one "
            f"DynamoDB item and must stay under {RESOURCE_LIMIT} bytes",
            field=f"{kind.field}.{name}",
        )
    old_repositories = _repositories(kind, before.data if before else None)
    new_repositories = _repositories(kind, after)
    return ConfigWrite(
        kind=kind.store,
        name=name,
        data=after,
        etag=etag_of(after) if after is not None else "",
        position=position,
        expected_etag=before.etag if before else None,
        repositories_added=tuple(sorted(new_repositories - old_repositories)),
        repositories_removed=tuple(sorted(old_repositories - new_repositories)),
    )


# --------------------------------------------------------------------------- one resource


@dataclass(frozen=True)
class Written:
    resource: dict[str, Any]
    etag: str
    created: bool
    changed: bool


def put_resource(
    store: ConfigResources,
    kind: Kind,
    resource: Model,
    *,
    if_match: str | None,
    if_none_match: str | None,
    audit: Audit,
    secrets: SecretStore | None = None,
    secret_token: str = "",
) -> Written:
    """Create or replace one resource. Sensitive values in a project's or tenant's
    variables go to `secrets` (only after every check passed); a sensitive variable sent
    without value nor secret_ref keeps the reference it had."""
    name = _name(resource)
    state = ConfigState.load(store)
    current = state.get(kind, name)
    check_preconditions(
        f"{kind.name} {name!r}", current.etag if current else None, if_match, if_none_match
    )
    previous = _variables(current.data) if current else []
    checked, pending = _with_pending_secrets(resource, previous)
    check_configuration(state.configuration((kind, name, checked)))
    if current is not None and not pending and _data(checked) == current.data:
        return Written(current.data, current.etag, created=False, changed=False)
    stored_refs: list[str] = []
    try:
        final = _store_secrets(kind, checked, pending, secrets, secret_token, stored_refs)
        after = _data(final)
        position = (
            current.position
            if current
            else max((r.position for r in state.of(kind)), default=Decimal(-1)) + 1
        )
        write = _write(kind, name, current, after, position)
        store.write_config(
            [write],
            [
                audit(
                    f"{kind.name}/{name}",
                    audit_view(current.data if current else None),
                    audit_view(after),
                )
            ],
        )
    except BaseException:
        _forget_secrets(secrets, stored_refs)
        raise
    return Written(after, write.etag, created=current is None, changed=True)


def delete_resource(
    store: ConfigResources, kind: Kind, name: str, *, if_match: str | None, audit: Audit
) -> None:
    state = ConfigState.load(store)
    current = state.require(kind, name)
    check_preconditions(f"{kind.name} {name!r}", current.etag, if_match)
    try:
        check_configuration(state.configuration((kind, name, None)))
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"{kind.name} {name!r} cannot be deleted: {exc.message}", **exc.details
        ) from None
    write = _write(kind, name, current, None, current.position)
    store.write_config([write], [audit(f"{kind.name}/{name}", audit_view(current.data), None)])


# --------------------------------------------------------------------------- sensitive values


def _variables(data: dict[str, Any]) -> list[Variable]:
    return [Variable.model_validate(v) for v in data.get("variables", [])]


def _same_value(a: Variable, b: Variable) -> bool:
    return a.key == b.key and a.scope == b.scope


def _with_pending_secrets(
    resource: Model, previous: list[Variable]
) -> tuple[Model, dict[int, str]]:
    """The resource with sensitive values taken out (a placeholder reference where a
    value is to be stored), and the values to store by variable index."""
    variables: list[Variable] | None = getattr(resource, "variables", None)
    if not variables:
        return resource, {}
    pending: dict[int, str] = {}
    cleaned: list[Variable] = []
    for index, variable in enumerate(variables):
        if variable.sensitive and variable.value:
            if len(variable.value.encode()) > SECRET_VALUE_LIMIT:
                raise InvalidRequestError(
                    f"sensitive variable {variable.name!r}: the value is longer than "
                    f"{SECRET_VALUE_LIMIT} bytes (an SSM parameter's limit)",
                    field=f"variables.{index}.value",
                )
            pending[index] = variable.value
            variable = variable.model_copy(update={"value": "", "secret_ref": PENDING_SECRET})
        elif variable.sensitive and not variable.secret_ref:
            kept = next((p for p in previous if p.sensitive and _same_value(p, variable)), None)
            if kept is not None:
                variable = variable.model_copy(update={"secret_ref": kept.secret_ref})
        cleaned.append(variable)
    return resource.model_copy(update={"variables": cleaned}), pending


def _store_secrets(
    kind: Kind,
    resource: Model,
    pending: dict[int, str],
    secrets: SecretStore | None,
    token: str,
    stored: list[str],
) -> Model:
    if not pending:
        return resource
    if secrets is None:
        raise InvalidRequestError("sensitive values cannot be stored here", field="variables")
    name = _name(resource)
    token = token or uuid.uuid4().hex[:12]
    variables: list[Variable] = list(getattr(resource, "variables"))  # noqa: B009
    for index, value in pending.items():
        variable = variables[index]
        # A name per write: a release's snapshot keeps the reference it was made with.
        label = f"{token}-{index}"
        if kind is PROJECT:
            kept = store_sensitive_value(
                name, variable.name, value, secrets, variable.scope, scope_label=label
            )
            reference = kept.secret_ref or ""
        else:
            reference = secrets.put_secret(
                secret_name(f"_{kind.field}", name, variable.name) + f"/{label}", value
            )
        stored.append(reference)
        variables[index] = variable.model_copy(update={"value": "", "secret_ref": reference})
    return resource.model_copy(update={"variables": variables})


def _forget_secrets(secrets: SecretStore | None, references: Iterable[str]) -> None:
    for reference in references:
        try:
            assert secrets is not None
            secrets.delete_secret(reference)
        except Exception:  # the first error is the one to report
            continue


def secret_token(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


# --------------------------------------------------------------------------- as code


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def _kept_in_order(names: Sequence[str], positions: dict[str, Decimal]) -> set[str]:
    """The most names (of those stored) that can stay where they are: the longest run,
    in the document's order, whose stored positions increase."""
    common = [n for n in names if n in positions]
    best: list[int] = [1] * len(common)
    back: list[int] = [-1] * len(common)
    for i, name in enumerate(common):
        for j in range(i):
            if positions[common[j]] < positions[name] and best[j] + 1 > best[i]:
                best[i], back[i] = best[j] + 1, j
    if not common:
        return set()
    index = max(range(len(common)), key=lambda i: best[i])
    kept: set[str] = set()
    while index >= 0:
        kept.add(common[index])
        index = back[index]
    return kept


def place(
    names: Sequence[str], positions: dict[str, Decimal]
) -> tuple[dict[str, Decimal], set[str]]:
    """Positions for the names of a document that are new or moved, between their kept
    neighbours; and which stored names moved."""
    kept = _kept_in_order(names, positions)
    moved = {n for n in names if n in positions and n not in kept}
    placed: dict[str, Decimal] = {}
    run: list[str] = []
    low: Decimal | None = None
    for name in [*names, None]:
        if name is not None and name not in kept:
            run.append(name)
            continue
        high = positions[name] if name is not None else None
        for offset, waiting in enumerate(run, start=1):
            if low is None and high is None:
                placed[waiting] = Decimal(offset - 1)
            elif high is None:
                assert low is not None
                placed[waiting] = low + offset
            elif low is None:
                placed[waiting] = high - (len(run) - offset + 1)
            else:
                placed[waiting] = low + (high - low) * offset / (len(run) + 1)
        run = []
        low = high
    return placed, moved


def plan(state: ConfigState, desired: Configuration) -> tuple[list[Change], list[ConfigWrite]]:
    """What applying `desired` changes, and the writes that do it. An unchanged resource
    is neither reported nor written."""
    changes: list[Change] = []
    writes: list[ConfigWrite] = []
    for kind in KINDS:
        current = {r.name: r for r in state.of(kind)}
        wanted = [(_name(m), _data(m)) for m in getattr(desired, kind.field)]
        placed, moved = place([n for n, _ in wanted], {n: r.position for n, r in current.items()})
        for name, data in wanted:
            before = current.get(name)
            if before is None:
                changes.append(Change(kind=kind.name, name=name, action="add"))
                writes.append(_write(kind, name, None, data, placed[name]))
                continue
            fields = changed_fields(before.data, data) + (["position"] if name in moved else [])
            if fields:
                changes.append(Change(kind=kind.name, name=name, action="change", fields=fields))
                writes.append(_write(kind, name, before, data, placed.get(name, before.position)))
        names = {n for n, _ in wanted}
        for name, before in current.items():
            if name not in names:
                changes.append(Change(kind=kind.name, name=name, action="remove"))
                writes.append(_write(kind, name, before, None, before.position))
    return changes, writes


def plan_document(store: ConfigResources, desired: Configuration) -> ConfigurationChanges:
    check_configuration(desired)
    state = ConfigState.load(store)
    changes, _ = plan(state, desired)
    return ConfigurationChanges(changes=changes, etag=state.etag())


def apply_document(
    store: ConfigResources, desired: Configuration, *, if_match: str | None, audit: Audit
) -> ConfigurationChanges:
    """Declarative: the stored configuration becomes `desired`, resources it leaves out
    are removed; one transaction, one audit record per changed resource."""
    check_configuration(desired)
    state = ConfigState.load(store)
    if if_match is not None:
        check_preconditions("the configuration", state.etag(), if_match)
    changes, writes = plan(state, desired)
    if writes:
        by_name = {(k.store, r.name): r for k in KINDS for r in state.of(k)}
        records = [
            audit(
                f"{KIND_BY_STORE[w.kind].name}/{w.name}",
                audit_view(by_name[(w.kind, w.name)].data if w.expected_etag else None),
                audit_view(w.data),
            )
            for w in writes
        ]
        store.write_config(writes, records)
    return ConfigurationChanges(changes=changes, etag=etag_of(_data(desired)))


KIND_BY_STORE = {kind.store: kind for kind in KINDS}
KIND_BY_NAME = {kind.name: kind for kind in KINDS}


def configuration_schema() -> dict[str, Any]:
    """The JSON Schema of a configuration document (schema/shiplane.schema.json)."""
    schema = Configuration.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "Shiplane configuration",
    }
