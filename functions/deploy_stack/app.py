"""Deploy Stack: change the unit's stack and leave the task token to be completed by
the deployment-events function."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.deploy_stack import DeployDependencies, deploy_stack


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: DeployDependencies | None = None
) -> dict[str, Any]:
    deploy_stack(event, deps or bootstrap.deploy_stack())
    return {"waiting": True}
