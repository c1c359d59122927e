"""IAM policy evaluation, as AWS documents it, for identity-based policies.

AWS's order (IAM User Guide, "Policy evaluation logic"): an explicit Deny in any
applicable statement wins; else an Allow that matches the action, the resource and every
condition; else the request is implicitly denied. This module is pure: documents in,
a decision out. `authorize` (in `roles.py`) finds a principal's documents in moto's IAM.

Matching follows the IAM JSON policy reference:
- actions are `service:Action`, case-insensitive, `*` and `?` wildcards; `NotAction`;
- resources are ARNs matched segment by segment (partition, service, region, account:
  case-sensitive globs that never cross a `:`), the resource segment as one glob in which
  `*` crosses `/` and `:`; `Resource: "*"` matches everything; `NotResource`;
- conditions: every operator must hold (AND), every key of an operator must hold (AND),
  any value of a key may match (OR); keys are case-insensitive; `...IfExists` holds when
  the key is absent; negated operators hold when the key is absent; `Null`;
  `ForAnyValue:` / `ForAllValues:` for multivalued keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import unquote

Decision = Literal["allow", "explicit_deny", "implicit_deny"]
ContextValue = str | bool | int | Sequence[str]


@dataclass(frozen=True)
class Grant:
    """One statement's action pattern that allowed a request (for the unused-grants report)."""

    policy: str
    statement: str  # the Sid, or "#<index>"
    action_pattern: str


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    granted_by: tuple[Grant, ...] = field(default=())
    denied_by: tuple[Grant, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"


def load_document(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """A policy document as IAM stores it (JSON, possibly URL-encoded) or already parsed."""
    if isinstance(document, Mapping):
        loaded: Any = dict(document)
    else:
        text = document.strip()
        if text.startswith("%7B") or text.startswith("%7b"):
            text = unquote(text)
        loaded = json.loads(text)
    if not isinstance(loaded, dict):
        raise ValueError("a policy document is a JSON object")
    statements = loaded.get("Statement")
    if isinstance(statements, list) and None in statements:
        # `!If [..., !Ref AWS::NoValue]` in a statement list: CloudFormation drops the
        # entry before IAM stores the policy; moto's CloudFormation leaves a null there.
        loaded["Statement"] = [s for s in statements if s is not None]
    return loaded


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


@lru_cache(maxsize=4096)
def _glob(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return bool(_glob(pattern, ignore_case=ignore_case).match(value))


def action_matches(pattern: str, action: str) -> bool:
    return pattern == "*" or glob_match(pattern, action, ignore_case=True)


def arn_matches(pattern: str, arn: str) -> bool:
    """An ARN against a policy's ARN pattern, segment by segment."""
    if pattern == "*":
        return True
    p_parts = pattern.split(":", 5)
    a_parts = arn.split(":", 5)
    if len(p_parts) != 6 or len(a_parts) != 6:
        return False  # not an ARN pattern (or not an ARN): AWS matches neither
    return all(glob_match(p, a) for p, a in zip(p_parts, a_parts, strict=True))


# -- conditions ---------------------------------------------------------------------------
def _string_eq(policy: str, value: str) -> bool:
    return policy == value


def _string_eq_ic(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return glob_match(policy, value)


def _bool_eq(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _numeric(op: str) -> Any:
    def compare(policy: str, value: str) -> bool:
        try:
            a, b = float(value), float(policy)
        except ValueError:
            return False
        return {
            "eq": a == b,
            "lt": a < b,
            "lte": a <= b,
            "gt": a > b,
            "gte": a >= b,
        }[op]

    return compare


_POSITIVE = {
    "StringEquals": _string_eq,
    "StringEqualsIgnoreCase": _string_eq_ic,
    "StringLike": _string_like,
    "ArnEquals": arn_matches,
    "ArnLike": arn_matches,
    "Bool": _bool_eq,
    "NumericEquals": _numeric("eq"),
    "NumericLessThan": _numeric("lt"),
    "NumericLessThanEquals": _numeric("lte"),
    "NumericGreaterThan": _numeric("gt"),
    "NumericGreaterThanEquals": _numeric("gte"),
}
_NEGATED = {
    "StringNotEquals": _string_eq,
    "StringNotEqualsIgnoreCase": _string_eq_ic,
    "StringNotLike": _string_like,
    "ArnNotEquals": arn_matches,
    "ArnNotLike": arn_matches,
    "NumericNotEquals": _numeric("eq"),
}


class UnsupportedCondition(ValueError):
    """A policy uses a condition operator this evaluator does not know: refuse to guess."""


def _context_values(context: Mapping[str, ContextValue], key: str) -> list[str] | None:
    for name, value in context.items():
        if name.lower() == key.lower():
            if isinstance(value, bool):
                return ["true" if value else "false"]
            if isinstance(value, str | int):
                return [str(value)]
            return [str(v) for v in value]
    return None


def condition_holds(operator: str, keys: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    qualifier = ""
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    for key, policy_values in keys.items():
        wanted = [
            str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(policy_values)
        ]
        present = _context_values(context, key)
        if base == "Null":
            is_null = present is None or present == []
            if not any((w.lower() == "true") == is_null for w in wanted):
                return False
            continue
        if present is None:
            if if_exists or base in _NEGATED:
                continue
            if qualifier == "ForAllValues":
                continue  # an empty set is a subset of anything
            return False
        if base in _POSITIVE:
            test = _POSITIVE[base]

            def matches(value: str, test: Any = test, wanted: list[str] = wanted) -> bool:
                return any(test(w, value) for w in wanted)

        elif base in _NEGATED:
            test = _NEGATED[base]

            def matches(value: str, test: Any = test, wanted: list[str] = wanted) -> bool:
                return not any(test(w, value) for w in wanted)

        else:
            raise UnsupportedCondition(f"condition operator {operator!r} is not supported")
        if qualifier == "ForAllValues":
            ok = all(matches(v) for v in present)
        else:  # ForAnyValue, or a single-valued key
            ok = any(matches(v) for v in present)
        if not ok:
            return False
    return True


# -- statements ---------------------------------------------------------------------------
def _matching_action(statement: Mapping[str, Any], action: str) -> str | None:
    if "Action" in statement:
        for pattern in _as_list(statement["Action"]):
            if action_matches(str(pattern), action):
                return str(pattern)
        return None
    if "NotAction" in statement:
        if any(action_matches(str(p), action) for p in _as_list(statement["NotAction"])):
            return None
        return f"NotAction{_as_list(statement['NotAction'])}"
    return None


def _resource_matches(statement: Mapping[str, Any], resource: str) -> bool:
    if "Resource" in statement:
        return any(arn_matches(str(p), resource) for p in _as_list(statement["Resource"]))
    if "NotResource" in statement:
        return not any(arn_matches(str(p), resource) for p in _as_list(statement["NotResource"]))
    return False


def _conditions_hold(statement: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    return all(
        condition_holds(operator, keys, context)
        for operator, keys in dict(statement.get("Condition") or {}).items()
    )


def evaluate(
    documents: Iterable[tuple[str, str | Mapping[str, Any]]],
    action: str,
    resource: str,
    context: Mapping[str, ContextValue] | None = None,
) -> Evaluation:
    """Decide `action` on `resource` under the named policy documents (name, document)."""
    context = context or {}
    allows: list[Grant] = []
    denies: list[Grant] = []
    for name, raw in documents:
        document = load_document(raw)
        for index, statement in enumerate(_as_list(document.get("Statement"))):
            pattern = _matching_action(statement, action)
            if pattern is None or not _resource_matches(statement, resource):
                continue
            if not _conditions_hold(statement, context):
                continue
            grant = Grant(name, str(statement.get("Sid") or f"#{index}"), pattern)
            if str(statement.get("Effect")) == "Deny":
                denies.append(grant)
            elif str(statement.get("Effect")) == "Allow":
                allows.append(grant)
    if denies:
        return Evaluation("explicit_deny", denied_by=tuple(denies))
    if allows:
        return Evaluation("allow", granted_by=tuple(allows))
    return Evaluation("implicit_deny")


def allow_grants(documents: Iterable[tuple[str, str | Mapping[str, Any]]]) -> list[Grant]:
    """Every (policy, statement, action pattern) an Allow statement grants."""
    found = []
    for name, raw in documents:
        document = load_document(raw)
        for index, statement in enumerate(_as_list(document.get("Statement"))):
            if str(statement.get("Effect")) != "Allow":
                continue
            sid = str(statement.get("Sid") or f"#{index}")
            if "Action" in statement:
                found += [Grant(name, sid, str(p)) for p in _as_list(statement["Action"])]
            elif "NotAction" in statement:
                found.append(Grant(name, sid, f"NotAction{_as_list(statement['NotAction'])}"))
    return found


def denial_message(principal_arn: str, action: str, resource: str, evaluation: Evaluation) -> str:
    """AWS's AccessDenied wording (since 2021 it names the kind of policy that decided)."""
    why = (
        "with an explicit deny in an identity-based policy"
        if evaluation.decision == "explicit_deny"
        else f"because no identity-based policy allows the {action} action"
    )
    return (
        f"User: {principal_arn} is not authorized to perform: {action} "
        f"on resource: {resource} {why}"
    )
