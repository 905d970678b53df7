"""The running service: the store, the current indexes, the planner, the logs, and the background
loop that loads the indexes, follows the catalog version and probes the store when it is down."""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from api import metrics
from api.eventlog import EventLog
from api.health import StoreHealth, is_outage
from api.indexes import Indexes, build_indexes
from api.plans import FixedPlanner, Planner
from api.search import Searcher
from api.settings import Settings
from graph.connect import open_store
from graph.neo4j_store import Neo4jStore

log = logging.getLogger(__name__)
MEMORY_SYNC_S: Final = 1.0  # how often feedback from other processes reaches this one's memory


class NotReady(RuntimeError):
    """The indexes are not loaded yet."""


class Service:
    """Owns everything a request needs. `start` returns at once; `ready` turns true when the
    first index build finishes."""

    def __init__(self, settings: Settings, store: Neo4jStore,
                 planner: Planner | None = None) -> None:
        self.settings = settings
        self.store = store
        self.health = StoreHealth(settings.store_retry_s)
        self.events = EventLog(store)
        self._indexes: Indexes | None = None
        self._planner = planner
        self.searcher: Searcher | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._loop: threading.Thread | None = None
        self.load_error = ""

    @classmethod
    def connect(cls, settings: Settings, uri: str | None = None) -> Service:
        """A service over `uri`, or the configured store (NEO4J_URI or the local server), with
        the driver's retries cut to what a request can wait for."""
        t = settings.store_timeout_s
        store = (Neo4jStore.connect(uri, retry_s=t, connect_timeout_s=t) if uri else
                 open_store(retry_s=t, connect_timeout_s=t))
        return cls(settings, store)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self.events.start()
        self._loop = threading.Thread(target=self._run, name="index-refresh", daemon=True)
        self._loop.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._loop is not None:
            self._loop.join(timeout=10)
        if self.searcher is not None:
            self.searcher.close()
        self.events.close()
        self.store.close()

    def wait_ready(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.ready:
                return True
            time.sleep(0.05)
        return self.ready

    @property
    def ready(self) -> bool:
        return self._indexes is not None

    @property
    def indexes(self) -> Indexes:
        if self._indexes is None:
            raise NotReady(self.load_error or "indexes are still loading")
        return self._indexes

    def reload(self) -> None:
        """Ask the loop to check the catalog version now (admin)."""
        self._wake.set()

    # -- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        last_memory_sync = 0.0
        while not self._stop.is_set():
            try:
                if self.health.available() or self.health.probe_due():
                    self._check_catalog()
                    self.health.recovered()
                if self._indexes is not None and time.monotonic() - last_memory_sync > \
                        MEMORY_SYNC_S and self.health.available():
                    self._indexes.memory.refresh()
                    last_memory_sync = time.monotonic()
            except Exception as exc:
                if is_outage(exc):
                    self.health.failed(exc)
                else:
                    log.exception("index refresh failed")
                self.load_error = f"{type(exc).__name__}: {exc}"[:300]
            wait = MEMORY_SYNC_S if self._indexes is not None else 1.0
            self._wake.wait(min(wait, self.settings.refresh_s))
            self._wake.clear()

    def _check_catalog(self) -> None:
        """Build the indexes at first, and again whenever the catalog version moves."""
        version = self.store.catalog_version()
        current = self._indexes
        if current is not None and current.version == version:
            return
        if current is None:
            self.store.apply_schema()
            self.events.apply_schema()
        built = build_indexes(self.store, memory=current.memory if current else None)
        self._indexes = built  # one reference swap: a search in flight keeps its own snapshot
        metrics.CATALOG_VERSION.set(built.version)
        if self.searcher is None:
            planner = self._planner or FixedPlanner(list(built.retrievers),
                                                    list(built.expanders))
            self.searcher = Searcher(lambda: self.indexes, planner, self.events, self.health,
                                     deadline_ms=self.settings.search_deadline_ms)
        self.load_error = ""
        log.info("serving catalog version %d", built.version)
