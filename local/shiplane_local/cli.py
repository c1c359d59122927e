"""The `shiplane` command line (for now: the embedded local cloud and the demo)."""

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
) -> None:
    """Serve the local cloud until Ctrl-C; other terminals use it via AWS_ENDPOINT_URL."""
    import yaml

    from shiplane.adapters.dynamodb import DynamoStore
    from shiplane.services.apply_configuration import apply_configuration

    from .cloud import LocalCloud
    from .demo import DEMO_CONFIG, quiet_logs
    from .targets import prepare_targets
    from .views import Follower

    quiet_logs()
    with LocalCloud(
        port=port, rollout_delay=rollout_delay, parameters={"LogLevel": "WARNING"}
    ) as cloud:
        store = DynamoStore(cloud.outputs["TableName"], client=cloud.client("dynamodb"))
        applied = apply_configuration(yaml.safe_load((config or DEMO_CONFIG).read_text()), store)
        prepare_targets(cloud, applied)
        console.print(f"Local cloud ready at [bold]{cloud.endpoint_url}[/]")
        console.print(
            f"  export AWS_ENDPOINT_URL={cloud.endpoint_url} AWS_ACCESS_KEY_ID=testing "
            "AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1"
        )
        console.print("  then, from another terminal: shiplane local push web:1.0.0")
        for name, value in sorted(cloud.outputs.items()):
            console.print(f"  {name}: {value}")
        follower = Follower(store, console, [p.name for p in applied.projects])
        try:
            follower.follow(lambda: False, timeout=float("inf"), interval=0.5)
        except KeyboardInterrupt:
            console.print("stopping")


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
def local_promote(project: str, release: str, environment: str, endpoint: Endpoint = "") -> None:
    """Start the deploy pipeline with a deploy action, as from the Step Functions console."""
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
    execution = sfn.start_execution(
        stateMachineArn=machines[0]["stateMachineArn"],
        name=f"promote-{project}-{release}-{environment}-{int(time.time())}".replace(".", "-"),
        input=json.dumps(action),
    )
    console.print(f"started {execution['executionArn']}")


@local.command("status")
def local_status(project: str = "web", endpoint: Endpoint = "") -> None:
    """Where every release of a project stands."""
    from shiplane.adapters.dynamodb import DynamoStore

    from .views import status_table

    cfn = _client("cloudformation", _default_endpoint(endpoint))
    outputs = cfn.describe_stacks(StackName="shiplane")["Stacks"][0]["Outputs"]
    table = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "TableName")
    store = DynamoStore(table, client=_client("dynamodb", _default_endpoint(endpoint)))
    console.print(status_table(store, project))
