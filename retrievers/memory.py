"""Memory: which entities users took for which queries, learned from feedback, kept in the graph.

Each (normalized query, entity) pair has a weight that grows with every take (a click counts 1,
a weaker signal less) and decays with a half-life, so tastes can move. A query's candidates are
scored by a smoothed share of the query's total weight, w_e / (W + alpha): a posterior mean of
"users who typed this took e", shrunk toward zero while evidence is thin.

The weights live in Neo4j as (:Query {key})-[:TOOK {weight, count, updated}]->(:Entity), so every
API process learns from all feedback; each process serves from an in-process table that it
refreshes with the rows updated since its last sync. Query nodes are not :Entity, so catalog
exports, counts and hashes never see them.

A new catalog is not empty: `predicted_queries` seeds the table with queries the graph implies
("{artist}", "{artist} songs", "{song}", "{artist} {song}", "{genre}", "{playlist}") at a small
pseudo-weight, which one real take outweighs.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from anyascii import anyascii
from neo4j import RoutingControl

from graph.model import Kind, RelType
from graph.neo4j_store import Neo4jStore
from graph.snapshot import CatalogReader
from retrievers.base import Candidate, Query

HALF_LIFE_S: Final = 30 * 24 * 3600.0
ALPHA: Final = 1.0  # pseudo-weight of "took something else"
# Refreshes re-read this far back: rows replace rather than add, so re-reading is harmless, and
# it covers writes stamped by another process whose clock runs a little behind.
SYNC_OVERLAP_S: Final = 120.0
PREDICTED_WEIGHT: Final = 0.2
# The largest score a predicted query alone can give an entity (its weight over weight + ALPHA):
# a memory candidate scored above it has a real take behind it.
PREDICTED_SCORE_MAX: Final = PREDICTED_WEIGHT / (PREDICTED_WEIGHT + ALPHA)
_WORD = re.compile(r"[a-z0-9]+")


def query_key(text: str) -> str:
    """Case, accents, punctuation and spacing folded: "Björk!" and "bjork" share a key."""
    return " ".join(_WORD.findall(anyascii(text).lower()))


def taught(score: float) -> bool:
    """Whether a memory candidate's score needs a real take: no predicted query alone gives
    that much. (A take that shares its query with many others can score less, and is not.)"""
    return score > PREDICTED_SCORE_MAX + 1e-9


def decayed(weight: float, updated: float, now: float) -> float:
    return float(weight * 0.5 ** (max(0.0, now - updated) / HALF_LIFE_S))


@dataclass(frozen=True, slots=True)
class Take:
    key: str
    entity_id: str
    weight: float  # as of `updated`
    count: int
    updated: float  # unix seconds


class MemoryLog(Protocol):
    """Where takes are stored durably and shared between processes."""

    def add(self, key: str, entity_id: str, weight: float, at: float) -> None: ...

    def since(self, t: float) -> list[Take]:
        """Every (key, entity) row updated after `t`, with its accumulated weight."""
        ...


# One take: decay the pair's weight to `at`, add `w`. Also run inside the feedback transaction
# (api/eventlog.py), so that a stored feedback event and its take commit together or not at all.
TAKE_CYPHER: Final = (
    "MATCH (e:Entity {id: $id}) MERGE (q:Query {key: $key}) MERGE (q)-[t:TOOK]->(e) "
    "SET t.weight = coalesce(t.weight, 0.0) * "
    "0.5 ^ (($at - coalesce(t.updated, $at)) / $hl) + $w, "
    "t.count = coalesce(t.count, 0) + 1, t.updated = $at")


def take_params(key: str, entity_id: str, weight: float, at: float) -> dict[str, object]:
    return {"id": entity_id, "key": key, "w": weight, "at": at, "hl": HALF_LIFE_S}


class Neo4jMemoryLog:
    """The memory in the graph: (:Query {key})-[:TOOK {weight, count, updated}]->(:Entity)."""

    def __init__(self, store: Neo4jStore) -> None:
        self.store = store

    def add(self, key: str, entity_id: str, weight: float, at: float) -> None:
        self.store.driver.execute_query(TAKE_CYPHER, take_params(key, entity_id, weight, at),
                                        database_=self.store.database)

    def since(self, t: float) -> list[Take]:
        records, _, _ = self.store.driver.execute_query(
            "MATCH (q:Query)-[r:TOOK]->(e:Entity) WHERE r.updated > $t "
            "RETURN collect([q.key, e.id, r.weight, r.count, r.updated]) AS rows",
            {"t": t}, database_=self.store.database, routing_=RoutingControl.READ)
        return [Take(*row) for row in records[0]["rows"]]


class InProcessMemoryLog:
    """A MemoryLog in a dict: for MemoryStore demos and unit tests."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Take] = {}

    def add(self, key: str, entity_id: str, weight: float, at: float) -> None:
        old = self.rows.get((key, entity_id))
        total = weight + (decayed(old.weight, old.updated, at) if old else 0.0)
        self.rows[(key, entity_id)] = Take(key, entity_id, total, (old.count if old else 0) + 1,
                                           at)

    def since(self, t: float) -> list[Take]:
        return [r for r in self.rows.values() if r.updated > t]


def predicted_queries(store: CatalogReader) -> tuple[dict[str, dict[str, float]], dict[str, Kind]]:
    """Cold-start queries implied by the catalog (key -> {entity id: pseudo-weight}), and the
    kind of every entity."""
    entities = {e.id: e for e in store.iter_entities()}
    artists_of: dict[str, list[str]] = defaultdict(list)
    for rel in store.iter_relations():
        if rel.type is RelType.PERFORMED_BY:
            artists_of[rel.src].append(entities[rel.dst].name)
    table: dict[str, dict[str, float]] = defaultdict(dict)

    def add(text: str, entity_id: str, weight: float) -> None:
        key = query_key(text)
        if key:
            table[key][entity_id] = max(table[key].get(entity_id, 0.0), weight)

    for e in entities.values():
        w = PREDICTED_WEIGHT * (0.5 + 0.5 * e.popularity)
        add(e.name, e.id, w)
        if e.kind is Kind.ARTIST:
            add(f"{e.name} songs", e.id, w)
        elif e.kind is Kind.SONG:
            for artist in artists_of.get(e.id, ()):
                add(f"{artist} {e.name}", e.id, w)
        elif e.kind is Kind.GENRE:
            add(f"{e.name} music", e.id, w)
    return dict(table), {e.id: e.kind for e in entities.values()}


class MemoryRetriever:
    """Serves the memory from an in-process table; `record` writes through to the log."""

    name = "memory"

    def __init__(self, log: MemoryLog, predicted: Mapping[str, Mapping[str, float]],
                 kinds: Mapping[str, Kind], *, clock: Callable[[], float] = time.time) -> None:
        self.log = log
        self.predicted = predicted
        self.kinds = kinds  # the catalog's entities: nothing else is ever returned
        self._taken: dict[str, dict[str, Take]] = defaultdict(dict)
        self._synced = 0.0
        self._lock = threading.Lock()
        self._now = clock

    @classmethod
    def build(cls, store: CatalogReader, log: MemoryLog, *,
              clock: Callable[[], float] = time.time) -> MemoryRetriever:
        predicted, kinds = predicted_queries(store)
        memory = cls(log, predicted, kinds, clock=clock)
        memory.refresh()
        return memory

    def refresh(self) -> int:
        """Pull the rows other processes (or this one) wrote since the last sync."""
        rows = self.log.since(self._synced - SYNC_OVERLAP_S)
        with self._lock:
            for take in rows:
                self._taken[take.key][take.entity_id] = take
                self._synced = max(self._synced, take.updated)
        return len(rows)

    def record(self, query_text: str, entity_id: str, weight: float = 1.0) -> None:
        key = query_key(query_text)
        if key and entity_id in self.kinds:
            self.log.add(key, entity_id, weight, self._now())
            self.refresh()

    def weights(self, query_text: str) -> dict[str, tuple[float, str]]:
        """entity id -> (current weight, reason) for a query."""
        key, now = query_key(query_text), self._now()
        out = {e: (w, "predicted query") for e, w in self.predicted.get(key, {}).items()}
        with self._lock:
            for e, take in self._taken.get(key, {}).items():
                w = decayed(take.weight, take.updated, now) + out.get(e, (0.0, ""))[0]
                out[e] = (w, f"taken {take.count} time{'s' if take.count > 1 else ''}")
        return out

    def retrieve(self, query: Query, k: int) -> list[Candidate]:
        if k <= 0:
            return []
        found = {e: v for e, v in self.weights(query.text).items() if e in self.kinds and (
            not query.kinds or self.kinds[e] in query.kinds)}
        total = sum(w for w, _ in found.values())
        ranked = sorted(found.items(), key=lambda item: (-item[1][0], item[0]))
        return [Candidate(e, w / (total + ALPHA), self.name, reason)
                for e, (w, reason) in ranked[:k]]
