"""The `shiplane` command line: the API's commands (`shiplane_local.commands`), the
embedded local cloud (`shiplane local ...`) and the demo."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, help="Shiplane: ECR → ECS on Fargate, through lifecycles.")
local = typer.Typer(no_args_is_help=True, help="The embedded local cloud (no AWS, no Docker).")
app.add_typer(local, name="local")
console = Console()

DEFAULT_PORT = 4599
Endpoint = Annotated[
    str,
    typer.Option(envvar="SHIPLANE_LOCAL_ENDPOINT", help="the local cloud's AWS endpoint"),
]


@app.command()
def demo(
    rollout_delay: Annotated[float, typer.Option(help="seconds a simulated rollout takes")] = 1.0,
) -> None:
    """Run Shiplane's main job on the embedded local cloud, narrated."""
    from .demo import run_demo

    raise typer.Exit(run_demo(console, rollout_delay=rollout_delay))


@local.command("up")
def local_up(
    port: Annotated[int, typer.Option(help="port of the AWS endpoint")] = DEFAULT_PORT,
    config: Annotated[
        Path | None, typer.Option(help="configuration to apply (default: the demo's)")
    ] = None,
    rollout_delay: Annotated[float, typer.Option(help="seconds a simulated rollout takes")] = 2.0,
    api_port: Annotated[int, typer.Option(help="port of the API (0: any free port)")] = 0,
    faults: Annotated[
        Path | None,
        typer.Option(help="a fault plan (YAML) to inject: throttles, crashes, event faults"),
    ] = None,
    time_scale: Annotated[
        float, typer.Option(help="factor on AWS's delays (retries' backoff, event delays)")
    ] = 1.0,
) -> None:
    """Serve the local cloud until Ctrl-C; other terminals use it via AWS_ENDPOINT_URL,
    and the `shiplane` API commands via the API URL it prints (and keeps in a state file)."""
    import yaml

    from shiplane.adapters.dynamodb import DynamoStore
    from shiplane.services.apply_configuration import apply_configuration

    from .cloud import LocalCloud
    from .connection import remove_local_state, write_local_state
    from .demo import DEMO_CONFIG, quiet_logs
    from .faults import FaultPlanError, load_plan
    from .targets import prepare_targets
    from .views import Follower

    plan = None
    if faults is not None:
        try:
            plan = load_plan(faults)
        except (FaultPlanError, OSError) as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from None
    quiet_logs()
    with LocalCloud(
        port=port,
        rollout_delay=rollout_delay,
        parameters={"LogLevel": "WARNING"},
        api_port=api_port,
        time_scale=time_scale,
        faults=plan,
    ) as cloud:
        if plan is not None:
            console.print(f"Fault plan {faults}: {len(plan.faults)} fault(s), seed {plan.seed}")
        store = DynamoStore(cloud.outputs["TableName"], client=cloud.client("dynamodb"))
        applied = apply_configuration(yaml.safe_load((config or DEMO_CONFIG).read_text()), store)
        prepare_targets(cloud, applied)
        console.print(f"Local cloud ready at [bold]{cloud.endpoint_url}[/]")
        console.print(
            f"  export AWS_ENDPOINT_URL={cloud.endpoint_url} AWS_ACCESS_KEY_ID=testing "
            "AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1"
        )
        state = write_local_state(cloud.api_url, cloud.endpoint_url)
        console.print(f"API at [bold]{cloud.api_url}[/] (written to {state})")
        console.print("  then, from another terminal: shiplane local push web:1.0.0")
        console.print("  and: shiplane status (the API commands find the local API there)")
        for name, value in sorted(cloud.outputs.items()):
            console.print(f"  {name}: {value}")
        follower = Follower(store, console, [p.name for p in applied.projects])
        try:
            follower.follow(lambda: False, timeout=float("inf"), interval=0.5)
        except KeyboardInterrupt:
            console.print("stopping")
        finally:
            remove_local_state(state)


def _client(service: str, endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _default_endpoint(endpoint: str | None) -> str:
    return endpoint or f"http://127.0.0.1:{DEFAULT_PORT}"


@local.command("push")
def local_push(
    image: Annotated[str, typer.Argument(help="REPOSITORY:TAG")],
    crash: Annotated[bool, typer.Option(help="the image crashes when ECS runs it")] = False,
    endpoint: Endpoint = "",
) -> None:
    """Push an image to the local ECR (emits the ECR push event)."""
    from .ecr import image_manifest

    repository, _, tag = image.partition(":")
    if not repository or not tag:
        console.print(f"[red]expected REPOSITORY:TAG, got {image!r}[/]")
        raise typer.Exit(2)
    ecr = _client("ecr", _default_endpoint(endpoint))
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repository)
    response = ecr.put_image(
        repositoryName=repository,
        imageManifest=image_manifest(repository, tag, crash=crash),
        imageTag=tag,
    )
    console.print(f"pushed {repository}:{tag} {response['image']['imageId']['imageDigest']}")


@local.command("promote")
def local_promote(
    project: str,
    release: str,
    environment: str,
    tenant: Annotated[str, typer.Option(help="a tenant, for tenanted projects")] = "untenanted",
    endpoint: Endpoint = "",
) -> None:
    """Deploy a release to an environment (a promotion, a redeploy or a rollback), as from
    the Step Functions console."""
    sfn = _client("stepfunctions", _default_endpoint(endpoint))
    machines = [
        m
        for m in sfn.list_state_machines()["stateMachines"]
        if m["name"].endswith("-deploy-pipeline")
    ]
    if not machines:
        console.print("[red]no Shiplane deploy pipeline at this endpoint[/]")
        raise typer.Exit(1)
    action = {
        "action": "deploy",
        "project": project,
        "release": release,
        "environment": environment,
    }
    if tenant != "untenanted":
        action["tenant"] = tenant
    execution = sfn.start_execution(
        stateMachineArn=machines[0]["stateMachineArn"],
        name=f"deploy-{project}-{release}-{environment}-{tenant}-{time.time_ns()}".replace(
            ".", "-"
        )[:80],
        input=json.dumps(action),
    )
    console.print(f"started {execution['executionArn']}")


def _store(endpoint: str):  # type: ignore[no-untyped-def]
    from shiplane.adapters.dynamodb import DynamoStore

    cfn = _client("cloudformation", _default_endpoint(endpoint))
    outputs = cfn.describe_stacks(StackName="shiplane")["Stacks"][0]["Outputs"]
    table = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "TableName")
    return DynamoStore(table, client=_client("dynamodb", _default_endpoint(endpoint)))


@local.command("status")
def local_status(project: str = "web", endpoint: Endpoint = "") -> None:
    """Where every release of a project stands."""
    from .views import status_table

    console.print(status_table(_store(endpoint), project))


@local.command("apply")
def local_apply(config: Path, endpoint: Endpoint = "") -> None:
    """Apply a configuration file (environments, lifecycles, targets, projects, tenants)."""
    import yaml

    from shiplane.errors import ShiplaneError
    from shiplane.services.apply_configuration import apply_configuration

    try:
        applied = apply_configuration(yaml.safe_load(config.read_text()), _store(endpoint))
    except ShiplaneError as exc:
        console.print(f"[red]{type(exc).__name__}: {exc}[/]")
        raise typer.Exit(2) from None
    console.print(
        f"applied {config}: {len(applied.projects)} project(s), {len(applied.tenants)} tenant(s)"
    )


@local.command("approvals")
def local_approvals(project: str = "web", endpoint: Endpoint = "") -> None:
    """Pending approvals of a project."""
    pending = [a for a in _store(endpoint).list_approvals(project) if a.status == "PENDING"]
    if not pending:
        console.print("no pending approval")
    for a in pending:
        console.print(f"{a.deployment_id}: release {a.release} to {a.environment}/{a.tenant}")


def _decide(
    project: str, deployment_id: str, approve: bool, by: str, note: str, endpoint: str
) -> None:
    from shiplane.adapters.stepfunctions import SfnTaskTokens
    from shiplane.errors import ShiplaneError
    from shiplane.services.approvals import ApprovalDependencies, decide_approval

    store = _store(endpoint)
    deps = ApprovalDependencies(
        deployments=store,
        approvals=store,
        tokens=SfnTaskTokens(_client("stepfunctions", _default_endpoint(endpoint))),
    )
    payload = {
        "project": project,
        "deployment_id": deployment_id,
        "approve": approve,
        "by": by,
        "note": note,
    }
    try:
        approval = decide_approval(payload, deps)
    except ShiplaneError as exc:
        console.print(f"[red]{type(exc).__name__}: {exc}[/]")
        raise typer.Exit(2) from None
    console.print(f"deployment {deployment_id}: {approval.status.lower()} by {approval.decided_by}")


@local.command("approve")
def local_approve(
    project: str,
    deployment_id: str,
    by: str = "local-user",
    note: str = "",
    endpoint: Endpoint = "",
) -> None:
    """Approve a deployment waiting for approval."""
    _decide(project, deployment_id, True, by, note, endpoint)


@local.command("reject")
def local_reject(
    project: str,
    deployment_id: str,
    by: str = "local-user",
    note: str = "",
    endpoint: Endpoint = "",
) -> None:
    """Reject a deployment waiting for approval (recorded, the lifecycle stops there)."""
    _decide(project, deployment_id, False, by, note, endpoint)


@local.command("secret")
def local_secret(
    project: str,
    name: str,
    endpoint: Endpoint = "",
) -> None:
    """Store a sensitive value (read from standard input) in SSM; prints its secret_ref."""
    import sys

    from shiplane.adapters.ssm import SsmSecrets
    from shiplane.services.variables import store_sensitive_value

    value = sys.stdin.readline().rstrip("\n")
    if not value:
        console.print("[red]no value on standard input[/]")
        raise typer.Exit(2)
    secrets = SsmSecrets(_client("ssm", _default_endpoint(endpoint)))
    variable = store_sensitive_value(project, name, value, secrets)
    console.print(f"secret_ref: {variable.secret_ref}")


class _EndpointSession:
    """A boto3 session whose clients talk to the local cloud's endpoint (the assumed
    role's credentials, like in a target account)."""

    def __init__(self, endpoint: str, **credentials: str) -> None:
        import boto3

        self._session = boto3.session.Session(**credentials)
        self._endpoint = endpoint

    def client(self, service: str):  # type: ignore[no-untyped-def]
        return self._session.client(service, endpoint_url=self._endpoint)


def _preview_deps(endpoint: str):  # type: ignore[no-untyped-def]
    from shiplane.adapters.targets import AssumedRoleGateways
    from shiplane.services.preview import PreviewDependencies

    url = _default_endpoint(endpoint)
    store = _store(endpoint)
    gateways = AssumedRoleGateways(
        sts=_client("sts", url),
        session_factory=lambda **credentials: _EndpointSession(url, **credentials),
    )
    return PreviewDependencies(config=store, releases=store, deployments=store, gateways=gateways)


Output = Annotated[str, typer.Option(help="text (readable) or json (the result model)")]
Tenant = Annotated[str, typer.Option(help="a tenant, for tenanted projects")]


def _preview(
    kind: str, project: str, release: str, environment: str, tenant: str, output: str, endpoint: str
) -> None:
    from shiplane.errors import ShiplaneError
    from shiplane.services import preview

    if output not in ("text", "json"):
        typer.echo(f"--output must be text or json, not {output!r}", err=True)
        raise typer.Exit(2)
    service = preview.render if kind == "render" else preview.diff
    try:
        result = service(project, release, environment, _preview_deps(endpoint), tenant=tenant)
    except ShiplaneError as exc:
        typer.echo(f"{type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from None
    if output == "json":
        typer.echo(result.model_dump_json(indent=2))
        return
    # typer.echo, not rich: paths like containerDefinitions[web] are not markup.
    for line in _preview_lines(result):
        typer.echo(line)


def _preview_lines(result) -> list[str]:  # type: ignore[no-untyped-def]
    from shiplane.services.preview import RenderResult

    lines = [
        f"release {result.release} of {result.project} → {result.environment} ({result.tenant})"
    ]
    if result.blocked_reason:
        phase = f" [phase {result.blocked_by_phase}]" if result.blocked_by_phase else ""
        lines.append(f"not deployable yet{phase}: {result.blocked_reason}")
    if not result.units:
        lines.append("no target would receive it")
    for unit in result.units:
        lines.append(f"target {unit.target}, step {unit.step}")
        if isinstance(result, RenderResult):
            lines.append("  task definition:")
            lines += _indented(unit.task_definition, 4)
            lines.append(f"  stack {unit.stack.stack_name}:")
            for key, value in sorted(unit.stack.parameters.items()):
                lines.append(f"    parameter {key} = {value}")
            lines.append("    template:")
            lines += _indented(unit.stack.template, 6)
            continue
        running = unit.running_task_definition_arn or "nothing runs yet"
        lines.append(f"  task definition (running: {running}):")
        if not unit.task_definition:
            lines.append("    no changes")
        lines += [f"    {change}" for change in unit.task_definition]
        lines.append(f"  stack {unit.stack.stack_name}: {unit.stack.summary}")
        for change in unit.stack.changes:
            replacement = f" (replacement: {change.replacement})" if change.replacement else ""
            lines.append(
                f"    {change.action} {change.logical_id} {change.resource_type}{replacement}"
            )
    return lines


def _indented(value: object, spaces: int) -> list[str]:
    return [" " * spaces + line for line in json.dumps(value, indent=2).splitlines()]


@local.command("render")
def local_render(
    project: str,
    release: str,
    environment: str,
    tenant: Tenant = "untenanted",
    output: Output = "text",
    endpoint: Endpoint = "",
) -> None:
    """The task definition and stack a deployment would register and deploy (no writes)."""
    _preview("render", project, release, environment, tenant, output, endpoint)


@local.command("diff")
def local_diff(
    project: str,
    release: str,
    environment: str,
    tenant: Tenant = "untenanted",
    output: Output = "text",
    endpoint: Endpoint = "",
) -> None:
    """How a deployment would differ from what runs now: task definition fields, and the
    stack's change set (created, described and deleted again)."""
    _preview("diff", project, release, environment, tenant, output, endpoint)


@local.command("convert")
def local_convert(
    project: str,
    step: str,
    replace: Annotated[
        bool, typer.Option("--replace", help="replace the step in the project (in place)")
    ] = False,
    output: Annotated[str, typer.Option(help="yaml (the step document) or json")] = "yaml",
    endpoint: Endpoint = "",
) -> None:
    """An ecs-service step as an equivalent cloudformation step: printed (read-only), or
    with --replace put in the project's place of the step."""
    from shiplane.errors import ShiplaneError
    from shiplane.services.convert import export_converted, replace_with_converted

    if output not in ("yaml", "json"):
        typer.echo(f"--output must be yaml or json, not {output!r}", err=True)
        raise typer.Exit(2)
    try:
        store = _store(endpoint)
        result = (
            replace_with_converted(project, step, store)
            if replace
            else export_converted(project, step, store)
        )
    except ShiplaneError as exc:
        typer.echo(f"{type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from None
    if output == "json":
        typer.echo(result.model_dump_json(indent=2))
    else:
        typer.echo(result.yaml, nl=False)
    if replace:
        typer.echo(f"step {step!r} of project {project!r} replaced by its conversion", err=True)


def _register_api_commands() -> None:
    from .commands import register

    register(app)


_register_api_commands()
