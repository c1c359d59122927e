"""A target account, reached through its deploy role: ECS and CloudFormation there."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from shiplane.adapters.throttling import THROTTLING_CODES, is_throttling
from shiplane.domain.models import Target
from shiplane.domain.naming import role_session_name
from shiplane.errors import (
    InvalidRequestError,
    StackBusyError,
    TargetUnavailableError,
    ThrottledError,
)
from shiplane.observability import logger
from shiplane.ports import ResourceChange, ServiceState, StackState

_FAILED_STATUSES = ("_FAILED",)
# How CloudFormation says a change set would change nothing (it fails the change set).
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
# A preview waits at most this long for its change set (30 polls, 2 s apart).
CHANGE_SET_WAIT = {"Delay": 2, "MaxAttempts": 30}


def _translate(exc: ClientError, what: str) -> Exception:
    code = exc.response["Error"]["Code"]
    message = exc.response["Error"].get("Message", "")
    if code in THROTTLING_CODES:
        return ThrottledError(f"{what}: throttled")
    if "_IN_PROGRESS state" in message or "in progress" in message.lower():
        return StackBusyError(f"{what}: {message}")
    if code in ("ValidationError", "InvalidParameterException", "ClientException"):
        return InvalidRequestError(f"{what}: {message}")
    return exc


class BotoTargetGateway:
    """ECS and CloudFormation in one target account and region."""

    def __init__(self, ecs: Any, cloudformation: Any) -> None:
        self.ecs = ecs
        self.cloudformation = cloudformation

    # ------------------------------------------------------------------ ECS

    def register_task_definition(self, definition: dict[str, Any]) -> str:
        try:
            response = self.ecs.register_task_definition(**definition)
        except ClientError as exc:
            raise _translate(exc, "register task definition") from exc
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def cluster_status(self, cluster: str) -> str | None:
        try:
            response = self.ecs.describe_clusters(clusters=[cluster])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in THROTTLING_CODES:
                raise ThrottledError(f"describe cluster {cluster}: throttled") from exc
            raise TargetUnavailableError(
                f"cannot describe cluster {cluster}: "
                f"{exc.response['Error'].get('Message', exc.response['Error']['Code'])}"
            ) from exc
        clusters = response.get("clusters", [])
        return str(clusters[0]["status"]) if clusters else None

    def describe_service(self, cluster: str, service: str) -> ServiceState | None:
        try:
            response = self.ecs.describe_services(cluster=cluster, services=[service])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ClusterNotFoundException":
                return None  # no cluster, no service: the diagnosis says why
            raise _translate(exc, f"describe service {service}") from exc
        services = [s for s in response.get("services", []) if s.get("status") != "INACTIVE"]
        if not services:
            return None
        found = services[0]
        primary: dict[str, Any] = next(
            (d for d in found.get("deployments", []) if d.get("status") == "PRIMARY"),
            {},
        )
        return ServiceState(
            task_definition_arn=found.get("taskDefinition", ""),
            rollout_state=primary.get("rolloutState", "COMPLETED"),
            rollout_reason=primary.get("rolloutStateReason", ""),
            running_count=int(found.get("runningCount", 0)),
            desired_count=int(found.get("desiredCount", 0)),
            events=tuple(e.get("message", "") for e in found.get("events", [])[:10]),
            deployment_id=str(primary.get("id", "")),
        )

    def stopped_task_reasons(self, cluster: str, family: str, limit: int = 10) -> list[str]:
        try:
            arns = self.ecs.list_tasks(cluster=cluster, family=family, desiredStatus="STOPPED")[
                "taskArns"
            ][:limit]
            if not arns:
                return []
            tasks = self.ecs.describe_tasks(cluster=cluster, tasks=arns).get("tasks", [])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ClusterNotFoundException":
                return [f"cluster {cluster} does not exist"]
            raise _translate(exc, "describe stopped tasks") from exc
        reasons = []
        for task in tasks:
            containers = "; ".join(
                f"{c.get('name')}: {c.get('reason') or 'exit ' + str(c.get('exitCode'))}"
                for c in task.get("containers", [])
                if c.get("reason") or c.get("exitCode") not in (None, 0)
            )
            reason = task.get("stoppedReason", "stopped")
            reasons.append(
                f"{task['taskArn'].rsplit('/', 1)[-1]}: {reason}"
                + (f" ({containers})" if containers else "")
            )
        return reasons

    def describe_task_definition(self, arn: str) -> dict[str, Any]:
        try:
            response = self.ecs.describe_task_definition(taskDefinition=arn)
        except ClientError as exc:
            raise _translate(exc, f"describe task definition {arn}") from exc
        return dict(response["taskDefinition"])

    # ------------------------------------------------------------------ CloudFormation

    def preview_stack_update(
        self,
        stack_name: str,
        template: dict[str, Any],
        parameters: dict[str, str],
        role_arn: str,
    ) -> list[ResourceChange]:
        # No Tags: the stack keeps its own, so only the template and parameters count.
        args = self._stack_args(stack_name, template, parameters, {}, role_arn)
        del args["Tags"]
        name = f"shiplane-preview-{uuid.uuid4().hex[:12]}"
        try:
            change_set = self.cloudformation.create_change_set(
                **args, ChangeSetName=name, ChangeSetType="UPDATE"
            )["Id"]
        except ClientError as exc:
            # Some CloudFormations refuse an empty change set outright instead of failing it.
            if any(text in exc.response["Error"].get("Message", "") for text in _NO_CHANGES):
                return []
            raise _translate(exc, f"create change set for {stack_name}") from exc
        try:
            return self._change_set_changes(stack_name, change_set)
        finally:
            try:
                self.cloudformation.delete_change_set(ChangeSetName=change_set)
            except ClientError as exc:  # a leftover change set is harmless; say so
                logger.warning(
                    "preview change set not deleted",
                    extra={"change_set": change_set, "error": str(exc)},
                )

    def _change_set_changes(self, stack_name: str, change_set: str) -> list[ResourceChange]:
        # FAILED (maybe "no changes") or still pending: the description says which.
        with contextlib.suppress(WaiterError):
            self.cloudformation.get_waiter("change_set_create_complete").wait(
                ChangeSetName=change_set, WaiterConfig=CHANGE_SET_WAIT
            )
        changes: list[ResourceChange] = []
        args: dict[str, Any] = {"ChangeSetName": change_set}
        while True:
            try:
                described = self.cloudformation.describe_change_set(**args)
            except ClientError as exc:
                raise _translate(exc, f"describe change set of {stack_name}") from exc
            status = described.get("Status", "")
            reason = described.get("StatusReason", "")
            if status == "FAILED" and any(text in reason for text in _NO_CHANGES):
                return []
            if status != "CREATE_COMPLETE":
                raise InvalidRequestError(
                    f"change set for {stack_name} is {status or 'unknown'}"
                    + (f": {reason}" if reason else "")
                )
            for change in described.get("Changes", []):
                resource = change.get("ResourceChange", {})
                changes.append(
                    ResourceChange(
                        action=str(resource.get("Action", "")),
                        logical_id=str(resource.get("LogicalResourceId", "")),
                        resource_type=str(resource.get("ResourceType", "")),
                        replacement=str(resource.get("Replacement", "")),
                    )
                )
            if not described.get("NextToken"):
                return changes
            args["NextToken"] = described["NextToken"]

    def describe_stack(self, stack_name: str) -> StackState | None:
        try:
            stacks = self.cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in exc.response["Error"].get("Message", ""):
                return None
            raise _translate(exc, f"describe stack {stack_name}") from exc
        stack = stacks[0]
        if stack["StackStatus"] == "DELETE_COMPLETE":
            return None
        return StackState(
            stack_id=stack["StackId"],
            status=stack["StackStatus"],
            status_reason=stack.get("StackStatusReason", ""),
            parameters={
                p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])
            },
            outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
        )

    def _stack_args(
        self,
        stack_name: str,
        template: dict[str, Any],
        parameters: dict[str, str],
        tags: dict[str, str],
        role_arn: str,
        capabilities: Sequence[str] = (),
    ) -> dict[str, Any]:
        args: dict[str, Any] = {
            "StackName": stack_name,
            "TemplateBody": json.dumps(template),
            "Parameters": [
                {"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())
            ],
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            # Always: without a role CloudFormation acts as the deploy role itself.
            "RoleARN": role_arn,
        }
        if capabilities:
            args["Capabilities"] = list(capabilities)
        return args

    def create_stack(
        self,
        stack_name: str,
        template: dict[str, Any],
        parameters: dict[str, str],
        tags: dict[str, str],
        role_arn: str,
        *,
        capabilities: Sequence[str] = (),
        client_request_token: str | None = None,
    ) -> str:
        args = self._stack_args(stack_name, template, parameters, tags, role_arn, capabilities)
        if client_request_token:
            args["ClientRequestToken"] = client_request_token
        try:
            return str(self.cloudformation.create_stack(**args)["StackId"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "AlreadyExistsException":
                raise StackBusyError(f"stack {stack_name} is being created elsewhere") from exc
            raise _translate(exc, f"create stack {stack_name}") from exc

    def update_stack(
        self,
        stack_name: str,
        template: dict[str, Any],
        parameters: dict[str, str],
        tags: dict[str, str],
        role_arn: str,
        *,
        capabilities: Sequence[str] = (),
        client_request_token: str | None = None,
    ) -> str | None:
        args = self._stack_args(stack_name, template, parameters, tags, role_arn, capabilities)
        if client_request_token:
            args["ClientRequestToken"] = client_request_token
        try:
            return str(self.cloudformation.update_stack(**args)["StackId"])
        except ClientError as exc:
            if "No updates are to be performed" in exc.response["Error"].get("Message", ""):
                return None
            raise _translate(exc, f"update stack {stack_name}") from exc

    def delete_stack(self, stack_name: str, client_request_token: str | None = None) -> None:
        args: dict[str, Any] = {"StackName": stack_name}
        if client_request_token:
            args["ClientRequestToken"] = client_request_token
        try:
            self.cloudformation.delete_stack(**args)
        except ClientError as exc:
            raise _translate(exc, f"delete stack {stack_name}") from exc

    def stack_operation_token(self, stack_name: str) -> str | None:
        try:
            events = self.cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
        except ClientError as exc:
            raise _translate(exc, f"describe stack events of {stack_name}") from exc
        # Newest first; the stack's own events (not its resources') mark its operations.
        for event in events:
            if event.get("ResourceType") == "AWS::CloudFormation::Stack":
                return str(event.get("ClientRequestToken") or "") or None
        return None

    def continue_update_rollback(self, stack_name: str, role_arn: str) -> None:
        args: dict[str, Any] = {"StackName": stack_name, "RoleARN": role_arn}
        try:
            self.cloudformation.continue_update_rollback(**args)
        except ClientError as exc:
            raise _translate(exc, f"continue update rollback of {stack_name}") from exc

    def stack_failure_events(self, stack_name: str, limit: int = 10) -> list[str]:
        try:
            events = self.cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
        except ClientError as exc:
            raise _translate(exc, f"describe stack events of {stack_name}") from exc
        failures = [
            f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
            for e in events
            if e.get("ResourceStatus", "").endswith(_FAILED_STATUSES)
        ]
        return failures[:limit]


class AssumedRoleGateways:
    """Builds a TargetGateway per target by assuming its deploy role with its external ID;
    the session name names the deployment, so CloudTrail says who did what."""

    def __init__(self, sts: Any = None, session_factory: Any = None) -> None:
        self._sts = sts
        self._session_factory = session_factory

    @property
    def sts(self) -> Any:
        if self._sts is None:
            import boto3

            self._sts = boto3.client("sts")
        return self._sts

    def for_target(self, target: Target, deployment_id: str) -> BotoTargetGateway:
        import boto3

        args: dict[str, Any] = {
            "RoleArn": target.deploy_role_arn,
            "RoleSessionName": role_session_name(deployment_id),
            "DurationSeconds": 900,
        }
        if target.external_id:
            args["ExternalId"] = target.external_id
        try:
            credentials = self.sts.assume_role(**args)["Credentials"]
        except ClientError as exc:
            cause = exc.response["Error"].get("Message", exc.response["Error"]["Code"])
            if is_throttling(exc):
                # STS answers "Throttling" when many deployments assume roles at once: wait
                # and retry, never a dead target.
                raise ThrottledError(
                    f"target {target.name!r}: assuming {target.deploy_role_arn} throttled"
                ) from exc
            raise TargetUnavailableError(
                f"target {target.name!r}: cannot assume {target.deploy_role_arn}: {cause}",
                target=target.name,
                cause=cause,
            ) from exc
        factory = self._session_factory or boto3.session.Session
        session = factory(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=target.region,
        )
        return BotoTargetGateway(
            ecs=session.client("ecs"), cloudformation=session.client("cloudformation")
        )
