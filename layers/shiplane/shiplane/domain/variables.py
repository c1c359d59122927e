"""Project variables (DESIGN §1.5): scoping, precedence, and `#{...}` substitution.

`resolve` picks, for one deployment context, the value of each variable that matches
most specifically; `substitute` expands one string value against the resolved
variables and the system variables. Substitution works on one value at a time: callers
apply it to the values inside parsed structures, never to template text, so a value can
never change a template's structure.

Decisions that differ from, or go beyond, Octopus:
- `Replace` replaces literal text (Octopus uses a regular expression), and `Truncate`
  cuts without appending "..." (a truncated name must still fit a length limit).
- The values of sensitive variables and of system variables are opaque: they are not
  expanded again (a password may contain `#{`; a stack output is data, not a template).
- A `#{` without its `}` and a reference that is not a name are errors, not literal
  text: `##{` is the way to write a literal `#{`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import Field, field_validator, model_validator

from shiplane.domain.base import Model
from shiplane.errors import (
    AmbiguousVariableError,
    UndefinedVariableError,
    VariableCycleError,
    VariableError,
)

DIMENSIONS = (
    "steps",
    "targets",
    "target_roles",
    "tenants",
    "tenant_tags",
    "environments",
    "channels",
)
"""Scope dimensions in order of precedence, strongest first (an unscoped value is the
project's default and is weaker than any of them)."""

VARIABLE_NAME_PATTERN = r"^[A-Za-z0-9._\-\[\]]{1,200}$"
RESERVED_PREFIX = "shiplane."


# --------------------------------------------------------------------------- the model


class VariableScope(Model):
    """Where a value applies. An empty list means "not scoped on this dimension"."""

    environments: list[str] = Field(default_factory=list)
    tenants: list[str] = Field(default_factory=list)
    tenant_tags: list[str] = Field(default_factory=list, description='"Set/Tag"')
    target_roles: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    steps: list[str] = Field(default_factory=list)

    def describe(self) -> str:
        scoped = [f"{d}={getattr(self, d)}" for d in DIMENSIONS if getattr(self, d)]
        return "{" + ", ".join(scoped) + "}" if scoped else "{unscoped}"


class Variable(Model):
    """One value of a project variable. A variable may have several values, each with
    its own scope; the most specific one that matches a deployment wins."""

    name: str = Field(pattern=VARIABLE_NAME_PATTERN)
    value: str = Field(default="", description='for a sensitive variable: "" (it lives in SSM)')
    sensitive: bool = False
    secret_ref: str | None = Field(default=None, description="SSM parameter holding the value")
    scope: VariableScope = Field(default_factory=VariableScope)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name.lower().startswith(RESERVED_PREFIX):
            raise ValueError(f"variable names starting with 'Shiplane.' are reserved: {name!r}")
        return name

    @model_validator(mode="after")
    def _secret_ref_only_when_sensitive(self) -> Variable:
        if self.secret_ref is not None and not self.sensitive:
            raise ValueError(f"variable {self.name!r}: secret_ref is only for sensitive variables")
        return self

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class EvaluationContext:
    """The deployment a value is resolved for: one environment, tenant, target, step."""

    environment: str
    tenant: str | None
    tenant_tags: frozenset[str]
    target: str
    target_roles: frozenset[str]
    channel: str
    step: str

    def describe(self) -> str:
        return (
            f"environment {self.environment!r}, tenant {self.tenant or 'untenanted'!r}, "
            f"target {self.target!r}, step {self.step!r}"
        )


# --------------------------------------------------------------------------- scoping


def matches(scope: VariableScope, ctx: EvaluationContext) -> bool:
    """Every scoped dimension must contain the context's value (OR within a dimension,
    AND across). A tenant-scoped value never applies to an untenanted deployment."""
    if (scope.tenants or scope.tenant_tags) and ctx.tenant is None:
        return False
    return (
        (not scope.environments or ctx.environment in scope.environments)
        and (not scope.tenants or ctx.tenant in scope.tenants)
        and (not scope.tenant_tags or not ctx.tenant_tags.isdisjoint(scope.tenant_tags))
        and (not scope.targets or ctx.target in scope.targets)
        and (not scope.target_roles or not ctx.target_roles.isdisjoint(scope.target_roles))
        and (not scope.channels or ctx.channel in scope.channels)
        and (not scope.steps or ctx.step in scope.steps)
    )


def rank(scope: VariableScope) -> tuple[bool, ...]:
    """Specificity, compared lexicographically: the strongest scoped dimension decides;
    with the same strongest dimensions, more dimensions beat fewer."""
    return tuple(bool(getattr(scope, d)) for d in DIMENSIONS)


def resolve(variables: Sequence[Variable], ctx: EvaluationContext) -> dict[str, Variable]:
    """The winning value of each variable for `ctx`, keyed by lower-cased name.

    A variable none of whose values match is absent. Two matching values of equal rank
    that differ are an error: a tie is never settled by order."""
    candidates: dict[str, list[Variable]] = {}
    for variable in variables:
        if matches(variable.scope, ctx):
            candidates.setdefault(variable.key, []).append(variable)
    best: dict[str, Variable] = {}
    for values in candidates.values():
        top = max(rank(v.scope) for v in values)
        winners = [v for v in values if rank(v.scope) == top]
        rival = next((v for v in winners[1:] if _differ(v, winners[0])), None)
        if rival is not None:
            first = winners[0]
            raise AmbiguousVariableError(
                f"variable {first.name!r} is ambiguous for {ctx.describe()}: the values "
                f"scoped {first.scope.describe()} and {rival.scope.describe()} match "
                "equally specifically; scope one of them more narrowly",
                variable=first.name,
                scopes=[first.scope.model_dump(), rival.scope.model_dump()],
                environment=ctx.environment,
                tenant=ctx.tenant,
                target=ctx.target,
                step=ctx.step,
            )
        best[winners[0].key] = winners[0]
    return best


def _differ(a: Variable, b: Variable) -> bool:
    return (a.value, a.sensitive, a.secret_ref) != (b.value, b.sensitive, b.secret_ref)


# --------------------------------------------------------------------------- system variables


class PackageLike(Protocol):
    @property
    def image(self) -> str: ...
    @property
    def tag(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def repository(self) -> str: ...


def system_variables(
    release_number: str,
    channel: str,
    environment: str,
    tenant: str | None,
    project: str,
    deployment_id: str,
    target: str,
    packages: Mapping[str, PackageLike] | None = None,
    step_outputs: Mapping[str, Mapping[str, str]] | None = None,
    target_settings: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The `Shiplane.*` variables of one deployment, keyed by lower-cased name.
    `target_settings`: the target's values as `Shiplane.Target.{Key}` (Cluster, Region,
    Subnets, SecurityGroups, AssignPublicIp)."""
    values = {
        "Shiplane.Release.Number": release_number,
        "Shiplane.Release.Channel": channel,
        "Shiplane.Environment.Name": environment,
        "Shiplane.Tenant.Name": tenant or "",
        "Shiplane.Project.Name": project,
        "Shiplane.Deployment.Id": deployment_id,
        "Shiplane.Target.Name": target,
    }
    for key, value in (target_settings or {}).items():
        values[f"Shiplane.Target.{key}"] = value
    for name, package in (packages or {}).items():
        values[f"Shiplane.Package[{name}].Image"] = package.image
        values[f"Shiplane.Package[{name}].Tag"] = package.tag
        values[f"Shiplane.Package[{name}].Digest"] = package.digest
        values[f"Shiplane.Package[{name}].Repository"] = package.repository
    for step, outputs in (step_outputs or {}).items():
        for key, value in outputs.items():
            values[f"Shiplane.Step[{step}].Output[{key}]"] = value
    return {name.lower(): value for name, value in values.items()}


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Filter:
    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class _Ref:
    name: tuple[_Node, ...]  # literal text and nested references: `#{Db#{Env}}`
    filters: tuple[_Filter, ...]
    source: str  # as written, for messages


_Node = str | _Ref


def _syntax_error(message: str, where: str) -> VariableError:
    return VariableError(f"{message} in {where}", where=where)


def _parse(text: str, where: str) -> tuple[_Node, ...]:
    nodes, _ = _parse_sequence(text, 0, where, inside=None)
    return nodes


def _parse_sequence(
    text: str, pos: int, where: str, inside: int | None
) -> tuple[tuple[_Node, ...], int]:
    """Text and references up to the end, or (inside a reference that starts at
    `inside`) up to its `}` or first `|`, whose position is returned."""
    nodes: list[_Node] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            nodes.append("".join(literal))
            literal.clear()

    while pos < len(text):
        if text.startswith("##{", pos):
            literal.append("#{")
            pos += 3
        elif text.startswith("#{", pos):
            flush()
            ref, pos = _parse_reference(text, pos, where)
            nodes.append(ref)
        elif inside is not None and text[pos] in "}|":
            flush()
            return tuple(nodes), pos
        else:
            literal.append(text[pos])
            pos += 1
    if inside is not None:
        raise _syntax_error(f"unclosed '#{{' in {text[inside:]!r}", where)
    flush()
    return tuple(nodes), pos


def _parse_reference(text: str, start: int, where: str) -> tuple[_Ref, int]:
    name, pos = _parse_sequence(text, start + 2, where, inside=start)
    filters: list[_Filter] = []
    if text[pos] == "|":
        filters, pos = _parse_filters(text, pos + 1, start, where)
    return _Ref(name, tuple(filters), text[start : pos + 1]), pos + 1


def _parse_filters(text: str, pos: int, start: int, where: str) -> tuple[list[_Filter], int]:
    """`ToUpper | Replace "a b" c | Truncate 5}`: segments split on `|`, tokens on
    whitespace; double quotes group a token (with `\\"` and `\\\\` escapes)."""
    segments: list[list[str]] = [[]]
    token: list[str] = []
    in_token = quoted = False
    while pos < len(text):
        ch = text[pos]
        if quoted:
            if ch == "\\" and pos + 1 < len(text):
                token.append(text[pos + 1])
                pos += 2
                continue
            if ch == '"':
                quoted = False
            else:
                token.append(ch)
        elif ch == '"':
            quoted = in_token = True
        elif ch.isspace() or ch in "|}":
            if in_token:
                segments[-1].append("".join(token))
                token.clear()
                in_token = False
            if ch == "|":
                segments.append([])
            elif ch == "}":
                break
        elif text.startswith("#{", pos):
            raise _syntax_error(
                f"a filter argument cannot contain a reference: {text[start:]!r}", where
            )
        else:
            token.append(ch)
            in_token = True
        pos += 1
    else:
        raise _syntax_error(f"unclosed '#{{' in {text[start:]!r}", where)
    filters = []
    for segment in segments:
        if not segment:
            raise _syntax_error(f"empty filter in {text[start : pos + 1]!r}", where)
        filters.append(_Filter(segment[0], tuple(segment[1:])))
    return filters, pos


def references(text: str) -> set[str]:
    """The lower-cased names `text` refers to. A name built from a nested reference
    (`#{Db#{Env}}`) is known only at deployment time: only `env` is reported for it."""
    found: set[str] = set()

    def walk(nodes: Sequence[_Node]) -> None:
        for node in nodes:
            if isinstance(node, _Ref):
                if all(isinstance(part, str) for part in node.name):
                    found.add("".join(str(part) for part in node.name).strip().lower())
                walk(node.name)

    walk(_parse(text, "the text"))
    return found


# --------------------------------------------------------------------------- filters


def _replace(value: str, args: tuple[str, ...]) -> str:
    return value.replace(args[0], args[1] if len(args) > 1 else "")


def _truncate(value: str, args: tuple[str, ...]) -> str:
    if not args[0].isdigit():
        raise ValueError(f"Truncate needs a whole number of characters, not {args[0]!r}")
    return value[: int(args[0])]


_FILTERS: dict[str, tuple[Callable[[str, tuple[str, ...]], str], int, int]] = {
    # lower-cased name: (function, fewest arguments, most arguments)
    "tolower": (lambda v, _: v.lower(), 0, 0),
    "toupper": (lambda v, _: v.upper(), 0, 0),
    "jsonescape": (lambda v, _: json.dumps(v, ensure_ascii=False)[1:-1], 0, 0),
    "replace": (_replace, 1, 2),
    "truncate": (_truncate, 1, 1),
}


def _apply(value: str, ref: _Ref, where: str) -> str:
    for f in ref.filters:
        spec = _FILTERS.get(f.name.lower())
        if spec is None:
            raise VariableError(
                f"unknown filter {f.name!r} in {ref.source!r} in {where}; known filters: "
                "ToLower, ToUpper, JsonEscape, Replace, Truncate",
                filter=f.name,
                where=where,
            )
        function, fewest, most = spec
        if not fewest <= len(f.args) <= most:
            raise VariableError(
                f"filter {f.name!r} takes {fewest}"
                + (f" to {most}" if most != fewest else "")
                + f" argument(s), not {len(f.args)}, in {ref.source!r} in {where}",
                filter=f.name,
                where=where,
            )
        try:
            value = function(value, f.args)
        except ValueError as exc:
            raise VariableError(f"{exc} in {ref.source!r} in {where}", filter=f.name) from exc
    return value


# --------------------------------------------------------------------------- substitution


@dataclass(frozen=True)
class Substituted:
    text: str
    sensitive: tuple[Variable, ...]
    """Sensitive variables the result used, directly or through nesting: if any, the
    result must not be placed in plain text."""
    secret: Variable | None = None
    """Set when the whole text is one sensitive variable, directly or through plain
    variables, without filters (`#{DbPassword}`): it can become an ECS `valueFrom`."""


@dataclass
class _Result:
    text: str
    sensitive: dict[str, Variable] = field(default_factory=dict)
    secret: Variable | None = None


_INVALID_IN_NAME = re.compile(r"[\s\"'{}#|]")


class _Evaluator:
    def __init__(self, lookup: Mapping[str, Variable | str], where: str) -> None:
        self.lookup = lookup
        self.where = where
        self.chain: list[str] = []  # names of the variables being expanded, outermost first
        self.done: dict[str, _Result] = {}

    def sequence(self, nodes: Sequence[_Node]) -> _Result:
        result = _Result("")
        parts: list[str] = []
        for node in nodes:
            part = _Result(node) if isinstance(node, str) else self.reference(node)
            parts.append(part.text)
            result.sensitive.update(part.sensitive)
            if len(nodes) == 1:
                result.secret = part.secret
        result.text = "".join(parts)
        return result

    def reference(self, ref: _Ref) -> _Result:
        built = self.sequence(ref.name)
        name = built.text.strip()
        if not name or _INVALID_IN_NAME.search(name):
            raise VariableError(
                f"{ref.source!r} does not name a variable ({name!r}) in {self._where()}",
                variable=name,
                where=self.where,
            )
        result = self.variable(name)
        sensitive = {**built.sensitive, **result.sensitive}
        if ref.filters:
            return _Result(_apply(result.text, ref, self._where()), sensitive)
        return _Result(result.text, sensitive, result.secret)

    def variable(self, name: str) -> _Result:
        key = name.lower()
        entry = self.lookup.get(key)
        if entry is None:
            raise UndefinedVariableError(
                f"undefined variable {name!r} in {self._where()}",
                variable=name,
                where=self.where,
                chain=list(self.chain),
            )
        if isinstance(entry, str):
            return _Result(entry)
        if entry.sensitive:
            return _Result(entry.value, {key: entry}, entry)
        if key in self.done:
            return self.done[key]
        keys = [n.lower() for n in self.chain]
        if key in keys:
            loop = [*self.chain[keys.index(key) :], entry.name]
            raise VariableCycleError(
                f"variables refer to each other in a loop: {' -> '.join(loop)} in {self.where}",
                chain=loop,
                where=self.where,
            )
        self.chain.append(entry.name)
        result = self.sequence(_parse(entry.value, self._where()))
        self.chain.pop()
        self.done[key] = result
        return result

    def _where(self) -> str:
        if not self.chain:
            return self.where
        return f"{self.where} (through {' -> '.join(self.chain)})"


def substitute(text: str, lookup: Mapping[str, Variable | str], *, where: str) -> Substituted:
    """Expand the `#{...}` references in one value. `lookup` is keyed by lower-cased
    name: resolved project variables and `system_variables`. `where` names the place
    the value came from, for messages (`steps.web.containers.web.environment.DB_HOST`)."""
    result = _Evaluator(lookup, where).sequence(_parse(text, where))
    return Substituted(result.text, tuple(result.sensitive.values()), result.secret)


def check_cycles(variables: Sequence[Variable]) -> None:
    """Raise `VariableCycleError` if the variables can refer to each other in a loop,
    whatever their scopes: a reference from any value of A to B is an edge A -> B."""
    display: dict[str, str] = {}
    edges: dict[str, set[str]] = {}
    for v in variables:
        display.setdefault(v.key, v.name)
        edges.setdefault(v.key, set())
    for v in variables:
        if not v.sensitive:  # sensitive values are opaque: never expanded
            edges[v.key] |= references(v.value) & edges.keys()

    finished: set[str] = set()

    def visit(key: str, path: list[str]) -> None:
        if key in path:
            loop = [display[k] for k in path[path.index(key) :]] + [display[key]]
            raise VariableCycleError(
                f"variables refer to each other in a loop: {' -> '.join(loop)}", chain=loop
            )
        if key in finished:
            return
        path.append(key)
        for target in sorted(edges[key]):
            visit(target, path)
        path.pop()
        finished.add(key)

    for key in edges:
        visit(key, [])
