"""The CloudFormation stack that holds an `ecs-service` step's service. The task
definition is registered beforehand and passed in as the `TaskDefinitionArn` parameter,
so a rollback is a parameter change. With automatic logging the stack also owns the
CloudWatch log group, and the service waits for it.

Shiplane's own tags (project, release, environment, tenant, deployment) are the stack's
tags (see Deploy Stack): CloudFormation puts them on every resource, and they stay out
of the template so that a redeployment of the same task definition is "no changes"."""

from __future__ import annotations

from typing import Any

from shiplane.domain.models import UNTENANTED, EcsServiceStep, Target
from shiplane.domain.naming import log_group_name, service_name
from shiplane.errors import ConfigurationError


def render_service_stack(
    step: EcsServiceStep,
    target: Target,
    tenant: str = UNTENANTED,
    *,
    project: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    """`project` and `environment` name the automatic log group (needed only with
    automatic logging)."""
    service = step.service
    name = service_name(service.name, tenant)
    network = service.network
    subnets = network.subnets if network and network.subnets is not None else target.subnets
    groups = (
        network.security_groups
        if network and network.security_groups is not None
        else target.security_groups
    )
    public = (
        network.assign_public_ip
        if network and network.assign_public_ip is not None
        else target.assign_public_ip
    )
    properties: dict[str, Any] = {
        "Cluster": target.cluster,
        "ServiceName": name,
        "TaskDefinition": {"Ref": "TaskDefinitionArn"},
        "DesiredCount": service.desired_count,
        "LaunchType": "FARGATE",
        "PlatformVersion": service.platform_version,
        "DeploymentConfiguration": {
            "DeploymentCircuitBreaker": {
                "Enable": service.circuit_breaker_rollback,
                "Rollback": service.circuit_breaker_rollback,
            },
            "MaximumPercent": service.maximum_percent,
            "MinimumHealthyPercent": service.minimum_healthy_percent,
        },
        "EnableExecuteCommand": service.enable_execute_command,
        "Tags": [
            *({"Key": k, "Value": v} for k, v in service.tags.items()),
            {"Key": "shiplane:step", "Value": step.name},
            {"Key": "shiplane:managed-by", "Value": "shiplane"},
        ],
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "Subnets": list(subnets),
                "SecurityGroups": list(groups),
                "AssignPublicIp": "ENABLED" if public else "DISABLED",
            }
        },
    }
    if service.propagate_tags != "NONE":
        # CloudFormation has no NONE (ECS's default): leaving the property out means it.
        properties["PropagateTags"] = service.propagate_tags
    if service.health_check_grace_period_seconds is not None:
        properties["HealthCheckGracePeriodSeconds"] = service.health_check_grace_period_seconds
    if service.load_balancers:
        properties["LoadBalancers"] = [
            {
                "TargetGroupArn": lb.target_group_arn,
                "ContainerName": lb.container_name,
                "ContainerPort": lb.container_port,
            }
            for lb in service.load_balancers
        ]
    resources: dict[str, Any] = {}
    service_resource: dict[str, Any] = {"Type": "AWS::ECS::Service", "Properties": properties}
    if step.task.automatic_logging_containers:
        if not project or not environment:
            raise ConfigurationError(
                f"step {step.name!r}: automatic logging needs the project and environment "
                "to name the log group",
                field=f"steps.{step.name}.task.logging",
            )
        resources["LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": log_group_name(project, environment, tenant),
                "RetentionInDays": step.task.logging.retention_days,
                "Tags": [
                    {"Key": "shiplane:step", "Value": step.name},
                    {"Key": "shiplane:managed-by", "Value": "shiplane"},
                ],
            },
        }
        service_resource["DependsOn"] = ["LogGroup"]
    resources["Service"] = service_resource
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Shiplane: service {name} of step {step.name}",
        "Parameters": {
            "TaskDefinitionArn": {
                "Type": "String",
                "Description": "the task definition Shiplane registered for this release",
            }
        },
        "Resources": resources,
        "Outputs": {
            "ServiceArn": {"Value": {"Ref": "Service"}},
            "ServiceName": {"Value": {"Fn::GetAtt": ["Service", "Name"]}},
        },
    }
