"""Lifecycle rules (DESIGN §1.1): which environments a release may reach, and which it
should be deployed to automatically now.

`succeeded` is the set of environments where this release (for one tenant) has a
successful deployment; `claimed` those where a deployment of it was already started.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shiplane.domain.models import Environment, Lifecycle, Phase, PhaseEnvironment, Trigger
from shiplane.errors import ConfigurationError, LifecycleViolationError


def effective_phases(lifecycle: Lifecycle, environments: Sequence[Environment]) -> list[Phase]:
    """The lifecycle's phases; a lifecycle without phases is one manual phase per
    environment, in environment order."""
    known = {e.name for e in environments}
    if not lifecycle.phases:
        return [
            Phase(name=e.name, environments=[PhaseEnvironment(environment=e.name)])
            for e in environments
        ]
    for phase in lifecycle.phases:
        for entry in phase.environments:
            if entry.environment not in known:
                raise ConfigurationError(
                    f"lifecycle {lifecycle.name!r}, phase {phase.name!r}: unknown environment "
                    f"{entry.environment!r}",
                    field=f"lifecycles.{lifecycle.name}.phases.{phase.name}",
                )
    return list(lifecycle.phases)


def phase_complete(phase: Phase, succeeded: Iterable[str]) -> bool:
    done = {e.environment for e in phase.environments} & set(succeeded)
    needed = phase.minimum_environments or len(phase.environments)
    return len(done) >= needed


def reachable_phases(phases: Sequence[Phase], succeeded: Iterable[str]) -> list[Phase]:
    """Phases a release may deploy to: the first, and every phase whose earlier
    non-optional phases are all complete. A phase already deployed to stays reachable."""
    succeeded = set(succeeded)
    reachable: list[Phase] = []
    blocked = False
    for phase in phases:
        deployed_here = any(e.environment in succeeded for e in phase.environments)
        if not blocked or deployed_here:
            reachable.append(phase)
        if not phase.optional and not phase_complete(phase, succeeded):
            blocked = True
    return reachable


def phase_of(phases: Sequence[Phase], environment: str) -> Phase | None:
    for phase in phases:
        if any(e.environment == environment for e in phase.environments):
            return phase
    return None


def check_deployable(phases: Sequence[Phase], environment: str, succeeded: Iterable[str]) -> None:
    """Raise LifecycleViolationError naming the incomplete phase if `environment` is not
    reachable yet."""
    succeeded = set(succeeded)
    target_phase = phase_of(phases, environment)
    if target_phase is None:
        raise LifecycleViolationError(
            f"environment {environment!r} is not part of the lifecycle",
            environment=environment,
        )
    if target_phase in reachable_phases(phases, succeeded):
        return
    for phase in phases:
        if phase is target_phase:
            break
        if not phase.optional and not phase_complete(phase, succeeded):
            raise LifecycleViolationError(
                f"cannot deploy to {environment!r}: phase {phase.name!r} is not complete "
                f"(needs {phase.minimum_environments or len(phase.environments)} successful "
                f"deployment(s) among {[e.environment for e in phase.environments]})",
                environment=environment,
                phase=phase.name,
            )
    raise LifecycleViolationError(f"cannot deploy to {environment!r}", environment=environment)


def automatic_environments(
    phases: Sequence[Phase], succeeded: Iterable[str], claimed: Iterable[str]
) -> list[str]:
    """Environments of reachable, non-optional phases marked automatic that have not been
    deployed to (or claimed) yet, in lifecycle order."""
    claimed = set(claimed) | set(succeeded)
    result: list[str] = []
    for phase in reachable_phases(phases, succeeded):
        if phase.optional:
            continue
        for entry in phase.environments:
            if entry.trigger is Trigger.AUTOMATIC and entry.environment not in claimed:
                result.append(entry.environment)
    return result
