"""One running deployment per project/environment/tenant. The others wait in arrival
order on a task token — no polling: whoever frees the slot hands it to the next in line.

An automatic deployment (a push, a promotion) whose release is older than one already
running there, or than one queued for the same slot, is skipped rather than run: the
newest release is what ends up running."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from shiplane.domain.models import Deployment, DeploymentTask, Release, TriggerKind
from shiplane.domain.ordering import is_newer
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


def superseded_by(
    deployment: Deployment, deps: SlotDependencies, rivals: Sequence[Deployment] = ()
) -> str | None:
    """The newer release that makes an automatic deployment pointless: one already
    running there, or one queued for the same slot. Manual deployments (promotions by a
    person, rollbacks) are never superseded."""
    if deployment.triggered_by.kind not in AUTOMATIC:
        return None
    this = deps.releases.get_release(deployment.project, deployment.release)
    if this is None:
        return None
    versions = {r.release for r in rivals if r.triggered_by.kind in AUTOMATIC}
    current = deps.deployments.get_current(
        deployment.project, deployment.environment, deployment.tenant
    )
    if current is not None:
        versions.add(current["release"])
    versions.discard(deployment.release)
    newest: Release | None = None
    for version in versions:
        other = deps.releases.get_release(deployment.project, version)
        if (
            other is not None
            and is_newer(other, this)
            and (newest is None or is_newer(other, newest))
        ):
            newest = other
    return newest.version if newest else None


def acquire_slot(payload: object, deps: SlotDependencies) -> None:
    request = parse(AcquireSlotRequest, payload, "Acquire Slot request")
    task, token = request.task, request.task_token
    deployment = deps.deployments.get_deployment(task.project, task.deployment_id)
    where = (task.project, task.environment, task.tenant)
    newer = superseded_by(deployment, deps, _waiting(deployment.project, where, deps))
    if newer is not None:
        deps.tokens.succeed(token, {"superseded_by": newer})
        return
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


def _waiting(project: str, where: tuple[str, str, str], deps: SlotDependencies) -> list[Deployment]:
    return [
        deps.deployments.get_deployment(project, entry.deployment_id)
        for entry in deps.slots.queued(*where)
    ]


def release_and_wake(deployment: Deployment, deps: SlotDependencies) -> str | None:
    """Free the deployment's slot (if it held it) and hand it to the next in line.
    Returns the id of the deployment that now holds it."""
    where = (deployment.project, deployment.environment, deployment.tenant)
    if not deps.slots.release_slot(*where, deployment.id):
        return None
    entries = deps.slots.queued(*where)
    rivals = [deps.deployments.get_deployment(deployment.project, e.deployment_id) for e in entries]
    for entry, waiting in zip(entries, rivals, strict=True):
        newer = superseded_by(waiting, deps, rivals)
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
