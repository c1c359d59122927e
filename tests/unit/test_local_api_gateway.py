"""The local API Gateway's AWS_IAM check: SigV4 signatures recomputed and compared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from botocore.credentials import Credentials

from shiplane_local.api_client import ApiClient
from shiplane_local.api_gateway import LOCAL_CREDENTIALS, signature_problem

URL = "http://127.0.0.1:4600/projects/web/deployments?limit=5"
BODY = b'{"release": "1.0.0", "environment": "prod"}'


def signed(
    method: str = "POST", url: str = URL, body: bytes = BODY, key: str = "testing"
) -> dict[str, str]:
    client = ApiClient("http://127.0.0.1:4600", Credentials(key, "testing"))
    return client.signed_headers(method, url, body, {"Content-Type": "application/json"})


def test_a_request_signed_with_the_local_credentials_passes() -> None:
    assert signature_problem("POST", URL, signed(), BODY, LOCAL_CREDENTIALS) is None
    assert signature_problem("GET", URL, signed("GET", body=b""), b"", LOCAL_CREDENTIALS) is None


def test_anything_changed_after_signing_is_refused() -> None:
    headers = signed()
    changed_body = BODY.replace(b"prod", b"dev")
    for method, url, body in (
        ("POST", URL, changed_body),
        ("PUT", URL, BODY),
        ("POST", URL.replace("limit=5", "limit=6"), BODY),
        ("POST", URL.replace("/web/", "/api/"), BODY),
    ):
        problem = signature_problem(method, url, headers, body, LOCAL_CREDENTIALS)
        assert problem is not None and "signature" in problem, (method, url)


def test_unsigned_unknown_stale_and_malformed_requests_are_refused() -> None:
    assert signature_problem("GET", URL, {}, b"", LOCAL_CREDENTIALS) == (
        "Missing Authentication Token"
    )
    unknown = signature_problem("POST", URL, signed(key="AKIAOTHER"), BODY, LOCAL_CREDENTIALS)
    assert unknown is not None and "security token" in unknown
    later = datetime.now(UTC) + timedelta(minutes=16)
    stale = signature_problem("POST", URL, signed(), BODY, LOCAL_CREDENTIALS, now=later)
    assert stale is not None and "expired" in stale
    bad = signed()
    bad["Authorization"] = "AWS4-HMAC-SHA256 Credential=testing"
    malformed = signature_problem("POST", URL, bad, BODY, LOCAL_CREDENTIALS)
    assert malformed is not None and "SignedHeaders" in malformed
