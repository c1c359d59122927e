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
    # only Shiplane's own function roles, not anyone in the Shiplane account
    principal = statement["Condition"]["ArnLike"]["aws:PrincipalArn"]
    assert principal == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${ShiplaneAccountId}:role/${ShiplaneStackName}-*"
    }
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


def test_stack_and_ecs_events_are_forwarded_to_shiplanes_bus() -> None:
    rules = {
        name: r["Properties"]
        for name, r in BOOTSTRAP["Resources"].items()
        if r["Type"] == "AWS::Events::Rule"
    }
    patterns = {p["EventPattern"]["detail-type"][0]: p["EventPattern"] for p in rules.values()}
    assert set(patterns) == {"CloudFormation Stack Status Change", "ECS Deployment State Change"}
    [stack_id] = patterns["CloudFormation Stack Status Change"]["detail"]["stack-id"]
    assert stack_id["prefix"]["Fn::Sub"].endswith(":stack/shiplane-")
    for rule in rules.values():
        assert rule["EventBusName"] == "default"
        [target] = rule["Targets"]
        assert target["Arn"] == {"Ref": "ShiplaneEventBusArn"}
        assert target["RoleArn"] == {"Fn::GetAtt": ["EventForwardingRole", "Arn"]}


def test_the_forwarding_role_can_only_put_events_on_shiplanes_bus() -> None:
    role = BOOTSTRAP["Resources"]["EventForwardingRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    granted = list(statements(role["Policies"]))
    assert granted == [
        {
            "Sid": "PutEventsOnShiplanesBusOnly",
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": {"Ref": "ShiplaneEventBusArn"},
        }
    ]


def test_the_deploy_role_can_describe_clusters_for_the_health_check() -> None:
    deploy = statements(BOOTSTRAP["Resources"]["DeployRole"]["Properties"]["Policies"])
    describe = [s for s in deploy if "ecs:DescribeClusters" in as_list(s["Action"])]
    assert describe
    assert any(":cluster/*" in str(r) for s in describe for r in as_list(s["Resource"]))
