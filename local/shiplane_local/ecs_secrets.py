"""ECS fetches a task's secrets with its execution role, as AWS does before starting it.

A container's `secrets` (and its log configuration's `secretOptions`) name SSM parameters
by ARN or name. Before a task starts, the ECS agent reads them with the task execution
role: `ssm:GetParameters` on each parameter (the role's identity policy; a parameter of
another account also needs that account's resource policy, which only a RAM share gives,
and the local cloud models none), then `kms:Decrypt` of a SecureString's key through SSM
(identity policy and key policy). A parameter that does not exist, or a read that is
denied, keeps the task from starting: it stops with `TaskFailedToStart` and a
`ResourceInitializationError` reason, and the service's deployment fails through the
circuit breaker like a crashing container.

Only SSM parameters are modelled (Shiplane keeps its sensitive values there); a Secrets
Manager reference is not evaluated.
"""

from __future__ import annotations

from typing import Any

from .iam.requests import Check, _via_ssm
from .iam.roles import authorize, role_of

ECS_SESSION = "ecs-task"
_PREFIX = (
    "ResourceInitializationError: unable to pull secrets or registry auth: execution "
    "resource retrieval failed: unable to retrieve secrets from ssm: service call has been "
    "retried 1 time(s): "
)
_DEFAULT_KEY = "alias/aws/ssm"


def secret_references(task_definition: Any) -> list[str]:
    """Every SSM reference of the task definition's containers, in order."""
    found: list[str] = []
    for container in task_definition.container_definitions or []:
        for secret in container.get("secrets") or []:
            found.append(str(secret.get("valueFrom", "")))
        logging = container.get("logConfiguration") or {}
        for secret in logging.get("secretOptions") or []:
            found.append(str(secret.get("valueFrom", "")))
    return [ref for ref in found if ref and ":secretsmanager:" not in ref]


def secrets_problem(task_definition: Any, account: str, region: str) -> str | None:
    """Why the task's execution role cannot fetch its secrets (None: it can, or it has
    none), as the task's stopped reason."""
    references = secret_references(task_definition)
    if not references:
        return None
    role_arn = getattr(task_definition, "execution_role_arn", None)
    found = role_of(role_arn or "")
    if found is None:
        return _PREFIX + "the task definition has no execution role to read its secrets with"
    role_account, role_name = found
    principal = f"arn:aws:sts::{role_account}:assumed-role/{role_name}/{ECS_SESSION}"
    for reference in references:
        arn = _parameter_arn(reference, account, region)
        problem = _read(principal, role_account, arn)
        if problem:
            return _PREFIX + problem
    return None


def _parameter_arn(reference: str, account: str, region: str) -> str:
    if reference.startswith("arn:"):
        return reference
    name = reference if reference.startswith("/") else f"/{reference}"
    return f"arn:aws:ssm:{region}:{account}:parameter{name}"


def _read(principal: str, role_account: str, arn: str) -> str | None:
    from moto.ssm.models import ssm_backends

    from .iam.middleware import key_policy_denial

    parts = arn.split(":", 5)
    region, owner, name = parts[3], parts[4], parts[5][len("parameter") :]
    denial = authorize(principal, "ssm:GetParameters", arn)
    if denial is not None:
        return f"AccessDeniedException: {denial.message}"
    if owner != role_account:  # no RAM share is modelled: no resource policy allows it
        return (
            f"AccessDeniedException: User: {principal} is not authorized to perform: "
            f"ssm:GetParameters on resource: {arn} because no resource-based policy allows "
            "the ssm:GetParameters action"
        )
    try:
        parameter = ssm_backends[owner][region].get_parameter(name)
    except Exception:
        parameter = None
    if parameter is None:
        return f"invalid ssm parameters: {name}"
    if parameter.parameter_type != "SecureString":
        return None
    key = parameter.keyid or _DEFAULT_KEY
    if key == _DEFAULT_KEY:
        return None  # the AWS managed key: any principal of its account may use it via SSM
    key_arn = key if key.startswith("arn:") else f"arn:aws:kms:{region}:{owner}:key/{key}"
    check = Check("kms:Decrypt", key_arn, _via_ssm(region))
    refused = key_policy_denial(principal, check)
    if refused is not None:
        return f"AccessDeniedException: {refused.message}"
    return None
