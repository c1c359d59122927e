"""What every per-unit service loads: the release snapshot, the step, the target and a
gateway into the target's account."""

from __future__ import annotations

from dataclasses import dataclass

from shiplane.domain.models import (
    UNTENANTED,
    DeploymentUnit,
    Release,
    Step,
    Target,
    Tenant,
)
from shiplane.domain.naming import stack_key, stack_name
from shiplane.errors import NotFoundError
from shiplane.ports import ConfigStore, ReleaseStore, TargetGateway, TargetGateways


@dataclass(frozen=True)
class UnitContext:
    unit: DeploymentUnit
    release: Release
    step: Step
    target: Target
    gateway: TargetGateway
    tenant: Tenant | None = None

    @property
    def stack_name(self) -> str:
        return self.unit.stack_name or stack_name(
            self.unit.project, self.unit.step, self.unit.environment, self.unit.tenant
        )

    @property
    def stack_key(self) -> str:
        return stack_key(self.target.account_id, self.target.region, self.stack_name)


def load_unit(
    unit: DeploymentUnit,
    config: ConfigStore,
    releases: ReleaseStore,
    gateways: TargetGateways,
) -> UnitContext:
    release = releases.get_release(unit.project, unit.release)
    if release is None:
        raise NotFoundError(f"project {unit.project!r} has no release {unit.release!r}")
    step = next((s for s in release.process if s.name == unit.step), None)
    if step is None:
        raise NotFoundError(f"release {unit.release} has no step {unit.step!r}")
    target = config.get_target(unit.target)
    tenant = None
    if unit.tenant != UNTENANTED:
        try:
            tenant = config.get_tenant(unit.tenant)  # one item, not the tenant list
        except NotFoundError:
            raise NotFoundError(
                f"tenant {unit.tenant!r} does not exist", tenant=unit.tenant
            ) from None
    return UnitContext(
        unit=unit,
        release=release,
        step=step,
        target=target,
        gateway=gateways.for_target(target, unit.deployment_id),
        tenant=tenant,
    )
