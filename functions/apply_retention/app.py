"""Retention (scheduled): delete releases past their lifecycle's retention policy."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.retention import RetentionDependencies, apply_retention


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: RetentionDependencies | None = None
) -> dict[str, Any]:
    result = apply_retention(event, deps or bootstrap.retention())
    return result.model_dump(mode="json")
