"""Helpers for API tests: a running Service over a real Neo4j, and a client for it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from litestar.testing import TestClient

from api.app import create_app
from api.service import Service
from api.settings import Settings
from graph import server

# Tests run on a shared, loaded 2-core machine: a generous deadline keeps pages complete, so a
# test sees degraded pages only where it makes the store fail on purpose.
# The fixed all-sources plan keeps pages deterministic for tests of the API's shape; the learning
# tests choose their policies themselves.
# No warm start: tests see an untrained learner unless they warm it themselves.
# No graph embeddings unless a test trains its own (a checkout's .tunegraph may hold some).
NO_EMBEDDINGS = Path(__file__).parent / "no-embeddings"
TEST_SETTINGS = Settings(rate_limit_per_minute=0, search_deadline_ms=10_000, api_key="test-key",
                         refresh_s=0.5, store_retry_s=0.5, policy="fixed:rrf",
                         embeddings_dir=NO_EMBEDDINGS, warm_start=0)


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


@contextmanager
def live_server(neo4j_uri: str, *, workers: int = 1, log_path: Path | None = None,
                **env: str) -> Iterator[str]:
    """`tunegraph serve` as a real process (Granian) on a free port; yields its base URL once
    /ready answers, and stops it (SIGTERM) at the end."""
    port = server.free_port()
    environment = {**os.environ, "NEO4J_URI": neo4j_uri, "TUNEGRAPH_RATE_LIMIT_PER_MINUTE": "0",
                   "TUNEGRAPH_SEARCH_DEADLINE_MS": "10000", "TUNEGRAPH_API_KEY": "test-key",
                   "TUNEGRAPH_REFRESH_S": "0.5", "TUNEGRAPH_STORE_RETRY_S": "0.5",
                   "TUNEGRAPH_POLICY": "fixed:rrf",
                   "TUNEGRAPH_EMBEDDINGS_DIR": str(NO_EMBEDDINGS), **env}
    with (log_path.open("ab") if log_path else open(os.devnull, "wb")) as out:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port),
                                 "--workers", str(workers)], env=environment, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"tunegraph serve exited with {proc.returncode}")
            try:
                return httpx.get(f"{url}/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(ready, timeout=180, every=0.5), "the server did not become ready"
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


ARTIFACTS = Path(os.environ.get("TUNEGRAPH_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "test-artifacts"))


def figure(test: str, measured: str) -> None:
    """Append what a fault test measured to test-artifacts/figures.md (the README's table of the
    suite quotes a run of it)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "figures.md").open("a", encoding="utf-8") as out:
        out.write(f"| {test} | {measured} |\n")
