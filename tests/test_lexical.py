"""The lexical path on the fixture catalog in the real Neo4j: misspelled names at rank 1, any
subset of sources, kinds asked for by the query, and the fitted calibration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graph.memory_store import MemoryStore
from graph.model import Kind
from graph.neo4j_store import Neo4jStore
from retrievers.base import Query, Retriever
from retrievers.fusion import Calibrator
from retrievers.lexical import CALIBRATION, DEFAULT_K, SOURCES, LexicalPath

pytestmark = pytest.mark.neo4j

MISSPELLED = [("tayler swift", "ar:taylor-swift"), ("ed sheeren", "ar:ed-sheeran"),
              ("Beatles, The", "ar:the-beatles"), ("bjork", "ar:bjork"),
              ("beyonse", "ar:beyonce"), ("radiohed", "ar:radiohead"),
              ("led zepelin", "ar:led-zeppelin"), ("pinkfloyd", "ar:pink-floyd"),
              ("Ellie Goulding and Her Band", "ar:ellie-goulding"), ("sigur ros", "ar:sigur-ros"),
              ("cold play", "ar:coldplay"), ("depesh mode", "ar:depeche-mode")]


@pytest.fixture
def path(neo4j_catalog: Neo4jStore) -> Iterator[LexicalPath]:
    lexical = LexicalPath.build(neo4j_catalog)
    yield lexical
    lexical.close()


def top(path: LexicalPath, text: str, k: int = 10) -> list[str]:
    return [f.entity_id for f in path.search(Query(text), k).fused]


def test_misspelled_artists_rank_first(path: LexicalPath) -> None:
    assert set(path.sources) == set(SOURCES)
    for text, expected in MISSPELLED:
        assert top(path, text)[:1] == [expected], text


def test_runs_any_subset_of_sources_with_its_own_k(path: LexicalPath) -> None:
    full = path.search(Query("tayler swift"), 10)
    assert set(full.lists) == set(SOURCES)
    assert all(len(v) <= DEFAULT_K for v in full.lists.values())
    assert set(full.ms) >= set(SOURCES)
    for plan in ({"fuzzy": 5}, {"fulltext": 3}, {"understand": 4, "fulltext": 2}):
        got = path.search(Query("tayler swift"), 10, plan)
        assert set(got.lists) == set(plan)
        assert all(len(got.lists[n]) <= k for n, k in plan.items())
        assert {s for f in got.fused for s in f.sources} <= set(plan)
    assert path.search(Query("tayler swift"), 10, {}).fused == []
    lists = {n: full.lists[n] for n in ("fuzzy", "understand")}
    assert path.fuse(lists, 3, full.readings) == path.fuse(lists, 3, full.readings)
    assert len(path.fuse(lists, 3, full.readings)) == 3


def test_kind_words_and_artist_plus_song(path: LexicalPath, neo4j_catalog: Neo4jStore) -> None:
    songs = top(path, "songs by tayler swift", 5)
    assert {e.kind for e in neo4j_catalog.get(songs)} == {Kind.SONG}
    [song] = neo4j_catalog.get(top(path, "tayler swift lover", 1))
    assert "Lover" in song.name
    assert path.understand is not None
    # the fixture holds two true-crime podcasts, and albums that match a word or two
    assert set(top(path, "true crime podcast", 2)) == {"po:23", "po:261"}


def test_is_a_retriever_and_uses_the_fitted_calibration(path: LexicalPath) -> None:
    assert isinstance(path, Retriever)
    assert path.calibrator.models == CALIBRATION
    cands = path.retrieve(Query("ed sheeren"), 5)
    assert cands[0].entity_id == "ar:ed-sheeran"
    assert {c.source for c in cands} == {"lexical"}
    assert "fuzzy" in cands[0].reason
    assert path.retrieve(Query("ed sheeren"), 0) == []
    # an unfitted calibrator trusts ranks only: calibration is what puts the artist first
    assert Calibrator().models == {}


def test_builds_without_full_text_on_a_memory_store(memory_catalog: MemoryStore) -> None:
    lexical = LexicalPath.build(memory_catalog)
    try:
        assert set(lexical.sources) == {"fuzzy", "understand"}
        assert top(lexical, "tayler swift")[:1] == ["ar:taylor-swift"]
    finally:
        lexical.close()
