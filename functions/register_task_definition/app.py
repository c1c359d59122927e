"""Register Task Definition: render and register one unit's task definition."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.register_task_definition import (
    RegisterDependencies,
    register_task_definition,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: RegisterDependencies | None = None
) -> dict[str, Any]:
    unit = register_task_definition(event, deps or bootstrap.register_task_definition())
    return unit.model_dump(mode="json")
