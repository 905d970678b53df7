"""Helpers for API tests: a running Service over a real Neo4j, and a client for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar.testing import TestClient

from api.app import create_app
from api.service import Service
from api.settings import Settings

# Tests run on a shared, loaded 2-core machine: a generous deadline keeps pages complete, so a
# test sees degraded pages only where it makes the store fail on purpose.
TEST_SETTINGS = Settings(rate_limit_per_minute=0, search_deadline_ms=10_000, api_key="test-key",
                         refresh_s=0.5, store_retry_s=0.5)


@contextmanager
def running_service(uri: str, settings: Settings = TEST_SETTINGS) -> Iterator[Service]:
    service = Service.connect(settings, uri)
    service.start()
    try:
        assert service.wait_ready(120), service.load_error
        yield service
    finally:
        service.close()


@contextmanager
def client_for(service: Service) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(service=service), raise_server_exceptions=False) as client:
        yield client


def wait_for(predicate: Any, timeout: float = 30.0, every: float = 0.2) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())
