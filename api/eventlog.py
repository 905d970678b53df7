"""The search log: every decision (what ran, what it found, what the page showed) and every piece
of feedback, kept in Neo4j in the form that learning needs.

Decisions are many and cheap to lose (a lost one only costs its feedback), so they are queued
and written in batches by a background thread, off the request path. Feedback is what users
did and is acknowledged only once stored: each event is one transaction that also records the
take in the click memory, so the event and its effect commit together. Events are keyed by
(search, entity, action, position), which makes a client's retry idempotent: stored once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Final, Literal

import msgspec
from neo4j import ManagedTransaction, RoutingControl

from graph.neo4j_store import Neo4jStore
from retrievers.memory import TAKE_CYPHER, query_key, take_params

log = logging.getLogger(__name__)

Action = Literal["click", "play", "like", "add", "skip"]
# How much each action says "this is what I wanted", for the memory (the bandit's reward uses
# its own weights). A skip is feedback too, but no take.
TAKE_WEIGHT: Final[dict[str, float]] = {"click": 1.0, "play": 1.0, "like": 1.5, "add": 1.5,
                                        "skip": 0.0}
FLUSH_S: Final = 0.05
FLUSH_ROWS: Final = 500
SCHEMA: Final = (
    "CREATE CONSTRAINT search_id IF NOT EXISTS FOR (s:Search) REQUIRE s.id IS UNIQUE",
    "CREATE INDEX search_at IF NOT EXISTS FOR (s:Search) ON (s.at)",
    "CREATE CONSTRAINT feedback_key IF NOT EXISTS FOR (f:Feedback) REQUIRE f.key IS UNIQUE",
    "CREATE INDEX feedback_at IF NOT EXISTS FOR (f:Feedback) ON (f.at)",
)


class SearchRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One decision: the query, the plan with its propensity, each source's ranked candidates
    (or its absence: `unavailable`), and the page as shown."""

    search_id: str
    at: float
    query: str
    user: str | None
    kinds: list[str]
    limit: int
    policy: str
    plan: dict[str, int]  # source -> k asked
    propensity: float
    candidates: dict[str, list[str]]  # source -> entity ids, best first
    unavailable: list[str]
    page: list[str]
    degraded: bool
    context: dict[str, float] = {}


class FeedbackEvent(msgspec.Struct, frozen=True, kw_only=True):
    search_id: str
    entity_id: str
    action: Action
    position: int
    at: float
    user: str | None = None
    query: str = ""

    @property
    def key(self) -> str:
        return f"{self.search_id}|{self.entity_id}|{self.action}|{self.position}"


_enc = msgspec.json.Encoder()
_search_dec = msgspec.json.Decoder(SearchRecord)
_feedback_dec = msgspec.json.Decoder(FeedbackEvent)


class EventLog:
    """Searches and feedback in Neo4j: (:Search {id, at, doc}), (:Feedback {key, at, doc})."""

    def __init__(self, store: Neo4jStore) -> None:
        self.store = store
        self._queue: queue.Queue[SearchRecord | None] = queue.Queue()
        self._pending: dict[str, SearchRecord] = {}  # queued, not yet written
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self.dropped = 0  # decisions that could not be written (store down too long)

    def apply_schema(self) -> None:
        for statement in SCHEMA:
            self.store.driver.execute_query(statement, database_=self.store.database)

    def start(self) -> None:
        self._writer = threading.Thread(target=self._write_loop, name="search-log", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=10)
            self._writer = None

    # -- decisions ------------------------------------------------------------------------------

    def add_search(self, record: SearchRecord) -> None:
        with self._lock:
            self._pending[record.search_id] = record
        if self._writer is None:
            self._write([record])
        else:
            self._queue.put(record)

    def get_search(self, search_id: str) -> SearchRecord | None:
        with self._lock:
            pending = self._pending.get(search_id)
        if pending is not None:
            return pending
        records, _, _ = self.store.driver.execute_query(
            "MATCH (s:Search {id: $id}) RETURN s.doc AS doc", {"id": search_id},
            database_=self.store.database, routing_=RoutingControl.READ)
        return _search_dec.decode(records[0]["doc"]) if records else None

    def searches(self, since: float = 0.0, limit: int = 100_000) -> list[SearchRecord]:
        records, _, _ = self.store.driver.execute_query(
            "MATCH (s:Search) WHERE s.at >= $since WITH s ORDER BY s.at, s.id LIMIT $limit "
            "RETURN collect(s.doc) AS docs", {"since": since, "limit": limit},
            database_=self.store.database, routing_=RoutingControl.READ)
        return [_search_dec.decode(d) for d in records[0]["docs"]]

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            batch: list[SearchRecord] = []
            item = self._queue.get()
            deadline = time.monotonic() + FLUSH_S
            while item is not None and len(batch) < FLUSH_ROWS:
                batch.append(item)
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            stop = item is None
            if batch:
                self._write(batch)

    def _write(self, batch: Sequence[SearchRecord]) -> None:
        rows = [{"id": r.search_id, "at": r.at, "doc": _enc.encode(r).decode()} for r in batch]
        for attempt in range(3):
            try:
                self.store.driver.execute_query(
                    "UNWIND $rows AS r MERGE (s:Search {id: r.id}) SET s.at = r.at, s.doc = r.doc",
                    {"rows": rows}, database_=self.store.database)
                break
            except Exception as exc:  # the store is down: keep serving; retry, then drop
                log.warning("search log write failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(0.5 * (attempt + 1))
        else:
            self.dropped += len(batch)
        with self._lock:
            for r in batch:
                self._pending.pop(r.search_id, None)

    # -- feedback -------------------------------------------------------------------------------

    def add_feedback(self, event: FeedbackEvent) -> bool:
        """Store the event and its take, in one transaction; False when it was already stored.
        Raises when the store cannot be written: the caller must not acknowledge."""
        weight = TAKE_WEIGHT[event.action]
        key = query_key(event.query)

        def work(tx: ManagedTransaction) -> bool:
            row = tx.run("MERGE (f:Feedback {key: $key}) ON CREATE SET f.at = $at, f.doc = $doc, "
                         "f.new = true WITH f, coalesce(f.new, false) AS created "
                         "REMOVE f.new RETURN created",
                         key=event.key, at=event.at, doc=_enc.encode(event).decode()).single()
            created = bool(row and row["created"])
            if created and weight > 0 and key:
                tx.run(TAKE_CYPHER, take_params(key, event.entity_id, weight, event.at)).consume()
            return created

        with self.store.driver.session(database=self.store.database) as session:
            return bool(session.execute_write(work))

    def feedback(self, since: float = 0.0, limit: int = 100_000) -> list[FeedbackEvent]:
        records, _, _ = self.store.driver.execute_query(
            "MATCH (f:Feedback) WHERE f.at >= $since WITH f ORDER BY f.at, f.key LIMIT $limit "
            "RETURN collect(f.doc) AS docs", {"since": since, "limit": limit},
            database_=self.store.database, routing_=RoutingControl.READ)
        return [_feedback_dec.decode(d) for d in records[0]["docs"]]
