"""Gate Promotion: record outcomes, then start the next phase or stop and wait."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.gate_promotion import GateDependencies, gate_promotion


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: GateDependencies | None = None
) -> dict[str, Any]:
    result = gate_promotion(event, deps or bootstrap.gate_promotion())
    return result.model_dump(mode="json")
