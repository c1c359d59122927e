"""sts:AssumeRole as AWS decides it: the caller's identity policy and the role's trust policy.

A trust policy is a resource-based policy whose statements name principals:
`{"AWS": "arn:aws:iam::111122223333:root"}` (or the bare account id) trusts the account,
i.e. any of its principals whose own identity policy allows the call; a role ARN trusts
that role's sessions; `"*"` trusts everyone; `{"Service": ...}` trusts a service (never a
role's session). Within one account a statement that names the caller itself is enough
on its own; a statement that names only the account delegates to the caller's identity
policy; across accounts both must allow. An explicit Deny in either wins.

moto refuses a trust that names only `:root` when its own IAM checks are on; AWS allows
it, and so does this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .policy import ContextValue, _as_list, action_matches, condition_holds, load_document


def _principal_role_arn(principal_arn: str) -> str:
    """aws:PrincipalArn of a caller: an assumed-role session is its role's ARN."""
    parts = principal_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    return principal_arn


def _names(principal: Any, caller_arn: str, caller_account: str) -> str | None:
    """How a statement's Principal matches the caller: "caller", "account", or None."""
    if principal == "*":
        return "account"
    if not isinstance(principal, Mapping):
        return None
    role_arn = _principal_role_arn(caller_arn)
    found = None
    for value in _as_list(principal.get("AWS")):
        value = str(value)
        if value == "*":
            found = found or "account"
        elif value in (role_arn, caller_arn):
            return "caller"
        elif value in (f"arn:aws:iam::{caller_account}:root", caller_account):
            found = "account"
    return found


def trust_decision(
    trust_policy: str | Mapping[str, Any],
    caller_arn: str,
    context: Mapping[str, ContextValue],
    action: str = "sts:AssumeRole",
) -> str:
    """ "deny" (explicit), "caller" (names the caller), "account" (delegates to the caller's
    account) or "none" (no statement applies). The same reading serves a KMS key policy,
    which decides like a trust policy: naming the caller allows on its own, naming the
    account delegates to the caller's identity policy."""
    document = load_document(trust_policy)
    caller_account = caller_arn.split(":")[4]
    context = {
        "aws:PrincipalArn": _principal_role_arn(caller_arn),
        "aws:PrincipalAccount": caller_account,
        **dict(context),
    }
    best = "none"
    for statement in _as_list(document.get("Statement")):
        if not isinstance(statement, Mapping):
            continue  # moto's CloudFormation leaves AWS::NoValue as null; AWS drops it
        actions = _as_list(statement.get("Action"))
        if not any(action_matches(str(a), action) for a in actions):
            continue
        how = _names(statement.get("Principal"), caller_arn, caller_account)
        if how is None:
            continue
        conditions = dict(statement.get("Condition") or {})
        if not all(condition_holds(op, keys, context) for op, keys in conditions.items()):
            continue
        if statement.get("Effect") == "Deny":
            return "deny"
        if how == "caller" or best == "none":
            best = how
    return best


def trust_message(caller_arn: str, role_arn: str) -> str:
    """AWS's words when a trust policy does not let the caller in."""
    return (
        f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )
