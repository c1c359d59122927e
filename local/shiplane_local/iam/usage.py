"""Least privilege, measured: the authorization decisions of a run, saved per process and
merged into one report per role (calls authorized and denied, grants never used).

Roles made by SAM carry a random suffix (`shiplane-AcquireSlotFunctionRole-0PAKO6ZRDG23`)
that differs in every local cloud; the report names a role without it, so one role of the
template is one line however many clouds a test run started.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .policy import Grant
from .roles import USAGE, Usage

ENV_DIR = "SHIPLANE_IAM_USAGE_DIR"
DEFAULT_DIR = Path(".shiplane") / "iam-usage"
_SAM_SUFFIX = re.compile(r"-[A-Z0-9]{8,13}$")


def usage_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR)


def role_label(role_arn: str) -> str:
    """`shiplane-AcquireSlotFunctionRole` for any cloud's copy of that role."""
    name = role_arn.rsplit("/", 1)[-1]
    return _SAM_SUFFIX.sub("", name)


def snapshot(usage: Usage = USAGE) -> dict[str, Any]:
    """The decisions so far as JSON-able data, by role label."""
    roles: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"allowed": Counter(), "denied": Counter(), "held": set(), "used": set()}
    )
    for (role, action), n in usage.allowed.items():
        roles[role_label(role)]["allowed"][action] += n
    for (role, action, resource), n in usage.denied.items():
        roles[role_label(role)]["denied"][f"{action} on {resource}"] += n
    for (role, grant), _ in usage.grants.items():
        roles[role_label(role)]["used"].add(_grant_key(grant))
    for role, grants in usage.held.items():
        roles[role_label(role)]["held"].update(_grant_key(g) for g in grants)
    return {
        label: {
            "allowed": dict(data["allowed"]),
            "denied": dict(data["denied"]),
            "held": sorted(data["held"]),
            "used": sorted(data["used"]),
        }
        for label, data in roles.items()
    }


def _grant_key(grant: Grant) -> str:
    # A SAM inline policy's name carries the role's logical id, not its suffix: stable.
    policy = role_label(grant.policy) if grant.policy.startswith("arn:") else grant.policy
    return f"{policy} | {grant.statement} | {grant.action_pattern}"


def clear(directory: Path | None = None) -> None:
    """Forget the saved decisions of an earlier run."""
    for path in (directory or usage_dir()).glob("usage-*.json"):
        path.unlink(missing_ok=True)


def save(path: Path | None = None, usage: Usage = USAGE) -> Path | None:
    """Write this process's decisions (nothing when there were none)."""
    data = snapshot(usage)
    if not data:
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = path or usage_dir() / f"usage-{worker}-{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
    return path


@dataclass
class RoleReport:
    role: str
    allowed: Counter[str] = field(default_factory=Counter)
    denied: Counter[str] = field(default_factory=Counter)
    held: set[str] = field(default_factory=set)
    used: set[str] = field(default_factory=set)

    @property
    def unused(self) -> list[str]:
        return sorted(self.held - self.used)


def merge(directory: Path | None = None) -> dict[str, RoleReport]:
    """Every saved file of a run, merged by role."""
    reports: dict[str, RoleReport] = {}
    for path in sorted((directory or usage_dir()).glob("usage-*.json")):
        for role, data in json.loads(path.read_text()).items():
            report = reports.setdefault(role, RoleReport(role))
            report.allowed.update(data.get("allowed", {}))
            report.denied.update(data.get("denied", {}))
            report.held.update(data.get("held", []))
            report.used.update(data.get("used", []))
    return reports


def render(reports: dict[str, RoleReport]) -> str:
    """The report: per role, calls authorized / denied and the grants never used."""
    lines = []
    for role in sorted(reports):
        r = reports[role]
        lines.append(
            f"{role}: {sum(r.allowed.values())} authorized, {sum(r.denied.values())} denied"
        )
        for action, n in sorted(r.allowed.items()):
            lines.append(f"    allowed  {n:6d}  {action}")
        for what, n in sorted(r.denied.items()):
            lines.append(f"    DENIED   {n:6d}  {what}")
        for grant in r.unused:
            lines.append(f"    unused           {grant}")
    return "\n".join(lines)
