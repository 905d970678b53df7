"""The serving indexes, built together from one catalog snapshot and swapped whole on refresh."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from api.cards import Cards
from graph.model import Kind
from graph.neo4j_store import Neo4jStore
from graph.snapshot import Snapshot
from graph.store import GraphStore
from retrievers.base import Expander, Retriever
from retrievers.fulltext import FullTextRetriever
from retrievers.fuzzy import FuzzyIndex, FuzzyRetriever
from retrievers.memory import MemoryRetriever, Neo4jMemoryLog, predicted_queries
from retrievers.related import RelatedExpander
from retrievers.understand import QueryUnderstanding

log = logging.getLogger(__name__)
ARTISTS = frozenset({Kind.ARTIST})


@dataclass(frozen=True, slots=True, eq=False)
class Indexes:
    """Everything a search reads. Sources named in `remote` read the store per request (and are
    skipped while it is down); every other source answers from memory."""

    version: int
    cards: Cards
    fuzzy: FuzzyIndex
    understand: QueryUnderstanding
    memory: MemoryRetriever
    retrievers: Mapping[str, Retriever]
    expanders: Mapping[str, Expander]
    remote: frozenset[str]
    build_s: dict[str, float] = field(default_factory=dict)


def build_indexes(store: Neo4jStore, *, memory: MemoryRetriever | None = None) -> Indexes:
    """Read the catalog once and build every in-process index from that snapshot."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    snap = Snapshot.read(store)
    timings["snapshot"] = time.perf_counter() - t0

    def timed(name: str, started: float) -> None:
        timings[name] = time.perf_counter() - started

    t = time.perf_counter()
    fuzzy = FuzzyIndex.from_entities(snap.entities, snap.version)
    timed("fuzzy", t)
    t = time.perf_counter()

    def match_artist(text: str) -> list[tuple[str, float]]:
        return [(m.entity_id, m.score) for m in fuzzy.search(text, 3, ARTISTS)]

    # QueryUnderstanding reads only iter_entities/iter_relations, which a snapshot offers.
    understand = QueryUnderstanding(cast(GraphStore, snap), artist_matcher=match_artist)
    timed("understand", t)
    t = time.perf_counter()
    predicted, kinds = predicted_queries(snap)
    mem = MemoryRetriever(memory.log if memory else Neo4jMemoryLog(store), predicted, kinds)
    mem.refresh()
    timed("memory", t)
    t = time.perf_counter()
    cards = Cards.build(snap)
    timed("cards", t)
    retrievers: dict[str, Retriever] = {
        "fuzzy": FuzzyRetriever(fuzzy),
        "fulltext": FullTextRetriever(store),
        "understand": understand,
        "memory": mem,
    }
    expanders: dict[str, Expander] = {"related": RelatedExpander(store)}
    timings["total"] = time.perf_counter() - t0
    log.info("indexes built for catalog version %d: %s", snap.version,
             ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return Indexes(snap.version, cards, fuzzy, understand, mem, retrievers, expanders,
                   frozenset({"fulltext", "related"}), timings)

