"""The local cloud delivers as AWS does: Lambda's async retries and on-failure destinations,
EventBridge's RetryPolicy and dead-letter queues, and the ClientRequestToken of stack
operations on their status events. On the fixture template (tests/fixtures/local_cloud),
with AWS's delays scaled down (`time_scale`), so a 2-minute retry takes 0.24 s.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shiplane_local import LocalCloud

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "local_cloud"
TIME_SCALE = 0.002


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(FIXTURE, rollout_delay=0.05, time_scale=TIME_SCALE) as local:
        local.wait_idle()
        yield local


@pytest.fixture(autouse=True)
def no_faults(cloud: LocalCloud) -> Iterator[None]:
    cloud.faults.clear()
    yield
    cloud.faults.clear()
    cloud.wait_idle()


def _function(cloud: LocalCloud, part: str) -> str:
    functions = cloud.client("lambda").list_functions()["Functions"]
    return next(f["FunctionName"] for f in functions if part in f["FunctionName"])


def _may_send(cloud: LocalCloud, function: str, action: str, destination: str) -> None:
    """Lambda sends an invocation record with the function's execution role, which must
    allow it (as on AWS)."""
    lam, iam = cloud.client("lambda"), cloud.client("iam")
    role = lam.get_function_configuration(FunctionName=function)["Role"].rsplit("/", 1)[-1]
    statement = {"Effect": "Allow", "Action": action, "Resource": destination}
    iam.put_role_policy(
        RoleName=role,
        PolicyName=f"destination-{uuid.uuid4().hex[:8]}",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )


def _queue(cloud: LocalCloud, name: str | None = None) -> tuple[str, str]:
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName=name or f"q-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def _drain(cloud: LocalCloud, url: str) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return found
        found.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )


# -- asynchronous Lambda invocations -------------------------------------------------------


def test_failing_async_invocation_is_retried_twice_then_goes_to_on_failure(
    cloud: LocalCloud,
) -> None:
    boom = _function(cloud, "BoomFunction")
    url, arn = _queue(cloud)
    lam = cloud.client("lambda")
    _may_send(cloud, boom, "sqs:SendMessage", arn)
    lam.put_function_event_invoke_config(
        FunctionName=boom, DestinationConfig={"OnFailure": {"Destination": arn}}
    )
    before = cloud.runtime.invocations
    started = time.monotonic()

    response = lam.invoke(FunctionName=boom, InvocationType="Event", Payload=b'{"id": "r-1"}')
    cloud.wait_idle()

    assert response["StatusCode"] == 202
    assert cloud.runtime.invocations - before == 3  # the first attempt and two retries
    # about 1 + 2 minutes of AWS time between them, scaled
    assert time.monotonic() - started >= 180 * TIME_SCALE
    (message,) = _drain(cloud, url)
    record = json.loads(message["Body"])
    assert record["version"] == "1.0"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(f":function:{boom}:$LATEST")
    assert record["requestPayload"] == {"id": "r-1"}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "FixtureFailure"
    assert record["responsePayload"]["errorMessage"] == "boom for r-1"
    lam.delete_function_event_invoke_config(FunctionName=boom)


def test_event_invoke_config_limits_retries_and_event_age(cloud: LocalCloud) -> None:
    boom = _function(cloud, "BoomFunction")
    url, arn = _queue(cloud)
    lam = cloud.client("lambda")
    destination = {"OnFailure": {"Destination": arn}}
    _may_send(cloud, boom, "sqs:SendMessage", arn)

    lam.put_function_event_invoke_config(
        FunctionName=boom, MaximumRetryAttempts=0, DestinationConfig=destination
    )
    lam.invoke(FunctionName=boom, InvocationType="Event", Payload=b'{"id": "no-retry"}')
    cloud.wait_idle()
    # a retry a minute later would be older than 60 s: the event is given up at once
    lam.put_function_event_invoke_config(
        FunctionName=boom, MaximumEventAgeInSeconds=60, DestinationConfig=destination
    )
    lam.invoke(FunctionName=boom, InvocationType="Event", Payload=b'{"id": "too-old"}')
    cloud.wait_idle()

    records = {
        json.loads(m["Body"])["requestPayload"]["id"]: json.loads(m["Body"])
        for m in _drain(cloud, url)
    }
    assert records["no-retry"]["requestContext"]["condition"] == "RetriesExhausted"
    assert records["no-retry"]["requestContext"]["approximateInvokeCount"] == 1
    assert records["too-old"]["requestContext"]["condition"] == "EventAgeExceeded"
    assert records["too-old"]["requestContext"]["approximateInvokeCount"] == 1
    lam.delete_function_event_invoke_config(FunctionName=boom)


def test_on_failure_records_reach_sns_and_event_bus_destinations(cloud: LocalCloud) -> None:
    boom = _function(cloud, "BoomFunction")
    lam, events, sns = cloud.client("lambda"), cloud.client("events"), cloud.client("sns")
    topic_queue, topic_queue_arn = _queue(cloud)
    topic = sns.create_topic(Name=f"failures-{uuid.uuid4().hex[:6]}")["TopicArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=topic_queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    bus_queue, bus_queue_arn = _queue(cloud)
    rule = f"results-{uuid.uuid4().hex[:6]}"
    events.put_rule(
        Name=rule,
        EventPattern=json.dumps(
            {"source": ["lambda"], "detail-type": ["Lambda Function Invocation Result - Failure"]}
        ),
    )
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": bus_queue_arn}])
    bus = events.describe_event_bus(Name="default")["Arn"]
    _may_send(cloud, boom, "sns:Publish", topic)
    _may_send(cloud, boom, "events:PutEvents", bus)

    for destination, event_id in ((topic, "to-sns"), (bus, "to-bus")):
        lam.put_function_event_invoke_config(
            FunctionName=boom,
            MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {"Destination": destination}},
        )
        lam.invoke(FunctionName=boom, InvocationType="Event", Payload=json.dumps({"id": event_id}))
        cloud.wait_idle()

    (via_sns,) = [json.loads(m["Body"]) for m in _drain(cloud, topic_queue)]
    (via_bus,) = [json.loads(m["Body"]) for m in _drain(cloud, bus_queue)]
    assert via_sns["requestPayload"] == {"id": "to-sns"}
    assert via_bus["source"] == "lambda"
    assert via_bus["detail"]["requestPayload"] == {"id": "to-bus"}
    assert via_bus["detail"]["requestContext"]["condition"] == "RetriesExhausted"
    lam.delete_function_event_invoke_config(FunctionName=boom)


def test_a_failure_without_destination_is_discarded_and_noted(cloud: LocalCloud) -> None:
    boom = _function(cloud, "BoomFunction")
    before = cloud.runtime.invocations
    errors = len(cloud.activity.errors)

    cloud.client("lambda").invoke(
        FunctionName=boom, InvocationType="Event", Payload=b'{"id": "lost"}'
    )
    cloud.wait_idle()

    assert cloud.runtime.invocations - before == 3
    assert any("boom for lost" in e and "discarded" in e for e in cloud.activity.errors[errors:])


def test_template_event_invoke_config_is_applied(cloud: LocalCloud) -> None:
    config = cloud.client("lambda").get_function_event_invoke_config(
        FunctionName=cloud.outputs["RecordFunctionName"]
    )

    failures_arn = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.outputs["FailuresQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert config["MaximumRetryAttempts"] == 1
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == failures_arn


def test_event_bridge_delivery_to_a_failing_function_is_retried_by_lambda_not_eventbridge(
    cloud: LocalCloud,
) -> None:
    # RecordFunction's template config: 1 retry, then FailuresQueue. It crashes every time
    # after its write; EventBridge has delivered once (Lambda accepted the event).
    cloud.faults.load({"faults": [{"function": "record", "fail_after_calls": 1, "times": 5}]})
    delivered = cloud.events.delivered
    retried = cloud.events.retried
    event_id = f"crash-{uuid.uuid4().hex[:8]}"

    cloud.emit_event(
        {
            "id": event_id,
            "source": "aws.cloudformation",
            "detail-type": "CloudFormation Stack Status Change",
            "detail": {"status-details": {"status": "UPDATE_COMPLETE"}},
        }
    )
    cloud.wait_idle()

    assert cloud.events.delivered - delivered == 1
    assert cloud.events.retried == retried
    assert len(cloud.faults.fired("crash")) == 2  # the first attempt and Lambda's one retry
    records = [json.loads(m["Body"]) for m in _drain(cloud, cloud.outputs["FailuresQueueUrl"])]
    (record,) = [r for r in records if r["requestPayload"]["id"] == event_id]
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responsePayload"]["errorType"] == "Runtime.ExitError"


# -- EventBridge RetryPolicy and dead-letter queues ----------------------------------------


def _rule_to(
    cloud: LocalCloud, target_arn: str, retry_policy: dict[str, int] | None, dlq_arn: str
) -> str:
    events = cloud.client("events")
    source = f"local.test.{uuid.uuid4().hex[:8]}"
    name = f"rule-{uuid.uuid4().hex[:8]}"
    rule_arn = events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))["RuleArn"]
    target: dict[str, Any] = {"Id": "t", "Arn": target_arn, "DeadLetterConfig": {"Arn": dlq_arn}}
    # What AWS requires of a rule's target: a function's resource-based policy lets
    # EventBridge invoke it for this rule; a state machine is started with a role.
    if ":function:" in target_arn:
        with contextlib.suppress(cloud.client("lambda").exceptions.ResourceNotFoundException):
            cloud.client("lambda").add_permission(
                FunctionName=target_arn,
                StatementId=name,
                Action="lambda:InvokeFunction",
                Principal="events.amazonaws.com",
                SourceArn=rule_arn,
            )
    if ":stateMachine:" in target_arn:
        target["RoleArn"] = _events_role(cloud, name, target_arn)
    if retry_policy is not None:
        target["RetryPolicy"] = retry_policy
    events.put_targets(Rule=name, Targets=[target])
    return source


def _events_role(cloud: LocalCloud, name: str, machine_arn: str) -> str:
    iam = cloud.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    start = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "states:StartExecution", "Resource": machine_arn}
        ],
    }
    iam.put_role_policy(RoleName=name, PolicyName="start", PolicyDocument=json.dumps(start))
    return str(role["Arn"])


def _put(cloud: LocalCloud, source: str, detail: dict[str, Any]) -> None:
    cloud.client("events").put_events(
        Entries=[{"Source": source, "DetailType": "Ping", "Detail": json.dumps(detail)}]
    )


def test_throttled_target_is_retried_then_dead_lettered_with_aws_attributes(
    cloud: LocalCloud,
) -> None:
    url, dlq = _queue(cloud)
    echo_arn = cloud.client("lambda").get_function(FunctionName=_function(cloud, "EchoFunction"))[
        "Configuration"
    ]["FunctionArn"]
    source = _rule_to(cloud, echo_arn, {"MaximumRetryAttempts": 3}, dlq)
    cloud.faults.load(
        {"faults": [{"service": "lambda", "operation": "Invoke", "throttle": 1, "callers": "all"}]}
    )

    _put(cloud, source, {"n": 1})
    cloud.wait_idle()

    (message,) = _drain(cloud, url)
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "THROTTLING"
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert attributes["RETRY_ATTEMPTS"] == "3"
    assert attributes["TARGET_ARN"] == echo_arn
    assert ":rule/" in attributes["RULE_ARN"]
    assert json.loads(message["Body"])["detail"] == {"n": 1}
    assert len(cloud.faults.fired("throttle")) == 4  # the attempt and three retries


def test_event_too_old_for_another_retry_is_dead_lettered(cloud: LocalCloud) -> None:
    url, dlq = _queue(cloud)
    echo_arn = cloud.client("lambda").get_function(FunctionName=_function(cloud, "EchoFunction"))[
        "Configuration"
    ]["FunctionArn"]
    source = _rule_to(cloud, echo_arn, {"MaximumEventAgeInSeconds": 60}, dlq)
    cloud.faults.load(
        {"faults": [{"service": "lambda", "operation": "Invoke", "throttle": 1, "callers": "all"}]}
    )

    _put(cloud, source, {"n": 2})
    cloud.wait_idle()

    (message,) = _drain(cloud, url)
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"
    assert 0 < int(attributes["RETRY_ATTEMPTS"]) < 185


def test_a_throttled_start_execution_is_delivered_on_a_retry(cloud: LocalCloud) -> None:
    url, dlq = _queue(cloud)
    machine = cloud.outputs["StateMachineArn"]
    source = _rule_to(cloud, machine, None, dlq)
    sfn = cloud.client("stepfunctions")
    before = len(sfn.list_executions(stateMachineArn=machine)["executions"])
    cloud.faults.load(
        {
            "faults": [
                {
                    "service": "stepfunctions",
                    "operation": "StartExecution",
                    "throttle": 1,
                    "callers": "all",
                    "times": 2,
                }
            ]
        }
    )

    _put(cloud, source, {"kind": "echo", "id": "sfn-1"})
    cloud.wait_idle()

    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == before + 1
    assert len(cloud.faults.fired("throttle")) == 2
    assert _drain(cloud, url) == []


def test_a_missing_target_is_dead_lettered_without_retries(cloud: LocalCloud) -> None:
    url, dlq = _queue(cloud)
    missing = f"arn:aws:lambda:us-east-1:{cloud.account_id}:function:nobody"
    source = _rule_to(cloud, missing, None, dlq)
    retried = cloud.events.retried

    _put(cloud, source, {"n": 3})
    cloud.wait_idle()

    (message,) = _drain(cloud, url)
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "NO_RESOURCE"
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes
    assert cloud.events.retried == retried


# -- CloudFormation status events carry the operation's ClientRequestToken ----------------


def _stack_events_queue(cloud: LocalCloud) -> str:
    url, arn = _queue(cloud)
    events = cloud.client("events")
    name = f"cfn-{uuid.uuid4().hex[:8]}"
    events.put_rule(
        Name=name,
        EventPattern=json.dumps(
            {
                "source": ["aws.cloudformation"],
                "detail-type": ["CloudFormation Stack Status Change"],
            }
        ),
    )
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    return url


def _template(topic: str) -> str:
    return json.dumps(
        {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": topic}}}}
    )


def test_stack_status_events_carry_the_client_request_token_and_stack_id(
    cloud: LocalCloud,
) -> None:
    url = _stack_events_queue(cloud)
    cfn = cloud.client("cloudformation")
    name = f"tokens-{uuid.uuid4().hex[:8]}"

    stack_id = cfn.create_stack(
        StackName=name, TemplateBody=_template(f"{name}-a"), ClientRequestToken="create-1"
    )["StackId"]
    cloud.wait_idle()
    cfn.update_stack(
        StackName=name, TemplateBody=_template(f"{name}-b"), ClientRequestToken="update-1"
    )
    cloud.wait_idle()
    cfn.create_change_set(
        StackName=name,
        ChangeSetName="cs1",
        ChangeSetType="UPDATE",
        TemplateBody=_template(f"{name}-c"),
        ClientToken="not-the-event-token",
    )
    cfn.execute_change_set(StackName=name, ChangeSetName="cs1", ClientRequestToken="execute-1")
    cloud.wait_idle()
    cfn.update_stack(StackName=name, TemplateBody=_template(f"{name}-d"))
    cloud.wait_idle()

    seen = [
        json.loads(m["Body"])
        for m in _drain(cloud, url)
        if json.loads(m["Body"])["detail"]["stack-id"] == stack_id
    ]
    by_token: dict[str, list[str]] = {}
    for event in seen:
        assert event["resources"] == [stack_id]
        detail = event["detail"]
        by_token.setdefault(detail["client-request-token"], []).append(
            detail["status-details"]["status"]
        )
    assert by_token == {
        "create-1": ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"],
        "update-1": ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"],
        "execute-1": ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"],
        "": ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"],  # no token given
    }


def test_describe_stack_events_carry_the_operation_token(cloud: LocalCloud) -> None:
    cfn = cloud.client("cloudformation")
    name = f"listed-{uuid.uuid4().hex[:8]}"

    cfn.create_stack(StackName=name, TemplateBody=_template(name), ClientRequestToken="made-1")
    cloud.wait_idle()
    cfn.update_stack(
        StackName=name, TemplateBody=_template(f"{name}-2"), ClientRequestToken="changed-1"
    )
    cloud.wait_idle()

    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    stack_level = [
        (e["ResourceStatus"], e.get("ClientRequestToken"))
        for e in reversed(events)
        if e["LogicalResourceId"] == name
    ]
    assert stack_level == [
        ("CREATE_IN_PROGRESS", "made-1"),
        ("CREATE_COMPLETE", "made-1"),
        ("UPDATE_IN_PROGRESS", "changed-1"),
        ("UPDATE_COMPLETE", "changed-1"),
    ]
    assert {e.get("ClientRequestToken") for e in events} == {"made-1", "changed-1"}


def test_an_on_failure_destination_the_role_may_not_send_to_gets_nothing(
    cloud: LocalCloud,
) -> None:
    boom = _function(cloud, "BoomFunction")
    url, arn = _queue(cloud)
    lam = cloud.client("lambda")
    errors = len(cloud.activity.errors)
    lam.put_function_event_invoke_config(
        FunctionName=boom,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )

    lam.invoke(FunctionName=boom, InvocationType="Event", Payload=b'{"id": "unsent"}')
    cloud.wait_idle()

    assert _drain(cloud, url) == []
    assert any(
        "not authorized to perform: sqs:SendMessage" in e for e in cloud.activity.errors[errors:]
    )
    lam.delete_function_event_invoke_config(FunctionName=boom)
