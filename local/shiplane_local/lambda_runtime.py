"""Run Lambda invocations in-process with the real handlers.

moto runs Lambda code only in Docker. Every caller (boto3, the Step Functions
interpreter, EventBridge targets) reaches `LambdaBackend.invoke`, so replacing that one
method (and `LambdaSimpleBackend`'s override of it) runs the handler right here.

Where the code lives: the local cloud uploads, for each local `CodeUri`, a zip holding only
a marker (`shiplane_local.json`) that names the directory; the handler is loaded from that
directory so edits to `functions/` need no rebuild. A function created with a real zip
(e.g. by a test through boto3) is unpacked into a temporary directory and run from there.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
import traceback
import types
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend

from ._patching import Patches
from .activity import Activity
from .faults import InjectedCrash
from .invocation import Invocation, running

log = logging.getLogger("shiplane_local")

MARKER = "shiplane_local.json"


def marker_zip(code_dir: Path) -> bytes:
    """A deployment package that points at a local code directory instead of holding it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(MARKER, json.dumps({"code_dir": str(code_dir.resolve())}))
    return buf.getvalue()


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


class LambdaContext:
    """The attributes and method of the Lambda Python runtime's context object."""

    def __init__(self, fn: LambdaFunction) -> None:
        self.function_name: str = fn.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn: str = fn.function_arn
        self.memory_limit_in_mb = int(fn.memory_size)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + float(fn.timeout or 3)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class EnvironmentConflict(RuntimeError):
    """Two functions want different values for one process-wide environment variable."""


class LambdaRuntime:
    """Loads handlers, keeps the process environment consistent, and answers invocations."""

    def __init__(self, activity: Activity) -> None:
        self.activity = activity
        self._patches = Patches()
        self._lock = threading.RLock()
        self._modules: dict[tuple[str, str], ModuleType] = {}
        self._unpacked: dict[str, Path] = {}
        self._env_owner: dict[str, tuple[str, str]] = {}  # name -> (value, function)
        self._tmp = tempfile.TemporaryDirectory(prefix="shiplane-local-lambda-")
        self.invocations = 0
        self._logical_ids: dict[str, str] = {}  # function name -> template logical id
        # Runs `Event` invocations (Lambda's retries and destinations: async_lambda.py).
        self.async_runner: Callable[[LambdaFunction, Any], None] | None = None
        # Lambda's concurrent executions per account and region (quotas.ConcurrencySlots);
        # None: unlimited.
        self.slots: Any = None
        # The largest synchronous response Lambda returns (quotas.py); None: unlimited.
        self.response_limit: int | None = None

    # -- installation --------------------------------------------------------------------
    def install(self) -> None:
        runtime = self

        def invoke(
            backend: LambdaBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes:
            fn = backend.get_function(function_name, qualifier)
            return runtime.invoke(fn, body, headers, response_headers)

        self._patches.replace(LambdaBackend, "invoke", invoke)
        self._patches.replace(LambdaSimpleBackend, "invoke", invoke)

    def uninstall(self) -> None:
        self._patches.undo()

    def close(self) -> None:
        self._tmp.cleanup()

    # -- cold starts ---------------------------------------------------------------------
    @staticmethod
    def cold_start(packages: list[str]) -> None:
        """Forget what warm containers keep: clear functools caches in the shared packages.

        Handlers cache their dependencies per process (clients bound to an endpoint, the
        table name). A new local cloud is a new set of containers, so those caches must
        not survive from an earlier cloud in the same process. Module objects (and so the
        classes tests compare against) stay as they are.
        """
        cleared = 0
        for name, module in list(sys.modules.items()):
            if module is None or not any(name == p or name.startswith(p + ".") for p in packages):
                continue
            for value in list(vars(module).values()):
                if getattr(value, "__module__", None) == name and hasattr(value, "cache_clear"):
                    value.cache_clear()
                    cleared += 1
        if cleared:
            log.info("lambda: cold start, %d cached helpers in %s cleared", cleared, packages)

    def name_function(self, function_name: str, logical_id: str) -> None:
        """Remember a function's logical id in the template (for `Invocation`)."""
        self._logical_ids[function_name] = logical_id

    # -- environment ---------------------------------------------------------------------
    def apply_environment(self, function_name: str, variables: dict[str, str]) -> None:
        """Set a function's variables process-wide; a disagreeing value is an error."""
        with self._lock:
            for name, value in variables.items():
                value = str(value)
                owner = self._env_owner.get(name)
                if owner is not None and owner[0] != value:
                    raise EnvironmentConflict(
                        f"environment variable {name} is {owner[0]!r} for {owner[1]} but "
                        f"{value!r} for {function_name}; handlers share one process, so "
                        "every function must agree on it"
                    )
                if owner is None:
                    self._env_owner[name] = (value, function_name)
                    os.environ[name] = value

    # -- invocation ----------------------------------------------------------------------
    def invoke(self, fn: LambdaFunction, body: Any, headers: Any, response_headers: Any) -> bytes:
        invocation_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
        event = self._parse_body(body)
        if invocation_type == "DryRun":
            response_headers["Content-Length"] = "0"
            return b""
        if invocation_type == "Event":
            log.info("lambda %s: async invoke queued", fn.function_name)
            self.activity.spawn(
                "lambda invocation", self._run_async, fn, event, name=f"lambda-{fn.function_name}"
            )
            response_headers["Content-Length"] = "0"
            return b""
        payload, error = self.run(fn, event, wait_for_slot=False)
        if self.response_limit is not None and len(payload) > self.response_limit:
            # What Lambda answers when a handler returns more than it may (the handler ran).
            message = (
                "Response payload size exceeded maximum allowed payload size "
                f"({self.response_limit} bytes)."
            )
            payload = json.dumps(
                {"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"}
            ).encode("utf-8")
            error = True
        if error:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["x-amz-executed-version"] = "$LATEST"
        response_headers["Content-Length"] = str(len(payload))
        return payload

    @staticmethod
    def _parse_body(body: Any) -> Any:
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        if body in (None, ""):
            return {}
        return json.loads(body)

    def _run_async(self, fn: LambdaFunction, event: Any) -> None:
        if self.async_runner is not None:
            self.async_runner(fn, event)
            return
        payload, error = self.run(fn, event)
        if error:
            # No retries and no on-failure destination locally: the failure is logged and
            # remembered so tests and `wait_idle` callers can see it.
            self.activity.errors.append(f"{fn.function_name}: {payload.decode()}")

    def run(
        self, fn: LambdaFunction, event: Any, *, wait_for_slot: bool = True
    ) -> tuple[bytes, bool]:
        """Run the handler; return (payload, errored) in the shape Lambda answers with.
        Over the concurrency limit, a synchronous invocation (`wait_for_slot=False`) is
        refused with Lambda's 429; any other waits for a slot, as Lambda's queue does."""
        if self.slots is None:
            return self._run(fn, event)
        arn = str(getattr(fn, "function_arn", "") or "").split(":")
        scope = (arn[4], arn[3]) if len(arn) > 4 else ("", "")
        from .quotas import ConcurrencyExceeded, lambda_concurrency_error

        try:
            self.slots.acquire(scope, wait=wait_for_slot)
        except ConcurrencyExceeded:
            raise lambda_concurrency_error() from None
        try:
            return self._run(fn, event)
        finally:
            self.slots.release(scope)

    def _run(self, fn: LambdaFunction, event: Any) -> tuple[bytes, bool]:
        with self.activity.busy("lambda invocation"):
            self.invocations += 1
            context = LambdaContext(fn)
            started = time.perf_counter()
            invocation = Invocation(
                function_name=fn.function_name,
                role_arn=str(getattr(fn, "role", "") or ""),
                logical_id=self._logical_ids.get(fn.function_name, ""),
                code_dir=str(self._code_dir(fn)) if getattr(fn, "code_bytes", b"") else "",
            )
            try:
                self.apply_environment(fn.function_name, fn.environment_vars or {})
                handler = self._handler(fn)
                with running(invocation):
                    result = handler(event, context)
                payload = json.dumps(result).encode("utf-8")
            except (Exception, InjectedCrash) as exc:
                took = (time.perf_counter() - started) * 1000
                log.info(
                    "lambda %s: %s: %s (%.0f ms)",
                    fn.function_name,
                    type(exc).__name__,
                    exc,
                    took,
                )
                log.debug("lambda %s traceback", fn.function_name, exc_info=True)
                error = {
                    "errorMessage": str(exc),
                    # A crash reports what the runtime saw (e.g. Runtime.ExitError).
                    "errorType": getattr(exc, "error_type", type(exc).__name__),
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
                return json.dumps(error).encode("utf-8"), True
            took = (time.perf_counter() - started) * 1000
            log.info("lambda %s: ok (%.0f ms)", fn.function_name, took)
            return payload, False

    # -- code loading --------------------------------------------------------------------
    def _handler(self, fn: LambdaFunction) -> Any:
        handler = fn.handler or "app.lambda_handler"
        module_path, _, attr = handler.rpartition(".")
        code_dir = self._code_dir(fn)
        key = (str(code_dir), module_path)
        with self._lock:
            module = self._modules.get(key)
            if module is None:
                module = self._load(code_dir, module_path)
                self._modules[key] = module
        return getattr(module, attr)

    def _code_dir(self, fn: LambdaFunction) -> Path:
        code = getattr(fn, "code_bytes", b"") or b""
        if not code:
            raise RuntimeError(f"function {fn.function_name} has no code package")
        with zipfile.ZipFile(io.BytesIO(code)) as zf:
            if MARKER in zf.namelist():
                return Path(json.loads(zf.read(MARKER))["code_dir"])
            with self._lock:
                target = self._unpacked.get(fn.code_sha_256)
                if target is None:
                    safe = re.sub(r"[^A-Za-z0-9]", "_", fn.code_sha_256)[:40]
                    target = Path(self._tmp.name) / safe
                    zf.extractall(target)
                    self._unpacked[fn.code_sha_256] = target
                return target

    @staticmethod
    def _load(code_dir: Path, module_path: str) -> ModuleType:
        file = code_dir.joinpath(*module_path.split(".")).with_suffix(".py")
        if not file.is_file():
            raise RuntimeError(f"handler module {file} does not exist")
        # Every function's module is called app.py: give each a name of its own.
        unique = "shiplane_fn_" + re.sub(r"\W", "_", f"{code_dir.name}_{module_path}")
        unique += "_" + uuid.uuid5(uuid.NAMESPACE_URL, str(file)).hex[:8]
        spec = importlib.util.spec_from_file_location(unique, file)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load handler module {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(unique, None)
            raise
        _scope_powertools_suppress_filters()
        log.info("lambda: loaded %s as %s", file, unique)
        return module


def _scope_powertools_suppress_filters() -> None:
    """Keep Powertools from silencing the local cloud's own logger.

    A Powertools `Logger(service="shiplane")` puts a SuppressFilter on the root logger's
    handlers that drops every record whose logger name *contains* "shiplane", which in
    one shared process includes `shiplane_local`. Narrow those filters to the logger
    they were meant for and its children.
    """

    def only_that_logger(self: Any, record: logging.LogRecord) -> bool:
        name = record.name
        return not (name == self.logger or name.startswith(f"{self.logger}."))

    for handler in logging.getLogger().handlers:
        for flt in handler.filters:
            if type(flt).__name__ == "SuppressFilter" and hasattr(flt, "logger"):
                flt.filter = types.MethodType(only_that_logger, flt)  # type: ignore[union-attr,method-assign]
