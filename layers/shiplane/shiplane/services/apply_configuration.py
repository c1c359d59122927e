"""Apply a configuration document (environments, lifecycles, targets, projects): check
every cross-reference first, then write it all; a bad document writes nothing."""

from __future__ import annotations

from typing import Protocol

from shiplane.domain.lifecycle import effective_phases
from shiplane.domain.models import Configuration
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
        for phase in effective_phases(lifecycle, config.environments):
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


def apply_configuration(document: object, store: ConfigWriter) -> Configuration:
    config = parse(Configuration, document, "configuration")
    check_configuration(config)
    store.save_configuration(config)
    return config
