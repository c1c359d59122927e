"""The deploy pipeline's ASL agrees with the code and the template: error names, retries,
substitutions, transitions, bounded waits."""

from __future__ import annotations

import ast
import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

import shiplane.errors as errors_module
from shiplane.errors import TRANSIENT_ERRORS, ShiplaneError, TransientError

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachine" / "deploy_pipeline.asl.json"
ASL_TEXT = ASL_PATH.read_text()
ASL: dict[str, Any] = json.loads(ASL_TEXT)
TEMPLATE: dict[str, Any] = cfn_yaml.load(str(ROOT / "template.yaml"))
SHIPLANE = ROOT / "layers" / "shiplane" / "shiplane"
# Gateway calls that change a stack: CloudFormation answers them with "in progress"
# when another operation runs, which Shiplane turns into StackBusyError.
STACK_CHANGING_CALLS = {"create_stack", "update_stack", "delete_stack", "continue_update_rollback"}


def all_states(machine: dict[str, Any] = ASL) -> Iterator[tuple[str, dict[str, Any], set[str]]]:
    """Every state with the names of the states in its own scope (Next targets)."""
    scope = set(machine["States"])
    for name, state in machine["States"].items():
        yield name, state, scope
        for nested in [
            state.get("Iterator"),
            state.get("ItemProcessor"),
            *state.get("Branches", []),
        ]:
            if nested:
                yield from all_states(nested)


def lambda_tasks() -> dict[str, dict[str, Any]]:
    return {
        name: state
        for name, state, _ in all_states()
        if state["Type"] == "Task"
        and state["Resource"].startswith("arn:aws:states:::lambda:invoke")
    }


def retried(state: dict[str, Any]) -> set[str]:
    return {name for rule in state.get("Retry", []) for name in rule["ErrorEquals"]}


def caught(state: dict[str, Any]) -> set[str]:
    return {name for rule in state.get("Catch", []) for name in rule["ErrorEquals"]}


def function_of(task: dict[str, Any]) -> str:
    """The SAM function a task invokes, through its DefinitionSubstitution."""
    placeholder = re.fullmatch(r"\$\{(\w+)\}", task["Parameters"]["FunctionName"])
    assert placeholder, task["Parameters"]["FunctionName"]
    value = substitutions()[placeholder.group(1)]
    return value["Fn::GetAtt"][0]


def substitutions() -> dict[str, Any]:
    machines = [
        r for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::Serverless::StateMachine"
    ]
    (machine,) = [m for m in machines if m["Properties"]["DefinitionUri"].endswith(ASL_PATH.name)]
    return dict(machine["Properties"]["DefinitionSubstitutions"])


def code_dir(function: str) -> Path:
    return ROOT / TEMPLATE["Resources"][function]["Properties"]["CodeUri"]


# --------------------------------------------------------------------------- error names


def test_every_error_name_is_a_shiplane_error_class() -> None:
    names = {
        name
        for _, state, _ in all_states()
        for rule in state.get("Retry", []) + state.get("Catch", [])
        for name in rule["ErrorEquals"]
    }
    # AWS's names: Step Functions', Lambda's (Lambda.*) and the Lambda runtime's errorTypes.
    own = {n for n in names if not n.startswith(("States.", "Lambda.", "Runtime.", "Sandbox."))}
    assert own, "the state machine retries none of Shiplane's own errors"
    for name in own:
        cls = getattr(errors_module, name, None)
        assert inspect.isclass(cls) and issubclass(cls, ShiplaneError), name


def test_transient_errors_are_exactly_the_transient_classes() -> None:
    declared = {
        cls
        for _, cls in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(cls, TransientError) and cls is not TransientError
    }
    assert set(TRANSIENT_ERRORS) == declared


def test_stack_busy_is_retried_on_deploy_stack() -> None:
    assert "StackBusyError" in retried(lambda_tasks()["Deploy Stack"])


@pytest.mark.parametrize("task", sorted(lambda_tasks()))
def test_throttling_is_retried_on_every_lambda_task(task: str) -> None:
    names = retried(lambda_tasks()[task])
    assert "ThrottledError" in names
    assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= names


def _service_module_of(function: str) -> list[Path]:
    """The service module an app.py calls, with the service modules it imports."""
    app = ast.parse((code_dir(function) / "app.py").read_text())
    modules = [
        node.module
        for node in ast.walk(app)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shiplane.services.")
    ]
    seen: list[Path] = []
    while modules:
        path = SHIPLANE.parent / (modules.pop().replace(".", "/") + ".py")
        if path in seen:
            continue
        seen.append(path)
        modules += [
            node.module
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("shiplane.services.")
        ]
    return seen


def _can_raise_stack_busy(function: str) -> bool:
    for path in _service_module_of(function):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and "StackBusyError" in ast.unparse(node):
                return True
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in STACK_CHANGING_CALLS
            ):
                return True
    return False


@pytest.mark.parametrize("task", sorted(lambda_tasks()))
def test_every_task_that_can_meet_a_busy_stack_retries_it(task: str) -> None:
    function = function_of(lambda_tasks()[task])
    if _can_raise_stack_busy(function):
        assert "StackBusyError" in retried(lambda_tasks()[task]), task


def test_the_stack_busy_analysis_sees_deploy_stack() -> None:
    # guards the test above: it must find the stack changes in Deploy Stack's service
    assert _can_raise_stack_busy("DeployStackFunction")
    assert not _can_raise_stack_busy("GatePromotionFunction")


def test_every_transient_error_is_retried_somewhere() -> None:
    everywhere = set().union(*(retried(t) for t in lambda_tasks().values()))
    assert {cls.__name__ for cls in TRANSIENT_ERRORS} <= everywhere


def test_terminal_errors_are_not_retried() -> None:
    for name, state in lambda_tasks().items():
        for rule in state.get("Retry", []):
            for error in rule["ErrorEquals"]:
                cls = getattr(errors_module, error, None)
                if cls is not None:
                    assert issubclass(cls, TransientError), f"{name} retries terminal {error}"


# --------------------------------------------------------------------------- substitutions


def test_placeholders_and_substitutions_match() -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL_TEXT))
    assert placeholders == set(substitutions())


@pytest.mark.parametrize("key", sorted(substitutions()))
def test_substitution_points_at_a_function_with_a_handler(key: str) -> None:
    value = substitutions()[key]
    assert set(value) == {"Fn::GetAtt"}
    resource, attribute = value["Fn::GetAtt"]
    assert attribute == "Arn"
    assert key == f"{resource}Arn"
    assert TEMPLATE["Resources"][resource]["Type"] == "AWS::Serverless::Function"
    app = code_dir(resource) / "app.py"
    assert app.is_file(), app
    handlers = [
        node
        for node in ast.parse(app.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name == "lambda_handler"
    ]
    assert handlers, f"{app} defines no lambda_handler"


# --------------------------------------------------------------------------- transitions and waits


def test_every_next_names_a_state_in_its_scope() -> None:
    for name, state, scope in all_states():
        targets = [state.get("Next"), state.get("Default")]
        targets += [c.get("Next") for c in state.get("Choices", [])]
        targets += [c.get("Next") for c in state.get("Catch", [])]
        for target in filter(None, targets):
            assert target in scope, f"{name} → {target}"


def test_every_state_is_reachable() -> None:
    def reach(machine: dict[str, Any]) -> None:
        seen, todo = set(), [machine["StartAt"]]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            state = machine["States"][name]
            todo += [state.get("Next"), state.get("Default")]
            todo += [c.get("Next") for c in state.get("Choices", []) + state.get("Catch", [])]
            todo = [t for t in todo if t]
            for nested in [state.get("Iterator"), state.get("ItemProcessor")]:
                if nested:
                    reach(nested)
        assert seen == set(machine["States"])

    reach(ASL)


def test_every_task_token_wait_is_bounded_and_reconciled() -> None:
    waits = {
        name: state
        for name, state, _ in all_states()
        if state["Type"] == "Task" and state["Resource"].endswith(".waitForTaskToken")
    }
    assert "Deploy Stack" in waits
    for name, state in waits.items():
        assert "TimeoutSeconds" in state or "TimeoutSecondsPath" in state, name
        assert "States.Timeout" in caught(state), name
        timeout_rules = [c for c in state["Catch"] if "States.Timeout" in c["ErrorEquals"]]
        # the timeout must be handled before a catch-all could swallow it
        assert state["Catch"].index(timeout_rules[0]) == 0
        assert "$$.Task.Token" in json.dumps(state["Parameters"])


def test_deploy_stack_timeout_goes_to_reconcile_deployment() -> None:
    deploy = lambda_tasks()["Deploy Stack"]
    (rule,) = [c for c in deploy["Catch"] if "States.Timeout" in c["ErrorEquals"]]
    assert rule["Next"] == "Reconcile Deployment"
    # the unit must survive the catch for Reconcile Deployment to read it
    assert rule.get("ResultPath") not in (None, "$")


# --------------------------------------------------------------------------- AWS's error names

# The errors a Lambda task can fail with (Step Functions' "Handling errors" guide) and the
# States.* names of the Amazon States Language: a name outside these never matches.
LAMBDA_ERRORS = {
    "Lambda.AWSLambdaException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
}
STATES_ERRORS = {
    "States.ALL",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.Http.Socket",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
}
# AWS's recommended retrier for every Lambda task.
RECOMMENDED_LAMBDA_RETRY = LAMBDA_ERRORS - {"Lambda.Unknown"}
# The errorType Lambda reports for a function whose runtime exited (a crash) and for one
# that ran out of time (Lambda's "Troubleshoot invocation issues": Sandbox.Timedout); a
# lambda:invoke task fails with the errorType as its error name.
LAMBDA_RUNTIME_ERRORS = {"Runtime.ExitError", "Sandbox.Timedout"}


def test_every_aws_error_name_exists() -> None:
    names = {
        name
        for _, state, _ in all_states()
        for rule in state.get("Retry", []) + state.get("Catch", [])
        for name in rule["ErrorEquals"]
    }
    assert {n for n in names if n.startswith("Lambda.")} <= LAMBDA_ERRORS
    assert {n for n in names if n.startswith("States.")} <= STATES_ERRORS
    assert {n for n in names if n.startswith(("Runtime.", "Sandbox."))} <= LAMBDA_RUNTIME_ERRORS


@pytest.mark.parametrize("task", sorted(lambda_tasks()))
def test_every_lambda_task_retries_a_crashed_or_timed_out_function(task: str) -> None:
    # Every step is idempotent (safe to run again), so a function whose runtime exited
    # after a write, or that timed out, is run again rather than failing its deployment.
    # States.Timeout is not among them: it is the task's own wait timing out.
    state = lambda_tasks()[task]
    assert retried(state) >= LAMBDA_RUNTIME_ERRORS | {"Lambda.Unknown"}
    assert "States.Timeout" not in retried(state)


@pytest.mark.parametrize("task", sorted(lambda_tasks()))
def test_every_lambda_task_retries_aws_s_transient_lambda_errors_with_jitter(task: str) -> None:
    state = lambda_tasks()[task]
    assert retried(state) >= RECOMMENDED_LAMBDA_RETRY
    for rule in state["Retry"]:
        assert rule.get("JitterStrategy") == "FULL", (task, rule["ErrorEquals"])
        assert rule.get("BackoffRate", 1) > 1, (task, rule["ErrorEquals"])


def _iteration_tasks() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, state, _ in all_states():
        if state["Type"] == "Map":
            for name, inner, _ in all_states(state["Iterator"]):
                if inner["Type"] == "Task":
                    yield name, inner


def test_no_task_of_a_map_iteration_can_abort_its_siblings() -> None:
    # A task failing past its retries inside an iteration fails the whole Map, aborting
    # the sibling deployments mid-flight: every one ends in a Catch of States.ALL.
    tasks = dict(_iteration_tasks())
    assert {"Record Deployment", "Unit Failed", "Deploy Stack"} <= set(tasks)
    for name, state in tasks.items():
        assert "States.ALL" in caught(state), name


def test_a_failed_recording_counts_as_a_failed_deployment() -> None:
    each = ASL["States"]["Deploy Each"]["Iterator"]["States"]
    (rule,) = each["Record Deployment"]["Catch"]
    fallback = each[rule["Next"]]
    assert fallback["Type"] == "Pass" and fallback["End"] is True
    assert fallback["Parameters"]["status"] == "FAILED"
    # Gate Promotion reads a DeploymentSummary: the fallback must carry all of it.
    from shiplane.services.record_deployment import DeploymentSummary

    fields = {k.removesuffix(".$") for k in fallback["Parameters"]}
    assert fields == set(DeploymentSummary.model_fields)
