"""bootstrap/ecr-repository-policy.json: what a target account's task execution role
needs on Shiplane's repositories to pull, and nothing more."""

from __future__ import annotations

import json

from tests.helpers import ROOT


def test_target_accounts_task_roles_may_pull_and_only_pull() -> None:
    policy = json.loads((ROOT / "bootstrap" / "ecr-repository-policy.json").read_text())
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert all(p.endswith(":root") for p in statement["Principal"]["AWS"])
    assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"].endswith(":role/shiplane-task-*")
