"""Reconcile missed ECR pushes, with fakes: what a lost push event is replaced by."""

from __future__ import annotations

from datetime import datetime, timedelta

from shiplane.domain.requests import EcrPushEvent
from shiplane.ports import PushedImage
from shiplane.services.reconcile_pushes import (
    ReconcilePushesDependencies,
    push_execution_name,
    reconcile_pushes,
)
from tests.unit.fakes_schedules import NOW, FakePipeline, FakeStore, digest, release


class FakeImages:
    def __init__(self, *images: PushedImage) -> None:
        self.images = list(images)
        self.asked: list[tuple[str, datetime]] = []

    def pushed_since(self, repository: str, since: datetime) -> list[PushedImage]:
        self.asked.append((repository, since))
        return [i for i in self.images if i.repository == repository and i.pushed_at >= since]


def pushed(tag: str, image_digest: str, minutes_ago: int) -> PushedImage:
    return PushedImage(
        repository="web",
        tag=tag,
        digest=image_digest,
        pushed_at=NOW - timedelta(minutes=minutes_ago),
        registry_id="123456789012",
    )


def deps(
    images: FakeImages, store: FakeStore, pipeline: FakePipeline
) -> ReconcilePushesDependencies:
    return ReconcilePushesDependencies(
        config=store,
        releases=store,
        images=images,
        pipeline=pipeline,
        region="us-east-1",
        now=lambda: NOW,
    )


def test_a_push_no_release_pins_starts_the_pipeline_as_its_event_would() -> None:
    store, pipeline = FakeStore(), FakePipeline()
    store.add_release(release("1.0.0", digest("a")))
    images = FakeImages(pushed("1.0.0", digest("a"), 20), pushed("1.1.0", digest("b"), 5))
    result = reconcile_pushes({"lookback_minutes": 30}, deps(images, store, pipeline))
    assert result.already_released == 1
    assert result.started == [f"web:1.1.0@{digest('b')}"]
    [(name, event)] = pipeline.executions.items()
    assert name == push_execution_name(images.images[1])
    parsed = EcrPushEvent.model_validate(event)  # what Resolve Release parses
    assert parsed.detail.repository_name == "web"
    assert parsed.detail.image_tag == "1.1.0"
    assert parsed.detail.image_digest == digest("b")
    assert parsed.account == "123456789012"
    assert images.asked == [("web", NOW - timedelta(minutes=30))]


def test_a_second_run_starts_nothing_again() -> None:
    store, pipeline = FakeStore(), FakePipeline()
    images = FakeImages(pushed("1.1.0", digest("b"), 5))
    first = reconcile_pushes({}, deps(images, store, pipeline))
    second = reconcile_pushes({}, deps(images, store, pipeline))
    assert len(first.started) == 1
    assert second.started == [] and second.already_started == first.started
    assert len(pipeline.executions) == 1


def test_images_outside_the_window_are_left_alone() -> None:
    store, pipeline = FakeStore(), FakePipeline()
    images = FakeImages(pushed("0.9.0", digest("c"), 45))
    result = reconcile_pushes({"lookback_minutes": 30}, deps(images, store, pipeline))
    assert result.images_seen == 0 and result.started == []
    assert pipeline.executions == {}


def test_a_scheduled_event_uses_the_default_window() -> None:
    store, pipeline = FakeStore(), FakePipeline()
    images = FakeImages(pushed("1.2.0", digest("d"), 25))
    result = reconcile_pushes({"job": "reconcile-pushes"}, deps(images, store, pipeline))
    assert result.since == NOW - timedelta(minutes=30)
    assert len(result.started) == 1
