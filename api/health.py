"""Whether the store is reachable: a circuit breaker, so that a dead Neo4j costs one failed call,
not one per search, and full service resumes on its own once a probe answers."""

from __future__ import annotations

import threading
import time

from neo4j.exceptions import DriverError, Neo4jError, ServiceUnavailable, SessionExpired

# Errors that mean "the store is not there", as opposed to a bad query (a bug, not an outage).
OUTAGE = (ServiceUnavailable, SessionExpired, ConnectionError, TimeoutError, OSError)


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, OUTAGE):
        return True
    # The driver wraps some connection failures; transient server errors count as outages too.
    if isinstance(exc, Neo4jError):
        return bool(exc.is_retryable())
    return isinstance(exc, DriverError)


class StoreHealth:
    """`available()` is False from a failure until a probe succeeds (probes: `probe_due()`)."""

    def __init__(self, retry_s: float) -> None:
        self.retry_s = retry_s
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._lock = threading.Lock()
        self.failures = 0
        self.last_error = ""

    def available(self) -> bool:
        return self._down_since is None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if self._down_since is None:
                self._down_since = time.monotonic()
            self._next_probe = time.monotonic() + self.retry_s

    def recovered(self) -> None:
        with self._lock:
            self._down_since = None

    def probe_due(self) -> bool:
        return self._down_since is not None and time.monotonic() >= self._next_probe

    def down_for(self) -> float:
        since = self._down_since
        return 0.0 if since is None else time.monotonic() - since
