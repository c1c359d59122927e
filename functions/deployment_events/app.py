"""Deployment events: CloudFormation and ECS status events → task-token callbacks."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.deployment_events import EventsDependencies, handle_deployment_event


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: EventsDependencies | None = None
) -> dict[str, Any]:
    result = handle_deployment_event(event, deps or bootstrap.deployment_events())
    return result.model_dump(mode="json")
