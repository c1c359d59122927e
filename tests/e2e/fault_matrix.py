"""The fault matrix: cases (a fault plan and what a user does) x the invariants that must
hold under any of them, checked by one function, `check_invariants`.

Shared by the e2e test (tests/e2e/test_fault_matrix.py, a representative subset) and the
bench (bench/fault_matrix.py, every case, printed as a table). Each case deploys a fresh
project (its own repository, service and stacks) on one embedded local cloud, so cases
do not disturb each other.

Botocore's own retries are turned off for the functions (`no_sdk_retries`): the
functions' environment gets AWS_MAX_ATTEMPTS=1 before any client is made, so a throttle
reaches Shiplane's code and the state machine's retriers, as it would when botocore's
retries are exhausted.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.adapters.stepfunctions import SfnTaskTokens
from shiplane.domain.models import DeploymentMode, DeploymentStatus, TriggerKind
from shiplane.domain.naming import client_request_token
from shiplane.services.apply_configuration import apply_configuration
from shiplane.services.approvals import ApprovalDependencies, decide_approval
from shiplane_local.cloud import LocalCloud
from shiplane_local.invocation import Invocation
from shiplane_local.targets import prepare_targets
from tests.e2e.conftest import Project
from tests.helpers import demo_configuration

# The functions of the pipeline (functions/<folder>) a push runs, in the order they run.
PUSH_FUNCTIONS = (
    "resolve_release",
    "acquire_slot",
    "register_task_definition",
    "deploy_stack",
    "deployment_events",
    "record_deployment",
    "gate_promotion",
)
# Wait timeout of the matrix projects' step: short, so a deployment whose events are all
# lost ends by its timeout (and reconciliation) within the case.
WAIT_TIMEOUT = 60  # the least a step may configure
# The longest a case may take to settle (every deployment terminal, the cloud idle).
SETTLE_SECONDS = 240

INVARIANTS = {
    "terminal": "every deployment ends (terminal status, a reason, within its bounds)",
    "slots": "no slot held by a finished deployment; no queued one without a live waiter; "
    "a dead execution's deployments ended",
    "one-per-push": "one push: one release, one deployment per environment/tenant",
    "no-stale": "an older stack operation's event never changes a newer deployment",
    "current-runs": "what Shiplane records as current is what the service runs",
    "duplicates": "a second identical request is recorded a duplicate and changes nothing",
}


@dataclass
class Case:
    name: str
    plan: dict[str, Any]
    scenario: str = "push"  # see act()
    note: str = ""


@dataclass
class Outcome:
    case: Case
    broken: dict[str, str] = field(default_factory=dict)  # invariant -> why
    fired: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def held(self) -> bool:
        return not self.broken


# --------------------------------------------------------------------------------------
# The cases


def crash_cases(calls: dict[str, int]) -> list[Case]:
    """Every function x a crash before and after each of its AWS calls (0..N), on the
    scenario that runs it."""
    cases = []
    for folder in (*PUSH_FUNCTIONS, *PATHS):
        scenario, faults = PATHS.get(folder, ("push", []))
        for n in range(calls.get(folder, 0) + 1):
            crash = {"function": folder, "fail_after_calls": n, "times": 1}
            cases.append(Case(f"crash {folder} after {n}", {"faults": [crash, *faults]}, scenario))
    return cases


def throttle_case() -> Case:
    services = ("dynamodb", "sts", "ecs", "cloudformation", "stepfunctions", "ecr", "ssm")
    return Case(
        "throttle 20 % of every call",
        {"seed": 7, "faults": [{"service": s, "throttle": 0.2} for s in services]},
    )


def event_cases() -> list[Case]:
    def events(source: str, **spec: Any) -> dict[str, Any]:
        return {"seed": 3, "faults": [{"events": {"source": source, **spec}}]}

    return [
        Case("ecr push duplicated", events("aws.ecr", duplicate=1.0)),
        Case(
            "cloudformation duplicated+reordered, two pushes",
            events("aws.cloudformation", duplicate=0.5, reorder=True, hold_seconds=2),
            scenario="two-pushes",
        ),
        Case(
            "cloudformation late (delayed 3 s), two pushes",
            events("aws.cloudformation", delay_seconds=3 / 0.01),
            scenario="two-pushes",
        ),
        Case(
            "ecs duplicated+reordered+delayed",
            events("aws.ecs", duplicate=0.5, reorder=True, hold_seconds=2, delay_seconds=100),
            scenario="two-pushes",
        ),
        Case(
            "states duplicated+delayed, duplicate request",
            events("aws.states", duplicate=1.0, delay_seconds=100),
            scenario="duplicate-request",
        ),
        Case(
            "cloudformation lost (100 %)",
            events("aws.cloudformation", drop=1.0),
            scenario="lost-events",
        ),
        Case(
            "states lost (100 %), execution stopped mid-deployment: the sweep settles it",
            {
                "seed": 3,
                "faults": [{"events": {"source": "aws.states", "drop": 1.0}}, LOST_CLOUDFORMATION],
            },
            scenario="stopped-unseen",
        ),
    ]


def all_cases(calls: dict[str, int]) -> list[Case]:
    return [*crash_cases(calls), throttle_case(), *event_cases()]


# --------------------------------------------------------------------------------------
# Running a case


class MatrixProject(Project):
    """The demo project with a short wait timeout on its step."""

    def __init__(
        self, cloud: LocalCloud, store: DynamoStore, name: str, *, gated: bool = False
    ) -> None:
        self.cloud = cloud
        self.store = store
        self.name = name
        self.repository = name
        document = demo_configuration()
        if gated:  # test needs an approval (its own environment: prod's stays ungated)
            _gate_test(document)
        project = copy.deepcopy(document["projects"][0])
        project["name"] = name
        step = project["steps"][0]
        step["task"]["containers"][0]["image"] = self.repository
        step["service"]["name"] = name
        step["task"]["family"] = name
        step["wait"]["timeout_seconds"] = WAIT_TIMEOUT
        document["projects"] = [project]
        if gated:
            project["lifecycle"] = "gated"
        self.config = apply_configuration(document, store)
        prepare_targets(cloud, self.config)
        self.step = step["name"]


GATE = "approval-gate"


def _gate_test(document: dict[str, Any]) -> None:
    """A lifecycle dev -> GATE (automatic, but GATE requires an approval), with its target."""
    document["environments"].append({"name": GATE, "requires_approval": True})
    document["lifecycles"].append(
        {
            "name": "gated",
            "phases": [
                {"name": "development", "environments": [_automatic("dev")]},
                {"name": "gate", "environments": [_automatic(GATE)]},
            ],
        }
    )  # fmt: skip
    [test] = [t for t in document["targets"] if t["name"] == "test-cluster"]
    gate = copy.deepcopy(test) | {"name": f"{GATE}-cluster", "environments": [GATE]}
    document["targets"].append(gate | {"cluster": f"shiplane-{GATE}"})


def _automatic(environment: str) -> dict[str, str]:
    return {"environment": environment, "trigger": "automatic"}


ENVIRONMENTS = ("dev", "test", "prod", GATE)


@contextmanager
def no_sdk_retries() -> Iterator[None]:
    """AWS_MAX_ATTEMPTS=1 for clients made from now on (start the cloud inside)."""
    saved = {k: os.environ.get(k) for k in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")}
    os.environ["AWS_MAX_ATTEMPTS"] = "1"
    os.environ["AWS_RETRY_MODE"] = "standard"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def counting_calls() -> Iterator[dict[str, int]]:
    """The most AWS calls any one invocation of each function made, while inside."""
    most: dict[str, int] = {}
    lock = threading.Lock()
    original = Invocation.count_call

    def count_call(invocation: Invocation) -> int:
        calls = original(invocation)
        if invocation.folder:
            with lock:
                most[invocation.folder] = max(most.get(invocation.folder, 0), calls)
        return calls

    Invocation.count_call = count_call  # type: ignore[method-assign]
    try:
        yield most
    finally:
        Invocation.count_call = original  # type: ignore[method-assign]


def measure_calls(cloud: LocalCloud, store: DynamoStore) -> dict[str, int]:
    """N per function: the most AWS calls one invocation made, on a clean push (dev, then
    test) and on the paths that run the other functions (PATHS)."""
    most: dict[str, int] = {}
    for scenario, faults in [("push", []), *PATHS.values()]:
        with counting_calls() as counted:
            gated = scenario == "approval"
            project = MatrixProject(cloud, store, "n" + uuid.uuid4().hex[:8], gated=gated)
            cloud.faults.load({"faults": faults})
            try:
                act(project, scenario)
                settle(project)
            finally:
                cloud.faults.clear()
            settle(project, 30)
        for folder, n in counted.items():
            most[folder] = max(most.get(folder, 0), n)
    return most


def settle(project: Project, seconds: float = SETTLE_SECONDS) -> None:
    """Until every deployment is terminal and the cloud is idle (or `seconds` pass)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            project.cloud.wait_idle(timeout=max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            return
        # idle: no invocation, delivery, execution or rollout left; every deployment ended
        if all(d.status.finished for d in project.deployments()):
            time.sleep(0.3)  # late deliveries (held/delayed events) land now
            project.cloud.wait_idle(timeout=max(1.0, deadline - time.monotonic()))
            return
        time.sleep(0.2)


def _request(project: Project, release: str, environment: str) -> dict[str, Any]:
    return {"action": "deploy", "project": project.name, "release": release,
            "environment": environment}  # fmt: skip


UNRETRIED_REGISTER_ERROR = {
    "function": "register_task_definition",
    "fail_after_calls": 0,
    "times": 1,
    "error": "InjectedTerminalError",
}
LOST_CLOUDFORMATION = {"events": {"source": "aws.cloudformation", "drop": 1.0}}


def act(project: Project, scenario: str) -> list[str]:
    """What the user (and AWS) do in a scenario; the releases pushed."""
    cloud = project.cloud
    if scenario in ("push", "lost-events"):
        cloud.push_image(project.repository, "1.0.0")
    elif scenario == "failing-image":  # ECS cannot start it: the stack rolls back
        cloud.push_image(project.repository, "1.0.0", crash=True)
    elif scenario == "two-pushes":
        cloud.push_image(project.repository, "1.0.0")
        time.sleep(0.4)  # the first update under way when the second comes
        cloud.push_image(project.repository, "1.1.0")
        return ["1.0.0", "1.1.0"]
    elif scenario == "duplicate-request":
        cloud.push_image(project.repository, "1.0.0")
        settle(project)
        # prod is manual: the same request started twice at once (two names)
        sfn = cloud.client("stepfunctions")
        document = json.dumps(_request(project, "1.0.0", "prod"))
        for _ in range(2):
            sfn.start_execution(
                stateMachineArn=cloud.outputs["StateMachineArn"],
                name=f"dup-{uuid.uuid4().hex[:10]}",
                input=document,
            )
    elif scenario == "stopped":  # an operator stops the execution while dev deploys
        cloud.push_image(project.repository, "1.0.0")
        deadline = time.monotonic() + 30
        while not any(d.status is DeploymentStatus.DEPLOYING for d in project.deployments()):
            if time.monotonic() > deadline:
                return ["1.0.0"]
            time.sleep(0.1)
        time.sleep(0.5)  # Deploy Stack is waiting on its task token
        sfn = cloud.client("stepfunctions")
        for execution in project.executions():
            if execution["status"] == "RUNNING":
                sfn.stop_execution(executionArn=execution["executionArn"], cause="stopped")
    elif scenario == "stopped-unseen":  # stopped, its status event lost: the sweep settles it
        act(project, "stopped")
        deadline = time.monotonic() + 30
        while any(e["status"] == "RUNNING" for e in project.executions()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        job = cloud.scheduler.job("SettleExecutionFunction")
        cloud.scheduler.tick(job.next_due)
    elif scenario == "approval":  # dev, then the gate's approval, approved by an operator
        cloud.push_image(project.repository, "1.0.0")
        deadline = time.monotonic() + 60
        while not (pending := _pending_approvals(project)):
            if time.monotonic() > deadline:
                return ["1.0.0"]
            time.sleep(0.1)
        tokens = SfnTaskTokens(cloud.client("stepfunctions"))
        deps = ApprovalDependencies(
            deployments=project.store, approvals=project.store, tokens=tokens
        )
        decision = {"project": project.name, "deployment_id": pending[0].deployment_id,
                    "approve": True, "by": "operator", "note": "fault matrix"}  # fmt: skip
        decide_approval(decision, deps)
    else:
        raise ValueError(f"unknown scenario {scenario}")
    return ["1.0.0"]


def _pending_approvals(project: Project) -> list[Any]:
    return [a for a in project.store.list_approvals(project.name) if a.status == "PENDING"]


# The scenario that runs each function off the plain push's path, and the faults it needs.
PATHS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "reconcile_deployment": ("lost-events", [LOST_CLOUDFORMATION]),
    "settle_execution": ("stopped", [LOST_CLOUDFORMATION]),
    # a unit's step raising an error no retrier takes is what Unit Failed notes
    "mark_unit_failed": ("push", [UNRETRIED_REGISTER_ERROR]),
    "request_approval": ("approval", []),
}


def run_case(cloud: LocalCloud, store: DynamoStore, case: Case) -> Outcome:
    started = time.monotonic()
    gated = case.scenario == "approval"
    project = MatrixProject(cloud, store, "m" + uuid.uuid4().hex[:8], gated=gated)
    pushes = ["1.0.0"]
    cloud.faults.load(case.plan)
    try:
        pushes = act(project, case.scenario)
        settle(project)
    finally:
        fired = Counter(f.kind for f in cloud.faults.fired())
        cloud.faults.clear()
    settle(project, 30)  # what was in flight when the plan was cleared
    outcome = Outcome(case, fired=fired, seconds=time.monotonic() - started)
    outcome.broken = check_invariants(project, pushes)
    return outcome


# --------------------------------------------------------------------------------------
# The invariants


def check_invariants(project: Project, pushes: list[str]) -> dict[str, str]:
    """Every invariant that does not hold for the project, with why ({} when all hold)."""
    broken: dict[str, str] = {}
    checks: dict[str, Callable[[Project, list[str]], str]] = {
        "terminal": _terminal,
        "slots": _slots,
        "one-per-push": _one_per_push,
        "no-stale": _no_stale,
        "current-runs": _current_runs,
        "duplicates": _duplicates,
    }
    for name, check in checks.items():
        try:
            why = check(project, pushes)
        except Exception as exc:  # a check that cannot be made is a broken invariant
            why = f"check failed: {type(exc).__name__}: {exc}"
        if why:
            broken[name] = why
    return broken


def _terminal(project: Project, pushes: list[str]) -> str:
    deployments = project.deployments()
    if not deployments:
        return "no deployment at all"
    for d in deployments:
        if not d.status.finished:
            return f"{d.environment} {d.release} is {d.status} ({d.id})"
        if d.status is not DeploymentStatus.SUCCEEDED and not d.reason:
            return f"{d.environment} {d.release} {d.status} without a reason"
        if d.finished_at is None:
            return f"{d.environment} {d.release} {d.status} without an end time"
        # bounds: the wait timeout of each of its units, retries and queueing behind
        # another deployment of the project (two per environment at most here)
        took = (d.finished_at - d.created_at).total_seconds()
        bound = 4 * WAIT_TIMEOUT * max(1, len(d.targets)) + 120
        if took > bound:
            return f"{d.environment} {d.release} took {took:.0f} s (bound {bound} s)"
    return ""


def _slots(project: Project, pushes: list[str]) -> str:
    store = project.store
    deployments = {d.id: d for d in project.deployments()}
    sfn = project.cloud.client("stepfunctions")
    for environment in ENVIRONMENTS:
        holder = store.slot_holder(project.name, environment, "untenanted")
        if holder and (holder not in deployments or deployments[holder].status.finished):
            return f"{environment}'s slot held by finished deployment {holder}"
        for entry in store.queued(project.name, environment, "untenanted"):
            queued = deployments.get(entry.deployment_id)
            if queued is None or queued.status.finished:
                return f"{environment}: queue entry of finished deployment {entry.deployment_id}"
            return f"{environment}: deployment {entry.deployment_id} still queued"
    for execution in project.executions():
        if execution["status"] in ("FAILED", "TIMED_OUT", "ABORTED"):
            for d in store.deployments_of_execution(execution["name"]):
                if not d.status.finished:
                    return f"execution {execution['name']} {execution['status']}: {d.id} open"
        elif execution["status"] == "RUNNING":
            return f"execution {execution['name']} still running"
    del sfn
    return ""


def _one_per_push(project: Project, pushes: list[str]) -> str:
    releases = Counter(r.version for r in project.store.list_releases(project.name))
    for version in pushes:
        if releases[version] != 1:
            return f"release {version} recorded {releases[version]} time(s)"
    per_place: Counter[tuple[str, str, str]] = Counter(
        (d.release, d.environment, d.tenant)
        for d in project.deployments()
        if d.status is not DeploymentStatus.SKIPPED
        and d.mode is DeploymentMode.DEPLOY
        and not d.redeploy
        and d.triggered_by.kind in (TriggerKind.ECR_PUSH, TriggerKind.PROMOTION)
    )
    extra = [place for place, n in per_place.items() if n > 1]
    return f"several deployments of {extra[0]}" if extra else ""


def _stack_operations(project: Project, environment: str) -> dict[str, str]:
    """The last stack-level status of each operation (by ClientRequestToken)."""
    cfn = project.cloud.client("cloudformation")
    name = project.stack_name(environment)
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except cfn.exceptions.ClientError:
        return {}
    last: dict[str, str] = {}
    for event in reversed(events):  # newest first in the answer
        if event.get("ResourceType") == "AWS::CloudFormation::Stack" and event.get(
            "ClientRequestToken"
        ):
            last[event["ClientRequestToken"]] = event["ResourceStatus"]
    return last


def _tokens(project: Project, deployment: Any, target: str) -> set[str]:
    return {
        client_request_token(deployment.id, project.step, target, op) for op in ("create", "update")
    }


def _no_stale(project: Project, pushes: list[str]) -> str:
    """Each deployment's end agrees with its own stack operation's end: an event of
    another operation (older, late) never decided it."""
    for d in project.deployments():
        if d.status not in (DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED):
            continue
        operations = _stack_operations(project, d.environment)
        for target in d.targets:
            ends = [s for t, s in operations.items() if t in _tokens(project, d, target)]
            if not ends:
                continue
            end = ends[-1]
            if d.status is DeploymentStatus.SUCCEEDED and ("ROLLBACK" in end or "FAILED" in end):
                return f"{d.environment} {d.release} SUCCEEDED but its operation ended {end}"
            clean = end.endswith("_COMPLETE") and "ROLLBACK" not in end
            # a deployment ended by its execution's end (settled) or its timeout was not
            # decided by a stack event
            settled = d.reason.startswith("its pipeline execution") or "timed out" in d.reason
            if d.status is DeploymentStatus.FAILED and clean and not settled:
                return (
                    f"{d.environment} {d.release} FAILED ({d.reason[:80]}) but its operation "
                    f"ended {end}"
                )
    return ""


def _current_runs(project: Project, pushes: list[str]) -> str:
    ecs = project.cloud.client("ecs")
    for current in project.store.list_current(project.name):
        environment = current["environment"]
        arns = set((current.get("task_definition_arns") or {}).values())
        services = ecs.describe_services(
            cluster=f"shiplane-{environment}", services=[project.name]
        )["services"]
        running = services[0]["taskDefinition"] if services else None
        if running not in arns:
            return f"{environment}: current is {sorted(arns)}, the service runs {running}"
    return ""


def _duplicates(project: Project, pushes: list[str]) -> str:
    deployments = project.deployments()
    for d in deployments:
        if d.status is not DeploymentStatus.SKIPPED:
            continue
        if "duplicate" not in d.reason.lower():
            continue
        operations = _stack_operations(project, d.environment)
        for target in d.targets or []:
            if _tokens(project, d, target) & set(operations):
                return f"duplicate {d.id} ran a stack operation"
        if d.task_definition_arns:
            return f"duplicate {d.id} registered a task definition"
    console = Counter(
        (d.release, d.environment)
        for d in deployments
        if d.triggered_by.kind is TriggerKind.CONSOLE and d.status is not DeploymentStatus.SKIPPED
    )
    twice = [place for place, n in console.items() if n > 1]
    return f"the same request ran twice: {twice[0]}" if twice else ""
