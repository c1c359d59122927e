"""bootstrap/target-account.yaml: what a target account trusts Shiplane with."""

from __future__ import annotations

from typing import Any

from cfnlint.decode import cfn_yaml

from tests.helpers import ROOT
from tests.unit.test_template import as_list, statements

BOOTSTRAP: dict[str, Any] = cfn_yaml.load(str(ROOT / "bootstrap" / "target-account.yaml"))


def test_the_deploy_role_requires_the_external_id() -> None:
    trust = BOOTSTRAP["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"]["StringEquals"]["sts:ExternalId"] == {"Ref": "ExternalId"}
    assert BOOTSTRAP["Parameters"]["ExternalId"]["NoEcho"] is True


def test_pass_role_is_scoped_and_bound_to_a_service() -> None:
    passes = [s for s in statements(BOOTSTRAP) if "iam:PassRole" in as_list(s["Action"])]
    assert len(passes) == 3
    for statement in passes:
        assert statement["Resource"] != "*"
        assert "iam:PassedToService" in statement["Condition"]["StringEquals"]


def test_stack_permissions_are_limited_to_shiplane_stacks() -> None:
    stack_statements = [
        s
        for s in statements(BOOTSTRAP)
        if any(a.startswith("cloudformation:") for a in as_list(s["Action"]))
    ]
    assert stack_statements
    for statement in stack_statements:
        assert ":stack/shiplane-*/*" in str(statement["Resource"])


def test_the_bootstrap_template_lints_clean() -> None:
    from cfnlint.api import ManualArgs, lint

    text = (ROOT / "bootstrap" / "target-account.yaml").read_text()
    matches = lint(text, config=ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches if m.rule.id[0] in "EW"] == []
