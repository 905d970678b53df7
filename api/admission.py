"""Admission control: past a bound on requests in flight, answer 503 at once rather than queue.

Handlers run on a thread pool; under overload a queue in front of it only turns every answer
late and then into a client timeout. Refusing early keeps the requests that are admitted fast and
tells clients (Retry-After) to come back, which is what lets the service recover within seconds
once the load drops. Health, readiness and metrics are always admitted.
"""

from __future__ import annotations

import threading
from typing import Final

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from api import metrics

ALWAYS: Final = ("/health", "/ready", "/metrics")
_BODY: Final = (b'{"type":"about:blank","title":"Service Unavailable","status":503,'
                b'"detail":"the service is at capacity; retry in a moment"}')


class AdmissionControl:
    """ASGI middleware: at most `limit` HTTP requests in flight in this process."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._in_flight = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or self.limit <= 0 or scope["path"].startswith(ALWAYS):
            await self.app(scope, receive, send)
            return
        with self._lock:
            admitted = self._in_flight < self.limit
            if admitted:
                self._in_flight += 1
        if not admitted:
            metrics.REFUSED.inc()
            await _refuse(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self._in_flight -= 1


async def _refuse(send: Send) -> None:
    headers = [(b"content-type", b"application/problem+json"), (b"retry-after", b"1"),
               (b"content-length", str(len(_BODY)).encode())]
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 503,
                                     "headers": headers}
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": _BODY,
                                   "more_body": False}
    await send(start)
    await send(body)
