"""A project's releases: list (newest first), create (chosen tags, or the newest the
channel accepts, pinned by digest, through the pipeline like a push), get, and update
the variable snapshot."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, Field

from shiplane.api.context import audit_record, caller
from shiplane.api.deps import ApiDependencies, deps
from shiplane.api.errors import responses
from shiplane.api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, paginate
from shiplane.api.work import (
    Accepted,
    IdempotencyKey,
    ProjectName,
    accepted,
)
from shiplane.domain.models import (
    Deployment,
    DeploymentMode,
    DeploymentStatus,
    ImageRef,
    Release,
    TriggeredBy,
)
from shiplane.domain.requests import CreateReleaseAction
from shiplane.errors import NotFoundError
from shiplane.services.deployment_requests import execution_name
from shiplane.services.release_requests import (
    NewRelease,
    ReleaseRequestDependencies,
    choose_images,
    create_release_action,
    project_of,
)
from shiplane.services.variables import SnapshotDependencies, update_variable_snapshot

router = Router()

Version = Annotated[str, Path(min_length=1, max_length=128, description="the release")]


class ReleaseSummary(BaseModel):
    project: str
    version: str
    sequence: int
    channel: str
    lifecycle: str
    images: dict[str, ImageRef]
    created_at: datetime
    created_by: TriggeredBy

    @classmethod
    def of(cls, release: Release) -> ReleaseSummary:
        return cls.model_validate(release.model_dump(include=set(cls.model_fields)))


class DeploymentBrief(BaseModel):
    id: str
    environment: str
    tenant: str
    mode: DeploymentMode
    status: DeploymentStatus
    created_at: datetime
    finished_at: datetime | None = None

    @classmethod
    def of(cls, deployment: Deployment) -> DeploymentBrief:
        return cls.model_validate(deployment.model_dump(include=set(cls.model_fields)))


class ReleaseDetail(Release):
    deployments: list[DeploymentBrief] = Field(
        default_factory=list, description="the release's deployments, oldest first"
    )


def _release_deps(d: ApiDependencies) -> ReleaseRequestDependencies:
    return ReleaseRequestDependencies(
        config=d.store, releases=d.store, registry=d.registry, now=d.now
    )


def _release(d: ApiDependencies, project: str, version: str) -> Release:
    project_of(d.store, project)
    release = d.store.get_release(project, version)
    if release is None:
        raise NotFoundError(f"project {project!r} has no release {version!r}", field="path.version")
    return release


@router.get(
    "/projects/<name>/releases",
    tags=["releases"],
    summary="A project's releases, newest first",
    responses=responses(404, 422),
)
def list_releases(
    name: ProjectName, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[ReleaseSummary]:
    d = deps(router)
    project_of(d.store, name)
    page, following = paginate(
        d.store.list_releases(name),
        lambda r: f"{r.created_at.isoformat()}#{r.sequence:012d}#{r.version}",
        cursor,
        limit,
        newest_first=True,
    )
    return Page[ReleaseSummary](items=[ReleaseSummary.of(r) for r in page], next_cursor=following)


@router.post(
    "/projects/<name>/releases",
    tags=["releases"],
    summary="Create a release: chosen tags, or the newest the channel accepts",
    description="Images are pinned by digest now; the release and its first automatic "
    "deployments are created by the deploy pipeline, as for a push. Answers 202 with the "
    "execution and the release to poll.",
    responses=responses(400, 404, 409, 422, ok=202, ok_description="Accepted"),
)
def create_release(
    name: ProjectName,
    body: Annotated[NewRelease, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[Accepted]:
    d = deps(router)
    rdeps = _release_deps(d)
    images = choose_images(name, body, rdeps)
    pinned = {repo: image.digest for repo, image in sorted(images.items())}
    execution = execution_name("release", name, idempotency_key, body, salt=str(pinned))
    previous = d.pipeline.describe(d.pipeline.execution_arn(execution))
    if previous is not None:  # the same request again: answer what it was answered
        action = CreateReleaseAction.model_validate(previous["input"])
        started = False
        arn = d.pipeline.execution_arn(execution)
    else:
        action = create_release_action(name, body, images, caller(router), rdeps)
        arn, started = d.pipeline.start(execution, action.model_dump(mode="json"))
        if started:
            d.store.put_audit(
                audit_record(
                    router,
                    f"project/{name}/release/{action.version}",
                    after=action,
                )
            )
    return accepted(
        Accepted(
            execution_arn=arn,
            started=started,
            project=name,
            release=action.version,
            poll=f"/projects/{name}/releases/{action.version}",
        )
    )


@router.get(
    "/projects/<name>/releases/<version>",
    tags=["releases"],
    summary="One release, with its deployments",
    responses=responses(404, 422),
)
def get_release(name: ProjectName, version: Version) -> ReleaseDetail:
    d = deps(router)
    release = _release(d, name, version)
    deployments = [
        DeploymentBrief.of(x) for x in d.store.list_deployments(name) if x.release == version
    ]
    return ReleaseDetail(**release.model_dump(), deployments=deployments)


@router.post(
    "/projects/<name>/releases/<version>/snapshot",
    tags=["releases"],
    summary="Update the release's variable snapshot from the project's variables",
    description="Only the variables change: images and the process stay as snapshotted.",
    responses=responses(400, 404, 422),
)
def update_snapshot(name: ProjectName, version: Version) -> Release:
    d = deps(router)
    before = _release(d, name, version)
    updated = update_variable_snapshot(
        name, version, SnapshotDependencies(config=d.store, releases=d.store)
    )
    d.store.put_audit(
        audit_record(
            router,
            f"project/{name}/release/{version}",
            before={"variables": [v.model_dump(mode="json") for v in before.variables]},
            after={"variables": [v.model_dump(mode="json") for v in updated.variables]},
        )
    )
    return updated
