"""moto's threaded server, with every AWS request counted by `service:Operation`."""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any
from urllib.parse import parse_qs

from moto.core.request import Request
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from .iam.middleware import IamEnforcement

# Signing names (the credential scope) that differ from boto3's client names.
_SIGNING_TO_CLIENT = {
    "states": "stepfunctions",
    "monitoring": "cloudwatch",
    "email": "ses",
    "execute-api": "apigateway",
}
# JSON-protocol target prefixes, for the odd unsigned request.
_TARGET_TO_CLIENT = {
    "AWSStepFunctions": "stepfunctions",
    "DynamoDB_20120810": "dynamodb",
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "AWSEvents": "events",
    "AmazonSSM": "ssm",
    "AmazonSQS": "sqs",
    "Logs_20140328": "logs",
    "secretsmanager": "secretsmanager",
}


class SerializedDynamoDB:
    """WSGI middleware: one DynamoDB request at a time. moto's DynamoDB is not thread-safe
    (two concurrent `ADD` updates can return the same counter value, two conditional puts
    can both succeed); real DynamoDB makes each request atomic, and so must the local
    cloud. DynamoDB requests never call back into the server, so this cannot deadlock."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self._lock:
            return list(self.app(environ, start_response))


class ApiCallCounter:
    """WSGI middleware that counts requests as `service:Operation` (e.g. `ecr:PutImage`)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            try:
                key = self.classify(environ)
            except Exception:  # counting must never break a request
                key = "unknown:unknown"
            with self._lock:
                self.calls[key] += 1
        return self.app(environ, start_response)

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.calls)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    @staticmethod
    def classify(environ: dict[str, Any]) -> str:
        service = "unknown"
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if "Credential=" in auth:
            scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
            if len(scope) >= 4:
                service = _SIGNING_TO_CLIENT.get(scope[3], scope[3])
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            prefix, _, operation = target.rpartition(".")
            if service == "unknown":
                service = _TARGET_TO_CLIENT.get(prefix, prefix)
            return f"{service}:{operation}"
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
        if action:
            return f"{service}:{action[0]}"
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            action = parse_qs(body.decode("utf-8", "replace")).get("Action")
            if action:
                return f"{service}:{action[0]}"
        return f"{service}:{_rest_operation(service, environ)}"


@cache
def _router(service: str) -> Any:
    from moto.core.routing import get_service_router

    return get_service_router(service)


def _rest_operation(service: str, environ: dict[str, Any]) -> str:
    """Name the operation of a REST (Lambda, S3, ...) request from botocore's routes."""
    try:
        operation, _ = _router(service).match(Request(environ, shallow=True))
        return str(operation.name)
    except Exception:
        return f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"


class CountingMotoServer(ThreadedMotoServer):
    """`ThreadedMotoServer` whose WSGI application counts requests and makes each DynamoDB
    request atomic."""

    def __init__(
        self,
        ip_address: str = "127.0.0.1",
        port: int = 0,
        faults: Any = None,
        quotas: Any = None,
    ) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        app: Any = SerializedDynamoDB(
            IamEnforcement(DomainDispatcherApplication(create_backend_app))
        )
        app = faults.middleware(app) if faults is not None else app  # planned throttles
        app = quotas.middleware(app) if quotas is not None else app  # AWS's quotas
        self.counter = ApiCallCounter(app)

    def _server_entry(self) -> None:
        self._server = make_server(
            self._ip_address,
            self._port,
            self.counter,
            True,
            request_handler=MotoRequestHandler,
        )
        self._server_ready_event.set()
        self._server.serve_forever()
