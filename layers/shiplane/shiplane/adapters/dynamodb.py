"""The single-table DynamoDB store: configuration, releases, deployments, waits."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from shiplane.adapters import keys
from shiplane.adapters.throttling import THROTTLING_CODES
from shiplane.api.concurrency import etag_of
from shiplane.domain.audit import AuditRecord
from shiplane.domain.drift import DriftReport
from shiplane.domain.health import TargetActivity, TargetHealth
from shiplane.domain.models import (
    Configuration,
    Deployment,
    DeploymentStatus,
    Diagnosis,
    Environment,
    Lifecycle,
    Project,
    Release,
    Target,
    Tenant,
)
from shiplane.domain.naming import service_key
from shiplane.domain.schedules import ScheduledDeployment, ScheduleStatus
from shiplane.domain.variables import Variable
from shiplane.errors import (
    InvalidRequestError,
    NotFoundError,
    PreconditionFailedError,
    ThrottledError,
)
from shiplane.ports import (
    Approval,
    ConfigWrite,
    LiveExecution,
    QueuedDeployment,
    StackWait,
    StoredResource,
)

# Attempts of a throttled DynamoDB call, and its backoff (seconds): base doubling, capped.
THROTTLE_ATTEMPTS = 4
THROTTLE_BASE = 0.05
THROTTLE_CAP = 1.0

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_TRANSACTION_LIMIT = 100


def _item(key: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in {**body, **key}.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _deserializer.deserialize(v) for k, v in item.items() if k not in ("pk", "sk", "kind")
    }


def _json_numbers(value: Any) -> Any:
    """DynamoDB's numbers (Decimal) back as the JSON numbers they were written as."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_numbers(v) for v in value]
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat()


class DynamoStore:
    """Implements ConfigStore, ReleaseStore, DeploymentStore, WaitStore and TargetHealthStore."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    # ------------------------------------------------------------------ plumbing

    def _call(self, operation: str, **kwargs: Any) -> Any:
        # A throttled request did not take effect, so it is sent again (full-jitter
        # backoff, as AWS advises for ProvisionedThroughputExceededException) a few times
        # before the step gives up with ThrottledError and the state machine retries it.
        # A step reads the table many times: without this, one throttle in ten calls
        # would rerun the whole step, and a busy table could exhaust its retries.
        for attempt in range(THROTTLE_ATTEMPTS):
            try:
                return getattr(self.client, operation)(TableName=self.table_name, **kwargs)
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in THROTTLING_CODES:
                    raise
                if attempt + 1 == THROTTLE_ATTEMPTS:
                    raise ThrottledError(f"DynamoDB {operation} throttled") from exc
                time.sleep(random.uniform(0, min(THROTTLE_CAP, THROTTLE_BASE * 2**attempt)))
        raise AssertionError("unreachable")

    def _conditional(self, operation: str, **kwargs: Any) -> bool:
        """A write guarded by a condition: False when the condition did not hold."""
        try:
            self._call(operation, **kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _next(self, key: dict[str, str]) -> int:
        """An atomic counter: 1, 2, 3… per key."""
        response = self._call(
            "update_item",
            Key=_item(key, {}),
            UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "value"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["value"]["N"])

    def _get(self, key: dict[str, str]) -> dict[str, Any] | None:
        response = self._call("get_item", Key=_item(key, {}), ConsistentRead=True)
        item = response.get("Item")
        return _plain(item) if item else None

    def _query(self, pk: str, sk_prefix: str = "") -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk"
            + (" AND begins_with(sk, :prefix)" if sk_prefix else ""),
            "ExpressionAttributeValues": {":pk": {"S": pk}}
            | ({":prefix": {"S": sk_prefix}} if sk_prefix else {}),
            "ConsistentRead": True,
        }
        while True:
            response = self._call("query", **kwargs)
            for item in response.get("Items", []):
                yield _plain(item) | {"_sk": item["sk"]["S"]}
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """Write all or nothing; False when a condition failed."""
        for item in items:
            for op in item.values():
                op["TableName"] = self.table_name
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons", [])
                if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or not reasons:
                    return False
                raise ThrottledError("DynamoDB transaction cancelled: retry") from exc
            if code in THROTTLING_CODES:
                raise ThrottledError("DynamoDB transaction throttled") from exc
            raise
        return True

    # ------------------------------------------------------------------ configuration

    def save_configuration(self, config: Configuration) -> None:
        writes: list[dict[str, Any]] = []
        for kind, entries in (
            ("ENVIRONMENT", config.environments),
            ("LIFECYCLE", config.lifecycles),
            ("TARGET", config.targets),
            ("PROJECT", config.projects),
            ("TENANT", config.tenants),
        ):
            for position, entry in enumerate(entries):
                data = entry.model_dump(mode="json")
                body = data | {"kind": kind, "position": position, "etag": etag_of(data)}
                writes.append({"Put": {"Item": _item(keys.config(kind, entry.name), body)}})
        for project in config.projects:
            for repository in project.repositories:
                key = keys.repository_index(repository, project.name)
                writes.append({"Put": {"Item": _item(key, {"project": project.name})}})
        if len(writes) > _TRANSACTION_LIMIT:
            # Past one transaction's reach, writes stay idempotent puts in a stable order.
            for write in writes:
                self._call("put_item", Item=write["Put"]["Item"])
            return
        self._transact(writes)

    def _config(self, kind: str, name: str) -> dict[str, Any]:
        item = self._get(keys.config(kind, name))
        if item is None:
            raise NotFoundError(f"{kind.lower()} {name!r} does not exist", kind=kind, name=name)
        item.pop("position", None)
        item.pop("etag", None)
        return item

    def _config_list(self, kind: str) -> list[dict[str, Any]]:
        items = sorted(self._query(keys.config_partition(kind)), key=lambda i: i["position"])
        for item in items:
            item.pop("position", None)
            item.pop("etag", None)
            item.pop("_sk", None)
        return items

    def list_environments(self) -> list[Environment]:
        return [Environment.model_validate(i) for i in self._config_list("ENVIRONMENT")]

    def get_lifecycle(self, name: str) -> Lifecycle:
        return Lifecycle.model_validate(self._config("LIFECYCLE", name))

    def get_project(self, name: str) -> Project:
        return Project.model_validate(self._config("PROJECT", name))

    def list_projects(self) -> list[Project]:
        return [Project.model_validate(i) for i in self._config_list("PROJECT")]

    def list_targets(self) -> list[Target]:
        return [Target.model_validate(i) for i in self._config_list("TARGET")]

    def get_target(self, name: str) -> Target:
        return Target.model_validate(self._config("TARGET", name))

    def list_tenants(self) -> list[Tenant]:
        return [Tenant.model_validate(i) for i in self._config_list("TENANT")]

    def get_tenant(self, name: str) -> Tenant:
        return Tenant.model_validate(self._config("TENANT", name))

    def projects_for_repository(self, repository: str) -> list[str]:
        return sorted(i["project"] for i in self._query(keys.repository_partition(repository)))

    # ------------------------------------------------------------------ configuration resources

    @staticmethod
    def _stored(kind: str, item: dict[str, Any]) -> StoredResource:
        item.pop("_sk", None)
        position = item.pop("position", 0)
        etag = item.pop("etag", None)
        data: dict[str, Any] = _json_numbers(item)
        return StoredResource(
            kind=kind,
            name=str(data["name"]),
            data=data,
            # Items written before ETags were stored: the ETag of what is there.
            etag=str(etag) if etag else etag_of(data),
            position=Decimal(position),
        )

    def list_config(self, kind: str) -> list[StoredResource]:
        found = [self._stored(kind, i) for i in self._query(keys.config_partition(kind))]
        return sorted(found, key=lambda r: (r.position, r.name))

    def get_config(self, kind: str, name: str) -> StoredResource | None:
        item = self._get(keys.config(kind, name))
        return self._stored(kind, item) if item else None

    @staticmethod
    def _etag_condition(expected: str | None) -> dict[str, Any]:
        if expected is None:
            return {"ConditionExpression": "attribute_not_exists(pk)"}
        return {
            "ConditionExpression": "etag = :etag OR "
            "(attribute_exists(pk) AND attribute_not_exists(etag))",
            "ExpressionAttributeValues": {":etag": {"S": expected}},
        }

    def write_config(self, writes: Sequence[ConfigWrite], audit: Sequence[AuditRecord]) -> None:
        """All the writes and their audit records in one transaction, each write
        conditional on the ETag it was read with: PreconditionFailedError when one moved."""
        items: list[dict[str, Any]] = []
        for write in writes:
            key = keys.config(write.kind, write.name)
            condition = self._etag_condition(write.expected_etag)
            if write.data is None:
                items.append({"Delete": {"Key": _item(key, {}), **condition}})
            else:
                body = write.data | {
                    "kind": write.kind,
                    "position": write.position,
                    "etag": write.etag,
                }
                items.append({"Put": {"Item": _item(key, body), **condition}})
            for repository in write.repositories_removed:
                index = keys.repository_index(repository, write.name)
                items.append({"Delete": {"Key": _item(index, {})}})
            for repository in write.repositories_added:
                index = keys.repository_index(repository, write.name)
                items.append({"Put": {"Item": _item(index, {"project": write.name})}})
        items += [self.audit_put(record) for record in audit]
        if not items:
            return
        if len(items) > _TRANSACTION_LIMIT:
            raise InvalidRequestError(
                f"this change needs {len(items)} writes; one atomic change holds at most "
                f"{_TRANSACTION_LIMIT} (a resource, its audit record and repository index "
                "entries): apply it in smaller parts",
                field="body",
            )
        try:
            written = self._transact(items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ValidationException":
                raise InvalidRequestError(
                    f"DynamoDB refused the change: {exc.response['Error'].get('Message', '')}",
                    field="body",
                ) from exc
            raise
        if not written:
            raise PreconditionFailedError(
                "the configuration changed while this request was served: read it again",
                field="header.If-Match",
            )

    # ------------------------------------------------------------------ releases

    def get_release(self, project: str, version: str) -> Release | None:
        item = self._get(keys.release(project, version))
        return Release.model_validate(item) if item else None

    def list_releases(self, project: str) -> list[Release]:
        items = self._query(keys.project_partition(project), keys.RELEASE_PREFIX)
        releases = [
            Release.model_validate({k: v for k, v in i.items() if k != "_sk"}) for i in items
        ]
        return sorted(releases, key=lambda r: r.created_at)

    def next_release_sequence(self, project: str) -> int:
        return self._next(keys.release_sequence(project))

    def update_release_variables(
        self, project: str, version: str, variables: Sequence[Variable]
    ) -> None:
        try:
            self._call(
                "update_item",
                Key=_item(keys.release(project, version), {}),
                UpdateExpression="SET variables = :v",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={
                    ":v": _serializer.serialize([v.model_dump(mode="json") for v in variables])
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise NotFoundError(f"project {project!r} has no release {version!r}") from exc
            raise

    def delete_release(self, project: str, version: str) -> None:
        self._call("delete_item", Key=_item(keys.release(project, version), {}))
        markers = [
            *self._query(keys.project_partition(project), keys.claim_prefix(version)),
            *self._query(keys.project_partition(project), keys.success_prefix(version)),
        ]
        for item in markers:
            self._call(
                "delete_item",
                Key=_item({"pk": keys.project_partition(project), "sk": item["_sk"]}, {}),
            )

    def create_release(
        self, release: Release, deployments: Sequence[Deployment], claims: Sequence[str]
    ) -> bool:
        writes = [
            {
                "Put": {
                    "Item": _item(
                        keys.release(release.project, release.version),
                        release.model_dump(mode="json"),
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        writes += self._deployment_writes(deployments, claims)
        return self._transact(writes)

    # ------------------------------------------------------------------ deployments

    def _deployment_writes(
        self, deployments: Sequence[Deployment], claims: Sequence[str]
    ) -> list[dict[str, Any]]:
        writes: list[dict[str, Any]] = []
        # One entry per execution (a transaction may not touch an item twice), written with
        # its deployments: a sweep finds it even if the execution dies at once.
        for execution in dict.fromkeys(d.execution for d in deployments if d.execution):
            live = {"execution": execution, "since": _now()}
            writes.append({"Put": {"Item": _item(keys.live_execution(execution), live)}})
        for deployment, claim in zip(deployments, claims, strict=True):
            body = deployment.model_dump(mode="json")
            # Unset timestamps stay absent: `if_not_exists(started_at, ...)` treats a NULL
            # attribute as existing and would never record the start.
            for unset in ("started_at", "finished_at"):
                if body.get(unset) is None:
                    body.pop(unset, None)
            writes.append(
                {
                    "Put": {
                        "Item": _item(keys.deployment(deployment.project, deployment.id), body),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
            if deployment.execution:
                index = keys.execution_deployment(
                    deployment.execution, deployment.project, deployment.id
                )
                body = {"project": deployment.project, "deployment_id": deployment.id}
                writes.append({"Put": {"Item": _item(index, body)}})
            if claim:
                key = keys.claim(
                    deployment.project,
                    deployment.release,
                    deployment.environment,
                    deployment.tenant,
                )
                writes.append(
                    {
                        "Put": {
                            "Item": _item(key, {"deployment_id": deployment.id}),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                )
        return writes

    def claimed_places(self, project: str, release: str) -> set[tuple[str, str]]:
        prefix = keys.claim_prefix(release)
        places = set()
        for item in self._query(keys.project_partition(project), prefix):
            environment, _, tenant = item["_sk"][len(prefix) :].partition("#")
            places.add((environment, tenant))
        return places

    def create_deployments(self, deployments: Sequence[Deployment], claims: Sequence[str]) -> bool:
        if not deployments:
            return True
        return self._transact(self._deployment_writes(deployments, claims))

    def get_deployment(self, project: str, deployment_id: str) -> Deployment:
        item = self._get(keys.deployment(project, deployment_id))
        if item is None:
            raise NotFoundError(
                f"deployment {deployment_id!r} of project {project!r} does not exist",
                deployment_id=deployment_id,
            )
        return Deployment.model_validate(item)

    def deployments_of_execution(self, execution: str) -> list[Deployment]:
        found = []
        for item in self._query(keys.execution_partition(execution)):
            try:
                found.append(self.get_deployment(item["project"], item["deployment_id"]))
            except NotFoundError:  # deleted since (retention): nothing left to end
                continue
        return found

    def live_executions(self) -> list[LiveExecution]:
        found = [
            LiveExecution(name=item["execution"], since=item["since"])
            for item in self._query(keys.LIVE_EXECUTIONS)
        ]
        return sorted(found, key=lambda live: live.since)

    def forget_execution(self, execution: str) -> None:
        self._call("delete_item", Key=_item(keys.live_execution(execution), {}))

    def list_deployments(self, project: str) -> list[Deployment]:
        items = self._query(keys.project_partition(project), keys.DEPLOYMENT_PREFIX)
        deployments = [
            Deployment.model_validate({k: v for k, v in i.items() if k != "_sk"}) for i in items
        ]
        return sorted(deployments, key=lambda d: d.created_at)

    def mark_deploying(self, project: str, deployment_id: str, target: str, **fields: Any) -> None:
        """Record progress of one target; the first call moves QUEUED to DEPLOYING."""
        names = {"#status": "status", "#t": target}
        values: dict[str, Any] = {
            ":deploying": DeploymentStatus.DEPLOYING.value,
            ":queued": DeploymentStatus.QUEUED.value,
            ":now": _now(),
        }
        sets = [
            "#status = :deploying",
            "started_at = if_not_exists(started_at, :now)",
        ]
        for name, value in fields.items():
            names[f"#{name}"] = name
            values[f":{name}"] = value
            sets.append(f"#{name}.#t = :{name}")
        # Condition: a finished deployment is never reopened by a late retry.
        self._conditional(
            "update_item",
            Key=_item(keys.deployment(project, deployment_id), {}),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="#status IN (:queued, :deploying)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={k: _serializer.serialize(v) for k, v in values.items()},
        )

    def record_step_outputs(
        self, project: str, deployment_id: str, step: str, outputs: dict[str, str]
    ) -> None:
        # Deployments are written with an (empty) `outputs` map, so the nested path exists.
        self._conditional(
            "update_item",
            Key=_item(keys.deployment(project, deployment_id), {}),
            UpdateExpression="SET outputs.#step = :outputs",
            ConditionExpression="#status IN (:queued, :deploying)",
            ExpressionAttributeNames={"#status": "status", "#step": step},
            ExpressionAttributeValues={
                k: _serializer.serialize(v)
                for k, v in {
                    ":outputs": outputs,
                    ":queued": DeploymentStatus.QUEUED.value,
                    ":deploying": DeploymentStatus.DEPLOYING.value,
                }.items()
            },
        )

    def finish_deployment(
        self,
        deployment: Deployment,
        status: DeploymentStatus,
        reason: str,
        diagnosis: Diagnosis,
    ) -> bool:
        now = _now()
        update = {
            "Update": {
                "Key": _item(keys.deployment(deployment.project, deployment.id), {}),
                "UpdateExpression": "SET #status = :status, reason = :reason, "
                "diagnosis = :diagnosis, finished_at = :now, "
                "started_at = if_not_exists(started_at, :now)",
                "ConditionExpression": "#status IN (:queued, :deploying)",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    k: _serializer.serialize(v)
                    for k, v in {
                        ":status": status.value,
                        ":reason": reason,
                        ":diagnosis": diagnosis.model_dump(mode="json"),
                        ":now": now,
                        ":queued": DeploymentStatus.QUEUED.value,
                        ":deploying": DeploymentStatus.DEPLOYING.value,
                    }.items()
                },
            }
        }
        writes: list[dict[str, Any]] = [update]
        if status is DeploymentStatus.SUCCEEDED:
            current = {
                "project": deployment.project,
                "environment": deployment.environment,
                "tenant": deployment.tenant,
                "release": deployment.release,
                "deployment_id": deployment.id,
                "task_definition_arns": deployment.task_definition_arns,
                "finished_at": now,
            }
            key = keys.current(deployment.project, deployment.environment, deployment.tenant)
            writes.append({"Put": {"Item": _item(key, current)}})
            done = keys.success(
                deployment.project, deployment.release, deployment.environment, deployment.tenant
            )
            writes.append({"Put": {"Item": _item(done, {"deployment_id": deployment.id})}})
        return self._transact(writes)

    def get_current(self, project: str, environment: str, tenant: str) -> dict[str, Any] | None:
        return self._get(keys.current(project, environment, tenant))

    def add_failed_unit(self, project: str, deployment_id: str, unit: str) -> None:
        self._conditional(
            "update_item",
            Key=_item(keys.deployment(project, deployment_id), {}),
            UpdateExpression="SET failed_units = list_append(if_not_exists(failed_units, :e), :u)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":u": _serializer.serialize([unit]), ":e": {"L": []}},
        )

    def add_timeline(self, project: str, deployment_id: str, message: str) -> None:
        entry = {"at": _now(), "message": message}
        self._conditional(
            "update_item",
            Key=_item(keys.deployment(project, deployment_id), {}),
            UpdateExpression="SET timeline = list_append(if_not_exists(timeline, :empty), :e)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":e": _serializer.serialize([entry]), ":empty": {"L": []}},
        )

    def _environments_under(self, project: str, prefix: str, tenant: str) -> set[str]:
        """Environments of `<KIND>#<release>#<environment>#<tenant>` items for one tenant."""
        found = set()
        for item in self._query(keys.project_partition(project), prefix):
            _, _, environment, item_tenant = item["_sk"].split("#", 3)
            if item_tenant == tenant:
                found.add(environment)
        return found

    def succeeded_environments(self, project: str, release: str, tenant: str) -> set[str]:
        return self._environments_under(project, keys.success_prefix(release), tenant)

    def claimed_environments(self, project: str, release: str, tenant: str) -> set[str]:
        return self._environments_under(project, keys.claim_prefix(release), tenant)

    # ------------------------------------------------------------------ waits

    def put_wait(self, wait: StackWait) -> None:
        body = {
            "task_token": wait.task_token,
            "deployment_id": wait.deployment_id,
            "project": wait.project,
            "target": wait.target,
            "cluster": wait.cluster,
            "service": wait.service,
            "task_definition_arn": wait.task_definition_arn,
            "stack_complete": wait.stack_complete,
            "step": wait.step,
            "client_request_token": wait.client_request_token,
            "stack_id": wait.stack_id,
            "ecs_deployment_id": wait.ecs_deployment_id,
            "created_at": _now(),
        }
        account, region, _ = wait.stack_key.split("#", 2)
        writes: list[dict[str, Any]] = [
            {"Put": {"Item": _item(keys.stack_wait(wait.stack_key), body)}}
        ]
        if wait.service:  # a cloudformation step's stack has no service to follow
            service = service_key(account, region, wait.cluster, wait.service)
            writes.append(
                {"Put": {"Item": _item(keys.service_wait(service), {"stack_key": wait.stack_key})}}
            )
        self._transact(writes)

    def stack_key_for_service(self, service_key: str) -> str | None:
        item = self._get(keys.service_wait(service_key))
        return str(item["stack_key"]) if item else None

    def get_wait(self, stack_key: str) -> StackWait | None:
        item = self._get(keys.stack_wait(stack_key))
        if item is None:
            return None
        item.pop("created_at", None)
        return StackWait(stack_key=stack_key, **item)

    def mark_stack_complete(
        self, stack_key: str, task_token: str, ecs_deployment_id: str = ""
    ) -> None:
        self._conditional_on_token(
            "update_item",
            stack_key,
            task_token,
            UpdateExpression="SET stack_complete = :true, ecs_deployment_id = :ecs",
            extra_values={":true": {"BOOL": True}, ":ecs": {"S": ecs_deployment_id}},
        )

    def delete_wait(self, stack_key: str, task_token: str) -> bool:
        return self._conditional_on_token("delete_item", stack_key, task_token)

    def _conditional_on_token(
        self,
        operation: str,
        stack_key: str,
        task_token: str,
        extra_values: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> bool:
        return self._conditional(
            operation,
            Key=_item(keys.stack_wait(stack_key), {}),
            ConditionExpression="task_token = :token",
            ExpressionAttributeValues={":token": {"S": task_token}} | (extra_values or {}),
            **kwargs,
        )

    # ------------------------------------------------------------------ slots and queues

    def try_acquire_slot(
        self, project: str, environment: str, tenant: str, deployment_id: str
    ) -> bool:
        return self._conditional(
            "put_item",
            Item=_item(
                keys.slot(project, environment, tenant),
                {"holder": deployment_id, "acquired_at": _now()},
            ),
            ConditionExpression="attribute_not_exists(pk) OR holder = :me",
            ExpressionAttributeValues={":me": {"S": deployment_id}},
        )

    def release_slot(self, project: str, environment: str, tenant: str, deployment_id: str) -> bool:
        return self._conditional(
            "delete_item",
            Key=_item(keys.slot(project, environment, tenant), {}),
            ConditionExpression="holder = :me",
            ExpressionAttributeValues={":me": {"S": deployment_id}},
        )

    def slot_holder(self, project: str, environment: str, tenant: str) -> str | None:
        item = self._get(keys.slot(project, environment, tenant))
        return str(item["holder"]) if item else None

    def enqueue(
        self, project: str, environment: str, tenant: str, deployment_id: str, task_token: str
    ) -> str:
        arrival = self._next(keys.queue_sequence(project, environment, tenant))
        key = keys.queue_entry(project, environment, tenant, arrival, deployment_id)
        body = {"deployment_id": deployment_id, "task_token": task_token, "queued_at": _now()}
        self._call("put_item", Item=_item(key, body))
        return key["sk"]

    def queued(self, project: str, environment: str, tenant: str) -> list[QueuedDeployment]:
        items = self._query(keys.project_partition(project), keys.queue_prefix(environment, tenant))
        return [
            QueuedDeployment(
                key=i["_sk"], deployment_id=i["deployment_id"], task_token=i["task_token"]
            )
            for i in items
        ]

    def dequeue(self, project: str, key: str) -> None:
        self._call("delete_item", Key=_item({"pk": keys.project_partition(project), "sk": key}, {}))

    # ------------------------------------------------------------------ approvals

    def request_approval(self, deployment: Deployment, task_token: str) -> Approval:
        """Create the pending approval, or hand back the decision already made."""
        key = keys.approval(deployment.project, deployment.id)
        body = {
            "project": deployment.project,
            "deployment_id": deployment.id,
            "release": deployment.release,
            "environment": deployment.environment,
            "tenant": deployment.tenant,
            "status": "PENDING",
            "task_token": task_token,
            "decided_by": "",
            "note": "",
            "requested_at": _now(),
            "decided_at": "",
        }
        try:
            self._call(
                "put_item",
                Item=_item(key, body),
                ConditionExpression="attribute_not_exists(pk) OR #s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":pending": {"S": "PENDING"}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        approval = self.get_approval(deployment.project, deployment.id)
        assert approval is not None
        return approval

    def decide_approval(
        self, project: str, deployment_id: str, approved: bool, by: str, note: str
    ) -> Approval:
        status = "APPROVED" if approved else "REJECTED"
        try:
            self._call(
                "update_item",
                Key=_item(keys.approval(project, deployment_id), {}),
                UpdateExpression="SET #s = :status, decided_by = :by, note = :note, "
                "decided_at = :now",
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    k: _serializer.serialize(v)
                    for k, v in {
                        ":status": status,
                        ":by": by,
                        ":note": note,
                        ":now": _now(),
                        ":pending": "PENDING",
                    }.items()
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            current = self.get_approval(project, deployment_id)
            if current is None:
                raise NotFoundError(
                    f"deployment {deployment_id!r} of project {project!r} awaits no approval"
                ) from exc
            raise InvalidRequestError(
                f"deployment {deployment_id!r} was already {current.status.lower()} by "
                f"{current.decided_by or 'someone'}",
                status=current.status,
            ) from exc
        approval = self.get_approval(project, deployment_id)
        assert approval is not None
        return approval

    def get_approval(self, project: str, deployment_id: str) -> Approval | None:
        item = self._get(keys.approval(project, deployment_id))
        return Approval(**item) if item else None

    def list_approvals(self, project: str) -> list[Approval]:
        items = self._query(keys.project_partition(project), keys.APPROVAL_PREFIX)
        return [Approval(**{k: v for k, v in i.items() if k != "_sk"}) for i in items]

    # ------------------------------------------------------------------ target health

    def _record_latest(self, key: dict[str, str], attribute: str, at: datetime) -> None:
        """Move a timestamp forward only: a late, older write never rewinds it (UTC ISO
        strings compare like the times they name)."""
        self._conditional(
            "update_item",
            Key=_item(key, {}),
            UpdateExpression="SET #a = :at",
            ConditionExpression="attribute_not_exists(#a) OR #a < :at",
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":at": {"S": at.astimezone(UTC).isoformat()}},
        )

    def record_target_event(self, account: str, region: str, at: datetime) -> None:
        self._record_latest(keys.target_activity(account, region), "last_event_at", at)

    def record_target_deployment(self, account: str, region: str, at: datetime) -> None:
        self._record_latest(keys.target_activity(account, region), "last_deployment_at", at)

    def target_activity(self, account: str, region: str) -> TargetActivity:
        item = self._get(keys.target_activity(account, region))
        return TargetActivity.model_validate(item or {})

    def save_target_health(self, health: TargetHealth) -> None:
        body = health.model_dump(mode="json")
        body["checked_at"] = health.checked_at.astimezone(UTC).isoformat()
        # A slow check that finishes after a newer one must not overwrite it.
        self._conditional(
            "put_item",
            Item=_item(keys.target_health(health.target), body),
            ConditionExpression="attribute_not_exists(checked_at) OR checked_at < :at",
            ExpressionAttributeValues={":at": {"S": body["checked_at"]}},
        )

    def get_target_health(self, target: str) -> TargetHealth | None:
        item = self._get(keys.target_health(target))
        return TargetHealth.model_validate(item) if item else None

    # ------------------------------------------------------------------ audit

    def audit_put(self, record: AuditRecord) -> dict[str, Any]:
        """The transaction entry that writes `record`, for writes that audit themselves.
        before/after are kept as JSON text: free-form, and DynamoDB takes no floats."""
        body = record.model_dump(mode="json")
        body["before"] = json.dumps(body["before"]) if body["before"] is not None else None
        body["after"] = json.dumps(body["after"]) if body["after"] is not None else None
        item = _item(keys.audit(record.id), {k: v for k, v in body.items() if v is not None})
        return {"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}

    def put_audit(self, record: AuditRecord) -> None:
        put = self.audit_put(record)["Put"]
        self._conditional("put_item", **put)  # an id written twice is the same record

    def list_audit(self, limit: int, before_id: str | None = None) -> list[AuditRecord]:
        """Newest first; `before_id` continues after the last record of a page."""
        values: dict[str, Any] = {":pk": {"S": keys.AUDIT_PARTITION}}
        condition = "pk = :pk"
        if before_id:
            condition += " AND sk < :before"
            values[":before"] = {"S": before_id}
        response = self._call(
            "query",
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        records = []
        for item in response.get("Items", []):
            plain = _plain(item)
            for side in ("before", "after"):
                if plain.get(side) is not None:
                    plain[side] = json.loads(plain[side])
            records.append(AuditRecord.model_validate(plain))
        return records

    # ------------------------------------------------------------------ schedules

    @staticmethod
    def _schedule_body(schedule: ScheduledDeployment) -> dict[str, Any]:
        body = schedule.model_dump(mode="json")
        return {k: v for k, v in body.items() if v is not None}

    def put_schedule(self, schedule: ScheduledDeployment) -> bool:
        return self._conditional(
            "put_item",
            Item=_item(keys.schedule(schedule.id), self._schedule_body(schedule)),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_schedule(self, schedule_id: str) -> ScheduledDeployment | None:
        item = self._get(keys.schedule(schedule_id))
        return ScheduledDeployment.model_validate(item) if item else None

    def list_schedules(self) -> list[ScheduledDeployment]:
        return [
            ScheduledDeployment.model_validate({k: v for k, v in i.items() if k != "_sk"})
            for i in self._query(keys.SCHEDULE_PARTITION)
        ]

    def update_schedule(self, schedule: ScheduledDeployment, expected: ScheduleStatus) -> bool:
        # A cancel and a fire racing: only the one that still finds `expected` wins.
        return self._conditional(
            "put_item",
            Item=_item(keys.schedule(schedule.id), self._schedule_body(schedule)),
            ConditionExpression="#status = :expected",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":expected": {"S": expected.value}},
        )

    # ------------------------------------------------------------------ drift

    def list_current(self, project: str) -> list[dict[str, Any]]:
        """What runs where: the CURRENT item of every environment/tenant."""
        return [
            {k: v for k, v in i.items() if k != "_sk"}
            for i in self._query(keys.project_partition(project), keys.CURRENT_PREFIX)
        ]

    def save_drift(self, report: DriftReport) -> None:
        body = report.model_dump(mode="json")
        body["checked_at"] = report.checked_at.astimezone(UTC).isoformat()
        key = keys.drift(report.project, report.environment, report.tenant, report.target)
        # A slow check that finishes after a newer one must not overwrite it.
        self._conditional(
            "put_item",
            Item=_item(key, body),
            ConditionExpression="attribute_not_exists(checked_at) OR checked_at < :at",
            ExpressionAttributeValues={":at": {"S": body["checked_at"]}},
        )

    def list_drift(self, project: str) -> list[DriftReport]:
        """The last drift check of every environment/tenant/target of the project."""
        return [
            DriftReport.model_validate({k: v for k, v in i.items() if k != "_sk"})
            for i in self._query(keys.project_partition(project), keys.DRIFT_PREFIX)
        ]
