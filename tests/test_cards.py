"""Catalog snapshots and result cards: one read of the catalog, the cards every page shows."""

from __future__ import annotations

import re

import pytest

from api.cards import Cards
from graph.memory_store import MemoryStore
from graph.model import EXTRA_PROPS, Kind
from graph.neo4j_store import ENTITY_PROJECTION, Neo4jStore
from graph.snapshot import Snapshot


def test_reads_project_every_entity_property() -> None:
    keys = set(re.findall(r"\.(\w+)", ENTITY_PROJECTION))
    assert keys == {"id", "kind", "name", "aliases", "description", "popularity",
                    *EXTRA_PROPS}


@pytest.mark.neo4j
def test_snapshot_of_neo4j_equals_the_memory_store(neo4j_catalog: Neo4jStore,
                                                   memory_catalog: MemoryStore) -> None:
    neo4j_catalog.driver.execute_query(  # serving data on a node must not leak into reads
        "MATCH (n:Entity {id: 'ar:u2'}) SET n.text_vec = [0.5, 0.25]")
    a, b = Snapshot.read(neo4j_catalog), Snapshot.read(memory_catalog)
    assert a.entities == b.entities
    assert a.relations == b.relations
    assert a.get(["ar:u2", "nope"])[0].name == "U2"


def test_cards_describe_and_relate(memory_catalog: MemoryStore) -> None:
    cards = Cards.build(Snapshot.read(memory_catalog))
    assert len(cards) == 201
    swift = cards.get("ar:taylor-swift")
    assert swift is not None
    assert swift.kind is Kind.ARTIST
    assert swift.subtitle.startswith("Artist · ")
    assert swift.related_label == "top songs"
    songs = [cards.get(i) for i in swift.related]
    assert len(songs) == 3
    pops = [s.popularity for s in songs if s is not None]
    assert pops == sorted(pops, reverse=True)
    song = songs[0]
    assert song is not None
    assert song.subtitle.startswith("Song · Taylor Swift · ")
    assert song.related_label == "album"
    assert cards.get(song.related[0]).kind is Kind.ALBUM  # type: ignore[union-attr]
    assert song.genres  # a song without genres of its own takes its artists'
    podcast = next(c for c in (cards.get(e.id) for e in memory_catalog.iter_entities())
                   if c is not None and c.kind is Kind.PODCAST and c.related)
    episodes = [cards.get(i) for i in podcast.related]
    assert all(e is not None and e.kind is Kind.EPISODE for e in episodes)
    dates = [str(e.subtitle.rsplit(" · ", 1)[-1]) for e in episodes if e is not None]
    assert dates == sorted(dates, reverse=True)  # latest first
