"""Deterministic, readable names for the things Shiplane creates."""

from __future__ import annotations

import hashlib

from shiplane.domain.models import UNTENANTED, sanitize_stack_part

STACK_NAME_LIMIT = 128


def stack_name(project: str, step: str, environment: str, tenant: str = UNTENANTED) -> str:
    """`shiplane-{project}-{step}-{environment}-{tenant|untenanted}`, cut to 128 characters."""
    parts = ["shiplane", project, step, environment, tenant or UNTENANTED]
    name = "-".join(sanitize_stack_part(p) for p in parts)
    if len(name) <= STACK_NAME_LIMIT:
        return name
    # Cut, but keep names that differ only past the cut apart.
    suffix = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: STACK_NAME_LIMIT - 9].rstrip('-')}-{suffix}"


def stack_key(account: str, region: str, stack_name: str) -> str:
    """Identifies a stack across accounts and regions (what a wait is stored under)."""
    return f"{account}#{region}#{stack_name}"


def client_request_token(deployment_id: str, step: str, target: str, operation: str) -> str:
    """The ClientRequestToken of one stack operation of one unit (`create`, `update`,
    `delete`): the same on every retry of the step, so CloudFormation takes a retried call
    for the same request, and every event of that operation carries it — an event with
    another token belongs to another operation. Pattern `[a-zA-Z0-9][-a-zA-Z0-9]*`, ≤128."""
    digest = hashlib.sha256(f"{deployment_id}|{step}|{target}".encode()).hexdigest()[:40]
    return f"shiplane-{operation}-{digest}"


def service_key(account: str, region: str, cluster: str, service: str) -> str:
    return f"{account}#{region}#{cluster}#{service}"


def service_name(name: str, tenant: str = UNTENANTED) -> str:
    """Tenants share clusters: each tenant's service is named after it."""
    if tenant == UNTENANTED:
        return name
    return f"{name}-{sanitize_stack_part(tenant)}"[:255]


def task_family(family: str, environment: str, tenant: str = UNTENANTED) -> str:
    suffix = environment if tenant == UNTENANTED else f"{environment}-{tenant}"
    return f"{family}-{sanitize_stack_part(suffix)}"[:255]


def automatic_deployment_id(project: str, release: str, environment: str, tenant: str) -> str:
    """The id of the one automatic deployment of a release to an environment/tenant: the
    same however often the trigger arrives."""
    return _deployment_id(project, release, environment, tenant, "auto")


def requested_deployment_id(
    project: str, release: str, environment: str, tenant: str, request: str
) -> str:
    """The id of a requested deployment: the same for a re-driven request."""
    return _deployment_id(project, release, environment, tenant, f"request:{request}")


def _deployment_id(project: str, release: str, environment: str, tenant: str, key: str) -> str:
    digest = hashlib.sha256(f"{project}|{release}|{environment}|{tenant}|{key}".encode())
    return f"{environment}-{digest.hexdigest()[:12]}"


def role_session_name(deployment_id: str) -> str:
    """STS session names name the deployment (max 64 chars, [\\w+=,.@-])."""
    return f"shiplane-{deployment_id}"[:64]


def log_group_name(project: str, environment: str, tenant: str = UNTENANTED) -> str:
    """The automatic CloudWatch log group: `/shiplane/{project}/{environment}`. A tenant's
    service stack owns its own group (`.../{tenant}`): two stacks cannot create one group."""
    parts = ["shiplane", project, environment]
    if tenant != UNTENANTED:
        parts.append(tenant)
    return "/" + "/".join(parts)
