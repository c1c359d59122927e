"""`shiplane dashboard`: the API requires SigV4 on every route, which a browser cannot
sign. This proxy on 127.0.0.1 signs GET requests with the user's credentials and passes
them to the API, so the dashboard opens in any browser.

Read-only on purpose: only GET is forwarded (a web page elsewhere cannot use the
proxy to change anything), and only for the Host the proxy listens on (no DNS
rebinding)."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .api_client import ApiClient

log = logging.getLogger("shiplane_local.dashboard")
PASSED_HEADERS = ("accept", "if-none-match")


class DashboardProxy:
    def __init__(self, client: ApiClient, port: int = 0) -> None:
        self.client = client
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/dashboard"

    def start(self) -> DashboardProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dashboard-proxy", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("dashboard %s", format % args)

            def _refuse(self, status: int, message: str) -> None:
                payload = message.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.headers.get("Host") != proxy.address:
                    self._refuse(421, "this proxy answers only for " + proxy.address)
                    return
                if self.path in ("", "/"):
                    self.send_response(302)
                    self.send_header("Location", "/dashboard")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                headers = {k: v for k, v in self.headers.items() if k.lower() in PASSED_HEADERS}
                client = proxy.client
                url_path = path + (f"?{query}" if query else "")
                try:
                    response = client.request("GET", url_path, headers=headers)
                except OSError as exc:
                    self._refuse(502, f"the API did not answer: {exc}")
                    return
                self.send_response(response.status)
                for name, value in response.headers.items():
                    if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            def _read_only(self) -> None:
                self._refuse(405, "the dashboard proxy is read-only")

            do_POST = do_PUT = do_DELETE = do_PATCH = _read_only

        return Handler
