"""Authorize a principal's request against its role's policies as moto's IAM holds them,
and remember every decision (which grants were used, which requests were denied)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .policy import ContextValue, Evaluation, Grant, allow_grants, denial_message, evaluate


@dataclass(frozen=True)
class Denial:
    principal_arn: str
    action: str
    resource: str
    message: str


def role_of(principal_arn: str) -> tuple[str, str] | None:
    """(account, role name) of a role or assumed-role ARN; None for anything else."""
    parts = principal_arn.split(":", 5)
    if len(parts) != 6:
        return None
    account, resource = parts[4], parts[5]
    if parts[2] == "sts" and resource.startswith("assumed-role/"):
        return account, resource.split("/")[1]
    if parts[2] == "iam" and resource.startswith("role/"):
        return account, resource.rsplit("/", 1)[-1]
    return None


def hold_roles(account_id: str) -> int:
    """Record the grants of every role of an account (e.g. after a stack created them),
    so a role that is never used still shows its grants as unused."""
    from moto.iam.models import iam_backends

    roles = list(iam_backends[account_id]["global"].roles.values())
    for role in roles:
        USAGE.hold(str(role.arn), role_documents(account_id, role.name))
    return len(roles)


def role_documents(account_id: str, role_name: str) -> list[tuple[str, Any]]:
    """The role's identity-based policies: inline and attached managed (default version)."""
    from moto.iam.models import iam_backends

    role = iam_backends[account_id]["global"].get_role(role_name)
    documents: list[tuple[str, Any]] = [(name, doc) for name, doc in role.policies.items()]
    for arn, policy in role.managed_policies.items():
        version = next(
            (v for v in policy.versions if v.version_id == policy.default_version_id), None
        )
        if version is not None:
            documents.append((arn, version.document))
    return documents


class Usage:
    """Every authorization decision of this process, by role: what was allowed by which
    grant, and what was denied; and every grant each role seen holds (so the grants never
    used can be told). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.allowed: Counter[tuple[str, str]] = Counter()  # (role arn-ish, action)
        self.denied: Counter[tuple[str, str, str]] = Counter()  # (role, action, resource)
        self.grants: Counter[tuple[str, Grant]] = Counter()  # (role, grant) that allowed
        self.held: dict[str, set[Grant]] = {}  # role -> every Allow grant it holds

    def hold(self, role: str, documents: list[tuple[str, Any]]) -> None:
        """Remember the Allow grants of a role's policies (once per role)."""
        with self._lock:
            if role in self.held:
                return
        found = set(allow_grants(documents))
        with self._lock:
            self.held.setdefault(role, found)

    def record(self, role: str, action: str, resource: str, evaluation: Evaluation) -> None:
        with self._lock:
            if evaluation.allowed:
                self.allowed[(role, action)] += 1
                for grant in evaluation.granted_by:
                    self.grants[(role, grant)] += 1
            else:
                self.denied[(role, action, resource)] += 1

    def reset(self) -> None:
        with self._lock:
            self.allowed.clear()
            self.denied.clear()
            self.grants.clear()
            self.held.clear()


USAGE = Usage()


def _evaluate(
    principal_arn: str, action: str, resource: str, context: Mapping[str, ContextValue] | None
) -> tuple[str, Evaluation] | None:
    """(the role's key for USAGE, the identity policies' evaluation); None for a
    principal that is not a role."""
    found = role_of(principal_arn)
    if found is None:
        return None
    account, role_name = found
    try:
        documents = role_documents(account, role_name)
    except Exception:  # the role is gone: nothing allows anything
        documents = []
    role_key = f"arn:aws:iam::{account}:role/{role_name}"
    USAGE.hold(role_key, documents)
    return role_key, evaluate(documents, action, resource, context)


def record_outcome(
    principal_arn: str,
    action: str,
    resource: str,
    context: Mapping[str, ContextValue] | None,
    *,
    allowed: bool,
) -> None:
    """Record a call decided with a resource-based policy: allowed or denied as a whole,
    crediting the identity grants that took part."""
    found = _evaluate(principal_arn, action, resource, context)
    if found is None:
        return
    role_key, evaluation = found
    if allowed != evaluation.allowed:
        evaluation = Evaluation("allow" if allowed else "implicit_deny")
    USAGE.record(role_key, action, resource, evaluation)


def authorize(
    principal_arn: str,
    action: str,
    resource: str,
    context: Mapping[str, ContextValue] | None = None,
    *,
    record: bool = True,
) -> Denial | None:
    """None when the principal's role allows `action` on `resource`, else the Denial
    (with AWS's AccessDenied message). A principal that is not a role (the account's
    own administrator credentials) is not evaluated here. `record=False` leaves USAGE
    alone (the caller records the outcome it decides with a resource-based policy)."""
    found = _evaluate(principal_arn, action, resource, context)
    if found is None:
        return None
    role_key, evaluation = found
    if record:
        USAGE.record(role_key, action, resource, evaluation)
    if evaluation.allowed:
        return None
    return Denial(
        principal_arn, action, resource, denial_message(principal_arn, action, resource, evaluation)
    )
