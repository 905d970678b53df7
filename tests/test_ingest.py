"""Feed ingest over every store: landing, idempotence, updates, deletes, rejections, resume."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from graph.memory_store import MemoryStore
from graph.model import EntityRecord, Kind, RelType
from graph.neo4j_store import Neo4jStore
from graph.store import GraphStore
from ingest.pipeline import ingest

CATALOG: list[dict[str, Any]] = [
    {"kind": "genre", "id": "g:pop", "name": "pop"},
    {"kind": "genre", "id": "g:dance-pop", "name": "dance pop", "parent": "g:pop"},
    {"kind": "genre", "id": "g:true-crime", "name": "true crime"},
    {"kind": "artist", "id": "ar:1", "name": "Ed Sheeran", "aliases": ["Edward Sheeran"],
     "genres": ["g:pop"], "popularity": 0.93, "related": ["ar:2"]},
    {"kind": "artist", "id": "ar:2", "name": "Taylor Swift", "genres": ["g:pop"],
     "related": [{"id": "ar:1", "weight": 0.7, "source": "lastfm"}]},
    {"kind": "album", "id": "al:1", "name": "Divide", "artists": ["ar:1"],
     "release_date": "2017-03-03"},
    {"kind": "song", "id": "so:1", "name": "Shape of You", "artists": ["ar:1"], "album": "al:1",
     "genres": ["g:dance-pop"], "duration_ms": 233713, "popularity": 0.95},
    {"kind": "song", "id": "so:2", "name": "Perfect", "artists": ["ar:1"], "album": "al:1"},
    {"kind": "playlist", "id": "pl:1", "name": "Pop Remix", "description": "Remixes",
     "songs": ["so:2", "so:1"]},
    {"kind": "podcast", "id": "po:1", "name": "Crime Junkie", "publisher": "audiochuck",
     "genres": ["g:true-crime"], "language": "en"},
    {"kind": "episode", "id": "ep:1", "name": "The Case", "podcast": "po:1",
     "duration_ms": 2739000},
]


def write_feed(path: Path, records: Sequence[dict[str, Any] | str]) -> str:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_catalog_lands_with_every_edge(any_store: GraphStore, tmp_path: Path) -> None:
    report = ingest(any_store, [write_feed(tmp_path / "a.jsonl", CATALOG)])
    assert report.rejections == []
    assert (report.created, report.updated, report.unchanged) == (len(CATALOG), 0, 0)
    counts = any_store.counts()
    assert counts.nodes == {Kind.GENRE: 3, Kind.ARTIST: 2, Kind.ALBUM: 1, Kind.SONG: 2,
                            Kind.PLAYLIST: 1, Kind.PODCAST: 1, Kind.EPISODE: 1}
    assert counts.relationships == {
        RelType.SUBGENRE_OF: 1, RelType.IN_GENRE: 4, RelType.RELATED_TO: 2, RelType.BY: 1,
        RelType.PERFORMED_BY: 2, RelType.ON_ALBUM: 2, RelType.CONTAINS: 2, RelType.EPISODE_OF: 1}
    assert report.relationships == counts.total_relationships == 15
    contains = [r for r in any_store.relations("pl:1") if r.type is RelType.CONTAINS]
    assert {r.dst: r.props["position"] for r in contains} == {"so:2": 0, "so:1": 1}
    related = [r for r in any_store.relations("ar:2", [RelType.RELATED_TO]) if r.src == "ar:2"]
    assert related[0].props == {"weight": 0.7, "source": "lastfm"}
    [song] = any_store.get(["so:1"])
    assert song.extra == {"duration_ms": 233713}
    assert song.popularity == 0.95
    assert any_store.catalog_version() == 1


def test_second_ingest_changes_nothing(any_store: GraphStore, tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "a.jsonl", CATALOG)
    ingest(any_store, [feed])
    before = any_store.content_hash()
    again = ingest(any_store, [feed])
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(CATALOG))
    assert again.catalog_version is None
    assert any_store.catalog_version() == 1
    assert any_store.content_hash() == before


def test_update_replaces_owned_edges_and_keeps_incoming(any_store: GraphStore,
                                                        tmp_path: Path) -> None:
    ingest(any_store, [write_feed(tmp_path / "a.jsonl", CATALOG)])
    changed = {**CATALOG[6], "artists": ["ar:2"], "name": "Shape of You (Remix)"}
    report = ingest(any_store, [write_feed(tmp_path / "b.jsonl", [changed])])
    assert (report.created, report.updated) == (0, 1)
    rels = any_store.relations("so:1")
    assert {(r.src, r.type, r.dst) for r in rels} == {
        ("so:1", RelType.PERFORMED_BY, "ar:2"), ("so:1", RelType.ON_ALBUM, "al:1"),
        ("so:1", RelType.IN_GENRE, "g:dance-pop"), ("pl:1", RelType.CONTAINS, "so:1")}
    assert any_store.get(["so:1"])[0].name == "Shape of You (Remix)"
    assert any_store.catalog_version() == 2


def test_delete_removes_node_and_edges_and_readd_restores(any_store: GraphStore,
                                                          tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "a.jsonl", CATALOG)
    ingest(any_store, [feed])
    original = any_store.content_hash()
    report = ingest(any_store, [write_feed(tmp_path / "d.jsonl", ['{"op":"delete","id":"al:1"}'])])
    assert report.deleted == 1
    assert report.rejections == []
    assert any_store.get(["al:1"]) == []
    assert not any(r.type is RelType.ON_ALBUM for r in any_store.relations("so:1"))
    assert any_store.counts().relationships.get(RelType.ON_ALBUM, 0) == 0
    # The songs that pointed at the album are rewritten when the catalog comes back whole.
    ingest(any_store, [feed])
    assert any_store.content_hash() == original


def test_bad_references_reject_records_and_cascade(any_store: GraphStore, tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "a.jsonl", [
        *CATALOG,
        {"kind": "album", "id": "al:9", "name": "Ghost", "artists": ["ar:missing"]},
        {"kind": "song", "id": "so:9", "name": "Boo", "album": "al:9"},
        {"kind": "song", "id": "so:8", "name": "Wrong", "album": "ar:1"},
    ])
    report = ingest(any_store, [feed])
    reasons = {r.line: r.reason for r in report.rejections}
    n = len(CATALOG)
    assert reasons == {
        n + 1: "artists[0]: 'ar:missing' is not in this feed or the catalog",
        n + 2: f"album: 'al:9' was rejected (line {n + 1} of {feed})",
        n + 3: "album: 'ar:1' is an artist, expected an album",
    }
    assert report.created == n  # every good record landed
    assert report.unresolved_references == 1
    assert any_store.get(["al:9", "so:9", "so:8"]) == []


def test_kind_change_of_existing_id_is_rejected(any_store: GraphStore, tmp_path: Path) -> None:
    ingest(any_store, [write_feed(tmp_path / "a.jsonl", CATALOG)])
    report = ingest(any_store, [write_feed(tmp_path / "b.jsonl",
                                           [{"kind": "song", "id": "ar:1", "name": "X"}])])
    assert [r.reason for r in report.rejections] == [
        "id 'ar:1' is already an artist; ids are unique across kinds"]
    assert any_store.get(["ar:1"])[0].kind is Kind.ARTIST


def test_last_record_for_an_id_wins(any_store: GraphStore, tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "a.jsonl", [
        CATALOG[0], {"kind": "genre", "id": "g:rock", "name": "rokc"},
        {"kind": "genre", "id": "g:rock", "name": "rock"},
        {"kind": "genre", "id": "g:old", "name": "old"}, {"op": "delete", "id": "g:old"}])
    report = ingest(any_store, [feed])
    assert report.superseded == 2
    assert report.rejections == []
    assert [e.name for e in any_store.get(["g:rock", "g:old"])] == ["rock"]


def test_dry_run_writes_nothing(any_store: GraphStore, tmp_path: Path) -> None:
    report = ingest(any_store, [write_feed(tmp_path / "a.jsonl", CATALOG)], dry_run=True)
    assert report.created == len(CATALOG)
    assert report.rejections == []
    assert any_store.counts().total_nodes == 0
    assert any_store.catalog_version() == 0


class CrashingStore:
    """A real store that fails after a number of phase-2 writes, as a crash would."""

    def __init__(self, inner: GraphStore, fail_after: int) -> None:
        self.inner = inner
        self.left = fail_after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write_relations(self, records: Sequence[EntityRecord], *, fresh: bool = False) -> int:
        if self.left == 0:
            raise ConnectionError("simulated crash")
        self.left -= 1
        return self.inner.write_relations(records, fresh=fresh)


def test_interrupted_ingest_resumes_to_the_same_graph(any_store: GraphStore,
                                                      tmp_path: Path) -> None:
    from ingest.synthetic import generate

    feed = write_feed(tmp_path / "syn.jsonl", list(generate(3_000, seed=3)))
    reference = MemoryStore()
    ingest(reference, [feed], batch_size=500)
    with pytest.raises(ConnectionError):
        ingest(CrashingStore(any_store, fail_after=2), [feed], batch_size=500)
    half = any_store.existing([e.id for e in reference.iter_entities()])
    assert any(h.content_hash is None for h in half.values())  # really cut short
    resumed = ingest(any_store, [feed], batch_size=500)
    assert resumed.rejections == []
    assert resumed.updated > 0
    assert any_store.content_hash() == reference.content_hash()
    assert any_store.counts() == reference.counts()


@pytest.mark.neo4j
def test_neo4j_and_memory_hold_the_same_graph(neo4j_store: Neo4jStore, tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "a.jsonl", CATALOG)
    memory = MemoryStore()
    ingest(memory, [feed])
    ingest(neo4j_store, [feed])
    assert neo4j_store.content_hash() == memory.content_hash()
    assert list(neo4j_store.iter_relations()) == list(memory.iter_relations())
