"""Wait For Approval: record the pending approval with its task token."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shiplane import bootstrap
from shiplane.observability import logger, metrics, tracer
from shiplane.services.approvals import ApprovalDependencies, request_approval


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, deps: ApprovalDependencies | None = None
) -> dict[str, Any]:
    approval = request_approval(event, deps or bootstrap.approvals())
    return {"status": approval.status}
