"""Every DynamoDB key Shiplane uses, built here and nowhere else (see docs/architecture.md)."""

from __future__ import annotations

CONFIG_KINDS = ("ENVIRONMENT", "LIFECYCLE", "TARGET", "PROJECT", "TENANT")


def config(kind: str, name: str) -> dict[str, str]:
    if kind not in CONFIG_KINDS:
        raise ValueError(f"unknown configuration kind {kind!r}")
    return {"pk": f"CONFIG#{kind}", "sk": name}


def config_partition(kind: str) -> str:
    return config(kind, "-")["pk"]


def repository_index(repository: str, project: str) -> dict[str, str]:
    return {"pk": f"REPOSITORY#{repository}", "sk": f"PROJECT#{project}"}


def repository_partition(repository: str) -> str:
    return f"REPOSITORY#{repository}"


def project_partition(project: str) -> str:
    return f"PROJECT#{project}"


def release(project: str, version: str) -> dict[str, str]:
    return {"pk": project_partition(project), "sk": f"RELEASE#{version}"}


RELEASE_PREFIX = "RELEASE#"
DEPLOYMENT_PREFIX = "DEPLOYMENT#"
CLAIM_PREFIX = "CLAIM#"


def deployment(project: str, deployment_id: str) -> dict[str, str]:
    return {"pk": project_partition(project), "sk": f"{DEPLOYMENT_PREFIX}{deployment_id}"}


def claim(project: str, release_version: str, environment: str, tenant: str) -> dict[str, str]:
    return {
        "pk": project_partition(project),
        "sk": f"{CLAIM_PREFIX}{release_version}#{environment}#{tenant}",
    }


def claim_prefix(release_version: str) -> str:
    return f"{CLAIM_PREFIX}{release_version}#"


def execution_partition(execution: str) -> str:
    return f"EXECUTION#{execution}"


def execution_deployment(execution: str, project: str, deployment_id: str) -> dict[str, str]:
    """A deployment run by a pipeline execution: when the execution dies, these are the
    deployments to end (an execution's deployments may span projects' partitions)."""
    return {"pk": execution_partition(execution), "sk": f"DEPLOYMENT#{project}#{deployment_id}"}


LIVE_EXECUTIONS = "LIVE_EXECUTIONS"


def live_execution(execution: str) -> dict[str, str]:
    """A pipeline execution that was given deployments to run and has not been seen to end:
    what the scheduled sweep checks when Step Functions' status event never came."""
    return {"pk": LIVE_EXECUTIONS, "sk": execution}


def current(project: str, environment: str, tenant: str) -> dict[str, str]:
    return {"pk": project_partition(project), "sk": f"CURRENT#{environment}#{tenant}"}


def stack_wait(stack_key: str) -> dict[str, str]:
    return {"pk": f"STACK#{stack_key}", "sk": "WAIT"}


def service_wait(service_key: str) -> dict[str, str]:
    return {"pk": f"SERVICE#{service_key}", "sk": "WAIT"}


def release_sequence(project: str) -> dict[str, str]:
    return {"pk": project_partition(project), "sk": "SEQUENCE#RELEASE"}


def slot(project: str, environment: str, tenant: str) -> dict[str, str]:
    """The one running deployment of a project in an environment for a tenant."""
    return {"pk": project_partition(project), "sk": f"SLOT#{environment}#{tenant}"}


def queue_sequence(project: str, environment: str, tenant: str) -> dict[str, str]:
    return {"pk": project_partition(project), "sk": f"SEQUENCE#QUEUE#{environment}#{tenant}"}


def queue_prefix(environment: str, tenant: str) -> str:
    return f"QUEUE#{environment}#{tenant}#"


def queue_entry(
    project: str, environment: str, tenant: str, arrival: int, deployment_id: str
) -> dict[str, str]:
    """Sorted by arrival: a query over the prefix is the queue in order."""
    return {
        "pk": project_partition(project),
        "sk": f"{queue_prefix(environment, tenant)}{arrival:012d}#{deployment_id}",
    }


def approval(project: str, deployment_id: str) -> dict[str, str]:
    return {"pk": project_partition(project), "sk": f"APPROVAL#{deployment_id}"}


APPROVAL_PREFIX = "APPROVAL#"


def success(project: str, release_version: str, environment: str, tenant: str) -> dict[str, str]:
    """A release succeeded in an environment for a tenant: what the lifecycle reads."""
    return {
        "pk": project_partition(project),
        "sk": f"SUCCESS#{release_version}#{environment}#{tenant}",
    }


def success_prefix(release_version: str) -> str:
    return f"SUCCESS#{release_version}#"


def target_activity(account: str, region: str) -> dict[str, str]:
    """When a target account+region last sent an event and last had a deployment."""
    return {"pk": f"TARGET_ACTIVITY#{account}#{region}", "sk": "LAST"}


def target_health(target: str) -> dict[str, str]:
    """A target's last health check."""
    return {"pk": "TARGET_HEALTH", "sk": target}


AUDIT_PARTITION = "AUDIT"


def audit(record_id: str) -> dict[str, str]:
    """Audit records share one partition, sorted by their time-ordered id."""
    return {"pk": AUDIT_PARTITION, "sk": record_id}


CURRENT_PREFIX = "CURRENT#"
SCHEDULE_PARTITION = "SCHEDULE"


def schedule(schedule_id: str) -> dict[str, str]:
    """A scheduled deployment (one-time EventBridge Scheduler schedule). One partition:
    there are few, and GET /schedules lists them all."""
    return {"pk": SCHEDULE_PARTITION, "sk": schedule_id}


DRIFT_PREFIX = "DRIFT#"


def drift(project: str, environment: str, tenant: str, target: str) -> dict[str, str]:
    """The last drift check of what runs in an environment/tenant on one target."""
    return {
        "pk": project_partition(project),
        "sk": f"{DRIFT_PREFIX}{environment}#{tenant}#{target}",
    }
