"""Mark Unit Failed: a unit ended in error; the deployment's later units will not deploy."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.record_deployment import RecordDependencies, note_unit_failure


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: RecordDependencies | None = None
) -> dict[str, Any]:
    note_unit_failure(event, deps or bootstrap.record_deployment())
    return {"recorded": True}
