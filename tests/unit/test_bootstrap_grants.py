"""bootstrap/target-account.yaml gives its roles what Shiplane's stacks and calls need.

The permissions are derived from the CloudFormation resource provider schemas (cfn-lint's
copy) for every resource of what Shiplane renders - a rich ecs-service step's stack and
the same step converted to a cloudformation step - never from a hand-written list; the
role's policies are the template's own, resolved for one account and region."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from shiplane.domain.models import EcsServiceStep, Project, Target
from shiplane.rendering.convert import convert_step
from shiplane.rendering.service_stack import render_service_stack
from shiplane_local import bootstrap_template
from shiplane_local.cfn_permissions import Target as Resource
from shiplane_local.cfn_permissions import handler_permissions, required_permissions
from shiplane_local.iam.policy import evaluate
from tests.unit.test_convert import rich_step

ACCOUNT = "210987654321"
SHIPLANE = "111111111111"
REGION = "eu-west-1"
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shiplane-task-web"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shiplane-task-execution"
PARAMETERS = {
    "TaskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web-dev:3",
    "Family": "web-dev",
    "ServiceName": "web",
    "Cluster": "shiplane-dev",
    "LogGroupName": "/shiplane/p/dev",
}
BOOTSTRAP_PARAMETERS = {"ShiplaneAccountId": SHIPLANE, "ExternalId": "x" * 12}


def _concrete(value: Any) -> Any:
    """A rendered template's properties with its parameters filled in."""
    if isinstance(value, list):
        return [_concrete(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return PARAMETERS.get(arg, f"{arg}-value")
        if key == "Fn::If":
            return _concrete(arg[1])
        if key == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(_concrete({"Ref": m[1]})), arg)
        if key == "Fn::Join":
            return str(arg[0]).join(str(v) for v in _concrete(arg[1]))
        if key == "Fn::GetAtt":
            return f"{arg[0]}-{arg[1]}"
    return {k: _concrete(v) for k, v in value.items()}


def _step() -> tuple[EcsServiceStep, Project]:
    data = rich_step(tags={"team": "a"}, propagate_tags="SERVICE")
    data = copy.deepcopy(data)
    data["task"]["task_role_arn"] = TASK_ROLE
    data["task"]["execution_role_arn"] = EXECUTION_ROLE
    project = Project.model_validate(
        {
            "name": "p",
            "lifecycle": "lc",
            "steps": [data],
            "variables": [
                {
                    "name": "DbPassword",
                    "sensitive": True,
                    "secret_ref": data["task"]["containers"][0]["secrets"]["API_KEY"],
                },
                {"name": "Level", "value": "info"},
            ],
        }
    )
    step = project.steps[0]
    assert isinstance(step, EcsServiceStep)
    return step, project


def _target() -> Target:
    return Target.model_validate(
        {
            "name": "dev",
            "environments": ["dev"],
            "roles": ["web"],
            "region": REGION,
            "cluster": "shiplane-dev",
            "deploy_role_arn": f"arn:aws:iam::{ACCOUNT}:role/shiplane-deploy",
            "subnets": ["subnet-0a1de0000000000d1"],
        }
    )


def _rendered_resources() -> list[tuple[str, dict[str, Any]]]:
    step, project = _step()
    service_stack = render_service_stack(step, _target(), project="p", environment="dev")
    converted = convert_step(step, project).parsed_template()
    return [
        (f"{where}.{logical_id}", resource)
        for where, template in (("service-stack", service_stack), ("converted", converted))
        for logical_id, resource in template["Resources"].items()
    ]


def _required() -> list[tuple[str, str, Any]]:
    required = []
    for where, resource in _rendered_resources():
        target = Resource(
            resource_type=resource["Type"],
            properties=_concrete(resource.get("Properties") or {}),
            account_id=ACCOUNT,
            region=REGION,
            tagged=True,  # Shiplane's stack tags reach every resource
        )
        for operation in ("create", "update", "delete"):
            for permission in required_permissions(target, operation):
                required.append((f"{where} {operation}", resource["Type"], permission))
    return required


def _documents(logical_id: str) -> list[tuple[str, Any]]:
    _, _, policies = bootstrap_template.role(
        logical_id, account_id=ACCOUNT, region=REGION, parameters=BOOTSTRAP_PARAMETERS
    )
    return list(policies)


def test_what_shiplane_renders_uses_the_three_resource_types() -> None:
    types = {resource["Type"] for _, resource in _rendered_resources()}
    assert types == {"AWS::ECS::Service", "AWS::ECS::TaskDefinition", "AWS::Logs::LogGroup"}


def test_the_derivation_is_the_schemas_not_a_list() -> None:
    actions = {(t, p.action) for _, t, p in _required()}
    # a few of what the issue found missing, as the schemas list them
    for expected in (
        ("AWS::ECS::Service", "ecs:DescribeServiceDeployments"),
        ("AWS::ECS::Service", "ecs:ListServiceDeployments"),
        ("AWS::ECS::Service", "ecs:ListTagsForResource"),
        ("AWS::ECS::TaskDefinition", "iam:GetRole"),
        ("AWS::ECS::TaskDefinition", "ecs:TagResource"),
        ("AWS::Logs::LogGroup", "logs:CreateLogGroup"),
        ("AWS::Logs::LogGroup", "logs:PutRetentionPolicy"),
        ("AWS::Logs::LogGroup", "logs:TagResource"),
    ):
        assert expected in actions
        assert expected[1] in handler_permissions(expected[0], "create") + handler_permissions(
            expected[0], "update"
        )
    passes = [p for _, t, p in _required() if p.action == "iam:PassRole"]
    assert {(p.resource, p.context["iam:PassedToService"]) for p in passes} == {
        (TASK_ROLE, "ecs-tasks.amazonaws.com"),
        (EXECUTION_ROLE, "ecs-tasks.amazonaws.com"),
    }


@pytest.mark.parametrize(
    "where,resource_type,permission", _required(), ids=lambda v: str(getattr(v, "action", v))
)
def test_the_execution_role_grants_every_handler_permission(
    where: str, resource_type: str, permission: Any
) -> None:
    decision = evaluate(
        _documents("CloudFormationExecutionRole"),
        permission.action,
        permission.resource,
        permission.context,
    )
    assert decision.allowed, f"{where}: {resource_type} needs {permission}"


def test_the_execution_role_passes_only_task_roles_and_only_to_ecs_tasks() -> None:
    documents = _documents("CloudFormationExecutionRole")
    other = f"arn:aws:iam::{ACCOUNT}:role/admin"
    assert not evaluate(
        documents, "iam:PassRole", other, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    ).allowed
    assert not evaluate(
        documents, "iam:PassRole", TASK_ROLE, {"iam:PassedToService": "lambda.amazonaws.com"}
    ).allowed


def test_the_deploy_role_grants_the_calls_shiplane_makes() -> None:
    documents = _documents("DeployRole")
    stack = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/shiplane-p-svc-dev-untenanted/1"
    calls = [
        ("ecs:RegisterTaskDefinition", "*", {}),
        # by cluster, family and desired status: authorized against "*", with ecs:cluster
        ("ecs:ListTasks", "*", {"ecs:cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/dev"}),
        ("ecs:DescribeServices", f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/shiplane-dev/web", {}),
        ("cloudformation:CreateStack", stack, {}),
        ("cloudformation:UpdateStack", stack, {}),
        (
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/shiplane-deploy-cfn-exec",
            {"iam:PassedToService": "cloudformation.amazonaws.com"},
        ),
        (
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/shiplane-stack-infra",
            {"iam:PassedToService": "cloudformation.amazonaws.com"},
        ),
        ("iam:PassRole", EXECUTION_ROLE, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
    ]
    for action, resource, context in calls:
        assert evaluate(documents, action, resource, context).allowed, (action, resource)
    # CloudFormation may not be handed an arbitrary role
    assert not evaluate(
        documents,
        "iam:PassRole",
        f"arn:aws:iam::{ACCOUNT}:role/admin",
        {"iam:PassedToService": "cloudformation.amazonaws.com"},
    ).allowed


def test_shiplanes_default_stack_role_is_the_bootstraps_execution_role() -> None:
    name, _, _ = bootstrap_template.role(
        "CloudFormationExecutionRole",
        account_id=ACCOUNT,
        region=REGION,
        parameters=BOOTSTRAP_PARAMETERS,
    )
    assert _target().stack_role_arn == f"arn:aws:iam::{ACCOUNT}:role/{name}"


def test_the_task_execution_role_pulls_from_shiplanes_repositories() -> None:
    parameters = {
        **BOOTSTRAP_PARAMETERS,
        "ShiplaneSecretsKeyArn": f"arn:aws:kms:{REGION}:{SHIPLANE}:key/1234abcd-12ab-34cd",
    }
    name, trust, policies = bootstrap_template.role(
        "TaskExecutionRole", account_id=ACCOUNT, region=REGION, parameters=parameters
    )
    assert name.startswith("shiplane-task-")
    assert trust["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    repository = f"arn:aws:ecr:{REGION}:{SHIPLANE}:repository/web"
    for action, resource in (
        ("ecr:GetAuthorizationToken", "*"),
        ("ecr:BatchGetImage", repository),
        ("ecr:GetDownloadUrlForLayer", repository),
        ("ecr:BatchCheckLayerAvailability", repository),
        ("ssm:GetParameters", f"arn:aws:ssm:{REGION}:{SHIPLANE}:parameter/shiplane/p/Db"),
        ("kms:Decrypt", parameters["ShiplaneSecretsKeyArn"]),
        (
            "logs:PutLogEvents",
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/shiplane/p/dev:log-stream:app/1",
        ),
    ):
        assert evaluate(policies, action, resource).allowed, action


def test_only_the_roles_region_creates_the_roles() -> None:
    template = bootstrap_template.load()
    roles = [name for name, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    named = [n for n in roles if "RoleName" in template["Resources"][n]["Properties"]]
    assert named  # IAM names are global: each named role exists once per account
    for logical_id in named:
        assert template["Resources"][logical_id]["Condition"] == "CreatesRoles"
    decide = {
        (roles_region, region): bootstrap_template.Resolver(
            template,
            account_id=ACCOUNT,
            region=region,
            parameters={"RolesRegion": roles_region},
        ).condition("CreatesRoles")
        for roles_region in ("", "eu-west-1")
        for region in ("eu-west-1", "us-east-1")
    }
    assert decide == {
        ("", "eu-west-1"): True,
        ("", "us-east-1"): True,
        ("eu-west-1", "eu-west-1"): True,
        ("eu-west-1", "us-east-1"): False,
    }
