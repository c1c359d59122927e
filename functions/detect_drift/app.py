"""Drift detection (scheduled): what runs in each target against what Shiplane deployed."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.detect_drift import DriftDependencies, detect_drift


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: DriftDependencies | None = None
) -> dict[str, Any]:
    result = detect_drift(event, deps or bootstrap.detect_drift())
    return result.model_dump(mode="json")
