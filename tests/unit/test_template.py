"""template.yaml: runtimes, the table's protection, least privilege, event delivery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE: dict[str, Any] = cfn_yaml.load(str(ROOT / "template.yaml"))
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
GLOBALS: dict[str, Any] = TEMPLATE.get("Globals", {}).get("Function", {})
FUNCTIONS = sorted(n for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function")
TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(node: Any = TEMPLATE) -> Iterator[dict[str, Any]]:
    """Every IAM statement anywhere in the template (inline policies, roles, queues)."""
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield node
        for value in node.values():
            yield from statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from statements(value)


def function_statements(function: str) -> list[dict[str, Any]]:
    return list(statements(RESOURCES[function]["Properties"].get("Policies", [])))


def setting(function: str, key: str) -> Any:
    return RESOURCES[function]["Properties"].get(key, GLOBALS.get(key))


def event_rules() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, resource in RESOURCES.items():
        for event_name, event in resource.get("Properties", {}).get("Events", {}).items():
            if event["Type"] in ("EventBridgeRule", "CloudWatchEvent"):
                yield name, event_name, event["Properties"]


def test_there_are_functions() -> None:
    assert len(FUNCTIONS) >= 6


@pytest.mark.parametrize("function", FUNCTIONS)
def test_runtime_and_architecture(function: str) -> None:
    assert setting(function, "Runtime") == "python3.13"
    assert setting(function, "Architectures") == ["arm64"]
    assert setting(function, "Handler") == "app.lambda_handler"


def test_layer_matches_the_functions() -> None:
    layer = RESOURCES["SharedLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"


def test_table_has_point_in_time_recovery_and_encryption() -> None:
    table = RESOURCES["Table"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    properties = table["Properties"]
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert table.get("DeletionPolicy") == "Retain"


def test_no_statement_allows_every_action() -> None:
    found = list(statements())
    assert len(found) > len(FUNCTIONS)  # the walk does find the policies
    for statement in found:
        if statement["Effect"] != "Allow":
            continue
        assert "NotAction" not in statement, statement
        for action in as_list(statement["Action"]):
            assert action not in ("*", "iam:*", "sts:*"), statement


def test_pass_role_is_never_on_every_resource() -> None:
    for statement in statements():
        actions = as_list(statement["Action"])
        if statement["Effect"] == "Allow" and any(
            a.lower() in ("iam:passrole", "iam:pass*") for a in actions
        ):
            assert "*" not in as_list(statement.get("Resource", "*")), statement


def test_assume_role_is_scoped_to_the_deploy_role_name() -> None:
    # (trust policies, which name a Principal, say who may assume a role: not this)
    assume = [
        s for s in statements() if "sts:AssumeRole" in as_list(s["Action"]) and "Principal" not in s
    ]
    assert assume
    for statement in assume:
        for resource in as_list(statement["Resource"]):
            assert resource != "*"
            text = resource["Fn::Sub"] if isinstance(resource, dict) else resource
            assert text.endswith(":role/${DeployRoleName}"), text


@pytest.mark.parametrize("function", FUNCTIONS)
def test_dynamodb_access_is_scoped_to_the_table(function: str) -> None:
    dynamo = [
        s
        for s in function_statements(function)
        if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
    ]
    assert dynamo, f"{function} has no DynamoDB access"
    for statement in dynamo:
        assert as_list(statement["Resource"]) == [TABLE_ARN], statement
        assert "dynamodb:*" not in as_list(statement["Action"])
    # SAM policy templates would bypass the statements above
    for policy in as_list(RESOURCES[function]["Properties"].get("Policies", [])):
        if isinstance(policy, dict) and any(k.startswith("DynamoDB") for k in policy):
            (value,) = policy.values()
            assert value == {"TableName": {"Ref": "Table"}}, policy


def test_ecr_push_rule() -> None:
    pushes = [
        (resource, rule)
        for resource, _, rule in event_rules()
        if "aws.ecr" in rule["Pattern"].get("source", [])
    ]
    assert len(pushes) == 1
    resource, rule = pushes[0]
    assert RESOURCES[resource]["Type"] == "AWS::Serverless::StateMachine"
    assert rule["Pattern"]["detail-type"] == ["ECR Image Action"]
    assert rule["Pattern"]["detail"]["action-type"] == ["PUSH"]
    assert rule["Pattern"]["detail"]["result"] == ["SUCCESS"]


@pytest.mark.parametrize(("resource", "event"), [(r, e) for r, e, _ in event_rules()])
def test_every_event_rule_retries_and_has_a_dead_letter_queue(resource: str, event: str) -> None:
    rule = RESOURCES[resource]["Properties"]["Events"][event]["Properties"]
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] > 0
    queue = rule["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue"


@pytest.mark.parametrize(
    "function",
    sorted({r for r, _, _ in event_rules() if RESOURCES[r]["Type"] == "AWS::Serverless::Function"}),
)
def test_an_event_a_function_fails_on_goes_to_a_queue_not_lost(function: str) -> None:
    # EventBridge invokes a Lambda asynchronously: its DeadLetterConfig covers only events
    # that could not be delivered; an error inside the function needs Lambda's own
    # on-failure destination (after Lambda's two retries).
    config = RESOURCES[function]["Properties"]["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 2
    destination = config["DestinationConfig"]["OnFailure"]
    assert destination["Type"] == "SQS"
    assert RESOURCES[destination["Destination"]["Fn::GetAtt"][0]]["Type"] == "AWS::SQS::Queue"


def test_failed_pipeline_executions_are_settled() -> None:
    rules = [
        (resource, rule)
        for resource, _, rule in event_rules()
        if "aws.states" in rule["Pattern"].get("source", [])
    ]
    assert [resource for resource, _ in rules] == ["SettleExecutionFunction"]
    pattern = rules[0][1]["Pattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": "DeployPipeline"}]


def test_dead_letter_queues_accept_eventbridge() -> None:
    queues = {rule["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] for _, _, rule in event_rules()}
    allowed = set()
    for resource in RESOURCES.values():
        if resource["Type"] != "AWS::SQS::QueuePolicy":
            continue
        for statement in statements(resource["Properties"]["PolicyDocument"]):
            if statement["Principal"] == {"Service": "events.amazonaws.com"}:
                allowed |= {r["Fn::GetAtt"][0] for r in as_list(statement["Resource"])}
    assert queues <= allowed


def test_the_target_events_bus_accepts_only_the_registered_accounts() -> None:
    assert TEMPLATE["Parameters"]["TargetAccountIds"]["Type"] == "CommaDelimitedList"
    assert TEMPLATE["Parameters"]["TargetAccountIds"]["Default"] == ""
    policies = [r for r in RESOURCES.values() if r["Type"] == "AWS::Events::EventBusPolicy"]
    assert len(policies) == 1
    [policy] = policies
    # with no registered account the condition is false: no policy, the bus stays closed
    assert policy["Condition"] == "HasTargetAccounts"
    assert TEMPLATE["Conditions"]["HasTargetAccounts"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "TargetAccountIds"}]}, ""]}]
    }
    properties = policy["Properties"]
    assert properties["EventBusName"] == {"Fn::GetAtt": ["TargetEventsBus", "Name"]}
    statement = properties["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": {"Ref": "TargetAccountIds"}}
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == {"Fn::GetAtt": ["TargetEventsBus", "Arn"]}


def test_deployment_events_listen_on_the_default_and_the_target_bus() -> None:
    rules = [
        (rule.get("EventBusName"), rule["Pattern"]["detail-type"][0])
        for resource, _, rule in event_rules()
        if resource == "DeploymentEventsFunction"
    ]
    for detail_type in ("CloudFormation Stack Status Change", "ECS Deployment State Change"):
        assert (None, detail_type) in rules
        assert ({"Fn::GetAtt": ["TargetEventsBus", "Name"]}, detail_type) in rules


def test_the_target_health_check_runs_every_15_minutes_with_least_privilege() -> None:
    function = RESOURCES["CheckTargetsFunction"]["Properties"]
    schedules = [e for e in function["Events"].values() if e["Type"] == "ScheduleV2"]
    assert [s["Properties"]["ScheduleExpression"] for s in schedules] == ["rate(15 minutes)"]
    actions = {a for s in function_statements("CheckTargetsFunction") for a in as_list(s["Action"])}
    assert actions == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "sts:AssumeRole"}


# ----------------------------------------------------------------------------- schedules

SCHEDULER_ROLE_ARN = {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
JOBS = {
    "CheckTargetsFunction": "rate(15 minutes)",
    "ApplyRetentionFunction": "rate(1 day)",
    "ReconcilePushesFunction": "rate(15 minutes)",
    "SettleExecutionFunction": "rate(10 minutes)",
    "DetectDriftFunction": "rate(1 hour)",
}


@pytest.mark.parametrize(("function", "rate"), sorted(JOBS.items()))
def test_recurring_jobs_run_on_eventbridge_scheduler_as_the_scheduler_role(
    function: str, rate: str
) -> None:
    events = RESOURCES[function]["Properties"]["Events"].values()
    [schedule] = [e["Properties"] for e in events if e["Type"] == "ScheduleV2"]
    assert schedule["ScheduleExpression"] == rate
    assert schedule["RoleArn"] == SCHEDULER_ROLE_ARN
    assert schedule["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert not [e for e in events if e["Type"] == "Schedule"]  # no EventBridge rule left


def test_the_scheduler_role_may_only_start_the_pipeline_and_invoke_the_jobs() -> None:
    role = RESOURCES["SchedulerRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    granted = {
        action: as_list(statement["Resource"])
        for statement in statements(role["Policies"])
        for action in as_list(statement["Action"])
    }
    assert granted == {
        "states:StartExecution": [{"Ref": "DeployPipeline"}],
        "lambda:InvokeFunction": [{"Fn::GetAtt": [job, "Arn"]} for job in JOBS],
    }


def test_the_api_manages_schedules_in_its_group_and_passes_only_the_scheduler_role() -> None:
    api = RESOURCES["ApiFunction"]["Properties"]
    variables = api["Environment"]["Variables"]
    assert variables["SCHEDULE_GROUP_NAME"] == {"Fn::Sub": "${AWS::StackName}-schedules"}
    assert variables["SCHEDULER_ROLE_ARN"] == SCHEDULER_ROLE_ARN
    group = RESOURCES["ScheduleGroup"]
    assert group["Type"] == "AWS::Scheduler::ScheduleGroup"
    assert group["Properties"]["Name"] == variables["SCHEDULE_GROUP_NAME"]
    scheduler = [
        s
        for s in function_statements("ApiFunction")
        if any(a.startswith("scheduler:") for a in as_list(s["Action"]))
    ]
    for statement in scheduler:
        for resource in as_list(statement["Resource"]):
            assert resource["Fn::Sub"].endswith(":schedule/${AWS::StackName}-schedules/*")
    actions = {a for s in scheduler for a in as_list(s["Action"])}
    assert actions == {
        "scheduler:CreateSchedule",
        "scheduler:GetSchedule",
        "scheduler:DeleteSchedule",
    }
    [pass_role] = [
        s for s in function_statements("ApiFunction") if "iam:PassRole" in as_list(s["Action"])
    ]
    assert pass_role["Resource"] == SCHEDULER_ROLE_ARN
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (
            "ReconcilePushesFunction",
            {"dynamodb:GetItem", "dynamodb:Query", "ecr:DescribeImages", "states:StartExecution"},
        ),
        (
            "DetectDriftFunction",
            {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "sts:AssumeRole"},
        ),
    ],
)
def test_the_new_jobs_have_least_privilege(function: str, expected: set[str]) -> None:
    actions = {a for s in function_statements(function) for a in as_list(s["Action"])}
    assert actions == expected
