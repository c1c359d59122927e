"""Fixtures for adapter and service tests on moto (in-process, no server)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shiplane.adapters.dynamodb import DynamoStore
from shiplane.services.apply_configuration import apply_configuration
from tests.helpers import demo_configuration

TABLE = "shiplane-test"


def create_table(client: Any, name: str = TABLE) -> None:
    """The table as template.yaml declares it (pk/sk)."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_table(client)
    return client


@pytest.fixture
def store(dynamodb: Any) -> DynamoStore:
    return DynamoStore(TABLE, client=dynamodb)


@pytest.fixture
def configured(store: DynamoStore) -> DynamoStore:
    apply_configuration(demo_configuration(), store)
    return store


class Clock:
    """A clock that moves one second per reading: orderings are deterministic."""

    def __init__(self) -> None:
        self.current = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.current += timedelta(seconds=1)
        return self.current


@pytest.fixture
def clock() -> Clock:
    return Clock()
