"""ECR pushes that emit the `ECR Image Action` event AWS sends, and a local `push_image`.

The patch sits on `ECRBackend.put_image`, so a push made any way (LocalCloud.push_image,
boto3, the AWS CLI from another terminal) reaches the default event bus.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from moto.ecr.models import ECRBackend, ecr_backends

from ._patching import Patches

log = logging.getLogger("shiplane_local")

CRASH_ANNOTATION = "org.shiplane.local/crash"
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def image_manifest(repository: str, tag: str, *, crash: bool = False) -> str:
    """A Docker v2 manifest whose digests are new on every call (repo + tag + a nonce)."""
    nonce = uuid.uuid4().hex

    def digest(part: str) -> str:
        return "sha256:" + hashlib.sha256(f"{repository}:{tag}:{nonce}:{part}".encode()).hexdigest()

    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1469,
            "digest": digest("config"),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 2811,
                "digest": digest("layer"),
            }
        ],
    }
    if crash:
        manifest["annotations"] = {CRASH_ANNOTATION: "true"}
    return json.dumps(manifest)


def manifest_crashes(manifest: str | dict[str, Any]) -> bool:
    """True when the manifest marks an image that crashes as soon as ECS runs it."""
    parsed = json.loads(manifest) if isinstance(manifest, str) else manifest
    return (parsed.get("annotations") or {}).get(CRASH_ANNOTATION) == "true"


def image_crashes(account_id: str, region: str, repository: str, digest: str) -> bool:
    """Look an image up in the ECR backend by digest and say whether it is marked to crash."""
    repo = ecr_backends[account_id][region].repositories.get(repository)
    if repo is None:
        return False
    for image in repo.images:
        if image.get_image_digest() == digest:
            return manifest_crashes(image.image_manifest)
    return False


def push_event(
    *, account_id: str, region: str, repository: str, digest: str, tag: str | None
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "result": "SUCCESS",
        "repository-name": repository,
        "image-digest": digest,
        "action-type": "PUSH",
    }
    if tag:
        detail["image-tag"] = tag
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": account_id,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": detail,
    }


class EcrPushEvents:
    """Patch `ECRBackend.put_image` to emit the push event after a successful put."""

    def __init__(self, emit: Callable[[dict[str, Any]], None]) -> None:
        self._emit = emit
        self._patches = Patches()
        # (repository, tag) pushes whose event is lost on purpose. Keyed by the image, not
        # the thread: the put arrives on the moto server's request thread.
        self._suppressed: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def suppressed(self, repository: str, tag: str, *, suppress: bool = True) -> Iterator[None]:
        """Pushes of `repository:tag` inside the block emit no event (when `suppress`)."""
        if not suppress:
            yield
            return
        with self._lock:
            self._suppressed.add((repository, tag))
        try:
            yield
        finally:
            with self._lock:
                self._suppressed.discard((repository, tag))

    def install(self) -> None:
        original = ECRBackend.put_image
        emit = self._emit
        events = self

        def put_image(backend: ECRBackend, repository_name: str, image_manifest: str,
                      image_tag: str, *args: Any, **kwargs: Any) -> Any:  # fmt: skip
            image = original(backend, repository_name, image_manifest, image_tag, *args, **kwargs)
            digest = image.get_image_digest()
            with events._lock:
                lost = (repository_name, image_tag) in events._suppressed
            if lost:
                log.info("ecr push %s:%s %s (event suppressed)", repository_name, image_tag, digest)
                return image
            log.info("ecr push %s:%s %s", repository_name, image_tag, digest)
            emit(
                push_event(
                    account_id=backend.account_id,
                    region=backend.region_name,
                    repository=repository_name,
                    digest=digest,
                    tag=image_tag,
                )
            )
            return image

        self._patches.replace(ECRBackend, "put_image", put_image)

    def uninstall(self) -> None:
        self._patches.undo()
