"""`make demo`: Shiplane's main job on the embedded local cloud, narrated.

A project `web` is configured (dev and test automatic, prod manual); image web:1.0.0 is
pushed and deployed to dev, then test; it is promoted to prod the way a person does it
from the Step Functions console ("Start execution" with the documented input); web:1.1.0
follows; a table shows what runs where."""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.panel import Panel

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.services.apply_configuration import apply_configuration

from .cloud import REPO_ROOT, LocalCloud
from .targets import prepare_targets
from .views import Follower, status_table

DEMO_CONFIG = REPO_ROOT / "examples" / "shiplane.yaml"


def quiet_logs() -> None:
    """The narration is the output: keep library chatter out of it."""
    warnings.filterwarnings("ignore")
    # Metrics go to stdout as EMF lines (CloudWatch reads them in AWS); not in the narration.
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    logging.basicConfig(level=logging.WARNING)
    for name in ("shiplane_local", "moto", "werkzeug", "botocore", "aws_lambda_powertools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)


class ExecutionWatcher:
    """Prints state machine executions as they start and end."""

    def __init__(self, cloud: LocalCloud, console: Console) -> None:
        self.sfn = cloud.client("stepfunctions")
        self.arn = cloud.outputs["StateMachineArn"]
        self.console = console
        self.known: dict[str, str] = {}
        self.outputs: dict[str, dict[str, Any]] = {}

    def poll(self) -> None:
        for execution in self.sfn.list_executions(stateMachineArn=self.arn)["executions"]:
            name, status = execution["name"], execution["status"]
            if self.known.get(name) == status:
                continue
            if name not in self.known:
                self.console.print(f"[dim]  execution {name} started[/]")
            if status != "RUNNING":
                described = self.sfn.describe_execution(executionArn=execution["executionArn"])
                output = json.loads(described.get("output") or "{}")
                self.outputs[name] = output
                colour = "green" if status == "SUCCEEDED" else "red"
                self.console.print(f"[dim]  execution {name}[/] [{colour}]{status}[/]")
                for environment in output.get("waiting_for", []):
                    self.console.print(
                        f"  [bold yellow]⏸  waiting for a manual promotion to {environment}[/]"
                    )
            self.known[name] = status


def show_api(cloud: LocalCloud, console: Console) -> None:
    """The same answer through the REST API, as `shiplane status` and the dashboard get it."""
    from .api_client import ApiClient, local_credentials

    client = ApiClient(cloud.api_url, local_credentials())
    document = client.get("/openapi.json").json()
    routes = sum(len(operations) for operations in document["paths"].values())
    answer = client.get("/status", query={"project": "web"})
    console.print(
        f"REST API at {cloud.api_url} ({routes} operations in /openapi.json; "
        "SigV4 on every request): GET /status →"
    )
    for row in answer.json()["projects"][0]["rows"]:
        for cell in row["cells"]:
            latest = cell["latest"] or {}
            console.print(
                f"  {cell['environment']:6} runs {cell['current_release'] or '-':8} "
                f"latest deployment {latest.get('release', '-')} {latest.get('status', '')}"
            )


def show_iam(console: Console, enforced: bool) -> None:
    """What IAM decided in the demo: every call of every role, evaluated as AWS would."""
    from .iam import USAGE

    if not enforced:
        console.print("IAM: not enforced (SHIPLANE_LOCAL_IAM=off)")
        return
    allowed = sum(USAGE.allowed.values())
    denied = sum(USAGE.denied.values())
    roles = len({role for role, _ in USAGE.allowed} | {role for role, _, _ in USAGE.denied})
    console.print(
        f"IAM enforced: {allowed} calls by {roles} roles authorized against their policies "
        f"(template.yaml, bootstrap/target-account.yaml), {denied} denied"
    )


def run_demo(console: Console | None = None, rollout_delay: float = 1.0) -> int:
    console = console or Console()
    quiet_logs()
    started = time.perf_counter()
    console.print(Panel.fit("Shiplane demo — ECR → ECS on Fargate, on the embedded local cloud"))
    console.print("Starting the local cloud (moto) and deploying template.yaml …")
    with LocalCloud(rollout_delay=rollout_delay, parameters={"LogLevel": "WARNING"}) as cloud:
        console.print(
            f"  local cloud at {cloud.endpoint_url}, stack 'shiplane' ready in "
            f"{cloud.startup_seconds:.1f} s; state machine {cloud.outputs['StateMachineArn']}"
        )
        document = yaml.safe_load(Path(DEMO_CONFIG).read_text())
        store = DynamoStore(cloud.outputs["TableName"], client=cloud.client("dynamodb"))
        config = apply_configuration(document, store)
        prepare_targets(cloud, config)
        console.print(
            f"Applied {DEMO_CONFIG.relative_to(REPO_ROOT)}: project web, lifecycle "
            "dev (automatic) → test (automatic) → prod (manual), one cluster per environment"
        )
        follower = Follower(store, console, ["web"])
        executions = ExecutionWatcher(cloud, console)

        def settle(what: str) -> None:
            quiet = 0

            def idle() -> bool:
                nonlocal quiet
                executions.poll()
                quiet = 0 if cloud.busy() else quiet + 1
                return quiet >= 2

            follower.follow(idle, timeout=180)
            executions.poll()
            console.print(f"[dim]  ({what} settled)[/]")

        console.rule("1. push web:1.0.0")
        digest = cloud.push_image("web", "1.0.0")
        console.print(f"  pushed web:1.0.0 → {digest[:19]}…  (ECR 'PUSH/SUCCESS' event emitted)")
        settle("release 1.0.0")

        console.rule("2. promote 1.0.0 to prod (Step Functions console: Start execution)")
        promotion = {
            "action": "deploy",
            "project": "web",
            "release": "1.0.0",
            "environment": "prod",
        }
        console.print(f"  input: {json.dumps(promotion)}")
        cloud.client("stepfunctions").start_execution(
            stateMachineArn=cloud.outputs["StateMachineArn"],
            name=f"promote-web-1-0-0-prod-{int(time.time())}",
            input=json.dumps(promotion),
        )
        settle("promotion to prod")

        console.rule("3. push web:1.1.0")
        digest = cloud.push_image("web", "1.1.0")
        console.print(f"  pushed web:1.1.0 → {digest[:19]}…")
        settle("release 1.1.0")

        console.rule("Where every release stands")
        console.print(status_table(store, "web"))
        show_api(cloud, console)
        failures = [d for d in store.list_deployments("web") if d.status.value == "FAILED"]
        show_iam(console, cloud.iam)
        console.print(f"Demo finished in {time.perf_counter() - started:.1f} s.")
        return 1 if failures else 0
