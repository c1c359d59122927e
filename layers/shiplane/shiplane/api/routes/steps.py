"""Preview and convert a step: what a deployment of a release would register and deploy
for the step (`render`), how that differs from what runs (`diff`), and the step as an
equivalent raw CloudFormation step (`convert`, read-only or in place)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, ConfigDict, Field

from shiplane.api.context import audit_record
from shiplane.api.deps import ApiDependencies, deps
from shiplane.api.errors import responses
from shiplane.api.work import ProjectName
from shiplane.domain.models import NAME_PATTERN, UNTENANTED
from shiplane.errors import NotFoundError
from shiplane.services import preview
from shiplane.services.convert import ConvertResult, export_converted, replace_with_converted
from shiplane.services.deployment_requests import check_environment, check_tenant
from shiplane.services.release_requests import project_of

router = Router()

StepName = Annotated[str, Path(pattern=NAME_PATTERN, description="a step of the project")]


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    release: str = Field(min_length=1, max_length=128)
    environment: str = Field(pattern=NAME_PATTERN)
    tenant: str = Field(default=UNTENANTED, min_length=1, max_length=40)


class ConvertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replace: bool = Field(
        default=False,
        description="replace the step in the project (releases keep their snapshot); "
        "false: only show the conversion",
    )


def _preview_deps(d: ApiDependencies, name: str, step: str, body: PreviewRequest) -> None:
    """Refuse, naming the field, what the preview cannot be made for."""
    project_of(d.store, name)
    release = d.store.get_release(name, body.release)
    if release is None:
        raise NotFoundError(
            f"project {name!r} has no release {body.release!r}", field="body.release"
        )
    if step not in {s.name for s in release.process}:
        raise NotFoundError(
            f"release {body.release} of {name!r} has no step {step!r} (its steps: "
            f"{', '.join(s.name for s in release.process)})",
            field="path.step",
        )
    check_environment(d.store, body.environment, "body.environment")
    check_tenant(d.store, body.tenant)


def _dependencies(d: ApiDependencies) -> preview.PreviewDependencies:
    return preview.PreviewDependencies(
        config=d.store, releases=d.store, deployments=d.store, gateways=d.gateways
    )


@router.post(
    "/projects/<name>/steps/<step>/render",
    tags=["steps"],
    summary="The task definition and stack a deployment of a release would register and "
    "deploy for this step (nothing is written)",
    responses=responses(400, 404, 422),
)
def render_step(
    name: ProjectName, step: StepName, body: Annotated[PreviewRequest, Body()]
) -> preview.RenderResult:
    d = deps(router)
    _preview_deps(d, name, step, body)
    return preview.render(
        name, body.release, body.environment, _dependencies(d), body.tenant, step=step
    )


@router.post(
    "/projects/<name>/steps/<step>/diff",
    tags=["steps"],
    summary="How a deployment of a release would differ from what runs, for this step",
    description="Task definition fields, and the stack's change set (created, described and "
    "deleted again).",
    responses=responses(400, 404, 422),
)
def diff_step(
    name: ProjectName, step: StepName, body: Annotated[PreviewRequest, Body()]
) -> preview.DiffResult:
    d = deps(router)
    _preview_deps(d, name, step, body)
    return preview.diff(
        name, body.release, body.environment, _dependencies(d), body.tenant, step=step
    )


@router.post(
    "/projects/<name>/steps/<step>/convert",
    tags=["steps"],
    summary="Convert an ecs-service step into an equivalent cloudformation step",
    description="`replace: false` (default) shows the conversion; `replace: true` replaces "
    "the step in the project.",
    responses=responses(400, 404, 422),
)
def convert_step(
    name: ProjectName,
    step: StepName,
    body: Annotated[ConvertRequest | None, Body()] = None,
) -> ConvertResult:
    d = deps(router)
    project = project_of(d.store, name)
    if step not in {s.name for s in project.steps}:
        raise NotFoundError(
            f"project {name!r} has no step {step!r} (its steps: "
            f"{', '.join(s.name for s in project.steps)})",
            field="path.step",
        )
    if body is None or not body.replace:
        return export_converted(name, step, d.store)
    result = replace_with_converted(name, step, d.store)
    d.store.put_audit(
        audit_record(
            router,
            f"project/{name}/step/{step}",
            before=project.step(step),
            after=result.converted,
        )
    )
    return result
