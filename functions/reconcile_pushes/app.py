"""Reconcile missed ECR pushes (scheduled): images pushed recently that no release pins
get the pipeline input their lost push event would have given."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.reconcile_pushes import ReconcilePushesDependencies, reconcile_pushes


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: ReconcilePushesDependencies | None = None
) -> dict[str, Any]:
    result = reconcile_pushes(event, deps or bootstrap.reconcile_pushes())
    return result.model_dump(mode="json")
