"""What a target account needs before Shiplane can deploy to it, made in the local cloud:
the ECS cluster (the user's, on AWS) and the roles of bootstrap/target-account.yaml,
created from that file as a CloudFormation stack in the target account, with the
target's parameters, so target calls are authorized against the real bootstrap policies.

One stack per account and deploy role. Its ExternalId parameter lists the external IDs of
every target that uses the role (several targets of one account, each with its own);
a later configuration with a new ID updates the stack.

Only the template's roles (deploy, CloudFormation execution, task execution) are created
here: its event-forwarding rules exist for targets in other accounts, and in the local
cloud the target's events already reach Shiplane's rules (one account), so a forwarding
rule would deliver each event twice.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import defaultdict
from typing import Any

from shiplane.domain.models import Configuration

log = logging.getLogger("shiplane_local")

BOOTSTRAP_STACK = "shiplane-target-bootstrap"
BOOTSTRAP_ROLES = ("DeployRole", "CloudFormationExecutionRole", "TaskExecutionRole")
TASK_EXECUTION_ROLE = "shiplane-task-execution"  # its RoleName in the bootstrap


def bootstrap_template() -> dict[str, Any]:
    """bootstrap/target-account.yaml with only the roles (see the module docstring)."""
    from . import bootstrap_template as bootstrap

    template = copy.deepcopy(bootstrap.load())  # the cached parse stays as the file says
    template["Resources"] = {k: template["Resources"][k] for k in BOOTSTRAP_ROLES}
    template.pop("Outputs", None)
    return template


def prepare_targets(cloud: Any, config: Configuration) -> None:
    ecs = cloud.client("ecs")
    existing = set(ecs.list_clusters()["clusterArns"])
    roles: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for target in config.targets:
        if not any(arn.endswith(f"/{target.cluster}") for arn in existing):
            ecs.create_cluster(clusterName=target.cluster)
            log.info("cluster %s created for target %s", target.cluster, target.name)
        account = target.deploy_role_arn.split(":")[4]
        role_name = target.deploy_role_arn.rsplit("/", 1)[-1]
        ids = roles[(account, target.region, role_name)]
        if target.external_id:
            ids.add(target.external_id)
    for (account, region, role_name), external_ids in roles.items():
        bootstrap_target_account(cloud, account, region, role_name, external_ids)


def _task_execution_role_exists(cloud: Any, account: str) -> bool:
    from moto.iam.models import iam_backends

    try:
        iam_backends[account]["global"].get_role(TASK_EXECUTION_ROLE)
    except Exception:
        return False
    return True


def _cloudformation(cloud: Any, account: str, region: str) -> Any:
    if account == cloud.account_id:
        return cloud.client("cloudformation", region_name=region)
    # Another account: an administrator's key of that account (moto routes by key).
    from moto.iam.models import iam_backends

    iam = iam_backends[account]["global"]
    try:
        iam.get_user("shiplane-local-admin")
    except Exception:
        iam.create_user(region, "shiplane-local-admin", "/", None)
    key = iam.create_access_key("shiplane-local-admin")
    return cloud.client(
        "cloudformation",
        region_name=region,
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
    )


def bootstrap_target_account(
    cloud: Any,
    account: str,
    region: str,
    role_name: str,
    external_ids: set[str],
    *,
    shiplane_stack_name: str | None = None,
) -> None:
    """Create (or widen the external IDs of) the bootstrap stack for one deploy role."""
    cfn = _cloudformation(cloud, account, region)
    stack = f"{BOOTSTRAP_STACK}-{role_name}"[:128]
    wanted = set(external_ids)
    current: set[str] | None = None
    try:
        found = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        for parameter in found.get("Parameters", []):
            if parameter["ParameterKey"] == "ExternalIdList":
                current = set(filter(None, parameter["ParameterValue"].split(",")))
    except Exception:  # no such stack yet
        found = None
    if found is not None and current is not None and wanted <= current:
        return
    ids = sorted(wanted | (current or set())) or ["shiplane-no-external-id"]
    template = bootstrap_template()
    owns_it = found is not None and any(
        r["LogicalResourceId"] == "TaskExecutionRole"
        for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
    )
    if not owns_it and _task_execution_role_exists(cloud, account):
        # One account, a second deploy role (a second bootstrap stack): the account's one
        # task execution role (a fixed name) belongs to the first stack.
        template["Resources"].pop("TaskExecutionRole")
    # NoEcho hides ExternalId from DescribeStacks: a copy in a parameter of its own lets a
    # later configuration see which IDs the stack trusts already.
    template["Parameters"]["ExternalIdList"] = {"Type": "String", "Default": ""}
    parameters = {
        "ShiplaneAccountId": cloud.account_id,
        "ShiplaneStackName": shiplane_stack_name or cloud.stack_name,
        "ExternalId": ",".join(ids),
        "ExternalIdList": ",".join(ids),
        "DeployRoleName": role_name,
        # the task execution role decrypts Shiplane's secrets with it (ECS reads them)
        "ShiplaneSecretsKeyArn": str(cloud.outputs.get("SecretsKeyArn") or ""),
        "ShiplaneEventBusArn": str(
            cloud.outputs.get("TargetEventsBusArn")
            or f"arn:aws:events:{cloud.region}:{cloud.account_id}:event-bus/default"
        ),
    }
    args = {
        "StackName": stack,
        "TemplateBody": json.dumps(template),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
    }
    if found is None:
        cfn.create_stack(**args)
    else:
        cfn.update_stack(**args)
    status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    if not status.endswith("_COMPLETE") or "ROLLBACK" in status:
        raise RuntimeError(f"target bootstrap stack {stack} ended {status}")
    log.info("target account %s: bootstrap roles for %s (%s)", account, role_name, status)
    from .iam.roles import hold_roles

    hold_roles(account)
