"""Variables evaluated for one deployment of a step on a target: the release's snapshot
plus the tenant's live variables, resolved by scope and substituted value by value into
the rendered structures (never into template text)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shiplane.domain.models import CloudFormationStep, Release, Step, Target, Tenant
from shiplane.domain.variables import (
    EvaluationContext,
    Variable,
    resolve,
    substitute,
    system_variables,
)
from shiplane.errors import ConfigurationError, SensitiveVariableMisuseError
from shiplane.rendering.cloudformation_step import render_cloudformation_step
from shiplane.rendering.task_definition import ContainerSettings


def tenant_variables(tenant: Tenant | None) -> list[Variable]:
    """A tenant's variables apply to that tenant only: they are scoped to it here."""
    if tenant is None:
        return []
    return [
        v.model_copy(update={"scope": v.scope.model_copy(update={"tenants": [tenant.name]})})
        for v in tenant.variables
    ]


def context_for(
    release: Release, step: Step, environment: str, tenant: Tenant | None, target: Target
) -> EvaluationContext:
    return EvaluationContext(
        environment=environment,
        tenant=tenant.name if tenant else None,
        tenant_tags=frozenset(tenant.tags if tenant else ()),
        target=target.name,
        target_roles=frozenset(target.roles),
        channel=release.channel,
        step=step.name,
    )


def declared_outputs(release: Release, step: Step) -> dict[str, dict[str, str]]:
    """What the steps before `step` will output, as far as their templates declare it:
    used where the real outputs are not known yet (release checks), so that a reference
    to an output no earlier step declares fails at release time."""
    outputs: dict[str, dict[str, str]] = {}
    for earlier in release.process:
        if earlier.name == step.name:
            break
        if isinstance(earlier, CloudFormationStep):
            declared = earlier.parsed_template().get("Outputs") or {}
            outputs[earlier.name] = {key: f"<{earlier.name}.{key}>" for key in declared}
    return outputs


def target_settings(target: Target) -> dict[str, str]:
    """The target's values a converted step's parameters use (`Shiplane.Target.*`)."""
    return {
        "Cluster": target.cluster,
        "Region": target.region,
        "Subnets": ",".join(target.subnets),
        "SecurityGroups": ",".join(target.security_groups),
        "AssignPublicIp": "ENABLED" if target.assign_public_ip else "DISABLED",
    }


def unit_lookup(
    release: Release,
    step: Step,
    environment: str,
    tenant: Tenant | None,
    target: Target,
    deployment_id: str,
    step_outputs: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Variable | str]:
    """Resolved project and tenant variables plus the `Shiplane.*` system variables of
    one unit, keyed by lower-cased name. `step_outputs` None: the outputs the earlier
    steps' templates declare, with placeholder values (release checks)."""
    variables: Sequence[Variable] = [*release.variables, *tenant_variables(tenant)]
    ctx = context_for(release, step, environment, tenant, target)
    lookup: dict[str, Variable | str] = dict(resolve(variables, ctx))
    # Packages by repository, and a cloudformation step's packages by their own names.
    packages = dict(release.images)
    for earlier in release.process:
        if isinstance(earlier, CloudFormationStep):
            for package in earlier.packages:
                if package.repository in release.images:
                    packages.setdefault(package.name, release.images[package.repository])
    lookup.update(
        system_variables(
            release_number=release.version,
            channel=release.channel,
            environment=environment,
            tenant=tenant.name if tenant else None,
            project=release.project,
            deployment_id=deployment_id,
            target=target.name,
            packages=packages,
            step_outputs=declared_outputs(release, step) if step_outputs is None else step_outputs,
            target_settings=target_settings(target),
        )
    )
    return lookup


def evaluate_step(
    release: Release,
    step: Step,
    environment: str,
    tenant: Tenant | None,
    target: Target,
    deployment_id: str,
    step_outputs: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, ContainerSettings]:
    """Each container's environment, secrets and command for this deployment (nothing for
    a cloudformation step, whose template is checked by `evaluate_cloudformation_step`).
    Raises a VariableError naming the variable and the field for anything unresolvable."""
    lookup = unit_lookup(release, step, environment, tenant, target, deployment_id, step_outputs)
    if isinstance(step, CloudFormationStep):
        render_cloudformation_step(step, lookup)
        return {}
    settings: dict[str, ContainerSettings] = {}
    for container in step.task.containers:
        where = f"steps.{step.name}.task.containers.{container.name}"
        result = ContainerSettings()
        for name, raw in sorted(container.environment.items()):
            value = substitute(raw, lookup, where=f"{where}.environment.{name}")
            if value.secret is not None and value.secret.secret_ref:
                result.secrets.append({"name": name, "valueFrom": value.secret.secret_ref})
            elif value.sensitive:
                used = ", ".join(sorted({v.name for v in value.sensitive}))
                raise SensitiveVariableMisuseError(
                    f"{where}.environment.{name} uses the sensitive variable(s) {used} inside a "
                    "larger value; a sensitive variable must be the whole value, so that it "
                    "reaches the container as an ECS secret, never as plain text",
                    field=f"{where}.environment.{name}",
                )
            else:
                result.environment.append({"name": name, "value": value.text})
        if container.command:
            command = []
            for index, raw in enumerate(container.command):
                value = substitute(raw, lookup, where=f"{where}.command.{index}")
                if value.sensitive:
                    raise SensitiveVariableMisuseError(
                        f"{where}.command.{index} uses a sensitive variable: commands are "
                        "plain text; pass secrets through the environment",
                        field=f"{where}.command.{index}",
                    )
                command.append(value.text)
            result.command = command
        if result.secrets and not step.task.execution_role_arn:
            raise ConfigurationError(
                f"step {step.name!r}: container {container.name!r} receives secrets, which "
                "ECS fetches with the task execution role: set task.execution_role_arn",
                field=f"steps.{step.name}.task.execution_role_arn",
            )
        settings[container.name] = result
    return settings
