"""Who is calling AWS right now, inside the one process the local cloud runs in.

On AWS every function runs in its own sandbox with its execution role's credentials.
Here every handler shares one process (and the layer's cached clients), so the local
cloud marks the thread that runs an invocation with an `Invocation`: the function, the
role it runs as, and the AWS calls made so far. IAM evaluation reads the role from it;
the fault plan counts calls on it. Step Functions' interpreter and the scheduler mark
their threads the same way with the state machine's or schedule's role.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Invocation:
    """One running invocation (or a service acting with a role, e.g. Step Functions)."""

    function_name: str  # the Lambda function's name; for a service, e.g. "states:<machine>"
    role_arn: str  # the role its calls are signed and authorized as
    logical_id: str = ""  # the template's logical id, e.g. "RecordDeploymentFunction"
    code_dir: str = ""  # functions/<name> for the template's functions, else ""
    service: str = ""  # a service acting with a role ("states" for Step Functions), else ""
    calls: int = 0  # AWS calls made so far in this invocation
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_call(self) -> int:
        with self._lock:
            self.calls += 1
            return self.calls

    @property
    def folder(self) -> str:
        """The function's folder under functions/ (what a fault plan names), or ""."""
        return self.code_dir.rstrip("/").rsplit("/", 1)[-1] if self.code_dir else ""


_CURRENT: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "shiplane_local_invocation", default=None
)


def current() -> Invocation | None:
    """The invocation this thread runs, if any."""
    return _CURRENT.get()


@contextmanager
def running(invocation: Invocation) -> Iterator[Invocation]:
    """Mark this thread (context) as running `invocation` for the duration."""
    token = _CURRENT.set(invocation)
    try:
        yield invocation
    finally:
        _CURRENT.reset(token)
