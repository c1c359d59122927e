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
    waiting = _waiting(deployment.project, where, deps)
    newer = superseded_by(deployment, deps, waiting)
    if newer is not None:
        deps.tokens.succeed(token, {"superseded_by": newer})
        return
    holder_id = deps.slots.slot_holder(*where)
    holder = deps.deployments.get_deployment(task.project, holder_id) if holder_id else None
    if holder is not None and holder.id != deployment.id and holder.status.finished:
        # It ended without freeing its slot: its execution died, and the event that would
        # have settled it was lost (Step Functions sends those best effort). Free it now;
        # the first in line gets it.
        logger.warning("slot held by a finished deployment freed", extra={"holder": holder.id})
        release_and_wake(holder, deps)
        holder = None
    rivals = [d for d in ([holder] if holder else []) + waiting if not d.status.finished]
    twin = duplicate_of(deployment, rivals)
    if twin is not None:
        deps.tokens.succeed(token, {"duplicate_of": twin})
        return
    if deps.slots.try_acquire_slot(*where, task.deployment_id):
        deps.tokens.succeed(token, {"granted": True})
        return
    running = deps.slots.slot_holder(*where)
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
        f"queued: deployment {running or 'another'} is running in {task.environment}/{task.tenant}",
    )
    logger.info("deployment queued", extra={"deployment": task.deployment_id, "holder": running})


def duplicate_of(deployment: Deployment, rivals: Sequence[Deployment]) -> str | None:
    """The deployment of the same release, queued or running in the same place, that this
    one repeats (the same console input started twice, a request sent twice): it would
    roll out the same release again. A redeploy asked for explicitly is never one."""
    if deployment.redeploy:
        return None
    for rival in rivals:
        if rival.id != deployment.id and rival.release == deployment.release:
            return rival.id
    return None


def _waiting(project: str, where: tuple[str, str, str], deps: SlotDependencies) -> list[Deployment]:
    return [
        deps.deployments.get_deployment(project, entry.deployment_id)
        for entry in deps.slots.queued(*where)
    ]


def release_and_wake(deployment: Deployment, deps: SlotDependencies) -> str | None:
    """Free the deployment's slot (if it held it) and hand it to the next in line.
    Returns the id of the deployment that now holds it.

    Safe to repeat: a retry after the slot was freed (or handed on) by an earlier attempt
    still wakes the queue, or finishes the hand-over that attempt began."""
    where = (deployment.project, deployment.environment, deployment.tenant)
    if not deps.slots.release_slot(*where, deployment.id):
        holder = deps.slots.slot_holder(*where)
        if holder is not None:
            return _finish_handover(deployment.project, where, holder, deps)
        # Free already: an earlier attempt released it and stopped before waking anyone.
    return wake_next(deployment.project, where, deps, deployment)


def wake_next(
    project: str,
    where: tuple[str, str, str],
    deps: SlotDependencies,
    finished: Deployment | None = None,
) -> str | None:
    """Hand a free slot to the first deployment in line that still wants it. `finished`:
    the deployment that held it, which those waiting behind it may repeat."""
    entries = deps.slots.queued(*where)
    rivals = [deps.deployments.get_deployment(project, e.deployment_id) for e in entries]
    ahead: list[Deployment] = [finished] if finished is not None else []
    for entry, waiting in zip(entries, rivals, strict=True):
        if waiting.status.finished:  # ended while it waited (cancelled, its execution died)
            deps.slots.dequeue(project, entry.key)
            continue
        newer = superseded_by(waiting, deps, rivals)
        if newer is not None:
            deps.tokens.succeed(entry.task_token, {"superseded_by": newer})
            deps.slots.dequeue(project, entry.key)
            continue
        twin = duplicate_of(waiting, ahead)
        if twin is not None:
            deps.tokens.succeed(entry.task_token, {"duplicate_of": twin})
            deps.slots.dequeue(project, entry.key)
            continue
        ahead.append(waiting)
        if not deps.slots.try_acquire_slot(*where, entry.deployment_id):
            return None  # someone else took it: they will wake the queue
        # Token first, entry last: a retry that finds the slot held by a queued deployment
        # knows the hand-over was not finished (see _finish_handover).
        if deps.tokens.succeed(entry.task_token, {"granted": True}):
            deps.slots.dequeue(project, entry.key)
            deps.deployments.add_timeline(project, entry.deployment_id, "slot granted: deploying")
            return entry.deployment_id
        # Its execution is gone (timed out, stopped): free the slot again, try the next.
        deps.slots.dequeue(project, entry.key)
        deps.slots.release_slot(*where, entry.deployment_id)
    return None


def _finish_handover(
    project: str, where: tuple[str, str, str], holder: str, deps: SlotDependencies
) -> str | None:
    """The slot is held. If the holder is still in the queue, an earlier attempt gave it
    the slot and stopped before completing its token: complete it (a token completed
    already just answers False) and take it out of the queue."""
    entries = [e for e in deps.slots.queued(*where) if e.deployment_id == holder]
    if not entries:
        return None  # the holder runs: it wakes the queue when it ends
    # A retried Acquire Slot may have queued it twice (the first token is dead): every
    # entry is tried, and a token already completed just answers False.
    delivered = False
    for entry in entries:
        delivered = deps.tokens.succeed(entry.task_token, {"granted": True}) or delivered
        deps.slots.dequeue(project, entry.key)
    if delivered:
        deps.deployments.add_timeline(project, holder, "slot granted: deploying")
    return holder
