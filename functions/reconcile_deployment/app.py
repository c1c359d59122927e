"""Reconcile Deployment: one check after a wait timed out."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.reconcile_deployment import ReconcileDependencies, reconcile_deployment


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: ReconcileDependencies | None = None
) -> dict[str, Any]:
    outcome = reconcile_deployment(event, deps or bootstrap.reconcile_deployment())
    return outcome.model_dump(mode="json")
