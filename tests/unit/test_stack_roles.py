"""The roles a configuration names must be ones the target account's bootstrap roles may
pass on: refused when applied (a 400 naming the field), not at the first deployment."""

from __future__ import annotations

from typing import Any

import pytest

from shiplane.domain.models import Configuration, Target, bootstrap_execution_role_arn
from shiplane.errors import ConfigurationError
from shiplane.services.apply_configuration import check_configuration
from tests.helpers import demo_configuration

ACCOUNT = "123456789012"


def configured(**task_or_step: Any) -> Configuration:
    document = demo_configuration()
    step = document["projects"][0]["steps"][0]
    for key, value in task_or_step.items():
        if key.startswith("task."):
            step["task"][key.removeprefix("task.")] = value
    return Configuration.model_validate(document)


@pytest.mark.parametrize("field", ["task_role_arn", "execution_role_arn"])
def test_task_roles_not_named_shiplane_task_are_refused(field: str) -> None:
    config = configured(**{f"task.{field}": f"arn:aws:iam::{ACCOUNT}:role/web-{field}"})

    with pytest.raises(ConfigurationError) as refused:
        check_configuration(config)

    assert refused.value.details["field"] == f"projects.web.steps.web-service.task.{field}"
    assert "shiplane-task-*" in str(refused.value)


def test_task_roles_named_shiplane_task_are_accepted() -> None:
    check_configuration(
        configured(
            **{
                "task.task_role_arn": f"arn:aws:iam::{ACCOUNT}:role/shiplane-task-web",
                "task.execution_role_arn": f"arn:aws:iam::{ACCOUNT}:role/shiplane-task-execution",
            }
        )
    )


def test_a_cloudformation_steps_role_must_be_one_the_deploy_role_may_pass() -> None:
    document = demo_configuration()
    step: dict[str, Any] = {
        "name": "infra",
        "type": "cloudformation",
        "target_role": "web-server",
        "template": "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n",
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/infra",
    }
    document["projects"][0]["steps"].insert(0, step)
    with pytest.raises(ConfigurationError) as refused:
        check_configuration(Configuration.model_validate(document))
    assert refused.value.details["field"] == "projects.web.steps.infra.role_arn"

    for accepted in ("shiplane-stack-infra", "shiplane-deploy-cfn-exec"):
        step["role_arn"] = f"arn:aws:iam::{ACCOUNT}:role/{accepted}"
        check_configuration(Configuration.model_validate(document))


def test_a_target_without_a_stack_role_uses_the_bootstraps_execution_role() -> None:
    (target, *_) = Configuration.model_validate(demo_configuration()).targets
    assert target.cloudformation_role_arn is None
    assert target.stack_role_arn == f"arn:aws:iam::{ACCOUNT}:role/shiplane-deploy-cfn-exec"
    custom = Target.model_validate(
        {
            **target.model_dump(),
            "cloudformation_role_arn": f"arn:aws:iam::{ACCOUNT}:role/shiplane-stack-own",
        }
    )
    assert custom.stack_role_arn.endswith(":role/shiplane-stack-own")
    # a deploy role with a path: the bootstrap's execution role has none
    assert bootstrap_execution_role_arn("arn:aws-cn:iam::210987654321:role/ops/deployer") == (
        "arn:aws-cn:iam::210987654321:role/deployer-cfn-exec"
    )
