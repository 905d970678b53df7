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
import uuid
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
# The writer batches what searches queue for this long: a write transaction has a fixed cost
# (its commit), so 2 records a batch (50 ms at 40 searches/s) cost 1.4-4 ms of CPU a record,
# Neo4j's and ours, and 12 cost 0.4-0.9 ms (bench/search_log_bench.py, three runs). A crash
# loses at most this much of the search log (never acknowledged feedback, which is written
# before its 202).
FLUSH_S: Final = 0.25
FLUSH_ROWS: Final = 500
SCHEMA: Final = (
    "CREATE CONSTRAINT search_id IF NOT EXISTS FOR (s:Search) REQUIRE s.id IS UNIQUE",
    "CREATE INDEX search_at IF NOT EXISTS FOR (s:Search) ON (s.at)",
    "CREATE CONSTRAINT feedback_key IF NOT EXISTS FOR (f:Feedback) REQUIRE f.key IS UNIQUE",
    "CREATE INDEX feedback_at IF NOT EXISTS FOR (f:Feedback) ON (f.at)",
    "CREATE INDEX feedback_search IF NOT EXISTS FOR (f:Feedback) ON (f.search_id)",
    "CREATE INDEX feedback_user IF NOT EXISTS FOR (f:Feedback) ON (f.user)",
    "CREATE INDEX search_user IF NOT EXISTS FOR (s:Search) ON (s.user, s.at)",
    "CREATE CONSTRAINT outcome_search IF NOT EXISTS FOR (o:Outcome) REQUIRE o.search_id IS UNIQUE",
    "CREATE INDEX outcome_seq IF NOT EXISTS FOR (o:Outcome) ON (o.seq)",
    "CREATE CONSTRAINT policy_state IF NOT EXISTS FOR (p:PolicyState) REQUIRE p.name IS UNIQUE",
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
    scores: dict[str, list[float]] = {}  # source -> native scores, as `candidates`
    unavailable: list[str] = []
    page: list[str] = []
    degraded: bool = False
    decision: str = ""  # the bandit's Decision record (JSON): what the policy learns from
    wanted_kinds: list[str] = []  # the kinds the query's best reading asks for (ranker feature)


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
        rows = [{"id": r.search_id, "at": r.at, "user": r.user, "doc": _enc.encode(r).decode()}
                for r in batch]
        for attempt in range(3):
            try:
                self.store.driver.execute_query(
                    "UNWIND $rows AS r MERGE (s:Search {id: r.id}) "
                    "SET s.at = r.at, s.user = r.user, s.doc = r.doc "
                    # a take may have settled it while it waited in the queue
                    "WITH s WHERE EXISTS { MATCH (:Outcome {search_id: s.id}) } "
                    "SET s.settled = true",
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

    def add_feedback(self, event: FeedbackEvent,
                     earlier: Sequence[tuple[str, float]] = ()) -> bool:
        """Store the event and its take, in one transaction; False when it was already stored.
        `earlier`: (query, weight) takes to credit as well, for queries the same user gave up
        on just before (reformulations). Raises when the store cannot be written: the caller
        must not acknowledge."""
        weight = TAKE_WEIGHT[event.action]
        key = query_key(event.query)
        takes = [(key, weight)] if weight > 0 and key else []
        if weight > 0:  # reformulation credit: queries the same user gave up on just before
            takes += [(k, w) for q, w in earlier if (k := query_key(q)) and k != key]

        def work(tx: ManagedTransaction) -> bool:
            row = tx.run("MERGE (f:Feedback {key: $key}) ON CREATE SET f.at = $at, f.doc = $doc, "
                         "f.search_id = $sid, f.user = $user, f.new = true "
                         "WITH f, coalesce(f.new, false) AS created REMOVE f.new RETURN created",
                         key=event.key, at=event.at, sid=event.search_id, user=event.user,
                         doc=_enc.encode(event).decode()).single()
            created = bool(row and row["created"])
            for query, w in takes if created else ():
                tx.run(TAKE_CYPHER, take_params(query, event.entity_id, w, event.at)).consume()
            return created

        with self.store.driver.session(database=self.store.database) as session:
            return bool(session.execute_write(work))

    def feedback(self, since: float = 0.0, limit: int = 100_000) -> list[FeedbackEvent]:
        records, _, _ = self.store.driver.execute_query(
            "MATCH (f:Feedback) WHERE f.at >= $since WITH f ORDER BY f.at, f.key LIMIT $limit "
            "RETURN collect(f.doc) AS docs", {"since": since, "limit": limit},
            database_=self.store.database, routing_=RoutingControl.READ)
        return [_feedback_dec.decode(d) for d in records[0]["docs"]]

    def feedback_for(self, search_ids: Sequence[str]) -> dict[str, list[FeedbackEvent]]:
        records, _, _ = self.store.driver.execute_query(
            "UNWIND $ids AS id MATCH (f:Feedback {search_id: id}) RETURN collect(f.doc) AS docs",
            {"ids": list(search_ids)}, database_=self.store.database,
            routing_=RoutingControl.READ)
        out: dict[str, list[FeedbackEvent]] = {}
        for doc in records[0]["docs"]:
            event = _feedback_dec.decode(doc)
            out.setdefault(event.search_id, []).append(event)
        return out

    def recent_searches(self, user: str, since: float) -> list[SearchRecord]:
        """The user's searches since `since` (written ones and this process's queued ones).
        The queued ones are read first: the writer drops a record from the queue only after
        its write commits, so a record is in this snapshot or in the store read that follows.
        (The other order missed a record written and dropped between the two reads, and so a
        reformulation's credit: 1 of 400 in a simulator run.)"""
        with self._lock:
            queued = [r for r in self._pending.values() if r.user == user and r.at >= since]
        records, _, _ = self.store.driver.execute_query(
            "MATCH (s:Search) WHERE s.user = $user AND s.at >= $since "
            "RETURN collect(s.doc) AS docs", {"user": user, "since": since},
            database_=self.store.database, routing_=RoutingControl.READ)
        found = {r.search_id: r for r in map(_search_dec.decode, records[0]["docs"])}
        found.update((r.search_id, r) for r in queued)
        return sorted(found.values(), key=lambda r: r.at)

    # -- what the policy learns from --------------------------------------------------------------

    def add_outcome(self, search_id: str, doc: bytes,
                    record: SearchRecord | None = None) -> int | None:
        """Log one search's outcome under the next sequence number, once: None when that search
        already has one. The counter's lock orders commits, so readers see seqs in order.
        `record`, the search itself, is written in the same transaction when it is not in the
        graph yet (it may still wait in this process's write queue): whoever reads an outcome
        can then read its search, which the ranker learns from."""
        params: dict[str, object] = {"sid": search_id, "doc": doc.decode(), "at": None,
                                     "user": None, "sdoc": None}
        if record is not None:
            params |= {"at": record.at, "user": record.user,
                       "sdoc": _enc.encode(record).decode()}
        records, _, _ = self.store.driver.execute_query(
            "MERGE (o:Outcome {search_id: $sid}) ON CREATE SET o.doc = $doc, o.pending = true "
            "WITH o WHERE o.pending "
            "MERGE (m:Meta {key: 'outcomes'}) SET m.seq = coalesce(m.seq, 0) + 1 "
            "SET o.seq = m.seq REMOVE o.pending "
            "FOREACH (_ IN CASE WHEN $sdoc IS NULL THEN [] ELSE [1] END | "
            "MERGE (s:Search {id: $sid}) ON CREATE SET s.at = $at, s.user = $user, "
            "s.doc = $sdoc) "
            "WITH o OPTIONAL MATCH (s:Search {id: $sid}) SET s.settled = true "
            "RETURN o.seq AS seq", params, database_=self.store.database)
        return int(records[0]["seq"]) if records else None

    def claim(self, key: str, at: float) -> bool:
        """True for the one caller, of every process, that first claims `key` (a one-time
        job such as the warm start); the marker stays, so the job is not claimed again."""
        token = uuid.uuid4().hex
        records, _, _ = self.store.driver.execute_query(
            "MERGE (m:Meta {key: $key}) ON CREATE SET m.claimed_at = $at, m.token = $token "
            "RETURN m.token = $token AS mine", {"key": key, "at": at, "token": token},
            database_=self.store.database)
        return bool(records[0]["mine"])

    def finish_claim(self, key: str, at: float) -> None:
        """Mark the one-time job `key` done (see `claim`)."""
        self.store.driver.execute_query(
            "MATCH (m:Meta {key: $key}) SET m.done_at = $at", {"key": key, "at": at},
            database_=self.store.database)

    def claim_settled(self, key: str, stale_before: float) -> bool:
        """Whether the one-time job `key` is finished, or was claimed before `stale_before`
        (its claimer died: nobody waits for it any longer)."""
        records, _, _ = self.store.driver.execute_query(
            "MATCH (m:Meta {key: $key}) "
            "RETURN m.done_at IS NOT NULL OR m.claimed_at < $stale AS settled",
            {"key": key, "stale": stale_before}, database_=self.store.database,
            routing_=RoutingControl.READ)
        return not records or bool(records[0]["settled"])

    def outcomes_after(self, seq: int, limit: int = 2000) -> list[tuple[int, bytes]]:
        records, _, _ = self.store.driver.execute_query(
            "MATCH (o:Outcome) WHERE o.seq > $seq WITH o ORDER BY o.seq LIMIT $limit "
            "RETURN collect([o.seq, o.doc]) AS rows", {"seq": seq, "limit": limit},
            database_=self.store.database, routing_=RoutingControl.READ)
        return [(int(s), d.encode()) for s, d in records[0]["rows"]]

    def unsettled(self, before: float, limit: int = 1000) -> list[SearchRecord]:
        """Searches older than `before` that have no outcome yet (any process's)."""
        records, _, _ = self.store.driver.execute_query(
            "MATCH (s:Search) WHERE s.at < $before AND s.settled IS NULL "
            "AND NOT EXISTS { MATCH (:Outcome {search_id: s.id}) } "
            "WITH s ORDER BY s.at LIMIT $limit RETURN collect(s.doc) AS docs",
            {"before": before, "limit": limit}, database_=self.store.database,
            routing_=RoutingControl.READ)
        return [_search_dec.decode(d) for d in records[0]["docs"]]

    def save_policy(self, name: str, seq: int, state: bytes, epoch: int) -> None:
        """Keep the newest snapshot of policy `name` (its state after outcome `seq`)."""
        self.store.driver.execute_query(
            "MERGE (p:PolicyState {name: $name}) WITH p WHERE coalesce(p.seq, -1) < $seq "
            "OR coalesce(p.epoch, 0) < $epoch SET p.seq = $seq, p.state = $state, "
            "p.epoch = $epoch", {"name": name, "seq": seq, "state": state.decode(),
                                 "epoch": epoch}, database_=self.store.database)

    def load_policy(self, name: str) -> tuple[int, bytes, int] | None:
        """(seq, state, epoch) of the newest snapshot of policy `name`, if any."""
        records, _, _ = self.store.driver.execute_query(
            "MATCH (p:PolicyState {name: $name}) RETURN p.seq AS seq, p.state AS state, "
            "coalesce(p.epoch, 0) AS epoch", {"name": name}, database_=self.store.database,
            routing_=RoutingControl.READ)
        if not records:
            return None
        r = records[0]
        return int(r["seq"]), str(r["state"]).encode(), int(r["epoch"])

    def user_takes(self, user: str, limit: int = 200) -> tuple[int, list[str]]:
        """How many feedback events the user has, and the entities of the latest takes."""
        records, _, _ = self.store.driver.execute_query(
            "MATCH (f:Feedback {user: $user}) WITH f ORDER BY f.at DESC "
            "RETURN count(f) AS n, collect(f.doc)[..$limit] AS docs",
            {"user": user, "limit": limit}, database_=self.store.database,
            routing_=RoutingControl.READ)
        events = [_feedback_dec.decode(d) for d in records[0]["docs"]]
        return int(records[0]["n"]), [e.entity_id for e in events if TAKE_WEIGHT[e.action] > 0]

    def searches_by_id(self, search_ids: Sequence[str]) -> dict[str, SearchRecord]:
        with self._lock:
            found = {i: self._pending[i] for i in search_ids if i in self._pending}
        missing = [i for i in search_ids if i not in found]
        if missing:
            records, _, _ = self.store.driver.execute_query(
                "UNWIND $ids AS id MATCH (s:Search {id: id}) RETURN collect(s.doc) AS docs",
                {"ids": missing}, database_=self.store.database, routing_=RoutingControl.READ)
            found.update((r.search_id, r) for r in map(_search_dec.decode, records[0]["docs"]))
        return found
