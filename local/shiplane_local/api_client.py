"""A small client for Shiplane's REST API, signing every request with SigV4 (the
caller's AWS credentials, service `execute-api`), as API Gateway's AWS_IAM wants.

Used by the command line, the dashboard proxy and the tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class ApiClient:
    base_url: str
    credentials: Credentials
    region: str = "us-east-1"
    timeout: float = 30.0
    default_headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_session(
        cls, base_url: str, session: Any = None, region: str | None = None
    ) -> ApiClient:
        """Credentials and region from a boto3 session (the user's profile, SSO...)."""
        import boto3

        session = session or boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials found: the API needs SigV4-signed requests")
        return cls(
            base_url,
            credentials.get_frozen_credentials(),
            region=region or session.region_name or "us-east-1",
        )

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        base = self.base_url.rstrip("/")
        clean = {k: v for k, v in (query or {}).items() if v is not None}
        return f"{base}{path}" + (f"?{urlencode(clean, doseq=True)}" if clean else "")

    def signed_headers(
        self, method: str, url: str, body: bytes, headers: dict[str, str] | None = None
    ) -> dict[str, str]:
        request = AWSRequest(
            method=method,
            url=url,
            data=body,
            headers={"Host": urlsplit(url).netloc, **self.default_headers, **(headers or {})},
        )
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> ApiResponse:
        url = self.url(path, query)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        extra = dict(headers or {})
        if data and not any(k.lower() == "content-type" for k in extra):
            extra["Content-Type"] = "application/json"
        signed = self.signed_headers(method, url, data, extra)
        request = urllib.request.Request(url, data=data or None, method=method, headers=signed)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return ApiResponse(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as error:
            return ApiResponse(error.code, dict(error.headers.items()), error.read())

    def get(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> ApiResponse:
        return self.request("POST", path, body=body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> ApiResponse:
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("DELETE", path, **kw)

    def pages(self, path: str, query: dict[str, Any] | None = None) -> list[Any]:
        """Every item of a paginated list, following `next_cursor`."""
        items: list[Any] = []
        cursor = None
        while True:
            response = self.get(path, query={**(query or {}), "cursor": cursor, "limit": 100})
            if not response.ok:
                raise ApiError(response)
            page = response.json()
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items


class ApiError(Exception):
    """A 4xx/5xx answer: carries the API's ErrorBody."""

    def __init__(self, response: ApiResponse) -> None:
        self.response = response
        try:
            body = response.json() or {}
        except ValueError:
            body = {"message": response.body.decode(errors="replace")}
        self.status = response.status
        self.code = body.get("code", "Error") if isinstance(body, dict) else "Error"
        self.message = body.get("message", "") if isinstance(body, dict) else str(body)
        self.field = body.get("field") if isinstance(body, dict) else None
        super().__init__(f"{self.status} {self.code}: {self.message}")


def local_credentials() -> Credentials:
    return Credentials("testing", "testing")
