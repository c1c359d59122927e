"""The principal of the AWS request the local cloud's server is handling on this thread.

The IAM middleware sets it from the request's credentials for the duration of the request,
so code that runs inside moto on the request's behalf (CloudFormation acting as the caller
when a stack has no role) knows who asked. None: no request, or the administrator.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_PRINCIPAL: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "shiplane_local_request_principal", default=None
)


def request_principal() -> str | None:
    """The ARN of the caller of the request in progress (e.g. an assumed-role ARN)."""
    return _PRINCIPAL.get()


@contextmanager
def acting_as(principal_arn: str | None) -> Iterator[None]:
    token = _PRINCIPAL.set(principal_arn)
    try:
        yield
    finally:
        _PRINCIPAL.reset(token)
