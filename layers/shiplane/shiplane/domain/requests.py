"""What starts or moves the pipeline: the inputs the functions accept, as models.

The state machine's input is an ECR push (an EventBridge event) or an action document
that a person pastes into the Step Functions console ("Start execution").
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from shiplane.domain.models import DEFAULT_CHANNEL, NAME_PATTERN, UNTENANTED, ImageRef


class EcrImageActionDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    result: Literal["SUCCESS", "FAILURE"]
    repository_name: str = Field(alias="repository-name", min_length=2)
    image_digest: str = Field(alias="image-digest", pattern=r"^sha256:[0-9a-f]{64}$")
    action_type: Literal["PUSH", "DELETE"] = Field(alias="action-type")
    # A push by digest carries no tag (ECR sends no `image-tag`, or an empty one).
    image_tag: str = Field(default="", alias="image-tag", max_length=128)


class EcrPushEvent(EventBridgeModel):
    source: Literal["aws.ecr"]
    detail_type: Literal["ECR Image Action"] = Field(alias="detail-type")
    detail: EcrImageActionDetail


class DeployAction(BaseModel):
    """`{"action": "deploy", "project": "web", "release": "1.0.0", "environment": "prod"}`"""

    model_config = ConfigDict(extra="forbid")

    action: Literal["deploy"]
    project: str = Field(pattern=NAME_PATTERN)
    release: str = Field(min_length=1, max_length=128)
    environment: str = Field(pattern=NAME_PATTERN)
    tenant: str = UNTENANTED
    requested_by: str = ""
    via: Literal["console", "api", "schedule"] = Field(
        default="console", description="what asked: recorded as the deployment's trigger"
    )
    mode: Literal["deploy", "redeploy"] = Field(
        default="deploy",
        description="redeploy: deploy even while the same release is queued or running "
        "there (as the API's `mode`); otherwise such a request is recorded as a duplicate",
    )


class CreateReleaseAction(BaseModel):
    """`{"action": "create-release", "project": "web", "version": "1.4.0", "images":
    {"web": {"repository": "web", "registry": "...", "tag": "1.4.0", "digest": "sha256:..."}}}`:
    a release with images already chosen and pinned (the API resolves tags to digests),
    created like a push's, with its first automatic deployments."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["create-release"]
    project: str = Field(pattern=NAME_PATTERN)
    version: str = Field(min_length=1, max_length=128)
    channel: str = Field(default=DEFAULT_CHANNEL, pattern=NAME_PATTERN)
    images: dict[str, ImageRef] = Field(min_length=1, description="keyed by repository")
    requested_by: str = ""


class ResolveReleaseRequest(BaseModel):
    """What Resolve Release receives: the execution's input and its name."""

    input: dict[str, Any]
    execution: str = Field(min_length=1, max_length=80)


PipelineInput = EcrPushEvent | DeployAction | CreateReleaseAction


def parse_pipeline_input(payload: dict[str, Any]) -> PipelineInput:
    """An ECR push event or an action; raises pydantic's ValidationError naming the field."""
    if payload.get("action") == "create-release":
        return CreateReleaseAction.model_validate(payload)
    if "action" in payload:
        return DeployAction.model_validate(payload)
    return EcrPushEvent.model_validate(payload)


class StackStatusDetails(BaseModel):
    status: str
    status_reason: str = Field(default="", alias="status-reason")


class StackStatusChangeDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    stack_id: str = Field(alias="stack-id", pattern=r"^arn:aws[a-z-]*:cloudformation:")
    status_details: StackStatusDetails = Field(alias="status-details")
    # Shared by every event of one stack operation started with a ClientRequestToken.
    client_request_token: str = Field(default="", alias="client-request-token")


class StackStatusChangeEvent(EventBridgeModel):
    source: Literal["aws.cloudformation"]
    detail_type: Literal["CloudFormation Stack Status Change"] = Field(alias="detail-type")
    detail: StackStatusChangeDetail


class EcsDeploymentDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    event_type: str = Field(alias="eventType")
    event_name: str = Field(alias="eventName")
    deployment_id: str = Field(default="", alias="deploymentId")
    reason: str = ""


class EcsDeploymentEvent(EventBridgeModel):
    source: Literal["aws.ecs"]
    detail_type: Literal["ECS Deployment State Change"] = Field(alias="detail-type")
    detail: EcsDeploymentDetail


class ExecutionStatusDetail(BaseModel):
    """Step Functions' "Execution Status Change" detail (the fields Shiplane reads)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    execution_arn: str = Field(alias="executionArn", pattern=r"^arn:aws[a-z-]*:states:")
    state_machine_arn: str = Field(alias="stateMachineArn")
    name: str = Field(min_length=1, max_length=80)
    status: Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]
    error: str | None = None
    cause: str | None = None


class ExecutionStatusChangeEvent(EventBridgeModel):
    source: Literal["aws.states"]
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: ExecutionStatusDetail
