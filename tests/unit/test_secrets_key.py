"""template.yaml's key for sensitive values: the api writes with it, target accounts'
task execution roles may only decrypt, and only through SSM."""

from __future__ import annotations

from tests.unit.test_template import RESOURCES, TEMPLATE, setting


def test_the_api_writes_sensitive_values_under_shiplanes_key() -> None:
    variables = setting("ApiFunction", "Environment")["Variables"]
    assert variables["SECRETS_KMS_KEY_ID"] == {"Fn::GetAtt": ["SecretsKey", "Arn"]}
    assert TEMPLATE["Outputs"]["SecretsKeyArn"]["Value"] == {"Fn::GetAtt": ["SecretsKey", "Arn"]}


def test_target_accounts_decrypt_only_through_ssm_with_task_roles() -> None:
    statements = RESOURCES["SecretsKey"]["Properties"]["KeyPolicy"]["Statement"]
    by_sid = {}
    for statement in statements:
        if "Fn::If" in statement:
            condition, statement, absent = statement["Fn::If"]
            assert condition == "HasTargetAccounts" and absent == {"Ref": "AWS::NoValue"}
        by_sid[statement["Sid"]] = statement
    targets = by_sid["TargetAccountsTaskRolesDecryptThroughSsm"]
    assert targets["Principal"] == {"AWS": {"Ref": "TargetAccountIds"}}
    assert targets["Action"] == "kms:Decrypt"
    assert "kms:ViaService" in targets["Condition"]["StringEquals"]
    assert targets["Condition"]["ArnLike"]["aws:PrincipalArn"]["Fn::Sub"].endswith(
        ":role/shiplane-task-*"
    )
    api = by_sid["TheApiEncryptsSensitiveValues"]
    assert api["Principal"] == {"AWS": {"Fn::GetAtt": ["ApiFunctionRole", "Arn"]}}
    assert "kms:Decrypt" not in api["Action"]
