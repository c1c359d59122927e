"""WSGI middleware: every request signed by a role session is authorized as AWS would.

The access key names the principal (moto's STS keeps each assumed-role session by its
access key); `requests.py` says which actions on which resources the request needs;
`authorize` decides each against the role's policies (and `trust.py` decides the trust
policy of a role being assumed). A denial is answered the way the service answers it on
AWS, so botocore raises the same ClientError. Requests signed with the account's own
keys (the user, the tests, the local cloud itself) are the administrator's: not
evaluated. The caller's principal is set for the request (`principal.acting_as`) so code
moto runs on its behalf (CloudFormation without a stack role) knows who asked.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from .principal import acting_as
from .requests import ApiRequest, Check, UnknownOperation, checks_for, read_request
from .roles import USAGE, Denial, authorize, record_outcome, role_of
from .trust import trust_decision, trust_message

log = logging.getLogger("shiplane_local")

# The switch: on unless SHIPLANE_LOCAL_IAM=off (for diagnosis only).
ENV_SWITCH = "SHIPLANE_LOCAL_IAM"


class Enforcement:
    """Whether IAM is enforced now, and the denials seen (for tests and logs)."""

    def __init__(self) -> None:
        self.enabled = False
        self.denials: list[Denial] = []
        self._lock = threading.Lock()

    def record(self, denial: Denial) -> None:
        with self._lock:
            self.denials.append(denial)
            del self.denials[:-1000]


ENFORCEMENT = Enforcement()


def enabled_by_environment() -> bool:
    return os.environ.get(ENV_SWITCH, "on").strip().lower() not in ("off", "0", "false", "no")


def principal_for(access_key: str) -> str | None:
    """The assumed-role session ARN an access key belongs to; None for the administrator."""
    from moto.iam.models import get_account_id_from
    from moto.sts.models import sts_backends

    account = get_account_id_from(access_key)
    session = sts_backends[account]["aws"].get_assumed_role_from_access_key(access_key)
    return str(session.arn) if session is not None else None


def decide(principal: str, request: ApiRequest) -> Denial | None:
    """The first denial among the checks the request needs, or None."""
    account = principal.split(":")[4]
    try:
        checks = checks_for(request, account)
    except UnknownOperation as exc:
        return Denial(principal, f"{request.service}:{request.operation}", "*", str(exc))
    for check in checks:
        if check.action == "sts:AssumeRole":
            denial = _assume_role(principal, check)
        elif check.action.startswith("kms:"):
            denial = key_policy_denial(principal, check)
        else:
            denial = authorize(principal, check.action, check.resource, check.context)
        if denial is not None:
            return denial
    return None


def _assume_role(principal: str, check: Check) -> Denial | None:
    from moto.iam.models import iam_backends

    found = role_of(check.resource)
    trust = "none"
    if found is not None:
        try:
            role = iam_backends[found[0]]["global"].get_role(found[1])
            trust = trust_decision(role.assume_role_policy_document, principal, check.context)
        except Exception:  # no such role: AWS answers AccessDenied, not NoSuchEntity
            trust = "none"
    return _with_resource_policy(principal, check, trust, trust_message(principal, check.resource))


def key_policy_denial(principal: str, check: Check) -> Denial | None:
    """A KMS key is used only as its key policy allows (KMS developer guide, "Key
    policies"), which decides like a trust policy."""
    from moto.kms.models import kms_backends

    parts = check.resource.split(":", 5)
    decision = "none"
    try:
        key = kms_backends[parts[4]][parts[3]].describe_key(parts[5].split("/", 1)[-1])
        decision = trust_decision(key.policy, principal, check.context, check.action)
    except Exception:  # no such key: KMS never allows
        decision = "none"
    return _with_resource_policy(
        principal,
        check,
        decision,
        f"User: {principal} is not authorized to perform: {check.action} on resource: "
        f"{check.resource} because no resource-based policy allows the {check.action} action",
    )


def _with_resource_policy(
    principal: str, check: Check, decision: str, refusal: str
) -> Denial | None:
    """A call a resource-based policy (a trust policy, a key policy) decides with the
    caller's identity policy: a statement naming the caller allows on its own within one
    account; one naming the caller's account delegates to the identity policy; across
    accounts both must allow; an explicit Deny in either wins. The outcome, not the
    identity policy's part of it, is what USAGE records."""
    identity = authorize(principal, check.action, check.resource, check.context, record=False)
    same_account = check.resource.split(":")[4] in ("", principal.split(":")[4])
    allowed = decision != "deny" and (
        (decision == "caller" and same_account and _not_explicitly_denied(identity))
        or (decision in ("caller", "account") and identity is None)
    )
    record_outcome(principal, check.action, check.resource, check.context, allowed=allowed)
    if allowed:
        return None
    if identity is not None and decision != "deny":
        return identity
    return Denial(principal, check.action, check.resource, refusal)


def _not_explicitly_denied(identity: Denial | None) -> bool:
    return identity is None or "explicit deny" not in identity.message


# -- the answers AWS gives ------------------------------------------------------------------
def denied_response(request: ApiRequest, message: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status, headers, body) of the service's AccessDenied for `request`'s protocol."""
    request_id = str(uuid.uuid4())
    if request.protocol == "json":
        body = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
        content_type = request.content_type or "application/x-amz-json-1.1"
        return (
            "400 Bad Request",
            [("Content-Type", content_type), ("x-amzn-RequestId", request_id)],
            body,
        )
    if request.protocol == "rest-json":
        body = json.dumps({"Message": message, "message": message}).encode()
        return (
            "403 Forbidden",
            [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", "AccessDeniedException"),
                ("x-amzn-RequestId", request_id),
            ],
            body,
        )
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{escaped}</Message>"
        f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return "403 Forbidden", [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body


class IamEnforcement:
    """The middleware. Place it inside the call counter: a denied call was still made."""

    def __init__(self, app: Callable[..., Any], enforcement: Enforcement = ENFORCEMENT) -> None:
        self.app = app
        self.enforcement = enforcement

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not self.enforcement.enabled or environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self.app(environ, start_response)
        request = read_request(environ)
        principal = principal_for(request.access_key) if request is not None else None
        if request is None or principal is None:
            return self.app(environ, start_response)
        try:
            denial = decide(principal, request)
        except Exception as exc:  # a mapping bug must not pass a request unevaluated
            log.exception("iam: evaluating %s:%s failed", request.service, request.operation)
            denial = Denial(
                principal,
                f"{request.service}:{request.operation}",
                "*",
                f"the local cloud could not evaluate {request.service}:{request.operation} "
                f"({type(exc).__name__}: {exc}); denied rather than allowed unevaluated",
            )
        if denial is not None:
            self.enforcement.record(denial)
            log.warning("iam: denied %s: %s", principal, denial.message)
            status, headers, body = denied_response(request, denial.message)
            headers.append(("Content-Length", str(len(body))))
            start_response(status, headers)
            return [body]
        with acting_as(principal):
            return list(self.app(environ, start_response))


__all__ = ["ENFORCEMENT", "USAGE", "Enforcement", "IamEnforcement", "principal_for"]
