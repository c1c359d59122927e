"""Shiplane's template on the strict local cloud: an event its deployment-events function
cannot handle is not lost (Lambda retries it, then the record lands in
FunctionFailuresQueue), and the fault plan fixture reaches the real functions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shiplane_local.cloud import LocalCloud
from shiplane_local.faults import Faults


def _drain(cloud: LocalCloud, url: str) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return found
        found.extend(json.loads(m["Body"]) for m in batch)
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_a_failing_deployment_events_invocation_ends_in_the_failures_queue(
    cloud: LocalCloud, fault_plan: Callable[[dict[str, Any]], Faults]
) -> None:
    faults = fault_plan(
        {"faults": [{"function": "deployment_events", "fail_after_calls": 0, "times": 3}]}
    )
    stack_id = f"arn:aws:cloudformation:{cloud.region}:{cloud.account_id}:stack/lost/1"

    cloud.emit_event(
        {
            "id": "stack-event-lost",
            "source": "aws.cloudformation",
            "detail-type": "CloudFormation Stack Status Change",
            "resources": [stack_id],
            "detail": {
                "stack-id": stack_id,
                "status-details": {"status": "UPDATE_COMPLETE", "status-reason": ""},
                "client-request-token": "token-1",
            },
        }
    )
    cloud.wait_idle(timeout=60)

    assert len(faults.fired("crash")) == 3  # the delivery and Lambda's two retries
    records = [
        r
        for r in _drain(cloud, cloud.outputs["FunctionFailuresQueueUrl"])
        if r["requestPayload"].get("id") == "stack-event-lost"
    ]
    assert len(records) == 1
    assert records[0]["requestContext"]["condition"] == "RetriesExhausted"
    assert records[0]["requestContext"]["approximateInvokeCount"] == 3
    assert "DeploymentEventsFunction" in records[0]["requestContext"]["functionArn"]
    assert records[0]["requestPayload"]["detail"]["client-request-token"] == "token-1"
