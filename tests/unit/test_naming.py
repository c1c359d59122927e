"""Names Shiplane gives to what it creates: readable, deterministic, within AWS limits."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiplane.domain.naming import (
    automatic_deployment_id,
    requested_deployment_id,
    role_session_name,
    stack_name,
    task_family,
)

# CloudFormation: a stack name starts with a letter and holds letters, digits and hyphens.
STACK_NAME = re.compile(r"^[A-Za-z][-A-Za-z0-9]{0,127}$")
# STS: RoleSessionName is 2-64 characters of [\w+=,.@-].
SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
names = st.from_regex(r"[a-z0-9][a-z0-9-]{0,39}", fullmatch=True)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("web", "web-service", "prod"), "shiplane-web-web-service-prod-untenanted"),
        (("web", "web-service", "prod", "untenanted"), "shiplane-web-web-service-prod-untenanted"),
        (("web", "web-service", "dev", ""), "shiplane-web-web-service-dev-untenanted"),
        (("web", "api", "test", "acme"), "shiplane-web-api-test-acme"),
        (("web", "api", "test", "Acme Corp / EU"), "shiplane-web-api-test-Acme-Corp-EU"),
        (("web", "api", "test", "ünïcode_tenant"), "shiplane-web-api-test-n-code-tenant"),
    ],
)
def test_stack_names_are_readable(args: tuple[str, ...], expected: str) -> None:
    assert stack_name(*args) == expected


def test_stack_name_is_cut_to_128_characters() -> None:
    name = stack_name("web", "web-service", "prod", "t" * 300)
    assert len(name) == 128
    assert name.startswith("shiplane-web-web-service-prod-ttt")


def test_stack_names_differ_by_environment_and_tenant() -> None:
    assert (
        len(
            {
                stack_name("web", "svc", "dev"),
                stack_name("web", "svc", "prod"),
                stack_name("web", "svc", "prod", "acme"),
                stack_name("web", "svc", "prod", "globex"),
                stack_name("api", "svc", "prod"),
            }
        )
        == 5
    )


@settings(max_examples=60, deadline=None)
@given(names, names, names, st.text(max_size=200))
def test_any_stack_name_is_valid_for_cloudformation(
    project: str, step: str, environment: str, tenant: str
) -> None:
    name = stack_name(project, step, environment, tenant)
    assert STACK_NAME.match(name), name
    assert name == stack_name(project, step, environment, tenant)
    assert name.startswith(f"shiplane-{project.strip('-')}-{step.strip('-')}-")


def test_task_family_is_suffixed_with_environment_and_tenant() -> None:
    assert task_family("web", "prod") == "web-prod"
    assert task_family("web", "prod", "acme") == "web-prod-acme"
    assert task_family("web", "prod", "Acme Corp") == "web-prod-Acme-Corp"
    assert len(task_family("f" * 200, "prod", "t" * 100)) <= 255


def test_deployment_ids_are_stable_for_the_same_inputs() -> None:
    assert automatic_deployment_id("web", "1.4.0", "prod", "untenanted") == (
        automatic_deployment_id("web", "1.4.0", "prod", "untenanted")
    )
    assert requested_deployment_id("web", "1.4.0", "prod", "acme", "exec-1") == (
        requested_deployment_id("web", "1.4.0", "prod", "acme", "exec-1")
    )


def test_deployment_ids_differ_across_inputs_and_requests() -> None:
    base = ("web", "1.4.0", "prod", "untenanted")
    ids = [
        automatic_deployment_id(*base),
        automatic_deployment_id("web", "1.4.0", "test", "untenanted"),
        automatic_deployment_id("web", "1.4.1", "prod", "untenanted"),
        automatic_deployment_id("web", "1.4.0", "prod", "acme"),
        automatic_deployment_id("api", "1.4.0", "prod", "untenanted"),
        requested_deployment_id(*base, "exec-1"),
        requested_deployment_id(*base, "exec-2"),
    ]
    assert len(set(ids)) == len(ids)


def test_deployment_id_names_its_environment() -> None:
    assert automatic_deployment_id("web", "1.4.0", "prod", "untenanted").startswith("prod-")


@settings(max_examples=60, deadline=None)
@given(names, st.text(min_size=1, max_size=128), names, st.text(max_size=80), st.text())
def test_role_session_name_fits_sts(
    project: str, release: str, environment: str, tenant: str, request: str
) -> None:
    for deployment_id in (
        automatic_deployment_id(project, release, environment, tenant),
        requested_deployment_id(project, release, environment, tenant, request),
    ):
        session = role_session_name(deployment_id)
        assert SESSION_NAME.match(session), session
        assert session.startswith("shiplane-")


def test_role_session_name_is_cut_to_64() -> None:
    assert len(role_session_name("d" * 100)) == 64


def test_long_names_that_differ_only_past_the_cut_get_different_stacks() -> None:
    tenant = "t" * 120
    first = stack_name("web", "svc", "prod", tenant + "-a")
    second = stack_name("web", "svc", "prod", tenant + "-b")
    assert len(first) == len(second) == 128
    assert first != second
    assert first.startswith("shiplane-web-svc-prod-ttt")
