"""Every sample in events/ parses as the trigger it documents."""

from __future__ import annotations

import json

import pytest

from shiplane.domain.requests import (
    DeployAction,
    EcrPushEvent,
    EcsDeploymentEvent,
    ExecutionStatusChangeEvent,
    StackStatusChangeEvent,
    parse_pipeline_input,
)
from tests.helpers import ROOT, load_event

SAMPLES = sorted(p.stem for p in (ROOT / "events").glob("*.json"))


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_events_are_valid_json_objects(name: str) -> None:
    assert isinstance(json.loads((ROOT / "events" / f"{name}.json").read_text()), dict)


@pytest.mark.parametrize(
    "name",
    [
        "ecr_push",
        "ecr_push_hotfix",
        "ecr_push_unknown_repository",
        "promote_to_prod",
        "deploy_tenant",
        "rollback_prod",
        "redeploy_prod",
        "ecr_push_by_digest",
    ],
)
def test_pipeline_inputs_parse(name: str) -> None:
    parsed = parse_pipeline_input(load_event(name))
    assert isinstance(parsed, EcrPushEvent | DeployAction)


def test_the_malformed_push_does_not_parse() -> None:
    with pytest.raises(ValueError, match="image-digest"):
        parse_pipeline_input(load_event("ecr_push_malformed"))


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("stack_update_complete", StackStatusChangeEvent),
        ("stack_update_rollback_complete", StackStatusChangeEvent),
        ("ecs_deployment_completed", EcsDeploymentEvent),
        ("ecs_deployment_failed", EcsDeploymentEvent),
        ("execution_failed", ExecutionStatusChangeEvent),
    ],
)
def test_deployment_events_parse(name: str, model: type) -> None:
    model.model_validate(load_event(name))


def test_a_redeploy_is_asked_for_with_the_api_s_mode() -> None:
    parsed = parse_pipeline_input(load_event("redeploy_prod"))
    assert isinstance(parsed, DeployAction) and parsed.mode == "redeploy"
    assert parse_pipeline_input(load_event("promote_to_prod")).mode == "deploy"  # type: ignore[union-attr]
