"""The running service: the store, the current indexes, the planner, the logs, and the background
loop that loads the indexes, follows the catalog version and probes the store when it is down."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

from api import metrics
from api.cards import Card
from api.context import UserStats
from api.eventlog import EventLog
from api.health import StoreHealth, is_outage
from api.indexes import Indexes, build_indexes
from api.learning import Learner, action_space
from api.search import Searcher
from api.settings import Settings
from api.warmstart import WarmStartReport, lessons, warm_start
from bandit import RewardConfig
from graph.connect import open_store
from graph.neo4j_store import Neo4jStore
from retrievers import ranker as ranking
from retrievers.base import Candidate, Query

log = logging.getLogger(__name__)
MEMORY_SYNC_S: Final = 1.0  # how often feedback from other processes reaches this one's memory
LEARN_SYNC_S: Final = 0.5  # how often this process applies the shared log's new outcomes
SETTLE_S: Final = 5.0  # how often searches whose feedback window closed are settled
WARM_START_KEY: Final = "warm-start"
WARM_WAIT_S: Final = 300.0  # a warm start claimed longer ago than this is not waited for


class NotReady(RuntimeError):
    """The indexes are not loaded yet."""


class Service:
    """Owns everything a request needs. `start` returns at once; `ready` turns true when the
    first index build finishes."""

    def __init__(self, settings: Settings, store: Neo4jStore, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.health = StoreHealth(settings.store_retry_s)
        self.events = EventLog(store)
        self._indexes: Indexes | None = None
        self.learner: Learner | None = None
        self.users = UserStats(self.events, lambda: self._built().cards)
        self.searcher: Searcher | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload = threading.Event()  # an admin asked for a catalog check now
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
        return self._indexes is not None and self.searcher is not None

    @property
    def indexes(self) -> Indexes:
        if self._indexes is None or self.searcher is None:
            raise NotReady(self.load_error or "indexes are still loading")
        return self._indexes

    def _built(self) -> Indexes:
        """The newest indexes, for the parts of the service itself (readiness aside)."""
        if self._indexes is None:
            raise NotReady(self.load_error or "indexes are still loading")
        return self._indexes

    def reload(self) -> None:
        """Ask the loop to check the catalog version now (admin)."""
        self._reload.set()
        self._wake.set()

    # -- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        last = {"memory": 0.0, "learn": 0.0, "settle": 0.0, "catalog": 0.0}

        def due(what: str, every: float) -> bool:
            if time.monotonic() - last[what] < every or not self.health.available():
                return False
            last[what] = time.monotonic()
            return True

        while not self._stop.is_set():
            try:
                # The catalog version every refresh_s (at once when asked or not built yet);
                # while the store is down, whenever the health check says a probe is due.
                catalog_due = (self._indexes is None or self._reload.is_set()
                               or time.monotonic() - last["catalog"] >= self.settings.refresh_s)
                if self.health.probe_due() if not self.health.available() else catalog_due:
                    self._reload.clear()
                    last["catalog"] = time.monotonic()
                    self._check_catalog()
                    self.health.recovered()
                if self._indexes is not None and due("memory", MEMORY_SYNC_S):
                    self._indexes.memory.refresh()
                if self.learner is not None and due("learn", LEARN_SYNC_S):
                    self.learner.sync()
                if self.learner is not None and due("settle", SETTLE_S):
                    self.learner.settle_expired()
            except Exception as exc:
                if is_outage(exc):
                    self.health.failed(exc)
                else:
                    log.exception("index refresh failed")
                self.load_error = f"{type(exc).__name__}: {exc}"[:300]
            wait = LEARN_SYNC_S if self._indexes is not None else 1.0
            self._wake.wait(wait)
            self._wake.clear()

    def _learner(self, built: Indexes) -> Learner:
        """The policy over the sources this catalog's indexes offer (fixed from the first
        build: a new source changes the action space, which takes a replay to adopt)."""
        s = self.settings
        space = action_space(list(built.retrievers), list(built.expanders), budget=s.budget,
                             step=s.budget_step, latency_weight=s.latency_weight,
                             remote=built.remote)

        def items(ids: Sequence[str]) -> dict[str, ranking.Item]:
            cards = self._built().cards
            return {i: ranking.Item(c.kind, c.popularity, c.genres) for i in ids
                    if (c := cards.get(i)) is not None}

        return Learner(self.events, space, s.policy,
                       reward=RewardConfig(timeout_s=s.feedback_expiry_s), clock=self.clock,
                       ranker=ranking.LinearRanker(space.names), items=items)

    def _check_catalog(self) -> None:
        """Build the indexes at first, and again whenever the catalog version moves."""
        version = self.store.catalog_version()
        current = self._indexes
        if current is not None and current.version == version:
            return
        if current is None:
            self.store.apply_schema()
            self.events.apply_schema()
        built = build_indexes(self.store, memory=current.memory if current else None,
                              text=self.settings.text_vectors,
                              embeddings=self.settings.embeddings_dir,
                              cache_entries=self.settings.cache_entries,
                              cache_ttl_s=self.settings.cache_ttl_s,
                              fulltext=self.settings.fulltext)
        if current is None:
            _warm_up(built)
        self._indexes = built  # one reference swap: a search in flight keeps its own snapshot
        _freeze_heap()
        metrics.CATALOG_VERSION.set(built.version)
        if self.searcher is None:
            self.learner = self._learner(built)
            self.learner.start()
            learner = self.learner
            searcher = Searcher(
                self._built, learner,
                (lambda: learner.ranker) if self.settings.ranker == "learned" else lambda: None,
                self.events, self.health, self.users,
                deadline_ms=self.settings.search_deadline_ms, clock=self.clock)
            self._warm_start(searcher)
            self.searcher = searcher
        self.load_error = ""
        log.info("serving catalog version %d", built.version)

    def warm(self, searcher: Searcher, per_class: int, seed: int = 0) -> WarmStartReport:
        """Teach the learner the catalog's own lessons (api.warmstart) through `searcher`."""
        assert self.learner is not None
        return warm_start(searcher, self.learner,
                          lessons(self._built().understand.t, per_class=per_class, seed=seed),
                          self.clock)

    def _warm_start(self, searcher: Searcher) -> None:
        """On a catalog with no learning state, learn what the catalog implies before serving.
        One process claims it; the others wait for it to finish (unless it was claimed more
        than WARM_WAIT_S ago: its claimer died), then learn its outcomes from the log, so that
        no worker serves the first users untrained."""
        learner = self.learner
        per_class = self.settings.warm_start
        if learner is None or per_class <= 0 or learner.seq > 0:
            return
        if self.events.claim(WARM_START_KEY, self.clock()):
            self.warm(searcher, per_class)
            self.events.finish_claim(WARM_START_KEY, self.clock())
            return
        while not self.events.claim_settled(WARM_START_KEY, self.clock() - WARM_WAIT_S) \
                and not self._stop.is_set():
            time.sleep(0.5)
        learner.sync()


def _freeze_heap() -> None:
    """Move what is alive now (the indexes above all: some 350k tracked objects at the real
    catalog) out of the cyclic collector's reach. A full collection over them took about 270 ms
    with the GIL held, a stall for every request in flight, once every few thousand searches;
    frozen, they are never scanned again. The previous snapshot's objects are unfrozen and
    collected first, so a catalog change leaks nothing (that one collection is the cost)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _warm_up(built: Indexes) -> None:
    """Run each store-backed source once before /ready turns true: Neo4j plans and compiles a
    query's operators on first use (seconds for the related-entity traversals on a cold, busy
    machine), which would otherwise fall on the first users' pages and miss their deadline.
    The seeds are the most popular entity of every kind, so every traversal branch runs."""
    best: dict[str, Card] = {}
    for c in built.cards.values():
        if c.kind.value not in best or c.popularity > best[c.kind.value].popularity:
            best[c.kind.value] = c
    seeds = [Candidate(c.id, 1.0, "warm-up") for c in best.values()]
    text = best["artist"].name if "artist" in best else "a"
    for name in sorted(built.remote):
        try:
            if name in built.retrievers:
                built.retrievers[name].retrieve(Query(text), 10)
            elif name in built.expanders and seeds:
                built.expanders[name].expand(seeds, 10)
        except Exception as exc:  # a failure here is the store's; the loop handles that
            log.warning("warm-up of %s failed: %s", name, exc)
