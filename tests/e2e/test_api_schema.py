"""Schemathesis against the API's own OpenAPI document, through the local cloud's HTTP
endpoint with SigV4-signed requests: generated valid and invalid requests for every
operation find no 5xx and no answer outside the document (status, content type, body
schema). Prints the cases run per operation (`pytest -s`)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shiplane_local.api_client import ApiClient, local_credentials
from shiplane_local.cloud import LocalCloud

EXAMPLES_PER_MODE = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class SigV4(requests.auth.AuthBase):
    """Signs each prepared request as API Gateway's AWS_IAM authorization expects."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        aws = AWSRequest(
            method=request.method, url=request.url, data=body, headers=dict(request.headers)
        )
        SigV4Auth(local_credentials(), "execute-api", self.region).add_auth(aws)
        request.headers.update(dict(aws.headers.items()))
        return request


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as signed:
        signed.auth = SigV4()
        yield signed


@pytest.fixture(scope="module")
def document(cloud: LocalCloud) -> dict[str, Any]:
    response = ApiClient(cloud.api_url, local_credentials()).get("/openapi.json")
    assert response.status == 200, response.body[:300]
    found: dict[str, Any] = response.json()
    return found


def test_the_published_document_covers_every_route_with_its_errors(
    document: dict[str, Any],
) -> None:
    paths = document["paths"]
    assert "/status" in paths and "/audit" in paths
    for path, operations in paths.items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert "default" in answers, f"{method.upper()} {path} documents no error body"
            assert answers["default"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }
    assert document["components"]["securitySchemes"]["sigv4"]["name"] == "Authorization"


def fuzz(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    session: requests.Session,
    ran: dict[str, int],
    failures: list[str],
    statuses: Counter[int],
) -> None:
    """Run one operation's generated cases in one mode; record counts and failures."""
    label = f"{operation.method.upper()} {operation.path}"
    checks = CHECKS

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        ran[label] = ran.get(label, 0) + 1
        response = case.call_and_validate(base_url=base_url, session=session, checks=checks)
        statuses[response.status_code] += 1

    try:
        run()
    except AssertionError as failure:  # schemathesis' failures are AssertionErrors
        failures.append(f"{label} [{mode.value}]: {str(failure)[:1500]}")


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    cloud: LocalCloud, document: dict[str, Any], session: requests.Session
) -> None:
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(document)))
    ran: dict[str, int] = {}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(result.ok(), mode, cloud.api_url, session, ran, failures, statuses)
    total = sum(ran.values())
    print(f"\nschemathesis: {total} cases over {len(ran)} operations, {len(failures)} failing")
    print(f"  answers by status: {dict(sorted(statuses.items()))}")
    # The cases reached the function: a run the gateway mostly refused would prove little.
    assert statuses[403] < total // 10, statuses
    for label, count in sorted(ran.items()):
        print(f"  {count:4d}  {label}")
    assert len(ran) == sum(len(ops) for ops in document["paths"].values())
    for failure in failures:
        print("FAILING", failure.splitlines()[0])
    assert not failures, "\n\n".join(failures)
