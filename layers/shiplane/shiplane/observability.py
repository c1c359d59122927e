"""Logging, tracing and metrics singletons shared by every handler.

The tracer is Powertools' Tracer only when tracing is on. Powertools builds its X-Ray
provider (importing the X-Ray SDK, a fifth of a handler's cold start) before it looks at
whether tracing is disabled, and disabling it goes through the SDK again; so with tracing
off (POWERTOOLS_TRACE_DISABLED, or outside Lambda: Powertools' own rule, asked of
Powertools) the handlers get `DisabledTracer`, which does what a disabled Tracer does for
them: nothing. With tracing on, the Tracer is built here at import as before, so the SDK
loads and patches during Lambda's INIT phase, not in the first request.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.tracing.tracer import Tracer

F = TypeVar("F", bound=Callable[..., Any])


class DisabledTracer:
    """The part of Powertools' Tracer the code uses, for when tracing is off: the
    decorators hand the function back unchanged, annotations go nowhere."""

    disabled = True

    def capture_lambda_handler(
        self, lambda_handler: F | None = None, **options: Any
    ) -> F | Callable[[F], F]:
        if lambda_handler is None:
            return lambda handler: handler
        return lambda_handler

    def capture_method(self, method: F | None = None, **options: Any) -> F | Callable[[F], F]:
        if method is None:
            return lambda function: function
        return method

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        return None


def tracing_disabled() -> bool:
    """Powertools' rule (a private method, but the rule must be the Tracer's own; a unit
    test pins it): POWERTOOLS_TRACE_DISABLED, or not in Lambda, or in SAM local."""
    return bool(Tracer._is_tracer_disabled())


def build_tracer() -> Tracer | DisabledTracer:
    return DisabledTracer() if tracing_disabled() else Tracer(service="shiplane")


logger = Logger(service="shiplane")
tracer = build_tracer()
metrics = Metrics(namespace="Shiplane", service="shiplane")

# Most invocations have nothing to count; an empty flush is normal here, not a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")
