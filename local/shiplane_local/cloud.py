"""`LocalCloud`: Shiplane's SAM application running on moto inside this process.

One object starts a moto server on localhost, patches moto so that Lambda invocations run
the real handlers, EventBridge delivers to Lambda and Step Functions targets, ECR pushes
emit events and state machines from the template execute, deploys `template.yaml` through
the SAM translator as the `shiplane` stack, and installs the ECS rollout simulator. IAM is
enforced (`iam/`): each function's calls are signed and authorized as its execution role.
Everything else (handlers, tests, other terminals) talks to it through boto3 and
`AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from moto.core.config import default_user_config
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.stepfunctions.responses import get_backend as stepfunctions_backend

from .activity import Activity
from .async_lambda import AsyncInvocations, apply_template_event_invoke_configs
from .cfn_tokens import RequestTokens
from .clock import Clock
from .ecr import EcrPushEvents, image_manifest
from .eventbridge import EventDelivery
from .faults import FaultPlan, Faults
from .iam.cfn_roles import RoleUpdates
from .iam.middleware import ENFORCEMENT, enabled_by_environment
from .iam.roles import hold_roles
from .iam.services import StateMachineRole
from .iam.signing import SigningAsInvocationRole
from .lambda_runtime import LambdaRuntime
from .quotas import LAMBDA_SYNC_RESPONSE_BYTES, Quotas
from .quotas import enabled_by_environment as quotas_by_environment
from .sam_stack import ARTIFACT_BUCKET, StateMachinePatch, Translation, translate
from .server import CountingMotoServer
from .stepfunctions_events import ExecutionStatusEvents

log = logging.getLogger("shiplane_local")

REPO_ROOT = Path(__file__).resolve().parents[2]


class LocalCloud:
    """The embedded local cloud. Use as a context manager, or call start() and stop().

    One at a time per process: the patches to moto and the environment are process-wide.
    """

    _active: LocalCloud | None = None

    def __init__(
        self,
        root: Path | str = REPO_ROOT,
        *,
        port: int | None = None,
        rollout_delay: float = 0.5,
        region: str = "us-east-1",
        stack_name: str = "shiplane",
        template: Path | str | None = None,
        parameters: dict[str, str] | None = None,
        api_port: int = 0,
        scheduler_interval: float | None = 1.0,
        time_scale: float = 1.0,
        faults: FaultPlan | dict[str, Any] | str | Path | None = None,
        iam: bool | None = None,
        quotas: bool | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.template_path = Path(template) if template else self.root / "template.yaml"
        self.port = port
        self.rollout_delay = rollout_delay
        self.region = region
        self.stack_name = stack_name
        self.parameters = dict(parameters or {})
        self.account_id: str = DEFAULT_ACCOUNT_ID
        self.endpoint_url = ""
        self.outputs: dict[str, str] = {}
        self.translation: Translation | None = None
        self.startup_seconds = 0.0
        self.activity = Activity()
        # AWS's delays (Lambda's and EventBridge's retries, planned event delays) are
        # multiplied by `time_scale`: 0.01 makes Lambda's 1-minute retry 0.6 s.
        self.clock = Clock(time_scale)
        # The fault plan (faults.py): `cloud.faults.load(plan)`, `cloud.faults.fired()`.
        self.faults = Faults(self.activity, self.clock)
        if faults is not None:
            self.faults.load(faults)
        # AWS's quotas (quotas.py): on unless turned off here or by SHIPLANE_LOCAL_QUOTAS=off
        # (for diagnosis only). Buckets refill on the cloud clock (time_scale).
        self.quotas = Quotas(
            self.clock, enabled=quotas_by_environment() if quotas is None else quotas
        )
        self.runtime = LambdaRuntime(self.activity)
        self.events = EventDelivery(self.runtime, self.activity, self.clock, self.faults)
        self.events.quotas = self.quotas
        self.async_invocations = AsyncInvocations(
            self.runtime, self.activity, self.clock, put_event=self.events.put_event
        )
        self._undo_client_hooks: Any = None
        self._cfn_tokens = RequestTokens()
        self._ecr = EcrPushEvents(self.emit_event)
        self._state_machines = StateMachinePatch()
        # Step Functions' "Execution Status Change" events, in the execution's own account.
        self._execution_events = ExecutionStatusEvents(
            lambda event: self.events.emit(
                event, account_id=event["account"], region=event["region"]
            ),
            self.activity,
        )
        self._server: CountingMotoServer | None = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_sfn_config: Any = None
        self.rollouts: Any = None
        self.api: Any = None  # the LocalApiGateway serving the api function
        self.api_port = api_port
        # Schedules fire in-process: `scheduler.tick(now)`, and every `scheduler_interval`
        # seconds with the wall clock (None: only when a test ticks).
        self.scheduler_interval = scheduler_interval
        self.scheduler: Any = None  # the LocalScheduler
        self._started = False
        # IAM enforced on every role's calls: on unless turned off here or by
        # SHIPLANE_LOCAL_IAM=off (for diagnosis only).
        self.iam = enabled_by_environment() if iam is None else iam
        self._signing = SigningAsInvocationRole()
        self._state_machine_role = StateMachineRole()
        self._role_updates = RoleUpdates()

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LocalCloud:
        if self._started:
            return self
        if LocalCloud._active is not None and LocalCloud._active is not self:
            raise RuntimeError(
                f"another LocalCloud is running at {LocalCloud._active.endpoint_url}; "
                "stop it first (the patches to moto are process-wide)"
            )
        LocalCloud._active = self
        started = time.perf_counter()
        try:
            self._start_server()
            self._install()
            self._deploy_stack()
            self._serve_api()
            self._start_scheduler()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        log.info(
            "local cloud ready at %s: stack %s, %d outputs (%.2f s)",
            self.endpoint_url,
            self.stack_name,
            len(self.outputs),
            self.startup_seconds,
        )
        return self

    def stop(self) -> None:
        if self._started:
            # Let in-flight deliveries and invocations finish against a live server.
            deadline = time.monotonic() + 2
            while self.activity.snapshot() and time.monotonic() < deadline:
                time.sleep(0.02)
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.api is not None:
            self.api.stop()
            self.api = None
        if self.rollouts is not None:
            self.rollouts.uninstall()
            self.rollouts = None
        ENFORCEMENT.enabled = False
        self._state_machine_role.uninstall()
        self._role_updates.uninstall()
        self._signing.uninstall()
        self._ecr.uninstall()
        self.events.uninstall()
        self.async_invocations.uninstall()
        self._cfn_tokens.uninstall()
        if self._undo_client_hooks is not None:
            self._undo_client_hooks()
            self._undo_client_hooks = None
        # Clients created while this cloud ran keep their hooks: leave them nothing to do.
        self.faults.clear()
        self._execution_events.uninstall()
        self._state_machines.uninstall()
        self.quotas.uninstall()
        self.runtime.slots = None
        self.runtime.response_limit = None
        self.runtime.uninstall()
        if self.translation is not None:
            self.runtime.cold_start(self.translation.layer_packages())
        if self._server is not None:
            self._server.stop()
            self._server = None
            log.info("local cloud at %s stopped", self.endpoint_url)
        if self._saved_sfn_config is not None:
            default_user_config["stepfunctions"] = self._saved_sfn_config
            self._saved_sfn_config = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        self._started = False
        if LocalCloud._active is self:
            LocalCloud._active = None

    def _set_env(self, name: str, value: str) -> None:
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def _start_server(self) -> None:
        # werkzeug logs every request at INFO; the cloud's own one-line log is enough.
        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET:
            werkzeug_log.setLevel(logging.WARNING)
        self._server = CountingMotoServer(
            "127.0.0.1", self.port or 0, faults=self.faults, quotas=self.quotas
        )
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.port = port
        self.endpoint_url = f"http://{host}:{port}"
        for name, value in {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "MOTO_PORT": str(port),
        }.items():
            self._set_env(name, value)
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            self._saved_env.setdefault(name, os.environ.pop(name, None))
        # A fresh cloud: forget whatever an earlier LocalCloud (or mock) left in moto.
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        self._saved_sfn_config = dict(default_user_config.get("stepfunctions", {}))
        default_user_config["stepfunctions"] = {
            **self._saved_sfn_config,
            "execute_state_machine": True,
        }
        self._started = True
        log.info("moto server listening on %s", self.endpoint_url)

    def _install(self) -> None:
        self._signing.install()
        self._state_machine_role.install()
        self._role_updates.install()
        ENFORCEMENT.enabled = self.iam
        self.runtime.install()
        self.quotas.install()
        self.runtime.slots = self.quotas.slots if self.quotas.enabled else None
        self.runtime.response_limit = LAMBDA_SYNC_RESPONSE_BYTES if self.quotas.enabled else None
        self.events.install()
        self.async_invocations.install()
        self._undo_client_hooks = self.faults.install_client_hooks()
        self._cfn_tokens.install()
        self._ecr.install()
        self._state_machines.install()
        self._execution_events.install()
        from .rollouts import RolloutSimulator

        self.rollouts = RolloutSimulator(
            emit=self.emit_event,
            delay_seconds=self.rollout_delay,
            region=self.region,
            account_id=self.account_id,
        )
        self.rollouts.install()

    def _deploy_stack(self) -> None:
        s3 = self.client("s3")
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)

        def upload(key: str, body: bytes) -> None:
            s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=body)

        self.translation = translate(
            self.template_path, upload=upload, region=self.region, parameters=self.parameters
        )
        self.runtime.cold_start(self.translation.layer_packages())
        cfn = self.client("cloudformation")
        # As `sam deploy` does: the template (far over TemplateBody's 51,200 bytes) goes
        # to S3 and CloudFormation reads it from there.
        template_key = f"templates/{self.stack_name}.json"
        upload(template_key, json.dumps(self.translation.template).encode())
        cfn.create_stack(
            StackName=self.stack_name,
            TemplateURL=f"https://{ARTIFACT_BUCKET}.s3.amazonaws.com/{template_key}",
            Parameters=[
                {"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cfn.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            events = cfn.describe_stack_events(StackName=self.stack_name)["StackEvents"]
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
                for e in events
                if e.get("ResourceStatusReason")
            ]
            raise RuntimeError(
                f"stack {self.stack_name} ended {stack['StackStatus']}: {'; '.join(reasons)}"
            )
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        log.info("stack %s created from %s", self.stack_name, self.template_path)
        hold_roles(self.account_id)  # every role's grants, for the unused-grants report
        self._apply_function_environments()
        self._apply_event_invoke_configs()

    def _stack_resources(self) -> tuple[list[Any], dict[str, str]]:
        """The stack's resources, and the values of the template's pseudo parameters and
        parameters: what resolving the resources moto's CloudFormation set aside needs."""
        from .scheduler import StackResource

        summaries = self.client("cloudformation").list_stack_resources(StackName=self.stack_name)
        resources = [
            StackResource(r["LogicalResourceId"], r["ResourceType"], r["PhysicalResourceId"])
            for r in summaries["StackResourceSummaries"]
        ]
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            **self.parameters,
        }
        return resources, pseudo

    def _apply_event_invoke_configs(self) -> None:
        """The template's EventInvokeConfigs, which moto's CloudFormation does not create."""
        assert self.translation is not None
        resources, pseudo = self._stack_resources()
        apply_template_event_invoke_configs(
            self.translation.dropped, resources, pseudo, self.account_id, self.region
        )

    def _apply_function_environments(self) -> None:
        """Set the union of the functions' variables once; a disagreement stops the start."""
        lam = self.client("lambda")
        resources = self.client("cloudformation").list_stack_resources(StackName=self.stack_name)
        for resource in resources["StackResourceSummaries"]:
            if resource["ResourceType"] != "AWS::Lambda::Function":
                continue
            config = lam.get_function_configuration(FunctionName=resource["PhysicalResourceId"])
            variables = config.get("Environment", {}).get("Variables", {})
            self.runtime.name_function(
                resource["PhysicalResourceId"], resource["LogicalResourceId"]
            )
            self.runtime.apply_environment(resource["LogicalResourceId"], variables)
            for name in variables:
                self._saved_env.setdefault(name, None)

    def _serve_api(self) -> None:
        """The API as API Gateway would serve it: proxy events to the api function."""
        from .api_gateway import LocalApiGateway

        resources = self.client("cloudformation").list_stack_resources(StackName=self.stack_name)
        function = next(
            (
                r["PhysicalResourceId"]
                for r in resources["StackResourceSummaries"]
                if r["LogicalResourceId"] == "ApiFunction"
            ),
            None,
        )
        if function is None:  # a template without the API (some tests' own templates)
            self.outputs.pop("ApiUrl", None)
            return
        lam = self.client("lambda")

        def invoke(event: dict[str, Any]) -> Any:
            response = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode())
            payload = json.loads(response["Payload"].read() or b"null")
            if response.get("FunctionError"):
                raise RuntimeError(f"api function failed: {payload}")
            return payload

        self.api = LocalApiGateway(invoke, self.account_id, port=self.api_port).start()
        self.outputs["ApiUrl"] = self.api.url
        log.info("api served at %s", self.api.url)

    def _start_scheduler(self) -> None:
        """The template's schedule groups and recurring schedules (set aside by
        sam_stack), and the API's one-time schedules, fired in-process."""
        import datetime as dt

        from .scheduler import LocalScheduler

        assert self.translation is not None
        resources, pseudo = self._stack_resources()
        self.scheduler = LocalScheduler(
            self.runtime,
            self.activity,
            account_id=self.account_id,
            region=self.region,
            interval=self.scheduler_interval,
        )
        self.scheduler.install(self.translation.dropped, resources, pseudo, dt.datetime.now(dt.UTC))
        self.scheduler.start()

    @property
    def api_url(self) -> str:
        return str(self.outputs.get("ApiUrl", ""))

    # -- public API ----------------------------------------------------------------------
    def client(self, service: str, **kw: Any) -> Any:
        """A boto3 client bound to the local endpoint."""
        kw.setdefault("endpoint_url", self.endpoint_url)
        kw.setdefault("region_name", self.region)
        kw.setdefault("aws_access_key_id", "testing")
        kw.setdefault("aws_secret_access_key", "testing")
        return boto3.client(service, **kw)  # type: ignore[call-overload]

    def push_image(
        self, repository: str, tag: str, *, crash: bool = False, emit_event: bool = True
    ) -> str:
        """Push a (manifest-only) image; return its digest. Emits the ECR push event,
        unless `emit_event` is False: a push whose event was lost (ECR's are best-effort)."""
        ecr = self.client("ecr")
        try:
            ecr.create_repository(repositoryName=repository)
            log.info("ecr repository %s created", repository)
        except ecr.exceptions.RepositoryAlreadyExistsException:
            pass
        with self._ecr.suppressed(repository, tag, suppress=not emit_event):
            response = ecr.put_image(
                repositoryName=repository,
                imageManifest=image_manifest(repository, tag, crash=crash),
                imageTag=tag,
            )
        return str(response["image"]["imageId"]["imageDigest"])

    def emit_event(self, event: dict[str, Any]) -> None:
        """Put an AWS-service event (full EventBridge shape) on the default bus."""
        self.events.emit(event, account_id=self.account_id, region=self.region)

    def api_calls(self) -> Counter[str]:
        """Requests received so far, by `service:Operation` (boto3 client names)."""
        return self._server.counter.snapshot() if self._server else Counter()

    def reset_api_calls(self) -> None:
        if self._server:
            self._server.counter.reset()

    def busy(self) -> list[str]:
        """What is still running: invocations, deliveries, executions, rollouts."""
        found = [f"{n} {kind}(s)" for kind, n in sorted(self.activity.snapshot().items())]
        backend = stepfunctions_backend(self.account_id, self.region)
        for machine in list(backend.state_machines):
            for execution in list(getattr(machine, "executions", [])):
                # The interpreter's executions carry `exec_status` (None until started).
                if hasattr(execution, "exec_status"):
                    status = execution.exec_status or "RUNNING"
                else:
                    status = execution.status
                if getattr(status, "value", status) == "RUNNING":
                    found.append(f"execution {machine.name}/{execution.name}")
        pending = self.rollouts.pending() if self.rollouts is not None else 0
        if pending:
            found.append(f"{pending} rollout(s)")
        return found

    def wait_idle(self, timeout: float = 30) -> None:
        """Block until nothing runs; raise TimeoutError naming what is still busy."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while True:
            busy = self.busy()
            quiet = 0 if busy else quiet + 1
            if quiet >= 2:  # two quiet looks in a row: no hand-over between threads missed
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"local cloud still busy after {timeout:g} s: {', '.join(busy)}")
            time.sleep(0.02)
