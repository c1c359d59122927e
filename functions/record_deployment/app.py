"""Record Deployment: record how one deployment ended and free its slot."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.record_deployment import RecordDependencies, record_deployment


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: RecordDependencies | None = None
) -> dict[str, Any]:
    summary = record_deployment(event, deps or bootstrap.record_deployment())
    return summary.model_dump(mode="json")
