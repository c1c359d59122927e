"""Releases asked for through the API: the images chosen (a tag per repository, or the
newest one the channel accepts), pinned by digest, checked now the way the pipeline will
check them, and handed to the pipeline as a `create-release` action, so that the release
and its first automatic deployments are created exactly as for a push."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from shiplane.domain.models import (
    DEFAULT_CHANNEL,
    NAME_PATTERN,
    ImageRef,
    Project,
    Release,
    TriggeredBy,
    TriggerKind,
)
from shiplane.domain.requests import CreateReleaseAction
from shiplane.domain.versions import channel_accepts
from shiplane.errors import ConflictError, InvalidRequestError, NotFoundError
from shiplane.ports import ConfigStore, ReleaseStore
from shiplane.services.resolve_release import build_release, image_for_channel


class ReleaseImages(Protocol):
    """What release creation reads from ECR (Shiplane's own account)."""

    def image_digest(self, repository: str, tag: str) -> str | None: ...
    def latest_tag(self, repository: str) -> tuple[str, str] | None: ...
    def tags(self, repository: str) -> list[tuple[str, str]]: ...
    def registry_host(self, repository: str) -> str | None: ...


@dataclass
class ReleaseRequestDependencies:
    config: ConfigStore
    releases: ReleaseStore
    registry: ReleaseImages
    now: Callable[[], datetime]


class NewRelease(BaseModel):
    """The body of `POST /projects/{name}/releases`."""

    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$",
        description="default: the chosen tag (when every repository has the same one)",
    )
    channel: str = Field(default=DEFAULT_CHANNEL, pattern=NAME_PATTERN)
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="repository -> tag; a repository left out gets the newest tag its "
        "channel accepts",
    )


def project_of(config: ConfigStore, name: str) -> Project:
    """The project, or NotFound naming the path parameter."""
    try:
        return config.get_project(name)
    except NotFoundError:
        raise NotFoundError(f"project {name!r} does not exist", field="path.name") from None


def choose_images(
    project_name: str, request: NewRelease, deps: ReleaseRequestDependencies
) -> dict[str, ImageRef]:
    """One image per repository of the project, pinned by digest: the tag asked for (if
    the channel accepts it), else the newest one the channel accepts."""
    project = project_of(deps.config, project_name)
    try:
        channel = project.channel(request.channel)
    except KeyError:
        raise NotFoundError(
            f"project {project.name!r} has no channel {request.channel!r} (its channels: "
            f"{', '.join(c.name for c in project.channels)})",
            field="body.channel",
        ) from None
    unknown = sorted(set(request.tags) - set(project.repositories))
    if unknown:
        raise InvalidRequestError(
            f"{', '.join(unknown)} is not a repository of project {project.name!r} (its "
            f"repositories: {', '.join(project.repositories)})",
            field=f"body.tags.{unknown[0]}",
        )
    images: dict[str, ImageRef] = {}
    for repository in project.repositories:
        where = f"body.tags.{repository}"
        tag = request.tags.get(repository)
        if tag is not None:
            accepted, why = channel_accepts(channel.rules, repository, tag)
            if not accepted:
                raise InvalidRequestError(
                    f"channel {channel.name!r} does not accept {repository}:{tag} ({why})",
                    field=where,
                )
            digest = deps.registry.image_digest(repository, tag)
            if digest is None:
                raise NotFoundError(f"ECR has no image {repository}:{tag}", field=where)
        else:
            chosen = image_for_channel(deps.registry, repository, channel.rules)
            if chosen is None:
                raise InvalidRequestError(
                    f"no image of {repository} is accepted by channel {channel.name!r}: "
                    "push one, or name a tag",
                    field=where,
                )
            tag, digest = chosen
        host = deps.registry.registry_host(repository)
        if host is None:
            raise NotFoundError(f"ECR has no repository {repository!r}", field=where)
        images[repository] = ImageRef(repository=repository, registry=host, tag=tag, digest=digest)
    return images


def version_of(request: NewRelease, images: dict[str, ImageRef]) -> str:
    if request.version:
        return request.version
    tags = sorted({image.tag for image in images.values()})
    if len(tags) != 1:
        raise InvalidRequestError(
            f"the images have different tags ({', '.join(tags)}): name the release's version",
            field="body.version",
        )
    return tags[0]


def create_release_action(
    project_name: str,
    request: NewRelease,
    images: dict[str, ImageRef],
    requested_by: str,
    deps: ReleaseRequestDependencies,
) -> CreateReleaseAction:
    """The pipeline's `create-release` action, after every check the pipeline would make:
    the version is new, and the variables resolve wherever the release can go."""
    project = project_of(deps.config, project_name)
    version = version_of(request, images)
    if deps.releases.get_release(project.name, version) is not None:
        raise ConflictError(
            f"project {project.name!r} has a release {version!r} already", field="body.version"
        )
    check_release(project, request.channel, version, images, requested_by, deps)
    return CreateReleaseAction(
        action="create-release",
        project=project.name,
        version=version,
        channel=request.channel,
        images=images,
        requested_by=requested_by,
    )


def check_release(
    project: Project,
    channel: str,
    version: str,
    images: dict[str, ImageRef],
    requested_by: str,
    deps: ReleaseRequestDependencies,
) -> Release:
    trigger = TriggeredBy(kind=TriggerKind.API, by=requested_by)
    return build_release(project, channel, version, images, trigger, deps.config, deps.now)
