"""Settle Execution: a failed, timed-out or aborted pipeline execution ends its unfinished
deployments and frees their slots."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.settle_execution import SettleDependencies, settle_execution


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: SettleDependencies | None = None
) -> dict[str, Any]:
    result = settle_execution(event, deps or bootstrap.settle_execution())
    return result.model_dump(mode="json")
