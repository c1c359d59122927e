"""Convert: an `ecs-service` step turned into an equivalent `cloudformation` step whose
template holds the task definition and the service (DESIGN §1.4).

The template is what `render_task_definition` and `render_service_stack` produce, in
CloudFormation's property casing, with the service referring to the template's own task
definition. What differs per deployment becomes a template parameter whose value is a
Shiplane variable: the images (`#{Shiplane.Package[NAME].Image}`, one package per
repository), the family, service and log group names (environment, tenant), and the
target's cluster and network. Container environment values keep their `#{...}`
expressions (substituted at deploy time as before). A sensitive variable used as a whole
environment value becomes an ECS secret whose `ValueFrom` is the variable's `secret_ref`,
resolved here: the template never carries a sensitive value."""

from __future__ import annotations

import re
from typing import Any

import yaml

from shiplane.domain.models import (
    UNTENANTED,
    CloudFormationStep,
    DeploymentUnit,
    EcsServiceStep,
    ImageRef,
    PackageReference,
    Project,
    Release,
    Target,
    TenantedMode,
)
from shiplane.domain.variables import RESERVED_PREFIX, Variable, references
from shiplane.errors import ConfigurationError
from shiplane.rendering.service_stack import render_service_stack
from shiplane.rendering.task_definition import ContainerSettings, render_task_definition

# camelCase ECS API keys whose CloudFormation name is not the plain PascalCase form.
_SPECIAL_KEYS = {
    "efsVolumeConfiguration": "EFSVolumeConfiguration",
    "fileSystemId": "FilesystemId",
    "iam": "IAM",
}
# maps whose keys are the user's (log driver options), not property names
_VERBATIM = {"options"}
_WHOLE_REFERENCE = re.compile(r"^#\{\s*([^#{}|]+?)\s*\}$")
_PLACEHOLDER_DIGEST = "sha256:" + "0" * 64


def pascal(value: Any) -> Any:
    """camelCase ECS API keys -> PascalCase CloudFormation property names."""
    if isinstance(value, list):
        return [pascal(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _SPECIAL_KEYS.get(key) or key[:1].upper() + key[1:]
        out[name] = dict(item) if key in _VERBATIM else pascal(item)
    return out


def package_names(step: EcsServiceStep) -> dict[str, str]:
    """One package per repository: repository -> package name (unique, valid)."""
    names: dict[str, str] = {}
    for repository in step.repositories:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", repository).strip("-._")[:60] or "image"
        name, n = base, 1
        while name.lower() in {v.lower() for v in names.values()}:
            n += 1
            name = f"{base}-{n}"
        names[repository] = name
    return names


def _secret_of(name: str, raw: str, project: Project, where: str) -> dict[str, str] | None:
    """The ECS secret an environment value becomes (a whole sensitive variable), None for
    a plain value; refuses sensitive use conversion cannot turn into a secret reference."""
    variables: dict[str, list[Variable]] = {}
    for variable in project.variables:
        variables.setdefault(variable.key, []).append(variable)

    def reaches_sensitive(keys: set[str], seen: set[str]) -> list[str]:
        found: list[str] = []
        for key in sorted(keys - seen):
            seen.add(key)
            for definition in variables.get(key, []):
                if definition.sensitive:
                    found.append(definition.name)
                else:
                    found += reaches_sensitive(references(definition.value), seen)
        return found

    keys = {k for k in references(raw) if not k.startswith(RESERVED_PREFIX)}
    sensitive = sorted(set(reaches_sensitive(keys, set())))
    if not sensitive:
        return None
    whole = _WHOLE_REFERENCE.match(raw.strip())
    definitions = variables.get(whole.group(1).strip().lower(), []) if whole else []
    if not definitions or not all(d.sensitive for d in definitions):
        raise ConfigurationError(
            f"{where}: cannot convert: the value uses the sensitive variable(s) "
            f"{', '.join(sensitive)} other than as the whole value of a sensitive variable "
            "(or only in some scopes); a template never carries a sensitive value",
            field=where,
        )
    refs = {d.secret_ref for d in definitions}
    if len(refs) != 1 or None in refs:
        raise ConfigurationError(
            f"{where}: cannot convert: the sensitive variable {definitions[0].name!r} has "
            f"{'no secret_ref' if None in refs else 'a different secret_ref per scope'}; "
            "conversion needs the one SSM reference to put in the template's Secrets",
            field=where,
        )
    return {"name": name, "valueFrom": str(refs.pop())}


def _tenanted(project: Project, step: EcsServiceStep) -> bool:
    if project.tenanted_mode is TenantedMode.BOTH:
        raise ConfigurationError(
            f"step {step.name!r}: cannot convert a step of a project deployed both with and "
            "without tenants: the service, family and log group names differ in shape "
            "between the two",
            field=f"projects.{project.name}.tenanted_mode",
        )
    return project.tenanted_mode is TenantedMode.TENANTED


def convert_step(step: EcsServiceStep, project: Project) -> CloudFormationStep:
    """The equivalent `cloudformation` step (same name, target role and wait)."""
    where = f"projects.{project.name}.steps.{step.name}"
    tenanted = _tenanted(project, step)
    packages = package_names(step)
    image_parameters = {repo: f"Image{i}" for i, repo in enumerate(sorted(packages), start=1)}

    # Render with placeholders, then put the parameters in.
    release = Release.model_construct(
        images={
            repo: ImageRef.model_construct(
                repository=repo, registry="placeholder", tag="x", digest=_PLACEHOLDER_DIGEST
            )
            for repo in packages
        },
        version="converted",
    )
    unit = DeploymentUnit.model_construct(
        deployment_id="converted",
        project=project.name,
        release="converted",
        environment="converted",
        tenant="converted" if tenanted else UNTENANTED,
        target="converted",
        step=step.name,
    )
    settings: dict[str, ContainerSettings] = {}
    for container in step.task.containers:
        given = ContainerSettings(command=list(container.command) if container.command else None)
        for name, raw in sorted(container.environment.items()):
            secret = _secret_of(
                name, raw, project, f"{where}.task.containers.{container.name}.environment.{name}"
            )
            if secret:
                given.secrets.append(secret)
            else:
                given.environment.append({"name": name, "value": raw})
        if given.secrets and not step.task.execution_role_arn:
            raise ConfigurationError(
                f"step {step.name!r}: container {container.name!r} receives secrets, which "
                "ECS fetches with the task execution role: set task.execution_role_arn",
                field=f"{where}.task.execution_role_arn",
            )
        settings[container.name] = given
    definition = render_task_definition(step, release, unit, settings, region="placeholder")
    automatic = {c.name for c in step.task.automatic_logging_containers}
    images = {c.name: c.image for c in step.task.containers}
    for container in definition["containerDefinitions"]:
        container["image"] = {"Ref": image_parameters[images[container["name"]]]}
        if container["name"] in automatic:
            container["logConfiguration"]["options"]["awslogs-group"] = {"Ref": "LogGroup"}
            container["logConfiguration"]["options"]["awslogs-region"] = {"Ref": "AWS::Region"}
    definition["family"] = {"Ref": "Family"}
    # Shiplane's own tags are the stack's tags (CloudFormation puts them on every resource).
    definition.pop("tags", None)
    task_properties = pascal(definition)
    if step.task.tags:
        task_properties["Tags"] = [{"Key": k, "Value": v} for k, v in step.task.tags.items()]

    placeholder_target = Target.model_construct(
        cluster="placeholder", subnets=[], security_groups=[], assign_public_ip=False
    )
    stack = render_service_stack(
        step, placeholder_target, unit.tenant, project=project.name, environment="converted"
    )
    resources: dict[str, Any] = {}
    if "LogGroup" in stack["Resources"]:
        log_group = stack["Resources"]["LogGroup"]
        log_group["Properties"]["LogGroupName"] = {"Ref": "LogGroupName"}
        resources["LogGroup"] = log_group
    resources["TaskDefinition"] = {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": task_properties,
    }
    service = stack["Resources"]["Service"]
    properties = service["Properties"]
    properties["Cluster"] = {"Ref": "Cluster"}
    properties["ServiceName"] = {"Ref": "ServiceName"}
    properties["TaskDefinition"] = {"Ref": "TaskDefinition"}
    vpc = properties["NetworkConfiguration"]["AwsvpcConfiguration"]
    vpc["Subnets"] = {"Ref": "Subnets"}
    vpc["SecurityGroups"] = {
        "Fn::If": ["HasSecurityGroups", {"Ref": "SecurityGroups"}, {"Ref": "AWS::NoValue"}]
    }
    vpc["AssignPublicIp"] = {"Ref": "AssignPublicIp"}
    resources["Service"] = service

    network = step.service.network
    env = "#{Shiplane.Environment.Name}"
    suffix = f"{env}-#{{Shiplane.Tenant.Name}}" if tenanted else env
    parameters: dict[str, str] = {
        "Family": f"{step.task.family}-{suffix}",
        "ServiceName": (
            f"{step.service.name}-#{{Shiplane.Tenant.Name}}" if tenanted else step.service.name
        ),
        "Cluster": "#{Shiplane.Target.Cluster}",
        "Subnets": (
            ",".join(network.subnets)
            if network and network.subnets is not None
            else "#{Shiplane.Target.Subnets}"
        ),
        "SecurityGroups": (
            ",".join(network.security_groups)
            if network and network.security_groups is not None
            else "#{Shiplane.Target.SecurityGroups}"
        ),
        "AssignPublicIp": (
            ("ENABLED" if network.assign_public_ip else "DISABLED")
            if network and network.assign_public_ip is not None
            else "#{Shiplane.Target.AssignPublicIp}"
        ),
    }
    declared: dict[str, Any] = {
        "Family": {"Type": "String", "Description": "the task definition family"},
        "ServiceName": {"Type": "String", "Description": "the ECS service name"},
        "Cluster": {"Type": "String", "Description": "the target's ECS cluster"},
        "Subnets": {"Type": "List<AWS::EC2::Subnet::Id>", "Description": "awsvpc subnets"},
        "SecurityGroups": {
            "Type": "CommaDelimitedList",
            "Default": "",
            "Description": "awsvpc security groups (may be empty)",
        },
        "AssignPublicIp": {"Type": "String", "AllowedValues": ["ENABLED", "DISABLED"]},
    }
    if "LogGroup" in resources:
        project_part = "/shiplane/#{Shiplane.Project.Name}/#{Shiplane.Environment.Name}"
        parameters["LogGroupName"] = (
            f"{project_part}/#{{Shiplane.Tenant.Name}}" if tenanted else project_part
        )
        declared["LogGroupName"] = {"Type": "String", "Description": "the automatic log group"}
    for repository, parameter in image_parameters.items():
        parameters[parameter] = f"#{{Shiplane.Package[{packages[repository]}].Image}}"
        declared[parameter] = {
            "Type": "String",
            "Description": f"image of repository {repository}, pinned by digest",
        }

    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Shiplane: step {step.name} converted from ecs-service",
        "Parameters": declared,
        "Conditions": {
            "HasSecurityGroups": {
                "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "SecurityGroups"}]}, ""]}]
            }
        },
        "Resources": resources,
        "Outputs": {
            **stack["Outputs"],
            "TaskDefinitionArn": {"Value": {"Ref": "TaskDefinition"}},
        },
    }
    text = yaml.safe_dump(template, sort_keys=False, width=100, allow_unicode=True)
    try:
        return CloudFormationStep(
            name=step.name,
            target_role=step.target_role,
            template=text,
            parameters=parameters,
            packages=[
                PackageReference(name=name, repository=repo) for repo, name in packages.items()
            ],
            wait=step.wait,
        )
    except ValueError as exc:  # pragma: no cover - a bug in the conversion, not the input
        raise ConfigurationError(f"step {step.name!r}: conversion failed: {exc}") from exc


def converted_project(project: Project, step_name: str) -> Project:
    """The project with `step_name` replaced by its conversion (validated again)."""
    step = project.step(step_name)
    if not isinstance(step, EcsServiceStep):
        raise ConfigurationError(
            f"project {project.name!r}: step {step_name!r} is a {step.type} step; only an "
            "ecs-service step can be converted",
            field=f"projects.{project.name}.steps.{step_name}.type",
        )
    converted = convert_step(step, project)
    steps = [converted if s.name == step_name else s for s in project.steps]
    return Project.model_validate(
        {**project.model_dump(), "steps": [s.model_dump() for s in steps]}
    )
