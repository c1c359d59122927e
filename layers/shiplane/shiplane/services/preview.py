"""Preview: what a deployment of a release to an environment would register and deploy
(`render`), and how that differs from what runs now (`diff`). Nothing is registered or
deployed; `diff` only creates a change set, describes it and deletes it again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from shiplane.domain.lifecycle import check_deployable
from shiplane.domain.models import (
    UNTENANTED,
    DeploymentUnit,
    EcsServiceStep,
    TriggeredBy,
    TriggerKind,
)
from shiplane.domain.naming import service_name
from shiplane.errors import LifecycleViolationError, NotFoundError
from shiplane.ports import ConfigStore, DeploymentStore, ReleaseStore, TargetGateways
from shiplane.rendering.service_stack import render_service_stack
from shiplane.rendering.task_definition import render_task_definition, shiplane_tags
from shiplane.services.evaluation import evaluate_step
from shiplane.services.planning import World, phases_for, plan_deployment, tenants_for

PREVIEW_DEPLOYMENT = "preview"
REGISTERED_AT_DEPLOY_TIME = "<registered at deploy time>"

# Fields ECS adds to a registered task definition on its own: never a difference.
ECS_ADDED_FIELDS = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "requiresAttributes",
        "compatibilities",
        # Shiplane's tags name the release and the deployment, so they always change;
        # ECS does not describe tags without being asked (another permission) either.
        "tags",
    }
)


@dataclass
class PreviewDependencies:
    config: ConfigStore
    releases: ReleaseStore
    deployments: DeploymentStore
    gateways: TargetGateways


# ----------------------------------------------------------------------------- results


class StackRender(BaseModel):
    stack_name: str
    template: dict[str, Any]
    parameters: dict[str, str]
    tags: dict[str, str]


class UnitRender(BaseModel):
    target: str
    step: str
    task_definition: dict[str, Any]
    stack: StackRender


class RenderResult(BaseModel):
    project: str
    release: str
    environment: str
    tenant: str
    blocked_by_phase: str | None = Field(
        default=None, description="the lifecycle phase that must complete first"
    )
    blocked_reason: str | None = None
    units: list[UnitRender] = Field(default_factory=list)


class FieldChange(BaseModel):
    path: str
    change: Literal["added", "removed", "changed"]
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.change == "added":
            return f"+ {self.path}: {_show(self.new)}"
        if self.change == "removed":
            return f"- {self.path}: {_show(self.old)}"
        return f"~ {self.path}: {_show(self.old)} → {_show(self.new)}"


class StackChange(BaseModel):
    action: str
    logical_id: str
    resource_type: str
    replacement: str = ""


class StackDiff(BaseModel):
    stack_name: str
    exists: bool
    summary: str
    changes: list[StackChange] = Field(default_factory=list)


class UnitDiff(BaseModel):
    target: str
    step: str
    running_task_definition_arn: str | None
    task_definition: list[FieldChange]
    stack: StackDiff


class DiffResult(BaseModel):
    project: str
    release: str
    environment: str
    tenant: str
    blocked_by_phase: str | None = None
    blocked_reason: str | None = None
    units: list[UnitDiff] = Field(default_factory=list)


# ----------------------------------------------------------------------------- services


@dataclass(frozen=True)
class _Rendered:
    unit: DeploymentUnit
    step: EcsServiceStep
    world: World
    render: UnitRender


def render(
    project: str,
    release: str,
    environment: str,
    deps: PreviewDependencies,
    tenant: str = UNTENANTED,
    step: str | None = None,
) -> RenderResult:
    """What a deployment would register and deploy (only `step`'s units when given)."""
    result, _ = _render(project, release, environment, tenant, deps, step)
    return result


def diff(
    project: str,
    release: str,
    environment: str,
    deps: PreviewDependencies,
    tenant: str = UNTENANTED,
    step: str | None = None,
) -> DiffResult:
    """How it would differ from what runs (only `step`'s units when given: the other
    steps' change sets are not created at all)."""
    rendered, units = _render(project, release, environment, tenant, deps, step)
    result = DiffResult(
        **rendered.model_dump(include={"project", "release", "environment", "tenant"}),
        blocked_by_phase=rendered.blocked_by_phase,
        blocked_reason=rendered.blocked_reason,
    )
    for item in units:
        result.units.append(_diff_unit(item, deps))
    return result


def _render(
    project_name: str,
    version: str,
    environment: str,
    tenant: str,
    deps: PreviewDependencies,
    only_step: str | None = None,
) -> tuple[RenderResult, list[_Rendered]]:
    release = deps.releases.get_release(project_name, version)
    if release is None:
        raise NotFoundError(f"project {project_name!r} has no release {version!r}")
    project = deps.config.get_project(project_name)
    world = World.load(deps.config)
    result = RenderResult(
        project=project_name, release=version, environment=environment, tenant=tenant
    )
    if tenant not in tenants_for(project, release, world, environment):
        result.blocked_reason = (
            f"release {version} does not deploy to {environment!r} for tenant {tenant!r}"
        )
    try:
        succeeded = deps.deployments.succeeded_environments(project_name, version, tenant)
        check_deployable(phases_for(deps.config, release), environment, succeeded)
    except LifecycleViolationError as exc:
        result.blocked_by_phase = exc.details.get("phase")
        result.blocked_reason = str(exc)
    # The same units (steps on their targets) planning would give the deployment.
    planned = plan_deployment(
        release,
        environment,
        tenant,
        PREVIEW_DEPLOYMENT,
        TriggeredBy(kind=TriggerKind.CONSOLE, by="preview"),
        world,
        release.created_at,
    )
    rendered: list[_Rendered] = []
    tenant_config = world.tenant(tenant)
    for unit in planned.task.units:
        if only_step is not None and unit.step != only_step:
            continue
        step = next(s for s in release.process if s.name == unit.step)
        target = next(t for t in world.targets if t.name == unit.target)
        settings = evaluate_step(
            release, step, environment, tenant_config, target, PREVIEW_DEPLOYMENT
        )
        definition = render_task_definition(step, release, unit, settings, region=target.region)
        template = render_service_stack(
            step, target, tenant, project=project_name, environment=environment
        )
        item = UnitRender(
            target=target.name,
            step=step.name,
            task_definition=definition,
            stack=StackRender(
                stack_name=str(unit.stack_name),
                template=template,
                parameters={"TaskDefinitionArn": REGISTERED_AT_DEPLOY_TIME},
                tags=shiplane_tags(unit),
            ),
        )
        result.units.append(item)
        rendered.append(_Rendered(unit=unit, step=step, world=world, render=item))
    return result, rendered


def _diff_unit(item: _Rendered, deps: PreviewDependencies) -> UnitDiff:
    unit, step, render_ = item.unit, item.step, item.render
    target = next(t for t in item.world.targets if t.name == unit.target)
    gateway = deps.gateways.for_target(target, PREVIEW_DEPLOYMENT)
    service = gateway.describe_service(target.cluster, service_name(step.service.name, unit.tenant))
    running_arn = service.task_definition_arn if service is not None else None
    running = gateway.describe_task_definition(running_arn) if running_arn else None
    changes = task_definition_changes(running, render_.task_definition)

    stack_name = render_.stack.stack_name
    stack = gateway.describe_stack(stack_name)
    template = render_.stack.template
    if stack is None:
        stack_diff = StackDiff(
            stack_name=stack_name,
            exists=False,
            summary="the stack would be created",
            changes=[
                StackChange(action="Add", logical_id=name, resource_type=str(resource["Type"]))
                for name, resource in sorted(template.get("Resources", {}).items())
            ],
        )
    elif stack.in_progress:
        stack_diff = StackDiff(
            stack_name=stack_name,
            exists=True,
            summary=f"the stack is {stack.status}: its changes cannot be previewed now",
        )
    else:
        # The running task definition as the parameter: only template changes show.
        current = running_arn or stack.parameters.get("TaskDefinitionArn", "")
        found = gateway.preview_stack_update(
            stack_name, template, {"TaskDefinitionArn": current}, target.stack_role_arn
        )
        stack_diff = StackDiff(
            stack_name=stack_name,
            exists=True,
            summary=f"{len(found)} resource change(s)" if found else "no changes",
            changes=[
                StackChange(
                    action=c.action,
                    logical_id=c.logical_id,
                    resource_type=c.resource_type,
                    replacement=c.replacement,
                )
                for c in found
            ],
        )
    return UnitDiff(
        target=unit.target,
        step=unit.step,
        running_task_definition_arn=running_arn,
        task_definition=changes,
        stack=stack_diff,
    )


# ----------------------------------------------------------------------------- the diff


def task_definition_changes(
    running: dict[str, Any] | None, rendered: dict[str, Any]
) -> list[FieldChange]:
    """Field-level differences between a described task definition and a rendered one,
    by path; containers, environment variables, secrets and volumes are matched by name
    so their order does not matter, and what ECS adds on its own is ignored."""
    old = _flatten(normalise_task_definition(running or {}))
    new = _flatten(normalise_task_definition(rendered))
    changes = []
    for path in sorted(old.keys() | new.keys()):
        if path not in old:
            changes.append(FieldChange(path=path, change="added", new=new[path]))
        elif path not in new:
            changes.append(FieldChange(path=path, change="removed", old=old[path]))
        elif old[path] != new[path]:
            changes.append(FieldChange(path=path, change="changed", old=old[path], new=new[path]))
    return changes


def normalise_task_definition(definition: dict[str, Any]) -> dict[str, Any]:
    result = {k: v for k, v in definition.items() if k not in ECS_ADDED_FIELDS}
    if "containerDefinitions" in result:
        result["containerDefinitions"] = {
            c.get("name", str(i)): _container(c)
            for i, c in enumerate(result["containerDefinitions"])
        }
    if "volumes" in result:
        result["volumes"] = {v.get("name", str(i)): v for i, v in enumerate(result["volumes"])}
    if "requiresCompatibilities" in result:
        result["requiresCompatibilities"] = sorted(result["requiresCompatibilities"])
    for key in ("cpu", "memory"):  # ECS describes them as strings; a number is the same
        if key in result and result[key] is not None:
            result[key] = str(result[key])
    return _drop_empty(result)


def _container(container: dict[str, Any]) -> dict[str, Any]:
    result = dict(container)
    if "environment" in result:
        result["environment"] = {e["name"]: e.get("value", "") for e in result["environment"]}
    if "secrets" in result:
        result["secrets"] = {s["name"]: s.get("valueFrom", "") for s in result["secrets"]}
    # Defaults ECS fills in: essential true, cpu 0, the host port of awsvpc = container port.
    if result.get("essential") is True:
        del result["essential"]
    if result.get("cpu") == 0:
        del result["cpu"]
    if "portMappings" in result:
        ports = []
        for mapping in result["portMappings"]:
            port = dict(mapping)
            if port.get("hostPort") == port.get("containerPort"):
                port.pop("hostPort", None)
            if port.get("protocol") == "tcp":
                port.pop("protocol")
            ports.append(port)
        result["portMappings"] = sorted(ports, key=lambda p: repr(sorted(p.items())))
    return result


def _drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {k: _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


def _flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaves by path: `containerDefinitions[web].environment.LOG_LEVEL`. Lists are leaves."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        if prefix.endswith(("containerDefinitions", "volumes")):
            path = f"{prefix}[{key}]"
        else:
            path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict) and item:
            flat.update(_flatten(item, path))
        else:
            flat[path] = item
    return flat


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
