"""KMS key policies decide like trust policies: naming the caller allows on its own,
naming the account delegates to the caller's identity policy (KMS developer guide)."""

from __future__ import annotations

from shiplane_local.iam.trust import trust_decision

ACCOUNT = "123456789012"
API_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shiplane-ApiFunctionRole-X"
CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/shiplane-ApiFunctionRole-X/shiplane-ApiFunction-Y"
VIA_SSM = {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}

KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Principal": {"AWS": API_ROLE},
            "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {"StringEquals": VIA_SSM},
        },
        None,  # an `!If [..., ..., !Ref AWS::NoValue]` as moto's CloudFormation leaves it
    ],
}


def test_a_key_policy_naming_the_caller_allows_through_ssm_only() -> None:
    assert trust_decision(KEY_POLICY, CALLER, VIA_SSM, "kms:Encrypt") == "caller"
    # Called directly (not through SSM), only the account's delegation applies.
    assert trust_decision(KEY_POLICY, CALLER, {}, "kms:Encrypt") == "account"


def test_an_action_the_key_policy_gives_the_caller_no_statement_for_is_delegated() -> None:
    assert trust_decision(KEY_POLICY, CALLER, VIA_SSM, "kms:Decrypt") == "account"
    other = "arn:aws:sts::999999999999:assumed-role/r/s"
    assert trust_decision(KEY_POLICY, other, VIA_SSM, "kms:Decrypt") == "none"
