"""What a target account needs before Shiplane can deploy to it, made in the local cloud:
the ECS cluster, the deploy role (trusting Shiplane with the target's external ID) and
the CloudFormation execution role stacks run as (with the bootstrap template's policies).
In AWS, bootstrap/target-account.yaml creates the role; the cluster is the user's."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from shiplane.domain.models import Configuration

log = logging.getLogger("shiplane_local")


def prepare_targets(cloud: Any, config: Configuration) -> None:
    ecs = cloud.client("ecs")
    iam = cloud.client("iam")
    existing = set(ecs.list_clusters()["clusterArns"])
    for target in config.targets:
        if not any(arn.endswith(f"/{target.cluster}") for arn in existing):
            ecs.create_cluster(clusterName=target.cluster)
            log.info("cluster %s created for target %s", target.cluster, target.name)
        role_name = target.deploy_role_arn.rsplit("/", 1)[-1]
        condition = (
            {"StringEquals": {"sts:ExternalId": target.external_id}} if target.external_id else {}
        )
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{cloud.account_id}:root"},
                    "Action": "sts:AssumeRole",
                    **({"Condition": condition} if condition else {}),
                }
            ],
        }
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
        if target.cloudformation_role_arn is None:
            _create_stack_role(iam, cloud.account_id, target.account_id, target.region, role_name)


def _create_stack_role(
    iam: Any, shiplane_account: str, account: str, region: str, deploy_role: str
) -> None:
    """The bootstrap's CloudFormation execution role (Shiplane's default RoleARN), with
    the template's own policies: stacks run as it and need what it grants."""
    from .bootstrap_template import role

    name, trust, policies = role(
        "CloudFormationExecutionRole",
        account_id=account,
        region=region,
        parameters={"DeployRoleName": deploy_role, "ShiplaneAccountId": shiplane_account},
    )
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        for policy_name, document in policies:
            iam.put_role_policy(
                RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
            )
