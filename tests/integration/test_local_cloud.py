"""The embedded local cloud's mechanisms, on a small fixture SAM template.

The fixture (tests/fixtures/local_cloud) has the shapes of Shiplane's template.yaml: a
layer, functions sharing environment variables, EventBridge rules to a state machine and
to a function with a dead-letter queue, DefinitionSubstitutions, an API and a schedule.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shiplane_local import LocalCloud
from shiplane_local.lambda_runtime import EnvironmentConflict

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "local_cloud"

# LocalCloud imports the rollout simulator when it starts; it is built separately, and a
# stand-in keeps these tests independent of it while it does not exist.
try:
    import shiplane_local.rollouts  # noqa: F401
except ImportError:  # pragma: no cover - only while rollouts.py does not exist yet

    class _NoRollouts:
        def __init__(self, **_: Any) -> None: ...
        def install(self) -> None: ...
        def uninstall(self) -> None: ...
        def pending(self) -> int:
            return 0

    sys.modules["shiplane_local.rollouts"] = types.SimpleNamespace(RolloutSimulator=_NoRollouts)  # type: ignore[assignment]


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(FIXTURE, rollout_delay=0.05) as local:
        local.wait_idle()
        yield local


def _payload(response: dict[str, Any]) -> Any:
    return json.loads(response["Payload"].read())


def _execution(cloud: LocalCloud, execution_input: dict[str, Any]) -> dict[str, Any]:
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=cloud.outputs["StateMachineArn"],
        name=f"test-{time.monotonic_ns()}",
        input=json.dumps(execution_input),
    )["executionArn"]
    cloud.wait_idle()
    return sfn.describe_execution(executionArn=arn)


def _recorded(cloud: LocalCloud, kind: str, item_id: str, timeout: float = 10) -> dict[str, Any]:
    ddb = cloud.client("dynamodb")
    deadline = time.monotonic() + timeout
    while True:
        item = ddb.get_item(
            TableName=cloud.outputs["TableName"],
            Key={"pk": {"S": f"RECORD#{kind}"}, "sk": {"S": item_id}},
        ).get("Item")
        if item:
            return json.loads(item["body"]["S"])
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing recorded for {kind}/{item_id}")
        time.sleep(0.05)


def test_stack_outputs_and_environment_come_from_the_template(cloud: LocalCloud) -> None:
    assert cloud.endpoint_url.startswith("http://127.0.0.1:")
    assert set(cloud.outputs) >= {"TableName", "StateMachineArn", "DeadLetterQueueUrl"}
    assert cloud.client("dynamodb").describe_table(TableName=cloud.outputs["TableName"])
    import os

    assert os.environ["AWS_ENDPOINT_URL"] == cloud.endpoint_url
    assert os.environ["TABLE_NAME"] == cloud.outputs["TableName"]


def test_function_runs_in_process_with_a_lambda_context(cloud: LocalCloud) -> None:
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.outputs["EchoFunctionName"], Payload=json.dumps({"hello": "world"})
    )

    body = _payload(response)
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert body["event"] == {"hello": "world"}
    assert body["table"] == cloud.outputs["TableName"]
    assert body["function_name"] == cloud.outputs["EchoFunctionName"]
    assert body["memory"] == 256
    assert 0 < body["remaining_ms"] <= 30_000
    assert body["module"].startswith("shiplane_fn_")  # every app.py gets its own module


def test_raising_handler_answers_the_lambda_error_shape(cloud: LocalCloud) -> None:
    functions = cloud.client("lambda").list_functions()["Functions"]
    boom = next(f["FunctionName"] for f in functions if "BoomFunction" in f["FunctionName"])

    response = cloud.client("lambda").invoke(FunctionName=boom, Payload=b'{"id": "u-1"}')

    error = _payload(response)
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "FixtureFailure"
    assert error["errorMessage"] == "boom for u-1"
    assert any("raise FixtureFailure" in line for line in error["stackTrace"])


def test_event_invocation_answers_202_and_runs_in_the_background(cloud: LocalCloud) -> None:
    functions = cloud.client("lambda").list_functions()["Functions"]
    record = next(f["FunctionName"] for f in functions if "RecordFunction" in f["FunctionName"])

    response = cloud.client("lambda").invoke(
        FunctionName=record, InvocationType="Event", Payload=b'{"kind": "async", "id": "a-1"}'
    )

    assert response["StatusCode"] == 202
    cloud.wait_idle()
    assert _recorded(cloud, "async", "a-1", timeout=0)["id"] == "a-1"


def test_function_created_with_a_zip_through_boto3_runs_too(cloud: LocalCloud) -> None:
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr(
            "handler.py", "def main(event, context):\n    return {'twice': event['n'] * 2}\n"
        )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = cloud.client("iam").create_role(
        RoleName="zipped-role", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    lam = cloud.client("lambda")
    lam.create_function(
        FunctionName="zipped",
        Runtime="python3.13",
        Role=role,
        Handler="handler.main",
        Code={"ZipFile": package.getvalue()},
    )

    assert _payload(lam.invoke(FunctionName="zipped", Payload=b'{"n": 21}')) == {"twice": 42}


def test_definition_substitutions_are_applied(cloud: LocalCloud) -> None:
    sfn = cloud.client("stepfunctions")
    definition = sfn.describe_state_machine(stateMachineArn=cloud.outputs["StateMachineArn"])[
        "definition"
    ]

    assert "${" not in definition
    states = json.loads(definition)["States"]
    assert states["Echo"]["Parameters"]["FunctionName"].startswith(
        "arn:aws:lambda:us-east-1:123456789012:function:shiplane-EchoFunction"
    )
    assert cloud.outputs["TableName"] in json.loads(definition)["Comment"]


def test_state_machine_task_invokes_the_handler(cloud: LocalCloud) -> None:
    execution = _execution(cloud, {"id": "e-1", "note": "direct"})

    assert execution["status"] == "SUCCEEDED"
    echoed = json.loads(execution["output"])["echo"]
    assert echoed["event"] == {"id": "e-1", "note": "direct"}
    assert echoed["table"] == cloud.outputs["TableName"]


def test_catch_matches_the_exception_class_name(cloud: LocalCloud) -> None:
    execution = _execution(cloud, {"mode": "fail", "id": "f-1"})

    assert execution["status"] == "SUCCEEDED"
    error = json.loads(execution["output"])["error"]
    assert error["Error"] == "FixtureFailure"
    assert "boom for f-1" in error["Cause"]


def test_wait_for_task_token_completed_from_another_thread(cloud: LocalCloud) -> None:
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=cloud.outputs["StateMachineArn"],
        name="waits-for-token",
        input=json.dumps({"mode": "wait", "id": "t-1"}),
    )["executionArn"]
    token = _recorded(cloud, "token", "t-1")["token"]

    with pytest.raises(TimeoutError, match=r"execution .*waits-for-token"):
        cloud.wait_idle(timeout=0.3)  # the execution waits: the cloud is not idle

    approver = threading.Thread(
        target=lambda: cloud.client("stepfunctions").send_task_success(
            taskToken=token, output=json.dumps({"approved": True})
        )
    )
    approver.start()
    approver.join()
    cloud.wait_idle()

    execution = sfn.describe_execution(executionArn=arn)
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"approved": True}


def test_ecr_push_reaches_the_rule_that_starts_the_pipeline(cloud: LocalCloud) -> None:
    digest = cloud.push_image("web", "1.4.0")
    cloud.wait_idle()

    sfn = cloud.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=cloud.outputs["StateMachineArn"])["executions"]
    described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in executions]
    started = [d for d in described if digest in d["input"]]
    assert len(started) == 1
    event = json.loads(started[0]["input"])
    assert event["source"] == "aws.ecr"
    assert event["detail-type"] == "ECR Image Action"
    assert event["detail"] == {
        "result": "SUCCESS",
        "repository-name": "web",
        "image-digest": digest,
        "action-type": "PUSH",
        "image-tag": "1.4.0",
    }
    assert event["time"].endswith("Z")  # ISO-8601 as AWS sends, not moto's unix time
    assert started[0]["status"] == "SUCCEEDED"
    assert json.loads(started[0]["output"])["echo"]["event"]["detail"]["image-digest"] == digest


def test_every_push_has_its_own_digest_and_crash_is_marked(cloud: LocalCloud) -> None:
    first = cloud.push_image("api", "2.0.0")
    second = cloud.push_image("api", "2.0.0")
    crashing = cloud.push_image("api", "2.0.1", crash=True)
    cloud.wait_idle()

    assert len({first, second, crashing}) == 3
    images = cloud.client("ecr").batch_get_image(
        repositoryName="api", imageIds=[{"imageDigest": second}, {"imageDigest": crashing}]
    )["images"]
    manifests = {i["imageId"]["imageDigest"]: json.loads(i["imageManifest"]) for i in images}
    assert manifests[second]["schemaVersion"] == 2
    assert "annotations" not in manifests[second]
    assert manifests[crashing]["annotations"] == {"org.shiplane.local/crash": "true"}


def test_push_through_boto3_emits_the_event_as_well(cloud: LocalCloud) -> None:
    ecr = cloud.client("ecr")
    ecr.create_repository(repositoryName="worker")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "x", "size": 1, "digest": "sha256:" + "1" * 64},
        "layers": [{"mediaType": "y", "size": 1, "digest": "sha256:" + "2" * 64}],
    }
    digest = ecr.put_image(
        repositoryName="worker", imageManifest=json.dumps(manifest), imageTag="v1"
    )["image"]["imageId"]["imageDigest"]
    cloud.wait_idle()

    sfn = cloud.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=cloud.outputs["StateMachineArn"])["executions"]
    inputs = [sfn.describe_execution(executionArn=e["executionArn"])["input"] for e in executions]
    assert sum(digest in i for i in inputs) == 1


def test_aws_service_event_reaches_a_lambda_target(cloud: LocalCloud) -> None:
    cloud.emit_event(
        {
            "id": "cfn-event-1",
            "source": "aws.cloudformation",
            "detail-type": "CloudFormation Stack Status Change",
            "resources": ["arn:aws:cloudformation:us-east-1:123456789012:stack/app/1"],
            "detail": {"status-details": {"status": "UPDATE_COMPLETE", "status-reason": ""}},
        }
    )
    cloud.wait_idle()

    event = _recorded(cloud, "aws.cloudformation", "cfn-event-1", timeout=0)
    assert event["detail"]["status-details"]["status"] == "UPDATE_COMPLETE"
    assert event["account"] == cloud.account_id


def test_failed_delivery_goes_to_the_rule_dead_letter_queue(cloud: LocalCloud) -> None:
    sqs = cloud.client("sqs")
    queue_url = cloud.outputs["DeadLetterQueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events = cloud.client("events")
    events.put_rule(Name="to-nowhere", EventPattern=json.dumps({"source": ["local.test"]}))
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:missing"
    events.put_targets(
        Rule="to-nowhere",
        Targets=[{"Id": "gone", "Arn": missing, "DeadLetterConfig": {"Arn": queue_arn}}],
    )

    events.put_events(
        Entries=[{"Source": "local.test", "DetailType": "Ping", "Detail": json.dumps({"n": 1})}]
    )
    cloud.wait_idle()

    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    dead = [m for m in messages if json.loads(m["Body"]).get("source") == "local.test"]
    assert len(dead) == 1
    attributes = dead[0]["MessageAttributes"]
    assert attributes["TARGET_ARN"]["StringValue"] == missing
    assert attributes["RULE_ARN"]["StringValue"].endswith(":rule/to-nowhere")
    assert attributes["ERROR_CODE"]["StringValue"]


def test_api_call_counter_counts_by_service_and_operation(cloud: LocalCloud) -> None:
    cloud.reset_api_calls()
    cloud.client("stepfunctions").list_state_machines()
    cloud.client("stepfunctions").list_state_machines()
    cloud.client("lambda").list_functions()
    cloud.client("cloudformation").describe_stacks(StackName="shiplane")
    cloud.push_image("counted", "1.0.0")
    cloud.wait_idle()

    calls = cloud.api_calls()
    assert calls["stepfunctions:ListStateMachines"] == 2
    assert calls["lambda:ListFunctions"] == 1
    assert calls["cloudformation:DescribeStacks"] == 1
    assert calls["ecr:CreateRepository"] == 1
    assert calls["ecr:PutImage"] == 1
    assert calls["lambda:Invoke"] == 1  # the pipeline's Echo task, through the interpreter
    cloud.reset_api_calls()
    assert cloud.api_calls() == {}


def test_resources_moto_cannot_create_are_set_aside(cloud: LocalCloud) -> None:
    assert cloud.translation is not None
    dropped = {r["Type"] for r in cloud.translation.dropped.values()}
    assert {"AWS::ApiGateway::RestApi", "AWS::Scheduler::Schedule"} <= dropped
    # The stack's API Gateway output is replaced by the local gateway serving ApiFunction.
    assert cloud.outputs["ApiUrl"].startswith("http://127.0.0.1:")
    echo = cloud.client("lambda").get_function(FunctionName=cloud.outputs["EchoFunctionName"])
    assert not echo["Configuration"].get("Layers")


def test_functions_must_agree_on_shared_environment_variables(cloud: LocalCloud) -> None:
    with pytest.raises(EnvironmentConflict, match="TABLE_NAME"):
        cloud.runtime.apply_environment("Intruder", {"TABLE_NAME": "another-table"})
