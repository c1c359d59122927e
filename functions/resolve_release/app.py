"""Resolve Release: an ECR push or an action document → a release and its first units."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.resolve_release import ResolveDependencies, resolve_release


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: ResolveDependencies | None = None
) -> dict[str, Any]:
    result = resolve_release(event, deps or bootstrap.resolve_release())
    return result.model_dump(mode="json")
