"""One running deployment per project/environment/tenant. The others wait in arrival
order on a task token — no polling: whoever frees the slot hands it to the next in line.

An automatic deployment (a push, a promotion) whose release is older than the one
already running there is skipped rather than run: the newest release is what runs."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from shiplane.domain.models import Deployment, DeploymentTask, TriggerKind
from shiplane.observability import logger
from shiplane.ports import DeploymentStore, ReleaseStore, SlotStore, TaskTokens
from shiplane.validation import parse

AUTOMATIC = (TriggerKind.ECR_PUSH, TriggerKind.PROMOTION)


@dataclass
class SlotDependencies:
    deployments: DeploymentStore
    releases: ReleaseStore
    slots: SlotStore
    tokens: TaskTokens


class AcquireSlotRequest(BaseModel):
    task: DeploymentTask
    task_token: str = Field(min_length=1)


def superseded_by(deployment: Deployment, deps: SlotDependencies) -> str | None:
    """The newer release already running where an automatic deployment would go."""
    if deployment.triggered_by.kind not in AUTOMATIC:
        return None
    current = deps.deployments.get_current(
        deployment.project, deployment.environment, deployment.tenant
    )
    if current is None or current["release"] == deployment.release:
        return None
    running = deps.releases.get_release(deployment.project, current["release"])
    this = deps.releases.get_release(deployment.project, deployment.release)
    if running is not None and this is not None and running.sequence > this.sequence:
        return running.version
    return None


def acquire_slot(payload: object, deps: SlotDependencies) -> None:
    request = parse(AcquireSlotRequest, payload, "Acquire Slot request")
    task, token = request.task, request.task_token
    deployment = deps.deployments.get_deployment(task.project, task.deployment_id)
    newer = superseded_by(deployment, deps)
    if newer is not None:
        deps.tokens.succeed(token, {"superseded_by": newer})
        return
    where = (task.project, task.environment, task.tenant)
    if deps.slots.try_acquire_slot(*where, task.deployment_id):
        deps.tokens.succeed(token, {"granted": True})
        return
    holder = deps.slots.slot_holder(*where)
    key = deps.slots.enqueue(*where, task.deployment_id, token)
    # The holder may have finished between the first try and the enqueue: try once more,
    # so that no one waits behind a slot nobody will free.
    if deps.slots.try_acquire_slot(*where, task.deployment_id):
        deps.slots.dequeue(task.project, key)
        deps.tokens.succeed(token, {"granted": True})
        return
    deps.deployments.add_timeline(
        task.project,
        task.deployment_id,
        f"queued: deployment {holder or 'another'} is running in {task.environment}/{task.tenant}",
    )
    logger.info("deployment queued", extra={"deployment": task.deployment_id, "holder": holder})


def release_and_wake(deployment: Deployment, deps: SlotDependencies) -> str | None:
    """Free the deployment's slot (if it held it) and hand it to the next in line.
    Returns the id of the deployment that now holds it."""
    where = (deployment.project, deployment.environment, deployment.tenant)
    if not deps.slots.release_slot(*where, deployment.id):
        return None
    for entry in deps.slots.queued(*where):
        waiting = deps.deployments.get_deployment(deployment.project, entry.deployment_id)
        newer = superseded_by(waiting, deps)
        if newer is not None:
            deps.slots.dequeue(deployment.project, entry.key)
            deps.tokens.succeed(entry.task_token, {"superseded_by": newer})
            continue
        if not deps.slots.try_acquire_slot(*where, entry.deployment_id):
            return None  # someone else took it: they will wake the queue
        deps.slots.dequeue(deployment.project, entry.key)
        if deps.tokens.succeed(entry.task_token, {"granted": True}):
            deps.deployments.add_timeline(
                deployment.project, entry.deployment_id, "slot granted: deploying"
            )
            return entry.deployment_id
        # Its execution is gone (timed out, stopped): free the slot again, try the next.
        deps.slots.release_slot(*where, entry.deployment_id)
    return None
