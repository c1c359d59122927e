"""Target health check (scheduled): role assumable, cluster ACTIVE, events arriving."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.target_health import HealthDependencies, check_targets


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: HealthDependencies | None = None
) -> dict[str, Any]:
    # The scheduled event carries nothing the check needs: every target is checked.
    report = check_targets(deps or bootstrap.target_health())
    return report.model_dump(mode="json")
