"""Fakes for the API's route and service tests: ECR, and a deploy pipeline that runs
Resolve Release for real (on the store it is given) when an execution starts."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shiplane.api.app import handle
from shiplane.api.deps import ApiDependencies
from shiplane.ports import ConfigStore, DeploymentStore, ReleaseStore
from shiplane.services.resolve_release import ResolveDependencies, ResolveResult, resolve_release
from shiplane_local.api_gateway import proxy_event

ACCOUNT = "123456789012"
REGISTRY = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
MACHINE = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:shiplane-deploy-pipeline"


def digest(char: str) -> str:
    return "sha256:" + char * 64


class FakeRegistry:
    """ECR: per repository, its (tag, digest) pairs in push order."""

    def __init__(self) -> None:
        self.images: dict[str, list[tuple[str, str]]] = {}

    def push(self, repository: str, tag: str, image_digest: str) -> None:
        pushed = [i for i in self.images.get(repository, []) if i[0] != tag]
        self.images[repository] = [*pushed, (tag, image_digest)]

    def image_digest(self, repository: str, tag: str) -> str | None:
        return dict(self.images.get(repository, [])).get(tag)

    def latest_tag(self, repository: str) -> tuple[str, str] | None:
        found = self.images.get(repository)
        return found[-1] if found else None

    def tags(self, repository: str) -> list[tuple[str, str]]:
        return list(self.images.get(repository, []))

    def registry_host(self, repository: str) -> str | None:
        return REGISTRY if repository in self.images else None


class FakePipeline:
    """Step Functions' deploy pipeline, as far as the API sees it: a name starts once;
    starting runs Resolve Release (so releases and deployments appear in the store)."""

    def __init__(
        self,
        config: ConfigStore,
        releases: ReleaseStore,
        deployments: DeploymentStore,
        registry: FakeRegistry,
        now: Callable[[], datetime],
    ) -> None:
        self.resolve_deps = ResolveDependencies(config, releases, deployments, registry, now)
        self.executions: dict[str, dict[str, Any]] = {}
        self.results: dict[str, ResolveResult] = {}
        self.stopped: list[tuple[str, str, str]] = []

    def execution_arn(self, name: str) -> str:
        return f"{MACHINE.replace(':stateMachine:', ':execution:')}:{name}"

    def start(self, name: str, payload: dict[str, Any]) -> tuple[str, bool]:
        arn = self.execution_arn(name)
        if arn in self.executions:
            return arn, False
        self.executions[arn] = {"status": "RUNNING", "input": json.loads(json.dumps(payload))}
        self.results[arn] = resolve_release(
            {"input": payload, "execution": name}, self.resolve_deps
        )
        return arn, True

    def describe(self, execution_arn: str) -> dict[str, Any] | None:
        found = self.executions.get(execution_arn)
        return dict(found) if found else None

    def stop(self, execution_arn: str, error: str, cause: str) -> bool:
        found = self.executions.get(execution_arn)
        if found is None or found["status"] != "RUNNING":
            return False
        found["status"] = "ABORTED"
        self.stopped.append((execution_arn, error, cause))
        return True

    def started(self) -> list[dict[str, Any]]:
        return [e["input"] for e in self.executions.values()]


class Api:
    """Calls the API's handler with the proxy events API Gateway (or the local cloud)
    sends, as an IAM user of the account."""

    def __init__(self, deps: ApiDependencies, user: str = "alice") -> None:
        self.deps = deps
        self.user = user

    @property
    def caller_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:user/{self.user}"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        data = json.dumps(body).encode() if body is not None else b""
        signed = {
            "Content-Type": "application/json",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={self.user}/20260101/us-east-1/"
            "execute-api/aws4_request, SignedHeaders=host, Signature=0",
            **(headers or {}),
        }
        event = proxy_event(method, path, signed, data, account_id=ACCOUNT)
        response = handle(event, None, self.deps)
        text = response.get("body") or ""
        return (
            int(response["statusCode"]),
            json.loads(text) if text else None,
            response.get("headers") or {},
        )

    def get(self, path: str) -> tuple[int, Any]:
        status, body, _ = self.call("GET", path)
        return status, body

    def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        status, answer, _ = self.call("POST", path, body, headers)
        return status, answer
