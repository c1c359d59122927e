"""The CloudFormation stack that holds an `ecs-service` step's service. The task
definition is registered beforehand and passed in as the `TaskDefinitionArn` parameter,
so a rollback is a parameter change."""

from __future__ import annotations

from typing import Any

from shiplane.domain.models import UNTENANTED, EcsServiceStep, Target
from shiplane.domain.naming import service_name


def render_service_stack(
    step: EcsServiceStep, target: Target, tenant: str = UNTENANTED
) -> dict[str, Any]:
    service = step.service
    name = service_name(service.name, tenant)
    properties: dict[str, Any] = {
        "Cluster": target.cluster,
        "ServiceName": name,
        "TaskDefinition": {"Ref": "TaskDefinitionArn"},
        "DesiredCount": service.desired_count,
        "LaunchType": "FARGATE",
        "DeploymentConfiguration": {
            "DeploymentCircuitBreaker": {
                "Enable": service.circuit_breaker_rollback,
                "Rollback": service.circuit_breaker_rollback,
            },
            "MaximumPercent": service.maximum_percent,
            "MinimumHealthyPercent": service.minimum_healthy_percent,
        },
        "EnableExecuteCommand": service.enable_execute_command,
        "PropagateTags": "SERVICE",
        "Tags": [
            {"Key": "shiplane:step", "Value": step.name},
            {"Key": "shiplane:managed-by", "Value": "shiplane"},
        ],
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "Subnets": list(target.subnets),
                "SecurityGroups": list(target.security_groups),
                "AssignPublicIp": "ENABLED" if target.assign_public_ip else "DISABLED",
            }
        },
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Shiplane: service {name} of step {step.name}",
        "Parameters": {
            "TaskDefinitionArn": {
                "Type": "String",
                "Description": "the task definition Shiplane registered for this release",
            }
        },
        "Resources": {"Service": {"Type": "AWS::ECS::Service", "Properties": properties}},
        "Outputs": {
            "ServiceArn": {"Value": {"Ref": "Service"}},
            "ServiceName": {"Value": {"Fn::GetAtt": ["Service", "Name"]}},
        },
    }
