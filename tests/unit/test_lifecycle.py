"""Lifecycle rules (DESIGN §1.1): which phases a release may reach, which environments it
is deployed to automatically, and the errors a user sees when the lifecycle says no."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiplane.domain.lifecycle import (
    automatic_environments,
    check_deployable,
    effective_phases,
    phase_complete,
    reachable_phases,
)
from shiplane.domain.models import Environment, Lifecycle, Phase, PhaseEnvironment, Trigger
from shiplane.errors import ConfigurationError, LifecycleViolationError

AUTO, MANUAL = Trigger.AUTOMATIC, Trigger.MANUAL


def phase(
    name: str,
    *entries: tuple[str, Trigger],
    minimum: int | None = None,
    optional: bool = False,
) -> Phase:
    return Phase(
        name=name,
        environments=[PhaseEnvironment(environment=e, trigger=t) for e, t in entries],
        minimum_environments=minimum,
        optional=optional,
    )


ENVIRONMENTS = [Environment(name=n) for n in ("dev", "test", "prod")]
# The demo lifecycle (examples/shiplane.yaml): dev automatic → test automatic → prod manual.
DEMO = [
    phase("development", ("dev", AUTO)),
    phase("testing", ("test", AUTO)),
    phase("production", ("prod", MANUAL)),
]


def names(phases: Sequence[Phase]) -> list[str]:
    return [p.name for p in phases]


# --------------------------------------------------------------------------- effective_phases


def test_no_phases_means_one_manual_phase_per_environment_in_order() -> None:
    environments = [Environment(name=n) for n in ("qa", "dev", "prod")]
    phases = effective_phases(Lifecycle(name="simple"), environments)
    assert [[e.environment for e in p.environments] for p in phases] == [["qa"], ["dev"], ["prod"]]
    assert all(e.trigger is MANUAL for p in phases for e in p.environments)
    assert all(not p.optional for p in phases)
    # no automatic deployment ever comes out of an implicit lifecycle
    assert automatic_environments(phases, succeeded=[], claimed=[]) == []
    assert names(reachable_phases(phases, ["qa"])) == ["qa", "dev"]


def test_explicit_phases_are_kept_as_written() -> None:
    lifecycle = Lifecycle(name="default", phases=DEMO)
    assert effective_phases(lifecycle, ENVIRONMENTS) == DEMO


def test_unknown_environment_names_lifecycle_phase_and_environment() -> None:
    lifecycle = Lifecycle(name="release-train", phases=[phase("staging-phase", ("staging", AUTO))])
    with pytest.raises(ConfigurationError) as caught:
        effective_phases(lifecycle, ENVIRONMENTS)
    message = str(caught.value)
    assert "release-train" in message
    assert "staging-phase" in message
    assert "'staging'" in message


# --------------------------------------------------------------------------- phase_complete


@pytest.mark.parametrize(
    ("minimum", "succeeded", "complete"),
    [
        (None, [], False),
        (None, ["eu"], False),
        (None, ["eu", "us"], False),
        (None, ["eu", "us", "ap"], True),
        (2, ["eu"], False),
        (2, ["eu", "ap"], True),
        (2, ["eu", "dev", "test"], False),  # successes elsewhere do not count
        (1, ["ap"], True),
    ],
)
def test_phase_complete_all_or_minimum(
    minimum: int | None, succeeded: list[str], complete: bool
) -> None:
    regions = phase("regions", ("eu", AUTO), ("us", AUTO), ("ap", MANUAL), minimum=minimum)
    assert phase_complete(regions, succeeded) is complete


# --------------------------------------------------------------------------- the demo lifecycle


@pytest.mark.parametrize(
    ("succeeded", "reachable"),
    [
        ([], ["development"]),
        (["dev"], ["development", "testing"]),
        (["dev", "test"], ["development", "testing", "production"]),
        # test was deployed before dev regressed: it stays deployable (redeploy, rollback)
        (["test"], ["development", "testing"]),
        (["prod"], ["development", "production"]),
    ],
)
def test_demo_reachable_phases(succeeded: list[str], reachable: list[str]) -> None:
    assert names(reachable_phases(DEMO, succeeded)) == reachable


@pytest.mark.parametrize(
    ("succeeded", "claimed", "automatic"),
    [
        ([], [], ["dev"]),
        ([], ["dev"], []),  # dev claimed but not done: test is not reachable yet
        (["dev"], [], ["test"]),
        (["dev"], ["test"], []),  # a second trigger does not start test twice
        (["dev", "test"], [], []),  # prod is manual
        (["dev", "test", "prod"], [], []),
    ],
)
def test_demo_automatic_environments(
    succeeded: list[str], claimed: list[str], automatic: list[str]
) -> None:
    assert automatic_environments(DEMO, succeeded, claimed) == automatic


@pytest.mark.parametrize(
    ("environment", "succeeded"),
    [("dev", []), ("test", ["dev"]), ("prod", ["dev", "test"]), ("dev", ["dev", "test"])],
)
def test_demo_deployable(environment: str, succeeded: list[str]) -> None:
    check_deployable(DEMO, environment, succeeded)  # does not raise


@pytest.mark.parametrize(
    ("environment", "succeeded", "incomplete"),
    [
        ("test", [], "development"),
        ("prod", [], "development"),
        ("prod", ["dev"], "testing"),
    ],
)
def test_demo_not_deployable_names_the_incomplete_phase(
    environment: str, succeeded: list[str], incomplete: str
) -> None:
    with pytest.raises(LifecycleViolationError) as caught:
        check_deployable(DEMO, environment, succeeded)
    assert f"'{incomplete}'" in str(caught.value)
    assert repr(environment) in str(caught.value)
    assert caught.value.details["phase"] == incomplete


def test_environment_outside_the_lifecycle_is_refused() -> None:
    with pytest.raises(LifecycleViolationError, match="staging"):
        check_deployable(DEMO, "staging", ["dev", "test", "prod"])


# --------------------------------------------------------------------------- optional / minimum


def test_optional_phase_neither_blocks_nor_deploys_automatically() -> None:
    phases = [
        phase("development", ("dev", AUTO)),
        phase("qa", ("qa", AUTO), optional=True),
        phase("production", ("prod", AUTO)),
    ]
    assert names(reachable_phases(phases, ["dev"])) == ["development", "qa", "production"]
    assert automatic_environments(phases, ["dev"], []) == ["prod"]
    check_deployable(phases, "prod", ["dev"])
    check_deployable(phases, "qa", ["dev"])


def test_minimum_n_unblocks_the_next_phase() -> None:
    phases = [
        phase("canaries", ("c1", AUTO), ("c2", AUTO), ("c3", MANUAL), minimum=2),
        phase("fleet", ("eu", AUTO), ("us", AUTO)),
    ]
    assert automatic_environments(phases, [], []) == ["c1", "c2"]
    assert automatic_environments(phases, ["c1"], ["c2"]) == []
    assert automatic_environments(phases, ["c1", "c2"], []) == ["eu", "us"]
    with pytest.raises(LifecycleViolationError, match="canaries"):
        check_deployable(phases, "us", ["c3"])
    check_deployable(phases, "us", ["c3", "c1"])


# --------------------------------------------------------------------------- properties
# A reference written from DESIGN §1.1, independent of the implementation's loop.


def ref_complete(p: Phase, succeeded: set[str]) -> bool:
    envs = [e.environment for e in p.environments]
    needed = len(envs) if p.minimum_environments is None else p.minimum_environments
    return sum(e in succeeded for e in envs) >= needed


def ref_reachable(phases: Sequence[Phase], index: int, succeeded: set[str]) -> bool:
    earlier_done = all(ref_complete(p, succeeded) for p in phases[:index] if not p.optional)
    deployed_here = any(e.environment in succeeded for e in phases[index].environments)
    return index == 0 or earlier_done or deployed_here


def ref_automatic(phases: Sequence[Phase], succeeded: set[str], claimed: set[str]) -> list[str]:
    return [
        e.environment
        for i, p in enumerate(phases)
        if ref_reachable(phases, i, succeeded) and not p.optional
        for e in p.environments
        if e.trigger is AUTO and e.environment not in succeeded | claimed
    ]


@st.composite
def lifecycles(draw: st.DrawFn) -> tuple[list[str], list[Phase]]:
    count = draw(st.integers(min_value=1, max_value=7))
    envs = [f"env{i}" for i in range(count)]
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=count - 1)))) if count > 1 else []
    bounds = [0, *cuts, count]
    phases = []
    for i, (start, end) in enumerate(itertools.pairwise(bounds)):
        group = envs[start:end]
        phases.append(
            phase(
                f"phase{i}",
                *[(e, draw(st.sampled_from(Trigger))) for e in group],
                minimum=draw(st.none() | st.integers(min_value=1, max_value=len(group))),
                optional=draw(st.booleans()),
            )
        )
    return envs, phases


@st.composite
def situations(draw: st.DrawFn) -> tuple[list[str], list[Phase], set[str], set[str]]:
    envs, phases = draw(lifecycles())
    succeeded = draw(st.sets(st.sampled_from(envs)))
    claimed = draw(st.sets(st.sampled_from(envs)))
    return envs, phases, succeeded, claimed


@settings(max_examples=60, deadline=None)
@given(situations())
def test_reachable_matches_reference(situation: tuple) -> None:
    envs, phases, succeeded, _ = situation
    expected = [p.name for i, p in enumerate(phases) if ref_reachable(phases, i, succeeded)]
    assert names(reachable_phases(phases, succeeded)) == expected
    assert reachable_phases(phases, succeeded)[0] is phases[0]
    for p in phases:
        assert phase_complete(p, succeeded) is ref_complete(p, succeeded)
    # a further success never makes a phase unreachable
    before = set(names(reachable_phases(phases, succeeded)))
    for env in envs:
        assert before <= set(names(reachable_phases(phases, succeeded | {env})))


@settings(max_examples=60, deadline=None)
@given(situations())
def test_automatic_matches_reference(situation: tuple) -> None:
    _, phases, succeeded, claimed = situation
    result = automatic_environments(phases, succeeded, claimed)
    assert result == ref_automatic(phases, succeeded, claimed)
    optional = {e.environment for p in phases if p.optional for e in p.environments}
    manual = {e.environment for p in phases for e in p.environments if e.trigger is MANUAL}
    assert not set(result) & (optional | manual | succeeded | claimed)


@settings(max_examples=60, deadline=None)
@given(situations())
def test_check_deployable_matches_reference(situation: tuple) -> None:
    _envs, phases, succeeded, _ = situation
    for index, p in enumerate(phases):
        for entry in p.environments:
            if ref_reachable(phases, index, succeeded):
                check_deployable(phases, entry.environment, succeeded)
                continue
            first_incomplete = next(
                q for q in phases[:index] if not q.optional and not ref_complete(q, succeeded)
            )
            with pytest.raises(LifecycleViolationError) as caught:
                check_deployable(phases, entry.environment, succeeded)
            assert repr(first_incomplete.name) in str(caught.value)


def test_release_order_is_by_version_then_by_creation() -> None:
    from datetime import UTC, datetime

    from shiplane.domain.models import Release, TriggeredBy, TriggerKind
    from shiplane.domain.ordering import is_newer

    def release(version: str, sequence: int) -> Release:
        return Release(
            project="web",
            version=version,
            sequence=sequence,
            images={},
            process=[],
            lifecycle="default",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            created_by=TriggeredBy(kind=TriggerKind.ECR_PUSH),
        )

    # 2.0.9 created before 2.0.7 (events arrive out of order) is still the newer one
    assert is_newer(release("2.0.9", 3), release("2.0.7", 9))
    assert not is_newer(release("2.0.7", 9), release("2.0.9", 3))
    assert is_newer(release("1.0.0", 2), release("1.0.0-rc.1", 5))
    # tags that are not versions fall back to creation order
    assert is_newer(release("main-abc", 4), release("main-def", 3))
    assert is_newer(release("latest", 7), release("1.0.0", 6))
