"""The pure parts of API-requested work: execution names (idempotency), the release to
roll back to, and newest-first pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from shiplane.api.pagination import paginate
from shiplane.domain.models import Deployment, DeploymentStatus, TriggeredBy, TriggerKind
from shiplane.domain.requests import CreateReleaseAction, parse_pipeline_input
from shiplane.errors import LifecycleViolationError
from shiplane.services.deployment_requests import (
    DeployRequest,
    execution_name,
    in_body,
    last_finished,
    previous_release,
)
from tests.helpers import load_event

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def deployment(
    id: str, release: str, status: DeploymentStatus, minute: int, environment: str = "prod"
) -> Deployment:
    at = T0 + timedelta(minutes=minute)
    return Deployment(
        id=id,
        project="web",
        release=release,
        environment=environment,
        triggered_by=TriggeredBy(kind=TriggerKind.API),
        status=status,
        created_at=at,
        finished_at=at if status.finished else None,
    )


def test_the_same_body_and_salt_give_the_same_execution_name() -> None:
    body = DeployRequest(release="1.0.0", environment="prod")
    same = DeployRequest.model_validate({"environment": "prod", "release": "1.0.0"})
    assert execution_name("deploy", "web", None, body, "d1") == execution_name(
        "deploy", "web", None, same, "d1"
    )
    assert execution_name("deploy", "web", None, body, "d1") != execution_name(
        "deploy", "web", None, body, "d2"
    )
    assert execution_name("deploy", "web", None, body) != execution_name(
        "promote", "web", None, body
    )


def test_an_idempotency_key_alone_decides_the_name() -> None:
    one = execution_name("deploy", "web", "k-1", {"release": "1.0.0"}, "d1")
    assert one == execution_name("deploy", "web", "k-1", {"release": "2.0.0"}, "d9")
    assert one != execution_name("deploy", "web", "k-2", {"release": "1.0.0"}, "d1")


def test_execution_names_fit_step_functions_rules() -> None:
    name = execution_name("rollback", "p" * 40, None, {"x": "y" * 500}, "salt")
    assert len(name) <= 80
    assert re.fullmatch(r"[A-Za-z0-9_-]+", name)


def test_the_rollback_target_is_the_last_good_release_other_than_the_current_one() -> None:
    history = [
        deployment("a", "1.0.0", DeploymentStatus.SUCCEEDED, 1),
        deployment("b", "1.1.0", DeploymentStatus.SUCCEEDED, 2),
        deployment("c", "1.2.0", DeploymentStatus.FAILED, 3),
        deployment("d", "1.3.0", DeploymentStatus.SUCCEEDED, 4),
        deployment("e", "1.2.5", DeploymentStatus.SUCCEEDED, 5, environment="test"),
    ]
    assert previous_release(history, "prod", "untenanted", "1.3.0") == "1.1.0"
    assert previous_release(history[:1], "prod", "untenanted", "1.0.0") is None


def test_last_finished_ignores_what_still_runs() -> None:
    history = [
        deployment("a", "1.0.0", DeploymentStatus.SUCCEEDED, 1),
        deployment("b", "1.1.0", DeploymentStatus.DEPLOYING, 2),
        deployment("c", "1.1.0", DeploymentStatus.FAILED, 3, environment="test"),
    ]
    assert last_finished(history, "prod", "untenanted") == "a"
    assert last_finished(history, release="1.1.0") == "c"
    assert last_finished(history, "dev") == ""


def test_newest_first_pages_follow_the_cursor_to_the_end() -> None:
    items = [f"item-{n:02d}" for n in range(5)]
    page, cursor = paginate(items, lambda i: i, None, 2, newest_first=True)
    assert page == ["item-04", "item-03"]
    page, cursor = paginate(items, lambda i: i, cursor, 2, newest_first=True)
    assert page == ["item-02", "item-01"]
    page, cursor = paginate(items, lambda i: i, cursor, 2, newest_first=True)
    assert (page, cursor) == (["item-00"], None)


def test_a_service_error_is_named_in_the_body() -> None:
    assert in_body(LifecycleViolationError("no"), "environment").details["field"] == (
        "body.environment"
    )
    assert in_body(LifecycleViolationError("no", field="tenant"), "x").details["field"] == (
        "body.tenant"
    )


def test_the_create_release_sample_is_a_create_release_action() -> None:
    parsed = parse_pipeline_input(load_event("create_release"))
    assert isinstance(parsed, CreateReleaseAction)
    assert parsed.images["web"].tag == "1.4.0"
