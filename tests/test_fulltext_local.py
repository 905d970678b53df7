"""The in-process full-text index: analysis, fuzzy words, the prior, kinds, and against Neo4j's."""

from __future__ import annotations

import math
import random

import pytest

from graph.memory_store import MemoryStore
from graph.model import Entity, Kind
from graph.neo4j_store import Neo4jStore
from retrievers.base import Query
from retrievers.fulltext import POPULARITY_PRIOR, FullTextRetriever
from retrievers.fulltext_local import LocalFullTextRetriever, prior_weight


@pytest.fixture(scope="module")
def local(memory_catalog: MemoryStore) -> LocalFullTextRetriever:
    return LocalFullTextRetriever(memory_catalog.iter_entities())


def top(r: LocalFullTextRetriever | FullTextRetriever, text: str, k: int = 5,
        kinds: frozenset[Kind] = frozenset()) -> list[str]:
    return [c.entity_id for c in r.retrieve(Query(text, kinds), k)]


def test_folding_and_one_edit(local: LocalFullTextRetriever) -> None:
    assert top(local, "bjork")[0] == "ar:bjork"  # diacritics folded
    assert top(local, "Beyonce")[0] == "ar:beyonce"
    assert top(local, "tayler swift")[0] == "ar:taylor-swift"  # one substitution
    assert top(local, "bjrok")[0] == "ar:bjork"  # one transposition
    assert top(local, "bjxxrk") == []  # two edits away: no fuzzy match


def test_query_syntax_is_plain_text(local: LocalFullTextRetriever) -> None:
    """Lucene and Tantivy operators in user text are words or nothing, never an error."""
    assert top(local, 'AC/DC "back in black" (live)!')[0] == "ar:ac-dc"
    for text in ['"', "(((", "name:*", "a AND", "~1 ^3", "-", "\\"]:
        assert isinstance(top(local, text), list)
    assert top(local, "the of and") == []  # stop words only: nothing searchable


def test_popularity_prior_is_exact() -> None:
    for p in (0.0, 0.3, 1.0):
        assert math.log2(2 + prior_weight(p)) == pytest.approx(1 + POPULARITY_PRIOR * p)
    ents = [Entity("so:a", Kind.SONG, "Hello", popularity=0.1),
            Entity("so:b", Kind.SONG, "Hello", popularity=0.9)]
    low, high = sorted(LocalFullTextRetriever(ents).retrieve(Query("hello"), 2),
                       key=lambda c: c.score)
    assert (low.entity_id, high.entity_id) == ("so:a", "so:b")
    assert high.score / low.score == pytest.approx((1 + 0.45) / (1 + 0.05), rel=1e-5)


def test_kinds_are_a_filter_not_an_overfetch() -> None:
    """Many popular songs match better than the one artist: the artist still comes back."""
    ents = [Entity(f"so:{i:03d}", Kind.SONG, "Love Love", popularity=1.0) for i in range(500)]
    ents.append(Entity("ar:x", Kind.ARTIST, "Endless Love Affair", popularity=0.0))
    r = LocalFullTextRetriever(ents)
    assert top(r, "love", 10, frozenset({Kind.ARTIST})) == ["ar:x"]
    assert len(top(r, "love", 10, frozenset({Kind.SONG}))) == 10
    assert "ar:x" not in top(r, "love", 10)


def test_segments_do_not_matter() -> None:
    """A writer with a small heap leaves several segments; every hit still maps to its id."""
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghij") for _ in range(8)) for _ in range(40_000)]
    ents = [Entity(f"ar:{i:05d}", Kind.ARTIST, f"{w} band", description="x " * 50)
            for i, w in enumerate(words)]
    r = LocalFullTextRetriever(ents, writer_heap=15_000_000)
    assert r.searcher.num_segments > 1
    for i in rng.sample(range(len(ents)), 200):
        assert top(r, words[i], 1) == [f"ar:{i:05d}"] or words.count(words[i]) > 1


@pytest.mark.neo4j
def test_finds_as_much_as_neo4j(neo4j_catalog: Neo4jStore) -> None:
    """Every fixture entity's name, and a one-edit typo of each artist's, as the query: the
    local index's top 10 holds the entity at least as often as Neo4j's Lucene index does."""
    local = LocalFullTextRetriever(neo4j_catalog.iter_entities())
    neo = FullTextRetriever(neo4j_catalog)
    rng = random.Random(3)
    queries: list[tuple[str, str]] = []
    for e in neo4j_catalog.iter_entities():
        queries.append((e.name, e.id))
        if e.kind is Kind.ARTIST and len(e.name) >= 5:
            i = rng.randrange(1, len(e.name) - 1)
            queries.append((e.name[:i] + e.name[i + 1:], e.id))  # one deletion
    hits = {name: sum(want in top(r, text, 10) for text, want in queries)
            for name, r in (("local", local), ("neo4j", neo))}
    assert hits["neo4j"] > 0.8 * len(queries)  # the comparison means something
    assert hits["local"] >= hits["neo4j"], hits
