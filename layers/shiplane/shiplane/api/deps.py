"""What the API's routes need, built once per warm Lambda by `shiplane.bootstrap.api()`
and handed to the resolver per invocation (tests pass fakes). Adapters create their
boto3 clients on first use, so a route pays only for the clients it touches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter


@dataclass
class ApiDependencies:
    # The DynamoDB store: ConfigStore, ReleaseStore, DeploymentStore, ApprovalStore,
    # TargetHealthStore and the audit log (`audit_put`, `put_audit`, `list_audit`).
    store: Any
    now: Callable[[], datetime]
    pipeline: Any = None  # starts / stops deploy-pipeline executions (Step Functions)
    tokens: Any = None  # TaskTokens: completes approval and queue task tokens
    secrets: Any = None  # SecretStore: SSM SecureString for sensitive values
    registry: Any = None  # ImageRegistry: ECR, for releases created through the API
    gateways: Any = None  # TargetGateways: render / diff against the target accounts
    scheduler: Any = None  # one-time schedules (EventBridge Scheduler)


def deps(router: BaseRouter) -> ApiDependencies:
    found = router.context.get("deps")
    if not isinstance(found, ApiDependencies):
        raise RuntimeError("the API's dependencies were not set for this invocation")
    return found
