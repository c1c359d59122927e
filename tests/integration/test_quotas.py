"""AWS's quotas on the local cloud: each refusal in the shape AWS answers it with.

One local cloud (the fixture template) for the module; botocore's retries are off in the
clients that provoke a refusal, so the first answer is the one asserted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from shiplane_local import LocalCloud
from shiplane_local.quotas import (
    CFN_TEMPLATE_BODY_BYTES,
    CFN_TEMPLATE_URL_BYTES,
    EVENTBRIDGE_ENTRIES_BYTES,
    HISTORY_LIMIT_CAUSE,
    LAMBDA_ASYNC_PAYLOAD_BYTES,
    LAMBDA_SYNC_PAYLOAD_BYTES,
    SFN_HISTORY_EVENTS,
    SFN_STATE_DATA_BYTES,
    BucketSpec,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "local_cloud"
NO_RETRIES = Config(retries={"total_max_attempts": 1})
ROLE = "arn:aws:iam::123456789012:role/quota-test-machine"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(FIXTURE, rollout_delay=0.05, scheduler_interval=None) as local:
        assert local.quotas.enabled  # on by default
        local.wait_idle()
        yield local


def _function(cloud: LocalCloud, logical_id: str) -> str:
    functions = cloud.client("lambda").list_functions()["Functions"]
    return str(next(f["FunctionName"] for f in functions if logical_id in f["FunctionName"]))


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response: Any = info.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


# -- ECS and Step Functions token buckets --------------------------------------------------


def test_register_task_definition_bucket_answers_ecs_throttling(cloud: LocalCloud) -> None:
    ecs = cloud.client("ecs", config=NO_RETRIES)
    granted = 0
    with pytest.raises(ClientError) as refused:
        for _ in range(60):
            ecs.register_task_definition(
                family="quota-burst",
                containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}],
            )
            granted += 1

    # The burst of 20 passes (plus what refilled at 1 per second meanwhile), then ECS's
    # ThrottlingException, status 400, "Rate exceeded".
    assert 20 <= granted < 30
    assert _error(refused) == ("ThrottlingException", 400, "Rate exceeded")
    bucket = next(b for k, b in cloud.quotas.buckets().items() if "RegisterTaskDefinition" in k)
    assert bucket.spec.capacity == 20 and bucket.spec.refill == 1
    assert bucket.refused >= 1


def test_a_throttled_register_succeeds_under_botocores_retries(cloud: LocalCloud) -> None:
    # Shiplane's clients retry throttles; the bucket refills at 1 per second.
    ecs = cloud.client("ecs", config=Config(retries={"mode": "adaptive", "max_attempts": 10}))
    response = ecs.register_task_definition(
        family="quota-burst",
        containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}],
    )
    assert response["taskDefinition"]["family"] == "quota-burst"


# -- Lambda -----------------------------------------------------------------------------------


def test_synchronous_payload_over_6_mb_is_refused_with_413(cloud: LocalCloud) -> None:
    lam = cloud.client("lambda", config=NO_RETRIES)
    payload = json.dumps({"blob": "x" * LAMBDA_SYNC_PAYLOAD_BYTES}).encode()

    with pytest.raises(ClientError) as refused:
        lam.invoke(FunctionName=_function(cloud, "EchoFunction"), Payload=payload)

    assert _error(refused) == (
        "RequestEntityTooLargeException",
        413,
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
    )


def test_synchronous_response_over_6_mb_is_lambdas_function_error(cloud: LocalCloud) -> None:
    lam = cloud.client("lambda", config=NO_RETRIES)
    # Under the request limit; echoed with the handler's fields, over the response limit.
    payload = json.dumps({"blob": "x" * (LAMBDA_SYNC_PAYLOAD_BYTES - 20)}).encode()

    response = lam.invoke(FunctionName=_function(cloud, "EchoFunction"), Payload=payload)

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read()) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        "(6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


def test_event_payload_over_1_mb_is_refused_with_413(cloud: LocalCloud) -> None:
    lam = cloud.client("lambda", config=NO_RETRIES)
    payload = json.dumps({"blob": "x" * LAMBDA_ASYNC_PAYLOAD_BYTES}).encode()
    just_fits = json.dumps({"blob": "x" * (LAMBDA_ASYNC_PAYLOAD_BYTES - 20)}).encode()
    echo = _function(cloud, "EchoFunction")

    with pytest.raises(ClientError) as refused:
        lam.invoke(FunctionName=echo, InvocationType="Event", Payload=payload)

    assert _error(refused) == (
        "RequestEntityTooLargeException",
        413,
        f"{len(payload)} byte payload is too large for the Event invocation type "
        f"(limit {LAMBDA_ASYNC_PAYLOAD_BYTES} bytes)",
    )
    accepted = lam.invoke(FunctionName=echo, InvocationType="Event", Payload=just_fits)
    assert accepted["StatusCode"] == 202
    cloud.wait_idle()


def test_concurrency_limit_refuses_a_synchronous_invoke_and_queues_an_async_one(
    cloud: LocalCloud,
) -> None:
    lam = cloud.client("lambda", config=NO_RETRIES)
    echo = _function(cloud, "EchoFunction")
    slots = cloud.quotas.slots
    scope = (cloud.account_id, cloud.region)
    saved = slots.limit
    slots.limit = 1  # one execution running stands for the account's 1,000
    slots.acquire(scope, wait=False)
    try:
        with pytest.raises(ClientError) as refused:
            lam.invoke(FunctionName=echo, Payload=b"{}")
        queued = lam.invoke(
            FunctionName=_function(cloud, "RecordFunction"),
            InvocationType="Event",
            Payload=b'{"kind": "quota", "id": "q-1"}',
        )
        time.sleep(0.3)
        assert cloud.busy()  # held in Lambda's queue, not failed
    finally:
        slots.release(scope)
        slots.limit = saved

    code, status, message = _error(refused)
    assert (code, status, message) == ("TooManyRequestsException", 429, "Rate Exceeded.")
    assert refused.value.response["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert queued["StatusCode"] == 202
    cloud.wait_idle()
    assert not cloud.activity.errors


# -- EventBridge ------------------------------------------------------------------------------


def test_put_events_over_the_entry_size_limit_is_refused(cloud: LocalCloud) -> None:
    events = cloud.client("events", config=NO_RETRIES)
    detail = json.dumps({"blob": "x" * (EVENTBRIDGE_ENTRIES_BYTES // 2)})
    entry = {"Source": "quota.test", "DetailType": "Big", "Detail": detail}

    with pytest.raises(ClientError) as refused:
        events.put_events(Entries=[entry, entry])

    assert _error(refused) == (
        "ValidationException",
        400,
        "Total size of the entries in the request is over the limit.",
    )
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0


# -- CloudFormation ----------------------------------------------------------------------------


def _template(size: int) -> str:
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Metadata": {"Padding": ""},
    }
    base = len(json.dumps(template))
    template["Metadata"]["Padding"] = "x" * (size - base)
    text = json.dumps(template)
    assert len(text) == size
    return text


def test_template_body_over_51200_bytes_is_refused(cloud: LocalCloud) -> None:
    cfn = cloud.client("cloudformation", config=NO_RETRIES)
    body = _template(CFN_TEMPLATE_BODY_BYTES + 1)

    with pytest.raises(ClientError) as refused:
        cfn.create_stack(StackName="quota-big-body", TemplateBody=body)

    code, status, message = _error(refused)
    assert (code, status) == ("ValidationError", 400)
    assert message == (
        f"1 validation error detected: Value '{body}' at 'templateBody' failed to satisfy "
        "constraint: Member must have length less than or equal to 51200"
    )
    cfn.validate_template(TemplateBody=_template(CFN_TEMPLATE_BODY_BYTES))  # exactly: fine


def test_template_url_takes_up_to_1_mb(cloud: LocalCloud) -> None:
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket="quota-templates")
    s3.put_object(Bucket="quota-templates", Key="big.json", Body=_template(200_000).encode())
    s3.put_object(
        Bucket="quota-templates",
        Key="huge.json",
        Body=_template(CFN_TEMPLATE_URL_BYTES + 1).encode(),
    )
    cfn = cloud.client("cloudformation", config=NO_RETRIES)
    url = "https://quota-templates.s3.amazonaws.com/{}"

    cfn.validate_template(TemplateURL=url.format("big.json"))  # over 51,200: by S3, fine
    with pytest.raises(ClientError) as refused:
        cfn.validate_template(TemplateURL=url.format("huge.json"))

    assert _error(refused) == (
        "ValidationError",
        400,
        "Template may not exceed 1048576 bytes in size.",
    )


# -- DynamoDB -----------------------------------------------------------------------------------


def test_transaction_over_4_mb_of_items_is_refused(cloud: LocalCloud) -> None:
    ddb = cloud.client("dynamodb", config=NO_RETRIES)
    table = cloud.outputs["TableName"]

    def put(i: int) -> dict[str, Any]:
        item = {"pk": {"S": "QUOTA"}, "sk": {"S": f"{i:03d}"}, "blob": {"S": "x" * 350_000}}
        return {"Put": {"TableName": table, "Item": item}}

    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(TransactItems=[put(i) for i in range(12)])  # 4.2 MB

    assert _error(refused) == (
        "ValidationException",
        400,
        "Transaction request cannot be larger than 4 MB",
    )
    ddb.transact_write_items(TransactItems=[put(i) for i in range(11)])  # 3.85 MB: fine
    with pytest.raises(ClientError) as too_many:  # moto's own check, kept
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "Q"}, "sk": {"S": str(i)}}}}
                for i in range(101)
            ]
        )
    assert _error(too_many)[0] == "ValidationException"


# -- Step Functions --------------------------------------------------------------------------


def _machine(cloud: LocalCloud, name: str, definition: dict[str, Any]) -> str:
    sfn = cloud.client("stepfunctions")
    arn = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
    return str(arn["stateMachineArn"])


def _finished(cloud: LocalCloud, arn: str, timeout: float = 180) -> dict[str, Any]:
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        execution: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        assert time.monotonic() < deadline, "execution still running"
        time.sleep(0.2)


def test_send_task_success_output_over_256_kib_is_refused(cloud: LocalCloud) -> None:
    sfn = cloud.client("stepfunctions", config=NO_RETRIES)
    output = json.dumps("x" * SFN_STATE_DATA_BYTES)

    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken="any-token", output=output)

    assert _error(refused) == (
        "ValidationException",
        400,
        "1 validation error detected: Value at 'output' failed to satisfy constraint: "
        "Member must have length less than or equal to 262144",
    )


def test_state_output_of_256_kib_passes_and_one_byte_more_fails(cloud: LocalCloud) -> None:
    sfn = cloud.client("stepfunctions")
    results = {}
    for size in (SFN_STATE_DATA_BYTES, SFN_STATE_DATA_BYTES + 1):
        # A Pass state's output is its Result, as compact JSON: {"b":"xx…"} is 8 bytes more.
        result = {"b": "x" * (size - 8)}
        definition = {
            "StartAt": "Big",
            "States": {"Big": {"Type": "Pass", "Result": result, "End": True}},
        }
        machine = _machine(cloud, f"quota-data-{size}", definition)
        arn = sfn.start_execution(stateMachineArn=machine, name=f"d-{size}")["executionArn"]
        results[size] = _finished(cloud, arn, timeout=30)

    assert results[SFN_STATE_DATA_BYTES]["status"] == "SUCCEEDED"
    over = results[SFN_STATE_DATA_BYTES + 1]
    assert (over["status"], over.get("error")) == ("FAILED", "States.DataLimitExceeded"), over


# A loop that never ends (a Pass and a Choice back to it): only the history quota stops it.
SPIN = {
    "StartAt": "Spin",
    "States": {
        "Spin": {"Type": "Pass", "Result": {"spin": True}, "Next": "Again"},
        "Again": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.spin", "BooleanEquals": True, "Next": "Spin"}],
            "Default": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    return [
        event
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
        for event in page["events"]
    ]


def test_execution_fails_at_25000_history_events_as_aws_writes_it(cloud: LocalCloud) -> None:
    # A loop that never ends: AWS cuts it at its 25,000th event.
    sfn = cloud.client("stepfunctions")
    machine = _machine(cloud, "quota-history", SPIN)
    arn = sfn.start_execution(stateMachineArn=machine, name="spin")["executionArn"]

    execution = _finished(cloud, arn)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.Runtime"
    assert execution["cause"] == HISTORY_LIMIT_CAUSE
    events = _history(sfn, arn)
    assert [e["id"] for e in events] == list(range(1, SFN_HISTORY_EVENTS + 1))
    before, final = events[-2:]
    assert (final["id"], final["type"]) == (SFN_HISTORY_EVENTS, "ExecutionFailed")
    assert final["executionFailedEventDetails"] == {
        "error": "States.Runtime",
        "cause": "The execution reached the maximum number of history events (25000).",
    }
    assert before["id"] == SFN_HISTORY_EVENTS - 1
    assert before["type"] != "ExecutionFailed"


def test_start_execution_input_over_256_kib_is_refused(cloud: LocalCloud) -> None:
    sfn = cloud.client("stepfunctions", config=NO_RETRIES)
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(
            stateMachineArn=cloud.outputs["StateMachineArn"],
            name="too-big",
            input=json.dumps({"blob": "x" * SFN_STATE_DATA_BYTES}),
        )
    assert _error(refused) == (
        "ValidationException",
        400,
        "1 validation error detected: Value at 'input' failed to satisfy constraint: "
        "Member must have length less than or equal to 262144",
    )


def test_history_limit_counts_every_map_iteration_of_the_execution(cloud: LocalCloud) -> None:
    # Two inline Map iterations spinning at once share their execution's one history.
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 2,
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **SPIN},
                "End": True,
            }
        },
    }
    sfn = cloud.client("stepfunctions")
    machine = _machine(cloud, "quota-history-map", definition)
    arn = sfn.start_execution(
        stateMachineArn=machine, name="spin-map", input=json.dumps({"items": [1, 2]})
    )["executionArn"]

    execution = _finished(cloud, arn)

    assert (execution["status"], execution["error"]) == ("FAILED", "States.Runtime")
    events = _history(sfn, arn)
    assert [e["id"] for e in events] == list(range(1, SFN_HISTORY_EVENTS + 1))
    assert events[-1]["type"] == "ExecutionFailed"
    assert sum(e["type"] == "ExecutionFailed" for e in events) == 1


def test_eventbridge_start_execution_takes_from_the_bucket_and_is_retried(
    cloud: LocalCloud,
) -> None:
    sfn = cloud.client("stepfunctions")
    machine = cloud.outputs["StateMachineArn"]
    before = len(sfn.list_executions(stateMachineArn=machine)["executions"])
    refused = len(cloud.quotas.refusals("stepfunctions:StartExecution"))
    cloud.quotas.take(cloud.account_id, cloud.region, "stepfunctions", "StartExecution")
    [bucket] = [b for k, b in cloud.quotas.buckets().items() if "StartExecution" in k]
    # Someone else in the account spends every token as it comes (racing a thread for
    # them is at the GIL's mercy): the bucket is empty and, meanwhile, refills nothing.
    spec = bucket.spec
    bucket.spec = BucketSpec(spec.capacity, 0)
    bucket.tokens = 0
    try:
        cloud.push_image("quota-push", "1.0.0")  # the fixture's rule starts the state machine
        deadline = time.monotonic() + 30
        while len(cloud.quotas.refusals("stepfunctions:StartExecution")) == refused:
            assert time.monotonic() < deadline, "EventBridge's StartExecution never throttled"
            time.sleep(0.01)
    finally:
        bucket.spec = spec  # AWS's refill again: EventBridge's next attempt gets a token
    cloud.wait_idle()

    throttled = cloud.quotas.refusals("stepfunctions:StartExecution")[refused:]
    assert throttled and all(r.detail.endswith("EventBridge") for r in throttled)
    assert cloud.events.retried >= 1  # EventBridge retried the target, as AWS does
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == before + 1
