"""Logging, tracing and metrics singletons shared by every handler."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="shiplane")
tracer = Tracer(service="shiplane")
metrics = Metrics(namespace="Shiplane", service="shiplane")

# Most invocations have nothing to count; an empty flush is normal here, not a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")
