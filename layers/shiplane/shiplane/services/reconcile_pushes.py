"""Reconcile missed ECR pushes (scheduled). ECR's events are best-effort: for every
project's repositories, the images pushed within the look-back window whose digest no
release of the project pins get the pipeline input their push event would have given.

Idempotent twice over: the execution is named after the image (a second run starts
nothing), and Resolve Release creates one release per push however often it arrives.
With a window of two periods, an image whose event was lost is released within one."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shiplane.observability import logger, metrics
from shiplane.ports import ConfigStore, ImageHistory, PipelineExecutions, PushedImage, ReleaseStore

DEFAULT_LOOKBACK_MINUTES = 30  # two periods of the 15-minute schedule


@dataclass
class ReconcilePushesDependencies:
    config: ConfigStore
    releases: ReleaseStore
    images: ImageHistory
    pipeline: PipelineExecutions
    region: str
    now: Callable[[], datetime]


class ReconcilePushesRequest(BaseModel):
    """The schedule's input; a scheduled event's other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    lookback_minutes: int = Field(default=DEFAULT_LOOKBACK_MINUTES, ge=1, le=7 * 24 * 60)


class ReconcilePushesResult(BaseModel):
    since: datetime
    projects: int = 0
    images_seen: int = 0
    already_released: int = 0
    started: list[str] = Field(default_factory=list, description="repository:tag@digest")
    already_started: list[str] = Field(default_factory=list)


def push_execution_name(image: PushedImage) -> str:
    key = f"{image.repository}|{image.tag}|{image.digest}"
    return f"reconcile-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def push_event(image: PushedImage, region: str) -> dict[str, Any]:
    """The `ECR Image Action` event ECR would have sent for this push."""
    key = f"{image.repository}|{image.tag}|{image.digest}"
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"shiplane-reconcile:{key}")),
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": image.registry_id,
        "time": image.pushed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": image.repository,
            "image-digest": image.digest,
            "action-type": "PUSH",
            "image-tag": image.tag,
        },
    }


def reconcile_pushes(event: Any, deps: ReconcilePushesDependencies) -> ReconcilePushesResult:
    request = ReconcilePushesRequest.model_validate(event if isinstance(event, dict) else {})
    since = deps.now() - timedelta(minutes=request.lookback_minutes)
    result = ReconcilePushesResult(since=since)
    seen: dict[str, list[PushedImage]] = {}
    missed: dict[tuple[str, str, str], PushedImage] = {}
    for project in deps.config.list_projects():
        result.projects += 1
        pinned = {
            (image.repository, image.digest)
            for release in deps.releases.list_releases(project.name)
            for image in release.images.values()
        }
        for repository in project.repositories:
            if repository not in seen:
                seen[repository] = deps.images.pushed_since(repository, since)
                result.images_seen += len(seen[repository])
            for image in seen[repository]:
                if (repository, image.digest) in pinned:
                    result.already_released += 1
                else:
                    missed[(repository, image.tag, image.digest)] = image
    # One start per push, however many projects use the repository: Resolve Release
    # serves every project of a push.
    for image in missed.values():
        name = f"{image.repository}:{image.tag}@{image.digest}"
        _, started = deps.pipeline.start(push_execution_name(image), push_event(image, deps.region))
        (result.started if started else result.already_started).append(name)
    if result.started:
        metrics.add_metric(name="MissedPushReconciled", unit="Count", value=len(result.started))
        logger.warning("pushes without a release reconciled", extra={"images": result.started})
    return result
