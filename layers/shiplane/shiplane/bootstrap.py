"""Builds each service's dependencies from the settings, with the boto3 adapters.

Called inside handlers (never at import time); cached per process so a warm Lambda
reuses its clients. Each function imports only what it builds: a handler's cold start
does not pay for every other function's service."""

from __future__ import annotations

import gc
import os
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.settings import load_settings

if TYPE_CHECKING:
    from shiplane.adapters.stepfunctions import SfnTaskTokens
    from shiplane.adapters.targets import AssumedRoleGateways
    from shiplane.api.deps import ApiDependencies
    from shiplane.services.approvals import ApprovalDependencies
    from shiplane.services.deploy_stack import DeployDependencies
    from shiplane.services.deployment_events import EventsDependencies
    from shiplane.services.detect_drift import DriftDependencies
    from shiplane.services.gate_promotion import GateDependencies
    from shiplane.services.reconcile_deployment import ReconcileDependencies
    from shiplane.services.reconcile_pushes import ReconcilePushesDependencies
    from shiplane.services.record_deployment import RecordDependencies
    from shiplane.services.register_task_definition import RegisterDependencies
    from shiplane.services.resolve_release import ResolveDependencies
    from shiplane.services.retention import RetentionDependencies
    from shiplane.services.settle_execution import SettleDependencies
    from shiplane.services.slots import SlotDependencies
    from shiplane.services.target_health import HealthDependencies


def utc_now() -> datetime:
    return datetime.now(UTC)


def _startup_done() -> None:
    """On Lambda, hand what the INIT phase loaded to the garbage collector's permanent
    generation (`gc.freeze`): modules, classes and the domain's models live as long as
    the execution environment, yet every collection walked them, starting with those of
    the first invocation (building the clients and the models' validators): a handler
    importing pydantic made a DynamoDB client take a third longer to build.

    Called once, by the first dependency every handler builds. Only on Lambda
    (LAMBDA_TASK_ROOT): tests and the local cloud run many cold starts in one process,
    where frozen objects would never be freed."""
    if os.environ.get("LAMBDA_TASK_ROOT"):
        gc.freeze()


@cache
def store() -> DynamoStore:
    _startup_done()
    return DynamoStore(load_settings().table_name)


@cache
def gateways() -> AssumedRoleGateways:
    from shiplane.adapters.targets import AssumedRoleGateways

    return AssumedRoleGateways()


@cache
def tokens() -> SfnTaskTokens:
    from shiplane.adapters.stepfunctions import SfnTaskTokens

    return SfnTaskTokens()


def resolve_release() -> ResolveDependencies:
    from shiplane.adapters.config_cache import InvocationConfig
    from shiplane.adapters.ecr import EcrRegistry
    from shiplane.services.resolve_release import ResolveDependencies

    s = store()
    return ResolveDependencies(
        config=InvocationConfig(s), releases=s, deployments=s, registry=EcrRegistry(), now=utc_now
    )


def register_task_definition() -> RegisterDependencies:
    from shiplane.adapters.config_cache import InvocationConfig
    from shiplane.services.register_task_definition import RegisterDependencies

    s = store()
    return RegisterDependencies(
        config=InvocationConfig(s),
        releases=s,
        deployments=s,
        gateways=gateways(),
        health=s,
        now=utc_now,
    )


def deploy_stack() -> DeployDependencies:
    from shiplane.adapters.config_cache import InvocationConfig
    from shiplane.services.deploy_stack import DeployDependencies

    s = store()
    return DeployDependencies(
        config=InvocationConfig(s),
        releases=s,
        deployments=s,
        waits=s,
        gateways=gateways(),
        tokens=tokens(),
    )


def deployment_events() -> EventsDependencies:
    from shiplane.adapters.config_cache import InvocationConfig
    from shiplane.services.deployment_events import EventsDependencies

    s = store()
    return EventsDependencies(
        config=InvocationConfig(s),
        deployments=s,
        waits=s,
        gateways=gateways(),
        tokens=tokens(),
        health=s,
        now=utc_now,
    )


def reconcile_deployment() -> ReconcileDependencies:
    from shiplane.adapters.config_cache import InvocationConfig
    from shiplane.services.reconcile_deployment import ReconcileDependencies

    s = store()
    return ReconcileDependencies(
        config=InvocationConfig(s), releases=s, deployments=s, waits=s, gateways=gateways()
    )


def gate_promotion() -> GateDependencies:
    from shiplane.adapters.config_cache import InvocationConfig
    from shiplane.services.gate_promotion import GateDependencies

    s = store()
    return GateDependencies(config=InvocationConfig(s), releases=s, deployments=s, now=utc_now)


def slots() -> SlotDependencies:
    from shiplane.services.slots import SlotDependencies

    s = store()
    return SlotDependencies(deployments=s, releases=s, slots=s, tokens=tokens())


def record_deployment() -> RecordDependencies:
    from shiplane.services.record_deployment import RecordDependencies

    s = store()
    return RecordDependencies(deployments=s, releases=s, slots=s, tokens=tokens())


def settle_execution() -> SettleDependencies:
    from shiplane.adapters.stepfunctions import SfnPipeline
    from shiplane.services.settle_execution import SettleDependencies

    s, settings = store(), load_settings()
    return SettleDependencies(
        deployments=s,
        releases=s,
        slots=s,
        tokens=tokens(),
        live=s,
        executions=SfnPipeline(settings.state_machine_arn),
    )


def approvals() -> ApprovalDependencies:
    from shiplane.services.approvals import ApprovalDependencies

    s = store()
    return ApprovalDependencies(deployments=s, approvals=s, tokens=tokens())


def retention() -> RetentionDependencies:
    from shiplane.adapters.config_cache import InvocationConfig
    from shiplane.services.retention import RetentionDependencies

    s = store()
    return RetentionDependencies(config=InvocationConfig(s), releases=s, deployments=s)


def target_health() -> HealthDependencies:
    from shiplane.services.target_health import HealthDependencies

    s = store()
    return HealthDependencies(config=s, health=s, gateways=gateways(), now=utc_now)


def reconcile_pushes() -> ReconcilePushesDependencies:
    from shiplane.adapters.ecr import EcrRegistry
    from shiplane.adapters.stepfunctions import SfnPipeline
    from shiplane.services.reconcile_pushes import ReconcilePushesDependencies

    s, settings = store(), load_settings()
    return ReconcilePushesDependencies(
        config=s,
        releases=s,
        images=EcrRegistry(),
        pipeline=SfnPipeline(settings.state_machine_arn),
        region=settings.region,
        now=utc_now,
    )


def detect_drift() -> DriftDependencies:
    from shiplane.services.detect_drift import DriftDependencies

    s = store()
    return DriftDependencies(
        config=s,
        releases=s,
        deployments=s,
        current=s,
        drift=s,
        gateways=gateways(),
        now=utc_now,
    )


def api() -> ApiDependencies:
    """The API's dependencies. Its handler imports only this module's top and the
    adapters it needs (cold start matters most for the API)."""
    from shiplane.adapters.ecr import EcrRegistry
    from shiplane.adapters.scheduler import EventBridgeScheduler
    from shiplane.adapters.ssm import SsmSecrets
    from shiplane.adapters.stepfunctions import SfnPipeline
    from shiplane.api.deps import ApiDependencies

    s, settings = store(), load_settings()
    return ApiDependencies(
        store=s,
        now=utc_now,
        pipeline=SfnPipeline(settings.state_machine_arn),
        tokens=tokens(),
        secrets=SsmSecrets(kms_key_id=settings.secrets_kms_key_id or None),
        registry=EcrRegistry(),
        gateways=gateways(),
        scheduler=EventBridgeScheduler(settings.schedule_group_name, settings.scheduler_role_arn),
    )
