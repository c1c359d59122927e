"""The ClientRequestToken of the CloudFormation call being served, for the events it causes.

AWS puts the ClientRequestToken a caller passed to CreateStack, UpdateStack,
ExecuteChangeSet or DeleteStack into every "CloudFormation Stack Status Change" event of
that operation (`detail.client-request-token`). moto's backend never sees the token, so
its response handlers are wrapped to keep it in a contextvar while the backend runs; the
rollout simulator reads it when it creates the operation's rollout, and sets it again
while it runs the rollout's steps, so the stack events DescribeStackEvents lists carry it
too (`ClientRequestToken`), as AWS's do.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.cloudformation.models import Event
from moto.cloudformation.responses import CloudFormationResponse

from ._patching import Patches

_TOKEN: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "shiplane_local_cfn_client_request_token", default=None
)
_OPERATIONS = ("create_stack", "update_stack", "execute_change_set", "delete_stack")


def request_token() -> str | None:
    """The ClientRequestToken of the stack operation requested on this thread, if any."""
    return _TOKEN.get()


@contextmanager
def using(token: str | None) -> Iterator[None]:
    """Act for the stack operation whose ClientRequestToken is `token`."""
    reset = _TOKEN.set(token)
    try:
        yield
    finally:
        _TOKEN.reset(reset)


class RequestTokens:
    def __init__(self) -> None:
        self._patches = Patches()

    def install(self) -> None:
        for name in _OPERATIONS:
            original = getattr(CloudFormationResponse, name)
            self._patches.replace(CloudFormationResponse, name, _with_token(original))
        event_init = Event.__init__

        def init(event: Event, *args: Any, **kwargs: Any) -> None:
            event_init(event, *args, **kwargs)
            event.client_request_token = _TOKEN.get()  # type: ignore[assignment]

        self._patches.replace(Event, "__init__", init)

    def uninstall(self) -> None:
        self._patches.undo()


def _with_token(original: Any) -> Any:
    def handler(response: CloudFormationResponse) -> Any:
        token = _TOKEN.set(response._get_param("ClientRequestToken") or None)
        try:
            return original(response)
        finally:
            _TOKEN.reset(token)

    handler.__name__ = original.__name__
    return handler
