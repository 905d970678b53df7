"""The serving indexes, built together from one catalog snapshot and swapped whole on refresh."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from api.cache import TtlLru
from api.cards import Cards
from api.settings import FULLTEXT_MODES
from graph.model import Kind
from graph.neo4j_store import Neo4jStore
from graph.snapshot import Snapshot
from graph.store import GraphStore
from retrievers.base import Candidate, Expander, Retriever
from retrievers.fulltext import FullTextRetriever
from retrievers.fulltext_local import LocalFullTextRetriever
from retrievers.fuzzy import FuzzyIndex, FuzzyRetriever
from retrievers.graph_embed import (
    KGE_MODELS,
    PYG_MODELS,
    GraphEmbeddingExpander,
    TrainedEmbeddings,
    source_name,
)
from retrievers.memory import MemoryRetriever, Neo4jMemoryLog, predicted_queries
from retrievers.related_local import LocalRelatedExpander
from retrievers.text_embed import TextEmbeddingRetriever, stored_encoder
from retrievers.understand import Interpretation, QueryUnderstanding, fuzzy_linker

log = logging.getLogger(__name__)


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
    # Answers of this snapshot's sources and query readings for repeated queries (api.cache);
    # the click memory is never cached: feedback changes it within a version.
    results: TtlLru[tuple[Candidate, ...]]
    readings: TtlLru[tuple[Interpretation, ...]]
    build_s: dict[str, float] = field(default_factory=dict)


def build_indexes(store: Neo4jStore, *, memory: MemoryRetriever | None = None,
                  text: bool = True, embeddings: Path | None = None, cache_entries: int = 0,
                  cache_ttl_s: float = 300.0, fulltext: str = "local") -> Indexes:
    """Read the catalog once and build every in-process index from that snapshot. The text
    source joins when `tunegraph train text` has put vectors in the graph (it then embeds only
    what changed since); the graph-embedding expanders ("kge", "gnn") join when `tunegraph
    train graph` has saved models under `embeddings`. `cache_entries` (0: off) bounds the
    cache of repeated queries' answers, each kept at most `cache_ttl_s`. `fulltext` "local"
    serves full text from an in-process Tantivy index of this snapshot (no store call a
    search); "neo4j" reads the store's Lucene index per search (the reference)."""
    if fulltext not in FULLTEXT_MODES:
        raise ValueError(f"full-text mode {fulltext!r}: expected one of {FULLTEXT_MODES}")
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

    artists = FuzzyIndex.from_entities([e for e in snap.entities if e.kind is Kind.ARTIST],
                                       snap.version)
    # QueryUnderstanding reads only iter_entities/iter_relations, which a snapshot offers.
    understand = QueryUnderstanding(cast(GraphStore, snap), linker=fuzzy_linker(artists))
    timed("understand", t)
    t = time.perf_counter()
    predicted, kinds = predicted_queries(snap)
    mem = MemoryRetriever(memory.log if memory else Neo4jMemoryLog(store), predicted, kinds)
    mem.refresh()
    timed("memory", t)
    t = time.perf_counter()
    cards = Cards.build(snap)
    timed("cards", t)
    t = time.perf_counter()
    full: Retriever = (LocalFullTextRetriever(snap.entities) if fulltext == "local"
                       else FullTextRetriever(store))
    timed("fulltext", t)
    remote = frozenset() if fulltext == "local" else frozenset({"fulltext"})
    retrievers: dict[str, Retriever] = {
        "fuzzy": FuzzyRetriever(fuzzy),
        "fulltext": full,
        "understand": understand,
        "memory": mem,
    }
    if text and stored_encoder(store) is not None:
        t = time.perf_counter()
        retrievers["text"] = TextEmbeddingRetriever.build(store)
        timed("text", t)
    t = time.perf_counter()
    # The Cypher traversals of retrievers.related, answered from this snapshot (same answers):
    # no second store round trip per search, and related content survives a store outage.
    expanders: dict[str, Expander] = {"related": LocalRelatedExpander(snap)}
    timed("related", t)
    for model in KGE_MODELS + PYG_MODELS if embeddings else ():
        assert embeddings is not None
        name = source_name(model)
        if name in expanders or not (embeddings / model / "meta.json").is_file():
            continue  # one model per source: RotatE before ComplEx
        t = time.perf_counter()
        try:
            trained = TrainedEmbeddings.load(embeddings / model)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("graph embeddings in %s not served: %s", embeddings / model, exc)
            continue
        expanders[name] = GraphEmbeddingExpander(trained, cast(GraphStore, snap), name=name)
        timed(name, t)
    timings["total"] = time.perf_counter() - t0
    log.info("indexes built for catalog version %d: %s", snap.version,
             ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return Indexes(snap.version, cards, fuzzy, understand, mem, retrievers, expanders,
                   remote, results=TtlLru(cache_entries, cache_ttl_s),
                   readings=TtlLru(cache_entries, cache_ttl_s), build_s=timings)

