"""The API on localhost: HTTP requests become API Gateway (REST, v1) proxy events for the
api function, invoked through the local Lambda, as API Gateway would.

Authorization: like API Gateway's AWS_IAM, every request must be signed with SigV4
(service `execute-api`). The signature is verified against the local cloud's credentials
(access key `testing`, secret `testing`, what `LocalCloud` puts in the environment): a
missing, malformed, stale (more than 15 minutes off) or wrong signature is a 403 with
API Gateway's `{"message": ...}` body. The caller's identity is the access key.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .loopback import LoopbackServer, answer

log = logging.getLogger("shiplane_local.api")

STAGE = "v1"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
LOCAL_CREDENTIALS = {"testing": "testing"}
MAX_SKEW = timedelta(minutes=15)


def signature_problem(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: dict[str, str],
    now: datetime | None = None,
) -> str | None:
    """Why API Gateway's AWS_IAM would refuse this request (None: the signature holds).
    Recomputes the SigV4 signature over the headers the client says it signed."""
    lower = {k.lower(): v for k, v in headers.items()}
    authorization = lower.get("authorization", "")
    if not authorization:
        return "Missing Authentication Token"
    match = _AUTHORIZATION.match(authorization.strip())
    if not match:
        return "Authorization header requires a SigV4 Credential, SignedHeaders and Signature"
    secret = credentials.get(match["key"])
    if secret is None:
        return "The security token included in the request is invalid."
    if match["service"] != "execute-api":
        return f"Credential should be scoped to the service 'execute-api', not {match['service']!r}"
    amz_date = lower.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "Authorization requires a valid X-Amz-Date header"
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_SKEW:
        return "Signature expired: the request was signed more than 15 minutes ago"
    names = match["signed"].split(";")
    if "host" not in names or any(name not in lower for name in names):
        return "SignedHeaders must include host, and only headers the request carries"
    request = AWSRequest(
        method=method, url=url, data=body, headers={name: lower[name] for name in names}
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(match["key"], secret), "execute-api", match["region"])
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    if not hmac.compare_digest(expected, match["signature"]):
        return "The request signature we calculated does not match the signature you provided."
    return None


def proxy_event(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    account_id: str,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The event API Gateway sends for `ANY /{proxy+}` (REST API, Lambda proxy)."""
    parts = urlsplit(raw_path)
    path = parts.path or "/"
    query = parse_qs(parts.query, keep_blank_values=True)
    access_key = ""
    match = _CREDENTIAL.search(headers.get("Authorization", headers.get("authorization", "")))
    if match:
        access_key = match.group(1)
    user = access_key or "anonymous"
    # API Gateway passes a body that is not UTF-8 text base64-encoded.
    try:
        text = body.decode("utf-8") if body else None
        binary = False
    except UnicodeDecodeError:
        text, binary = None, True
    return {
        "resource": "/{proxy+}" if path != "/" else "/",
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": path.lstrip("/")} if path != "/" else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}" if path != "/" else "/",
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "accountId": account_id,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(datetime.now(UTC).timestamp() * 1000),
            "protocol": "HTTP/1.1",
            "apiId": "local",
            "identity": {
                "accessKey": access_key or None,
                "accountId": account_id,
                "caller": user,
                "user": user,
                "userArn": f"arn:aws:iam::{account_id}:user/{user}",
                "sourceIp": source_ip,
                "userAgent": headers.get("User-Agent", ""),
            },
        },
        "body": base64.b64encode(body).decode() if binary else text,
        "isBase64Encoded": binary,
    }


class LocalApiGateway(LoopbackServer):
    """Serves the api function on 127.0.0.1:<port> until stopped."""

    thread_name = "local-api-gateway"

    def __init__(
        self,
        invoke: Any,
        account_id: str,
        port: int = 0,
        credentials: dict[str, str] | None = None,
    ) -> None:
        # invoke(event) -> the function's response (the proxy integration's dict)
        self._invoke = invoke
        self.credentials = dict(LOCAL_CREDENTIALS if credentials is None else credentials)
        self.account_id = account_id
        super().__init__(port, self._handler_class())

    @property
    def url(self) -> str:
        return f"http://{self.address}/"

    def start(self) -> LocalApiGateway:
        super().start()
        return self

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("api %s", format % args)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()}
                host = next((v for k, v in headers.items() if k.lower() == "host"), "")
                problem = signature_problem(
                    self.command, f"http://{host}{self.path}", headers, body, gateway.credentials
                )
                if problem is not None:
                    self._answer(
                        403,
                        {"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDenied"},
                        json.dumps({"message": problem}).encode(),
                    )
                    return
                event = proxy_event(
                    self.command,
                    self.path,
                    headers,
                    body,
                    account_id=gateway.account_id,
                    source_ip=self.client_address[0],
                )
                try:
                    response = gateway._invoke(event)
                except Exception:  # the function crashed: API Gateway answers 502
                    log.exception("api function failed")
                    self._answer(
                        502,
                        {"Content-Type": "application/json"},
                        json.dumps({"message": "Internal server error"}).encode(),
                    )
                    return
                self._answer(*_http_response(response))

            def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                answer(self, status, headers, payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

        return Handler


def _http_response(response: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """A Lambda proxy integration response as HTTP; a malformed one is API Gateway's 502."""
    if not isinstance(response, dict) or "statusCode" not in response:
        if isinstance(response, dict) and "errorMessage" in response:
            log.error("api function raised %s", response.get("errorType"))
        return 502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
    headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        if values:
            headers[name] = ", ".join(str(v) for v in values)
    body = response.get("body") or ""
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return int(response["statusCode"]), headers, payload
