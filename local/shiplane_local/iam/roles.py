"""Authorize a principal's request against its role's policies as moto's IAM holds them,
and remember every decision (which grants were used, which requests were denied)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .policy import ContextValue, Evaluation, Grant, denial_message, evaluate


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
    grant, and what was denied. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.allowed: Counter[tuple[str, str]] = Counter()  # (role arn-ish, action)
        self.denied: Counter[tuple[str, str, str]] = Counter()  # (role, action, resource)
        self.grants: Counter[tuple[str, Grant]] = Counter()  # (role, grant) that allowed

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


USAGE = Usage()


def authorize(
    principal_arn: str,
    action: str,
    resource: str,
    context: Mapping[str, ContextValue] | None = None,
) -> Denial | None:
    """None when the principal's role allows `action` on `resource`, else the Denial
    (with AWS's AccessDenied message). A principal that is not a role (the account's
    own administrator credentials) is not evaluated here."""
    found = role_of(principal_arn)
    if found is None:
        return None
    account, role_name = found
    try:
        documents = role_documents(account, role_name)
    except Exception:  # the role is gone: nothing allows anything
        documents = []
    evaluation = evaluate(documents, action, resource, context)
    role_key = f"arn:aws:iam::{account}:role/{role_name}"
    USAGE.record(role_key, action, resource, evaluation)
    if evaluation.allowed:
        return None
    return Denial(
        principal_arn, action, resource, denial_message(principal_arn, action, resource, evaluation)
    )
