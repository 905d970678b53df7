"""The query memory: takes are shared through the graph, decay, and lift a query's target."""

from __future__ import annotations

import pytest

from graph.memory_store import MemoryStore
from graph.model import Kind
from graph.neo4j_store import Neo4jStore
from retrievers.base import Query
from retrievers.memory import (
    HALF_LIFE_S,
    InProcessMemoryLog,
    MemoryRetriever,
    Neo4jMemoryLog,
    query_key,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_query_key_folds_case_accents_and_punctuation() -> None:
    assert query_key("  Björk!! ") == query_key("bjork") == "bjork"
    assert query_key("AC/DC") == "ac dc"
    assert query_key("!!!") == ""


def test_cold_start_knows_names_and_artist_song_pairs(memory_catalog: MemoryStore) -> None:
    memory = MemoryRetriever.build(memory_catalog, InProcessMemoryLog())
    assert memory.retrieve(Query("Taylor Swift"), 3)[0].entity_id == "ar:taylor-swift"
    [song] = [e for e in memory_catalog.iter_entities() if e.kind is Kind.SONG
              and e.name == "Shape of You"][:1]
    top = memory.retrieve(Query("ed sheeran shape of you"), 3)
    assert top[0].entity_id == song.id
    assert top[0].reason == "predicted query"


def test_a_take_lifts_the_target_and_decays(memory_catalog: MemoryStore) -> None:
    clock = Clock()
    memory = MemoryRetriever.build(memory_catalog, InProcessMemoryLog(), clock=clock)
    assert memory.retrieve(Query("the boss"), 5) == []  # nothing known yet
    memory.record("The Boss", "ar:u2")
    [hit] = memory.retrieve(Query("the boss"), 5)
    assert (hit.entity_id, hit.reason) == ("ar:u2", "taken 1 time")
    assert hit.score == pytest.approx(1 / (1 + 1))
    memory.record("the boss!", "ar:u2")
    assert memory.retrieve(Query("THE BOSS"), 5)[0].score == pytest.approx(2 / 3)
    clock.now += HALF_LIFE_S
    assert memory.weights("the boss")["ar:u2"][0] == pytest.approx(1.0)
    assert memory.retrieve(Query("the boss", frozenset({Kind.SONG})), 5) == []
    memory.record("the boss", "so:not-in-catalog")  # never stored or returned
    assert [c.entity_id for c in memory.retrieve(Query("the boss"), 5)] == ["ar:u2"]


@pytest.mark.neo4j
def test_two_processes_share_takes_through_neo4j(neo4j_catalog: Neo4jStore) -> None:
    neo4j_catalog.apply_schema()
    first = MemoryRetriever.build(neo4j_catalog, Neo4jMemoryLog(neo4j_catalog))
    second = MemoryRetriever.build(neo4j_catalog, Neo4jMemoryLog(neo4j_catalog))
    first.record("tay tay", "ar:taylor-swift")
    first.record("tay tay", "ar:taylor-swift")
    assert second.retrieve(Query("tay tay"), 3) == []  # not yet synced
    assert second.refresh() == 1  # one (query, entity) row, holding both takes
    [hit] = second.retrieve(Query("tay tay"), 3)
    assert (hit.entity_id, hit.reason) == ("ar:taylor-swift", "taken 2 times")
    assert hit.score == pytest.approx(2 / 3)
    assert neo4j_catalog.counts().total_nodes == 201  # Query nodes are not catalog entities
