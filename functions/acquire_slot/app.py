"""Acquire Slot: take the project/environment/tenant slot, or queue for it."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.slots import SlotDependencies, acquire_slot


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: SlotDependencies | None = None
) -> dict[str, Any]:
    acquire_slot(event, deps or bootstrap.slots())
    return {"waiting": True}
