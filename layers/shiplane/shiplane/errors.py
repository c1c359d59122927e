"""Shiplane's errors.

Two families: transient errors are retried by the state machine (its `Retry` blocks
name these classes), terminal errors are caught and recorded on the deployment. The
state machine matches on class names, so a class here must never be renamed without
changing `statemachine/` (a unit test checks both directions).
"""

from __future__ import annotations

from typing import Any


class ShiplaneError(Exception):
    """Base of every error Shiplane raises on purpose."""

    code = "ShiplaneError"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": type(self).__name__, "message": self.message, **self.details}


class TransientError(ShiplaneError):
    """Worth retrying: the world may be different in a few seconds."""


class StackBusyError(TransientError):
    """A stack is in an `*_IN_PROGRESS` state (or being cleaned up): wait, don't fight."""


class ThrottledError(TransientError):
    """An AWS API asked us to slow down."""


class TerminalError(ShiplaneError):
    """Retrying will not help; the failure is recorded and explained."""


class InvalidRequestError(TerminalError):
    """The input (an event, an API body, a configuration document) is malformed."""


class NotFoundError(TerminalError):
    """A named thing (project, release, environment, target...) does not exist."""


class ConfigurationError(TerminalError):
    """The configuration is inconsistent (an unknown environment in a lifecycle...)."""


class LifecycleViolationError(TerminalError):
    """The lifecycle does not allow this deployment yet."""


class TargetUnavailableError(TerminalError):
    """A target cannot be reached: its role cannot be assumed or its cluster is gone."""


class StackDeadError(TerminalError):
    """A stack is in a state that Shiplane cannot repair on its own."""


class InvalidVersionRangeError(ConfigurationError):
    """A channel's version range is not valid NuGet/Maven interval syntax."""


class VariableError(TerminalError):
    """Base of the variable errors: each names the variable and where it was used."""


class UndefinedVariableError(VariableError):
    """`#{Name}` refers to no variable in scope."""


class VariableCycleError(VariableError):
    """Variables refer to each other in a loop (`#{A}` → `#{B}` → `#{A}`)."""


class AmbiguousVariableError(VariableError):
    """Two values of a variable match equally specifically: a tie no rule can break."""


class SensitiveVariableMisuseError(VariableError):
    """A sensitive value would end up in plain text (inside a larger string, a template...)."""


class EarlierStepFailedError(TerminalError):
    """A unit is not deployed because an earlier unit of the same deployment failed."""


class ApprovalRejectedError(TerminalError):
    """A person rejected the deployment."""


class ConflictError(TerminalError):
    """The request conflicts with the current state (it exists already, it has finished...)."""


class PreconditionFailedError(TerminalError):
    """An `If-Match` ETag does not match the stored resource: someone changed it first."""


class PreconditionRequiredError(TerminalError):
    """An update of an existing resource came without `If-Match`."""


TRANSIENT_ERRORS: tuple[type[TransientError], ...] = (StackBusyError, ThrottledError)
