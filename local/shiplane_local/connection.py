"""Where the `shiplane` command line finds the API, and with which credentials.

In order: `--api-url` (or SHIPLANE_API_URL); `--stack NAME` (or SHIPLANE_STACK), whose
CloudFormation output `ApiUrl` names it; the state file `shiplane local up` writes
(`$XDG_STATE_HOME/shiplane/local.json` when XDG_STATE_HOME is set, else
`.shiplane/local.json` in the current directory). Requests are signed with SigV4: the
user's AWS credentials (boto3's chain, `--profile`), or the local cloud's test
credentials when the API is the local one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .api_client import ApiClient, local_credentials

STATE_FILE = "local.json"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_REGION_IN_URL = re.compile(r"\.execute-api\.([a-z]{2}(?:-[a-z]+)+-\d)\.")


class SetupError(Exception):
    """The API cannot be reached for want of a setting: no URL, no credentials (usage)."""


def state_paths() -> list[Path]:
    """Where `shiplane local up` writes its state, first the one it writes."""
    cwd = Path.cwd() / ".shiplane" / STATE_FILE
    xdg = os.environ.get("XDG_STATE_HOME")
    return [Path(xdg) / "shiplane" / STATE_FILE, cwd] if xdg else [cwd]


def write_local_state(api_url: str, endpoint_url: str, path: Path | None = None) -> Path:
    path = path or state_paths()[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"api_url": api_url, "endpoint_url": endpoint_url, "pid": os.getpid()}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def remove_local_state(path: Path) -> None:
    """Forget the state file, unless another `local up` has written it since."""
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def read_local_state() -> tuple[str, Path] | None:
    for path in state_paths():
        try:
            url = json.loads(path.read_text()).get("api_url")
        except (OSError, ValueError, AttributeError):
            continue
        if url:
            return str(url), path
    return None


def stack_api_url(stack: str, cloudformation: Any) -> str:
    """The `ApiUrl` output of a deployed Shiplane stack."""
    stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    for output in stacks[0].get("Outputs", []) if stacks else []:
        if output.get("OutputKey") == "ApiUrl":
            return str(output["OutputValue"])
    raise SetupError(f"stack {stack!r} has no ApiUrl output: is it a Shiplane stack?")


def is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOCAL_HOSTS


def region_of(url: str) -> str | None:
    """The region in an API Gateway URL (SigV4 must be signed for it)."""
    found = _REGION_IN_URL.search(urlsplit(url).netloc + ".")
    return found.group(1) if found else None


@dataclass
class Connection:
    api_url: str | None = None
    stack: str | None = None
    profile: str | None = None
    region: str | None = None
    timeout: float = 30.0

    def session(self) -> Any:
        import boto3
        import botocore.exceptions

        try:
            return boto3.Session(profile_name=self.profile, region_name=self.region)
        except botocore.exceptions.ProfileNotFound as exc:
            raise SetupError(str(exc)) from None

    def resolve(self, session_factory: Callable[[], Any] | None = None) -> tuple[str, str]:
        """The API's URL and where it came from; raises SetupError."""
        if self.api_url:
            return self.api_url, "--api-url"
        if self.stack:
            import botocore.exceptions

            session = (session_factory or self.session)()
            try:
                url = stack_api_url(self.stack, session.client("cloudformation"))
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                raise SetupError(f"cannot read stack {self.stack!r}: {exc}") from None
            return url, f"stack {self.stack}"
        found = read_local_state()
        if found:
            return found[0], str(found[1])
        raise SetupError(
            "where is the API? Pass --api-url (SHIPLANE_API_URL) or --stack (SHIPLANE_STACK), "
            "or run `shiplane local up`"
        )

    def client(self, session_factory: Callable[[], Any] | None = None) -> ApiClient:
        url, _ = self.resolve(session_factory)
        if is_local(url):
            # The local cloud's API verifies signatures made with its test credentials.
            return ApiClient(
                url, local_credentials(), region=self.region or "us-east-1", timeout=self.timeout
            )
        try:
            client = ApiClient.from_session(
                url, (session_factory or self.session)(), region=region_of(url) or self.region
            )
        except RuntimeError as exc:  # no credentials
            raise SetupError(str(exc)) from None
        client.timeout = self.timeout
        return client
