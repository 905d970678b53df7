"""One contract over every candidate generator: at most k, best first, real ids, determinism."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from graph.model import Kind
from graph.store import GraphStore
from retrievers.base import Query, Retriever
from retrievers.fulltext import FullTextRetriever
from retrievers.fulltext_local import LocalFullTextRetriever
from retrievers.fuzzy import FuzzyRetriever
from retrievers.lexical import LexicalPath
from retrievers.memory import InProcessMemoryLog, MemoryRetriever
from retrievers.text_embed import TextEmbeddingRetriever
from retrievers.understand import QueryUnderstanding

QUERIES = ["taylor swift", "tayler", "Bjork", "true crime podcast", "rock", "shape of you",
           "!(\"weird:[input]", "zzzzqqq"]


# name -> (which catalog it reads, how to build it). A new retriever is one line here.
FACTORIES: dict[str, tuple[str, Callable[[GraphStore], Retriever]]] = {
    "fulltext": ("neo4j", lambda s: FullTextRetriever(s)),  # type: ignore[arg-type]
    "fulltext_local": ("memory", lambda s: LocalFullTextRetriever(s.iter_entities())),
    "memory": ("memory", lambda s: MemoryRetriever.build(s, InProcessMemoryLog())),
    "understand": ("memory", lambda s: QueryUnderstanding(s)),
    "fuzzy": ("memory", lambda s: FuzzyRetriever.build(s)),
    "lexical": ("neo4j", lambda s: LexicalPath.build(s)),
    "text": ("neo4j", lambda s: TextEmbeddingRetriever.build(s)),  # vectors read from the graph
}


@pytest.fixture(params=[pytest.param(n, marks=pytest.mark.neo4j) if FACTORIES[n][0] == "neo4j"
                        else n for n in FACTORIES])
def retriever_and_store(request: pytest.FixtureRequest) -> tuple[Retriever, GraphStore]:
    where, factory = FACTORIES[request.param]
    store: GraphStore = request.getfixturevalue(
        "neo4j_catalog" if where == "neo4j" else "memory_catalog")
    return factory(store), store


@pytest.mark.parametrize("k", [1, 5, 20])
def test_at_most_k_best_first_real_ids(retriever_and_store: tuple[Retriever, GraphStore],
                                       k: int) -> None:
    retriever, store = retriever_and_store
    found_any = False
    for text in QUERIES:
        cands = retriever.retrieve(Query(text), k)
        assert len(cands) <= k
        scores = [c.score for c in cands]
        assert scores == sorted(scores, reverse=True)
        ids = [c.entity_id for c in cands]
        assert len(set(ids)) == len(ids)
        assert len(store.get(ids)) == len(ids)
        assert all(c.source == retriever.name for c in cands)
        found_any = found_any or bool(cands)
    assert found_any


def test_zero_k_and_determinism(retriever_and_store: tuple[Retriever, GraphStore]) -> None:
    retriever, _ = retriever_and_store
    for text in QUERIES:
        assert retriever.retrieve(Query(text), 0) == []
        assert retriever.retrieve(Query(text), 10) == retriever.retrieve(Query(text), 10)


def test_kinds_filter(retriever_and_store: tuple[Retriever, GraphStore]) -> None:
    retriever, store = retriever_and_store
    for kind in (Kind.ARTIST, Kind.SONG, Kind.PODCAST):
        cands = retriever.retrieve(Query("taylor swift love", frozenset({kind})), 10)
        assert {e.kind for e in store.get([c.entity_id for c in cands])} <= {kind}


def test_finds_a_known_artist(retriever_and_store: tuple[Retriever, GraphStore]) -> None:
    retriever, _ = retriever_and_store
    top = [c.entity_id for c in retriever.retrieve(Query("Taylor Swift"), 5)]
    assert "ar:taylor-swift" in top
