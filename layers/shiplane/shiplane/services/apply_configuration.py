"""Apply a configuration document (environments, lifecycles, targets, projects): check
every cross-reference first, then write it all; a bad document writes nothing."""

from __future__ import annotations

from typing import Protocol

from shiplane.domain.lifecycle import effective_phases
from shiplane.domain.models import (
    EXECUTION_ROLE_SUFFIX,
    STACK_ROLE_PREFIX,
    TASK_ROLE_PREFIX,
    Configuration,
    EcsServiceStep,
    TenantedMode,
)
from shiplane.domain.variables import Variable, check_cycles
from shiplane.errors import ConfigurationError
from shiplane.validation import parse


class ConfigWriter(Protocol):
    def save_configuration(self, config: Configuration) -> None: ...


def check_configuration(config: Configuration) -> None:
    """Raise ConfigurationError naming the first broken reference."""
    for kind, names in (
        ("environment", [e.name for e in config.environments]),
        ("lifecycle", [lc.name for lc in config.lifecycles]),
        ("target", [t.name for t in config.targets]),
        ("project", [p.name for p in config.projects]),
        ("tenant", [t.name for t in config.tenants]),
    ):
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigurationError(f"{kind} defined more than once: {', '.join(repeated)}")

    environments = {e.name for e in config.environments}
    lifecycles = {lc.name: lc for lc in config.lifecycles}
    for lifecycle in config.lifecycles:
        effective_phases(lifecycle, config.environments)  # names unknown environments
    for target in config.targets:
        for environment in target.environments:
            if environment not in environments:
                raise ConfigurationError(
                    f"target {target.name!r}: unknown environment {environment!r}",
                    field=f"targets.{target.name}.environments",
                )
    for project in config.projects:
        lifecycle = lifecycles.get(project.lifecycle)
        if lifecycle is None:
            raise ConfigurationError(
                f"project {project.name!r}: unknown lifecycle {project.lifecycle!r}",
                field=f"projects.{project.name}.lifecycle",
            )
    _check_channels_and_tenants(config)
    for project in config.projects:
        for phase in effective_phases(lifecycles[project.lifecycle], config.environments):
            for entry in phase.environments:
                for step in project.steps:
                    if not any(
                        entry.environment in t.environments and step.target_role in t.roles
                        for t in config.targets
                    ):
                        raise ConfigurationError(
                            f"project {project.name!r}, step {step.name!r}: no target in "
                            f"environment {entry.environment!r} has the role "
                            f"{step.target_role!r}",
                            field=f"projects.{project.name}.steps.{step.name}.target_role",
                        )
    for project in config.projects:
        for step in project.steps:
            if isinstance(step, EcsServiceStep):
                _check_task_roles(project.name, step)
            elif step.role_arn:
                _check_stack_role(project.name, step.name, step.role_arn)


def _check_stack_role(project: str, step: str, arn: str) -> None:
    """The deploy role may pass CloudFormation only the bootstrap's execution role or a
    `shiplane-stack-*` role."""
    name = arn.rsplit("/", 1)[-1]
    if not (name.startswith(STACK_ROLE_PREFIX) or name.endswith(EXECUTION_ROLE_SUFFIX)):
        raise ConfigurationError(
            f"project {project!r}, step {step!r}: role_arn {arn} must name a role called "
            f"{STACK_ROLE_PREFIX}* (or the bootstrap's *{EXECUTION_ROLE_SUFFIX} role): the "
            "deploy role may pass no other role to CloudFormation (iam:PassRole)",
            field=f"projects.{project}.steps.{step}.role_arn",
        )


def _check_task_roles(project: str, step: EcsServiceStep) -> None:
    """The bootstrap's deploy and execution roles may pass only `shiplane-task-*` roles to
    ECS: any other name would fail every deployment with AccessDenied on iam:PassRole."""
    for name in ("task_role_arn", "execution_role_arn"):
        arn = getattr(step.task, name)
        if arn and not arn.rsplit("/", 1)[-1].startswith(TASK_ROLE_PREFIX):
            raise ConfigurationError(
                f"project {project!r}, step {step.name!r}: task.{name} {arn} must name a "
                f"role called {TASK_ROLE_PREFIX}*: the target account's bootstrap roles may "
                "pass no other role to ECS (iam:PassRole)",
                field=f"projects.{project}.steps.{step.name}.task.{name}",
            )


def _check_variables(owner: str, variables: list[Variable]) -> None:
    for variable in variables:
        if variable.sensitive and variable.value:
            raise ConfigurationError(
                f"{owner}: sensitive variable {variable.name!r} has an inline value; store it "
                "with `shiplane local secret set` (SSM SecureString) and give its secret_ref",
                field=f"{owner}.variables.{variable.name}",
            )
        if variable.sensitive and not variable.secret_ref:
            raise ConfigurationError(
                f"{owner}: sensitive variable {variable.name!r} needs a secret_ref (the SSM "
                "parameter that holds its value)",
                field=f"{owner}.variables.{variable.name}",
            )
    check_cycles(variables)


def _check_channels_and_tenants(config: Configuration) -> None:
    lifecycles = {lc.name: lc for lc in config.lifecycles}
    projects = {p.name: p for p in config.projects}
    reachable: dict[str, set[str]] = {}
    for project in config.projects:
        names = {project.lifecycle}
        for channel in project.channels:
            if channel.lifecycle is not None:
                if channel.lifecycle not in lifecycles:
                    raise ConfigurationError(
                        f"project {project.name!r}, channel {channel.name!r}: unknown lifecycle "
                        f"{channel.lifecycle!r}",
                        field=f"projects.{project.name}.channels.{channel.name}.lifecycle",
                    )
                names.add(channel.lifecycle)
        reachable[project.name] = {
            entry.environment
            for name in names
            for phase in effective_phases(lifecycles[name], config.environments)
            for entry in phase.environments
        }
        _check_variables(f"project {project.name!r}", project.variables)
    for tenant in config.tenants:
        for project_name, environments in tenant.projects.items():
            if project_name not in projects:
                raise ConfigurationError(
                    f"tenant {tenant.name!r}: unknown project {project_name!r}",
                    field=f"tenants.{tenant.name}.projects",
                )
            if projects[project_name].tenanted_mode is TenantedMode.UNTENANTED:
                raise ConfigurationError(
                    f"tenant {tenant.name!r}: project {project_name!r} is untenanted",
                    field=f"tenants.{tenant.name}.projects.{project_name}",
                )
            for environment in environments:
                if environment not in reachable[project_name]:
                    raise ConfigurationError(
                        f"tenant {tenant.name!r} is connected to environment {environment!r}, "
                        f"which is outside the lifecycle of project {project_name!r}",
                        field=f"tenants.{tenant.name}.projects.{project_name}",
                    )
        _check_variables(f"tenant {tenant.name!r}", tenant.variables)


def apply_configuration(document: object, store: ConfigWriter) -> Configuration:
    config = parse(Configuration, document, "configuration")
    check_configuration(config)
    store.save_configuration(config)
    return config
