"""`shiplane dashboard`: the API requires SigV4 on every route, which a browser cannot
sign. This proxy on 127.0.0.1 signs GET requests with the user's credentials and passes
them to the API, so the dashboard opens in any browser.

Read-only on purpose: only GET is forwarded (a web page elsewhere cannot use the
proxy to change anything), and only for the Host the proxy listens on (no DNS
rebinding)."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler
from typing import Any

from .api_client import ApiClient
from .loopback import LoopbackServer, answer

log = logging.getLogger("shiplane_local.dashboard")
PASSED_HEADERS = ("accept", "if-none-match")


class DashboardProxy(LoopbackServer):
    thread_name = "dashboard-proxy"

    def __init__(self, client: ApiClient, port: int = 0) -> None:
        self.client = client
        super().__init__(port, self._handler_class())

    @property
    def url(self) -> str:
        return f"http://{self.address}/dashboard"

    def start(self) -> DashboardProxy:
        super().start()
        return self

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("dashboard %s", format % args)

            def _refuse(self, status: int, message: str) -> None:
                answer(
                    self, status, {"Content-Type": "text/plain; charset=utf-8"}, message.encode()
                )

            def do_GET(self) -> None:
                if self.headers.get("Host") != proxy.address:
                    self._refuse(421, "this proxy answers only for " + proxy.address)
                    return
                if self.path in ("", "/"):
                    answer(self, 302, {"Location": "/dashboard"}, b"")
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in PASSED_HEADERS}
                try:
                    response = proxy.client.request("GET", self.path, headers=headers)
                except OSError as exc:
                    self._refuse(502, f"the API did not answer: {exc}")
                    return
                answer(self, response.status, response.headers, response.body)

            def _read_only(self) -> None:
                self._refuse(405, "the dashboard proxy is read-only")

            do_POST = do_PUT = do_DELETE = do_PATCH = _read_only

        return Handler
