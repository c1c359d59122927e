"""What a target account needs before Shiplane can deploy to it, made in the local cloud:
the ECS cluster and the deploy role (trusting Shiplane with the target's external ID).
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
