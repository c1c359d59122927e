"""Logging, tracing and metrics singletons shared by every handler."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="shiplane")
tracer = Tracer(service="shiplane")
metrics = Metrics(namespace="Shiplane", service="shiplane")
