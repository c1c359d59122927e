"""Checks made when a release is created, so that a deployment never finds out late:
every variable of every step resolves, without ties, for every environment, tenant and
target the release can reach."""

from __future__ import annotations

from collections.abc import Sequence

from shiplane.domain.models import Phase, Project, Release
from shiplane.domain.targets import select_targets
from shiplane.services.evaluation import evaluate_step
from shiplane.services.planning import World, tenants_for


def check_release_variables(
    project: Project, release: Release, phases: Sequence[Phase], world: World
) -> None:
    for phase in phases:
        for entry in phase.environments:
            for tenant_name in tenants_for(project, release, world, entry.environment):
                tenant = world.tenant(tenant_name)
                for step in release.process:
                    targets = select_targets(
                        world.targets, entry.environment, step.target_role, tenant
                    )
                    for target in targets:
                        evaluate_step(
                            release, step, entry.environment, tenant, target, "release-check"
                        )
