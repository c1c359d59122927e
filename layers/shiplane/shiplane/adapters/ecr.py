"""ECR in Shiplane's own account: where pushed images are looked up to pin digests, and
what was pushed recently (the reconcile job looks for pushes whose event never arrived)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from shiplane.adapters.throttling import THROTTLING_CODES
from shiplane.errors import ThrottledError
from shiplane.ports import PushedImage


class EcrRegistry:
    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("ecr")
        return self._client

    def image_digest(self, repository: str, tag: str) -> str | None:
        try:
            images = self.client.describe_images(
                repositoryName=repository, imageIds=[{"imageTag": tag}]
            )["imageDetails"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in (
                "ImageNotFoundException",
                "RepositoryNotFoundException",
            ):
                return None
            if exc.response["Error"]["Code"] in THROTTLING_CODES:
                raise ThrottledError("ECR DescribeImages throttled") from exc
            raise
        return str(images[0]["imageDigest"]) if images else None

    def latest_tag(self, repository: str) -> tuple[str, str] | None:
        newest: dict[str, Any] | None = None
        for image in self._tagged_images(repository):
            if newest is None or image["imagePushedAt"] > newest["imagePushedAt"]:
                newest = image
        if newest is None:
            return None
        return str(newest["imageTags"][0]), str(newest["imageDigest"])

    def tags(self, repository: str) -> list[tuple[str, str]]:
        """Every (tag, digest) of the repository; [] when it does not exist."""
        return [
            (str(tag), str(image["imageDigest"]))
            for image in self._tagged_images(repository)
            for tag in image.get("imageTags", [])
        ]

    def registry_host(self, repository: str) -> str | None:
        """`<account>.dkr.ecr.<region>.amazonaws.com` of the repository's images, None
        when it has none (DescribeImages names the registry: no other permission needed)."""
        images = self._tagged_images(repository)
        if not images:
            return None
        region = self.client.meta.region_name
        return f"{images[0]['registryId']}.dkr.ecr.{region}.amazonaws.com"

    def pushed_since(self, repository: str, since: datetime) -> list[PushedImage]:
        """Every tag pushed at or after `since`, oldest first; [] without the repository."""
        found: list[PushedImage] = []
        for image in self._tagged_images(repository):
            pushed = image["imagePushedAt"]
            if pushed.tzinfo is None:
                pushed = pushed.replace(tzinfo=UTC)
            if pushed < since:
                continue
            found.extend(
                PushedImage(
                    repository=repository,
                    tag=str(tag),
                    digest=str(image["imageDigest"]),
                    pushed_at=pushed,
                    registry_id=str(image.get("registryId", "")),
                )
                for tag in image.get("imageTags", [])
            )
        return sorted(found, key=lambda i: (i.pushed_at, i.tag))

    def _tagged_images(self, repository: str) -> list[dict[str, Any]]:
        paginator = self.client.get_paginator("describe_images")
        images: list[dict[str, Any]] = []
        try:
            for page in paginator.paginate(
                repositoryName=repository, filter={"tagStatus": "TAGGED"}
            ):
                images.extend(page["imageDetails"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "RepositoryNotFoundException":
                return []
            if exc.response["Error"]["Code"] in THROTTLING_CODES:
                raise ThrottledError("ECR DescribeImages throttled") from exc
            raise
        return images
