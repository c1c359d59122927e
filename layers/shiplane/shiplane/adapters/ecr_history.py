"""ECR in Shiplane's own account, read for what was pushed recently (the reconcile job
looks for pushes whose event never arrived)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from shiplane.errors import ThrottledError
from shiplane.ports import PushedImage

_THROTTLING = {"ThrottlingException", "TooManyRequestsException"}


class EcrImageHistory:
    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("ecr")
        return self._client

    def pushed_since(self, repository: str, since: datetime) -> list[PushedImage]:
        found: list[PushedImage] = []
        paginator = self.client.get_paginator("describe_images")
        try:
            for page in paginator.paginate(
                repositoryName=repository, filter={"tagStatus": "TAGGED"}
            ):
                for image in page["imageDetails"]:
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
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "RepositoryNotFoundException":
                return []
            if code in _THROTTLING:
                raise ThrottledError("ECR DescribeImages throttled") from exc
            raise
        return sorted(found, key=lambda i: (i.pushed_at, i.tag))
