"""The local cloud's IAM policy evaluation, against the IAM JSON policy reference's rules."""

from __future__ import annotations

import pytest

from shiplane_local.iam.policy import (
    UnsupportedCondition,
    arn_matches,
    condition_holds,
    denial_message,
    evaluate,
)

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/shiplane-Table-1"


def doc(*statements: dict) -> list[tuple[str, dict]]:
    return [("p", {"Version": "2012-10-17", "Statement": list(statements)})]


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_allow_needs_action_and_resource():
    policies = doc(allow(["dynamodb:GetItem", "dynamodb:Query"], TABLE))
    assert evaluate(policies, "dynamodb:GetItem", TABLE).allowed
    assert evaluate(policies, "dynamodb:getitem", TABLE).allowed  # actions ignore case
    assert evaluate(policies, "dynamodb:PutItem", TABLE).decision == "implicit_deny"
    assert not evaluate(policies, "dynamodb:GetItem", TABLE + "/index/gsi1").allowed
    assert not evaluate(policies, "dynamodb:GetItem", TABLE.replace("Table-1", "Other")).allowed


def test_explicit_deny_wins_over_allow():
    policies = doc(
        allow("ecs:*", "*"),
        {"Effect": "Deny", "Action": "ecs:DeleteService", "Resource": "*"},
    )
    assert evaluate(policies, "ecs:UpdateService", "arn:aws:ecs:us-east-1:1:service/c/s").allowed
    result = evaluate(policies, "ecs:DeleteService", "arn:aws:ecs:us-east-1:1:service/c/s")
    assert result.decision == "explicit_deny"


def test_arn_segments_do_not_let_a_wildcard_cross_a_colon():
    assert arn_matches("arn:aws:ecs:*:123:service/*/*", "arn:aws:ecs:eu-west-1:123:service/c/s")
    assert arn_matches("arn:aws:ecs:*:123:service/*", "arn:aws:ecs:eu-west-1:123:service/c/s")
    assert not arn_matches("arn:aws:ecs:*:123:service/*/*", "arn:aws:ecs:eu-west-1:999:service/c/s")
    # `*` in the region segment must not swallow the account.
    assert not arn_matches("arn:aws:ecs:*:service/c/s", "arn:aws:ecs:eu-west-1:123:service/c/s")
    # the resource segment may hold colons (Step Functions executions).
    assert arn_matches(
        "arn:aws:states:us-east-1:1:execution:sm:*", "arn:aws:states:us-east-1:1:execution:sm:e-1"
    )
    assert not arn_matches("arn:aws:iam::*:role/shiplane-deploy", "arn:aws:iam::1:role/other")


def test_not_action_and_not_resource():
    policies = doc({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret"})
    assert evaluate(policies, "s3:GetObject", "arn:aws:s3:::public").allowed
    assert not evaluate(policies, "iam:PassRole", "arn:aws:iam::1:role/r").allowed
    assert not evaluate(policies, "s3:GetObject", "arn:aws:s3:::secret").allowed


def test_pass_role_condition_on_the_service():
    policies = doc(
        allow(
            "iam:PassRole",
            "arn:aws:iam::1:role/shiplane-task-*",
            Condition={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        )
    )
    role = "arn:aws:iam::1:role/shiplane-task-web"
    assert evaluate(
        policies, "iam:PassRole", role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    ).allowed
    assert not evaluate(
        policies, "iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"}
    ).allowed
    assert not evaluate(policies, "iam:PassRole", role).allowed  # key absent: no match


def test_condition_operators():
    ctx = {"sts:ExternalId": "s3cret-id", "aws:PrincipalArn": "arn:aws:iam::1:role/shiplane-Fn-X"}
    assert condition_holds("StringEquals", {"sts:externalid": "s3cret-id"}, ctx)  # keys ignore case
    assert not condition_holds("StringEquals", {"sts:ExternalId": "other"}, ctx)
    assert condition_holds("StringEquals", {"sts:ExternalId": ["a", "s3cret-id"]}, ctx)  # OR
    assert condition_holds("ArnLike", {"aws:PrincipalArn": "arn:aws:iam::1:role/shiplane-*"}, ctx)
    assert not condition_holds("ArnLike", {"aws:PrincipalArn": "arn:aws:iam::2:role/*"}, ctx)
    assert condition_holds("StringNotEquals", {"aws:SourceAccount": "1"}, ctx)  # absent: holds
    assert condition_holds("StringEqualsIfExists", {"aws:SourceAccount": "1"}, ctx)
    assert not condition_holds("StringEquals", {"aws:SourceAccount": "1"}, ctx)
    assert condition_holds("Null", {"aws:SourceAccount": "true"}, ctx)
    assert not condition_holds("Null", {"sts:ExternalId": "true"}, ctx)
    assert condition_holds("Bool", {"aws:SecureTransport": "true"}, {"aws:SecureTransport": True})
    tags = {"aws:TagKeys": ["shiplane:project", "team"]}
    assert condition_holds("ForAnyValue:StringEquals", {"aws:TagKeys": "team"}, tags)
    assert not condition_holds("ForAllValues:StringEquals", {"aws:TagKeys": "team"}, tags)
    assert condition_holds("ForAllValues:StringLike", {"aws:TagKeys": ["shiplane:*", "team"]}, tags)
    with pytest.raises(UnsupportedCondition):
        condition_holds("IpAddress", {"aws:SourceIp": "10.0.0.0/8"}, {"aws:SourceIp": "10.1.1.1"})


def test_every_condition_must_hold():
    statement = allow(
        "sts:AssumeRole",
        "*",
        Condition={
            "StringEquals": {"sts:ExternalId": "x"},
            "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::1:role/shiplane-*"},
        },
    )
    ok = {"sts:ExternalId": "x", "aws:PrincipalArn": "arn:aws:iam::1:role/shiplane-A"}
    assert evaluate(doc(statement), "sts:AssumeRole", "arn:aws:iam::2:role/d", ok).allowed
    bad = {**ok, "aws:PrincipalArn": "arn:aws:iam::1:role/intruder"}
    assert not evaluate(doc(statement), "sts:AssumeRole", "arn:aws:iam::2:role/d", bad).allowed


def test_url_encoded_documents_and_the_grant_that_allowed():
    encoded = (
        "%7B%22Statement%22%3A%5B%7B%22Sid%22%3A%22Read%22%2C%22Effect%22%3A%22Allow%22%2C"
        "%22Action%22%3A%22ecr%3ADescribe%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D"
    )
    result = evaluate(
        [("inline", encoded)], "ecr:DescribeImages", "arn:aws:ecr:us-east-1:1:repository/web"
    )
    assert result.allowed
    assert [(g.policy, g.statement, g.action_pattern) for g in result.granted_by] == [
        ("inline", "Read", "ecr:Describe*")
    ]


def test_denial_message_is_awss_wording():
    result = evaluate(doc(), "ecs:ListTasks", "*")
    message = denial_message(
        "arn:aws:sts::1:assumed-role/shiplane-deploy/s", "ecs:ListTasks", "*", result
    )
    assert message == (
        "User: arn:aws:sts::1:assumed-role/shiplane-deploy/s is not authorized to perform: "
        "ecs:ListTasks on resource: * because no identity-based policy allows the "
        "ecs:ListTasks action"
    )
