"""Settle Execution: a failed, timed-out or aborted pipeline execution ends its unfinished
deployments and frees their slots. Driven by Step Functions' status events; a schedule
(`{"job": "settle-executions"}`) sweeps the executions whose event never came."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.settle_execution import (
    SettleDependencies,
    settle_execution,
    sweep_executions,
)

SWEEP_JOB = "settle-executions"
# What a sweep leaves of its invocation's time: it stops checking executions this long
# before the function's timeout, so it ends cleanly and the next sweep goes on.
SWEEP_MARGIN_SECONDS = 30


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: SettleDependencies | None = None
) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("job") == SWEEP_JOB:
        seconds = context.get_remaining_time_in_millis() / 1000 - SWEEP_MARGIN_SECONDS
        swept = sweep_executions(deps or bootstrap.settle_execution(), seconds)
        return swept.model_dump(mode="json")
    result = settle_execution(event, deps or bootstrap.settle_execution())
    return result.model_dump(mode="json")
