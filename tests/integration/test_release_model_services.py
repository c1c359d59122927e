"""The release model through the services (DynamoDB on moto, an in-memory target):
channels, tenants, scoped and sensitive variables, queues, approvals, retention."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.domain.models import DeploymentStatus
from shiplane.errors import (
    AmbiguousVariableError,
    ConfigurationError,
    InvalidRequestError,
    SensitiveVariableMisuseError,
    UndefinedVariableError,
    VariableCycleError,
)
from shiplane.services.apply_configuration import apply_configuration
from shiplane.services.approvals import decide_approval, request_approval
from shiplane.services.retention import RetentionDependencies, apply_retention
from shiplane.services.variables import SnapshotDependencies, update_variable_snapshot
from tests.helpers import demo_configuration, ecr_push
from tests.integration.pipeline_harness import Pipeline

SECRET_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/shiplane/web/DbPassword"
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/shiplane-task-execution"


def digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def tenanted_config() -> dict[str, Any]:
    config = demo_configuration()
    for target in config["targets"]:
        target["tenanted_mode"] = "both"
    project = config["projects"][0]
    project["tenanted_mode"] = "tenanted"
    project["channels"] = [
        {"name": "default", "rules": [{"package": "web", "prerelease": "^$"}]},
        {
            "name": "hotfix",
            "lifecycle": "hotfix",
            "rules": [{"package": "web", "prerelease": "^hotfix"}],
            "tenant_tags": ["Tier/Gold"],
        },
    ]
    config["lifecycles"].append(
        {
            "name": "hotfix",
            "phases": [
                {
                    "name": "production",
                    "environments": [{"environment": "prod", "trigger": "automatic"}],
                }
            ],
        }
    )
    config["tenants"] = [
        {"name": "acme", "tags": ["Tier/Gold"], "projects": {"web": ["dev", "test", "prod"]}},
        {"name": "globex", "tags": ["Tier/Silver"], "projects": {"web": ["dev", "prod"]}},
        {
            "name": "initech",
            "tags": ["Tier/Gold", "Region/EU"],
            "projects": {"web": ["dev", "test", "prod"]},
        },
    ]
    return config


def with_variables(
    config: dict[str, Any], variables: list[dict[str, Any]], env: dict[str, str]
) -> dict[str, Any]:
    config = copy.deepcopy(config)
    project = config["projects"][0]
    project["variables"] = variables
    task = project["steps"][0]["task"]
    task["execution_role_arn"] = EXECUTION_ROLE
    task["containers"][0]["environment"] = env
    return config


def pipeline_for(store: DynamoStore, clock: Any, config: dict[str, Any]) -> Pipeline:
    apply_configuration(config, store)
    return Pipeline(store, clock)


def container(pipeline: Pipeline, environment: str, tenant: str = "untenanted") -> dict[str, Any]:
    family = f"web-{environment}" + ("" if tenant == "untenanted" else f"-{tenant}")
    latest = [d for a, d in pipeline.gateway.task_definitions.items() if f"/{family}:" in a]
    return dict(latest[-1]["containerDefinitions"][0])


# ----------------------------------------------------------------------------- channels


def test_a_hotfix_tag_lands_in_the_hotfix_channel_and_goes_straight_to_prod(
    store: DynamoStore, clock: Any
) -> None:
    pipeline = pipeline_for(store, clock, tenanted_config())
    resolved = pipeline.resolve(ecr_push("web", "1.3.0-hotfix.1", digest(1)))
    assert resolved["releases"][0]["channel"] == "hotfix"
    # prod, automatically, for the Gold tenants only (the channel's tenant filter)
    assert sorted((d["environment"], d["tenant"]) for d in resolved["deployments"]) == [
        ("prod", "acme"),
        ("prod", "initech"),
    ]


def test_a_stable_tag_lands_in_the_default_channel(store: DynamoStore, clock: Any) -> None:
    pipeline = pipeline_for(store, clock, tenanted_config())
    resolved = pipeline.resolve(ecr_push("web", "v1.3.0", digest(1)))
    assert resolved["releases"][0]["channel"] == "default"
    assert sorted(d["tenant"] for d in resolved["deployments"]) == ["acme", "globex", "initech"]
    assert {d["environment"] for d in resolved["deployments"]} == {"dev"}


def test_a_tag_no_channel_accepts_is_logged_not_an_error(store: DynamoStore, clock: Any) -> None:
    pipeline = pipeline_for(store, clock, tenanted_config())
    resolved = pipeline.resolve(ecr_push("web", "1.4.0-beta.1", digest(1)))
    assert resolved["releases"] == [] and resolved["deployments"] == []
    assert "no channel accepts '1.4.0-beta.1'" in resolved["message"]
    assert store.list_releases("web") == []


# ----------------------------------------------------------------------------- tenants


def test_each_tenant_follows_the_lifecycle_on_its_own(store: DynamoStore, clock: Any) -> None:
    pipeline = pipeline_for(store, clock, tenanted_config())
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))
    gate = pipeline.deploy_units(resolved["deployments"])
    # globex is not connected to test: only acme and initech move on
    assert sorted((d["environment"], d["tenant"]) for d in gate["deployments"]) == [
        ("test", "acme"),
        ("test", "initech"),
    ]
    stacks = {u["stack_name"] for d in resolved["deployments"] for u in d["units"]}
    assert stacks == {
        "shiplane-web-web-service-dev-acme",
        "shiplane-web-web-service-dev-globex",
        "shiplane-web-web-service-dev-initech",
    }


def test_a_tenant_connected_outside_the_lifecycle_is_refused(store: DynamoStore) -> None:
    config = tenanted_config()
    config["lifecycles"][0]["phases"].pop()  # default lifecycle without prod
    config["projects"][0]["channels"][1].pop("lifecycle")
    with pytest.raises(
        ConfigurationError, match=r"tenant 'acme' is connected to environment 'prod'"
    ):
        apply_configuration(config, store)
    assert store.list_tenants() == []


# ----------------------------------------------------------------------------- variables


def test_variables_are_scoped_by_environment_and_tenant(store: DynamoStore, clock: Any) -> None:
    config = with_variables(
        tenanted_config(),
        [
            {"name": "Greeting", "value": "hello"},
            {"name": "Greeting", "value": "hello dev", "scope": {"environments": ["dev"]}},
            {"name": "Url", "value": "https://#{Shiplane.Tenant.Name}.#{Domain | ToLower}"},
            {"name": "Domain", "value": "EXAMPLE.COM"},
        ],
        {"GREETING": "#{Greeting}", "URL": "#{Url}", "RELEASE": "#{Shiplane.Release.Number}"},
    )
    config["tenants"][0]["variables"] = [{"name": "Greeting", "value": "hi acme"}]
    pipeline = pipeline_for(store, clock, config)
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))
    pipeline.deploy_units(resolved["deployments"])
    acme = {e["name"]: e["value"] for e in container(pipeline, "dev", "acme")["environment"]}
    globex = {e["name"]: e["value"] for e in container(pipeline, "dev", "globex")["environment"]}
    assert acme == {"GREETING": "hi acme", "URL": "https://acme.example.com", "RELEASE": "1.0.0"}
    assert globex["GREETING"] == "hello dev"


def test_a_sensitive_variable_reaches_the_container_as_a_secret(
    store: DynamoStore, clock: Any
) -> None:
    config = with_variables(
        demo_configuration(),
        [{"name": "DbPassword", "sensitive": True, "secret_ref": SECRET_ARN}],
        {"DB_PASSWORD": "#{DbPassword}"},
    )
    pipeline = pipeline_for(store, clock, config)
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))
    pipeline.deploy_units(resolved["deployments"])
    definition = container(pipeline, "dev")
    assert definition["secrets"] == [{"name": "DB_PASSWORD", "valueFrom": SECRET_ARN}]
    assert all(e["name"] != "DB_PASSWORD" for e in definition["environment"])


def test_a_sensitive_variable_inside_a_larger_value_is_refused_at_release_time(
    store: DynamoStore, clock: Any
) -> None:
    config = with_variables(
        demo_configuration(),
        [{"name": "DbPassword", "sensitive": True, "secret_ref": SECRET_ARN}],
        {"DB_URL": "postgres://app:#{DbPassword}@db/app"},
    )
    pipeline = pipeline_for(store, clock, config)
    with pytest.raises(SensitiveVariableMisuseError, match="DB_URL"):
        pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))
    assert store.list_releases("web") == [] and store.list_deployments("web") == []


def test_an_undefined_variable_is_refused_at_release_time_naming_where(
    store: DynamoStore, clock: Any
) -> None:
    config = with_variables(demo_configuration(), [], {"DB_HOST": "#{DbHost}"})
    pipeline = pipeline_for(store, clock, config)
    with pytest.raises(UndefinedVariableError, match=r"'DbHost'.*environment\.DB_HOST"):
        pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))
    assert store.list_releases("web") == []


def test_an_unbreakable_tie_is_an_error_at_release_time(store: DynamoStore, clock: Any) -> None:
    config = with_variables(
        demo_configuration(),
        [
            {"name": "Size", "value": "s", "scope": {"environments": ["dev"]}},
            {"name": "Size", "value": "m", "scope": {"environments": ["dev", "test"]}},
        ],
        {"SIZE": "#{Size}"},
    )
    pipeline = pipeline_for(store, clock, config)
    with pytest.raises(AmbiguousVariableError, match="Size"):
        pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))
    assert store.list_releases("web") == []


def test_a_variable_cycle_and_an_inline_secret_are_refused(store: DynamoStore) -> None:
    cycle = with_variables(
        demo_configuration(),
        [{"name": "A", "value": "#{B}"}, {"name": "B", "value": "#{A}"}],
        {},
    )
    with pytest.raises(VariableCycleError, match="A -> B -> A"):
        apply_configuration(cycle, store)
    inline = with_variables(
        demo_configuration(), [{"name": "Pw", "value": "hunter2", "sensitive": True}], {}
    )
    with pytest.raises(ConfigurationError, match="inline value") as raised:
        apply_configuration(inline, store)
    assert "hunter2" not in str(raised.value)
    assert store.list_environments() == []


def test_update_variable_snapshot_refreshes_only_the_variables(
    store: DynamoStore, clock: Any
) -> None:
    config = with_variables(
        demo_configuration(), [{"name": "Greeting", "value": "one"}], {"G": "#{Greeting}"}
    )
    pipeline = pipeline_for(store, clock, config)
    pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))
    config["projects"][0]["variables"] = [{"name": "Greeting", "value": "two"}]
    config["projects"][0]["steps"][0]["service"]["desired_count"] = 7
    apply_configuration(config, store)
    refreshed = update_variable_snapshot("web", "1.0.0", SnapshotDependencies(store, store))
    stored = store.get_release("web", "1.0.0")
    assert stored is not None and refreshed.variables == stored.variables
    assert [v.value for v in stored.variables] == ["two"]
    assert stored.process[0].service.desired_count == 2  # the process snapshot is untouched
    assert stored.images["web"].digest == digest(1)


# ----------------------------------------------------------------------------- queues


def test_one_deployment_at_a_time_per_environment_and_the_next_is_woken(
    store: DynamoStore, clock: Any
) -> None:
    pipeline = pipeline_for(store, clock, demo_configuration())
    first = pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))["deployments"][0]
    second = pipeline.resolve(ecr_push("web", "1.1.0", digest(2)))["deployments"][0]
    _, granted = pipeline.acquire(first)
    token, waiting = pipeline.acquire(second)
    assert granted == {"granted": True}
    assert waiting is None, "the second deployment queues instead of running"
    assert store.slot_holder("web", "dev", "untenanted") == first["deployment_id"]

    pipeline.record(first, slot=granted, results=pipeline.run_units(first))
    assert pipeline.tokens.succeeded[token] == {"granted": True}
    assert store.slot_holder("web", "dev", "untenanted") == second["deployment_id"]


def test_an_older_automatic_deployment_behind_a_newer_release_is_skipped(
    store: DynamoStore, clock: Any
) -> None:
    pipeline = pipeline_for(store, clock, demo_configuration())
    older = pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))["deployments"][0]
    newer = pipeline.resolve(ecr_push("web", "1.1.0", digest(2)))["deployments"][0]
    _, granted = pipeline.acquire(newer)
    token, _ = pipeline.acquire(older)
    pipeline.record(newer, slot=granted, results=pipeline.run_units(newer))
    assert pipeline.tokens.succeeded[token] == {"superseded_by": "1.1.0"}
    summary = pipeline.record(older, slot=pipeline.tokens.succeeded[token])
    assert summary["status"] == "SKIPPED"
    assert "release 1.1.0 is already deployed" in summary["reason"]
    assert store.slot_holder("web", "dev", "untenanted") is None


# ----------------------------------------------------------------------------- approvals


def approval_pipeline(store: DynamoStore, clock: Any) -> Pipeline:
    config = demo_configuration()
    config["environments"][1]["requires_approval"] = True  # test
    return pipeline_for(store, clock, config)


def test_an_approved_deployment_goes_on(store: DynamoStore, clock: Any) -> None:
    pipeline = approval_pipeline(store, clock)
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))
    gate = pipeline.deploy_units(resolved["deployments"])
    [task] = gate["deployments"]
    assert task["environment"] == "test" and task["requires_approval"] is True
    request_approval({"task": task, "task_token": "approval-1"}, pipeline.approval_deps)
    [pending] = store.list_approvals("web")
    assert pending.status == "PENDING" and pending.deployment_id == task["deployment_id"]

    decide_approval(
        {
            "project": "web",
            "deployment_id": task["deployment_id"],
            "approve": True,
            "by": "ana",
            "note": "ok",
        },
        pipeline.approval_deps,
    )
    assert pipeline.tokens.succeeded["approval-1"] == {"approved_by": "ana", "note": "ok"}
    timeline = [e.message for e in store.get_deployment("web", task["deployment_id"]).timeline]
    assert "approved by ana: ok" in timeline
    with pytest.raises(InvalidRequestError, match="already approved by ana"):
        decide_approval(
            {
                "project": "web",
                "deployment_id": task["deployment_id"],
                "approve": False,
                "by": "bo",
            },
            pipeline.approval_deps,
        )


def test_a_rejected_deployment_is_recorded_as_rejected(store: DynamoStore, clock: Any) -> None:
    pipeline = approval_pipeline(store, clock)
    resolved = pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))
    [task] = pipeline.deploy_units(resolved["deployments"])["deployments"]
    request_approval({"task": task, "task_token": "approval-2"}, pipeline.approval_deps)
    decide_approval(
        {
            "project": "web",
            "deployment_id": task["deployment_id"],
            "approve": False,
            "by": "bo",
            "note": "not today",
        },
        pipeline.approval_deps,
    )
    error, cause = pipeline.tokens.failed["approval-2"]
    assert error == "ApprovalRejectedError" and cause == "rejected by bo: not today"
    summary = pipeline.record(task, error={"Error": error, "Cause": cause})
    assert summary["status"] == "REJECTED" and summary["reason"] == "rejected by bo: not today"
    gate = pipeline.gate([summary])
    assert gate["failed"] is True and gate["deployments"] == []
    assert store.get_deployment("web", task["deployment_id"]).status is DeploymentStatus.REJECTED


# ----------------------------------------------------------------------------- retention


def test_retention_keeps_n_releases_and_never_what_runs_or_its_rollback_target(
    store: DynamoStore, clock: Any
) -> None:
    config = demo_configuration()
    config["lifecycles"][0]["retention_keep"] = 2
    pipeline = pipeline_for(store, clock, config)
    for n in range(1, 6):
        resolved = pipeline.resolve(ecr_push("web", f"1.{n}.0", digest(n)))
        pipeline.deploy_units(pipeline.deploy_units(resolved["deployments"])["deployments"])
        if n == 1:  # 1.1.0 is promoted to prod, and stays there
            promoted = pipeline.resolve(
                {"action": "deploy", "project": "web", "release": "1.1.0", "environment": "prod"}
            )
            pipeline.deploy_units(promoted["deployments"])
    result = apply_retention({}, RetentionDependencies(store, store, store))
    # kept: the newest two (1.5, 1.4) — also current and previous in dev and test — and
    # 1.1.0, current in prod
    assert sorted(r.version for r in store.list_releases("web")) == ["1.1.0", "1.4.0", "1.5.0"]
    assert result.deleted == {"web": ["1.3.0", "1.2.0"]}
    assert result.protected["web"] == ["1.1.0", "1.4.0", "1.5.0"]


def test_a_newer_release_waiting_in_the_queue_supersedes_an_older_one(
    store: DynamoStore, clock: Any
) -> None:
    pipeline = pipeline_for(store, clock, demo_configuration())
    running = pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))["deployments"][0]
    # 1.2.0's event reaches Shiplane before 1.1.0's: creation order is not version order
    newest = pipeline.resolve(ecr_push("web", "1.2.0", digest(3)))["deployments"][0]
    older = pipeline.resolve(ecr_push("web", "1.1.0", digest(2)))["deployments"][0]
    _, granted = pipeline.acquire(running)
    newest_token, _ = pipeline.acquire(newest)
    older_token, skipped = pipeline.acquire(older)
    assert skipped == {"superseded_by": "1.2.0"}, "an older arrival behind a newer one is skipped"
    assert pipeline.tokens.succeeded.get(newest_token) is None

    pipeline.record(running, slot=granted, results=pipeline.run_units(running))
    assert pipeline.tokens.succeeded[newest_token] == {"granted": True}
    assert pipeline.tokens.succeeded[older_token] == {"superseded_by": "1.2.0"}


def test_an_older_queued_release_is_skipped_when_the_slot_frees_if_a_newer_one_waits(
    store: DynamoStore, clock: Any
) -> None:
    pipeline = pipeline_for(store, clock, demo_configuration())
    running = pipeline.resolve(ecr_push("web", "1.0.0", digest(1)))["deployments"][0]
    older = pipeline.resolve(ecr_push("web", "1.1.0", digest(2)))["deployments"][0]
    newest = pipeline.resolve(ecr_push("web", "1.2.0", digest(3)))["deployments"][0]
    _, granted = pipeline.acquire(running)
    older_token, queued = pipeline.acquire(older)
    newest_token, _ = pipeline.acquire(newest)
    assert queued is None

    pipeline.record(running, slot=granted, results=pipeline.run_units(running))
    assert pipeline.tokens.succeeded[older_token] == {"superseded_by": "1.2.0"}
    assert pipeline.tokens.succeeded[newest_token] == {"granted": True}
    assert store.slot_holder("web", "dev", "untenanted") == newest["deployment_id"]
