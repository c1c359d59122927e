"""A throttled DynamoDB call is sent again a few times with backoff before the step gives
up with ThrottledError (which the state machine retries); other errors are not retried."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from shiplane.adapters import dynamodb
from shiplane.adapters.dynamodb import DynamoStore
from shiplane.errors import ThrottledError


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "x"}}, "GetItem")


class Client:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls = 0

    def get_item(self, **_: Any) -> Any:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(dynamodb.time, "sleep", slept.append)
    return slept


def test_a_throttled_call_is_sent_again_with_backoff(no_sleep: list[float]) -> None:
    throttle = _error("ProvisionedThroughputExceededException")
    client = Client([throttle, throttle, {"Item": {"v": {"S": "1"}}}])
    store = DynamoStore("t", client=client)
    assert store._call("get_item", Key={}) == {"Item": {"v": {"S": "1"}}}
    assert client.calls == 3
    assert len(no_sleep) == 2
    assert all(0 <= s <= dynamodb.THROTTLE_CAP for s in no_sleep)


def test_throttled_every_time_it_raises_throttled_error() -> None:
    client = Client([_error("ThrottlingException")] * dynamodb.THROTTLE_ATTEMPTS)
    with pytest.raises(ThrottledError):
        DynamoStore("t", client=client)._call("get_item", Key={})
    assert client.calls == dynamodb.THROTTLE_ATTEMPTS


def test_other_errors_are_not_retried() -> None:
    client = Client([_error("ValidationException")])
    with pytest.raises(ClientError):
        DynamoStore("t", client=client)._call("get_item", Key={})
    assert client.calls == 1
