"""The REST API (API Gateway, AWS_IAM): every route is in `shiplane.api.routes`."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.api.app import handle
from shiplane.api.deps import ApiDependencies
from shiplane.observability import logger, metrics, tracer


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: ApiDependencies | None = None
) -> dict[str, Any]:
    return handle(event, context, deps or bootstrap.api())
