"""The first-load path through Neo4j's offline importer gives the same graph as ordinary ingest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph import server
from graph.memory_store import MemoryStore
from graph.neo4j_store import Neo4jStore
from ingest.bulk import import_args, initial_load, write_csv
from ingest.pipeline import IngestReport, ingest, prepare
from ingest.records import Item, to_record
from tests.conftest import FIXTURES


@pytest.mark.neo4j
@pytest.mark.slow
def test_initial_load_imports_then_ingests(tmp_path: Path) -> None:
    feed = str(FIXTURES / "catalog.jsonl")
    reference = MemoryStore()
    ingest(reference, [feed])
    home = tmp_path / "neo4j"
    try:
        first = initial_load(home, server.free_port(), [feed])
        assert first.rejections == []
        assert first.created == reference.counts().total_nodes
        assert first.relationships == reference.counts().total_relationships
        info = server.status(home)
        assert info is not None
        store = Neo4jStore.connect(info.uri)
        try:
            assert store.content_hash() == reference.content_hash()
            assert store.catalog_version() == 1
        finally:
            store.close()
        # The database is no longer empty: the same call is now an ordinary, idempotent ingest.
        second = initial_load(home, info.port, [feed])
        assert second.unchanged == first.created
        assert second.created == 0
        assert server.status(home) == info  # no restart this time
    finally:
        server.stop(home)


TRICKY: list[dict[str, object]] = [
    {"kind": "genre", "id": "g:a,b", "name": 'Genre "with" quotes, and commas'},
    {"kind": "genre", "id": 'g:"q"', "name": "Sub\u00e9", "parent": "g:a,b"},
    {"kind": "artist", "id": "ar:1", "name": "Bj\u00f6rk", "aliases": ["Bjork", 'B "j"', "x,y"],
     "genres": ["g:a,b", 'g:"q"'], "popularity": 1,
     "related": ["ar:2", {"id": "ar:2", "weight": 0.5}, {"id": "ar:3", "source": "last,fm"}]},
    {"kind": "artist", "id": "ar:2", "name": "Two\n", "description": "line one\nline two\r\n"},
    {"kind": "artist", "id": "ar:3", "name": "Three", "description": '"quoted"\n"again"'},
    {"kind": "album", "id": "al:1", "name": "A", "artists": ["ar:1"], "release_date": "2016-02"},
    {"kind": "song", "id": "so:1\n", "name": "ends in a newline", "artists": ["ar:1", "ar:1"],
     "album": "al:1", "duration_ms": 0, "release_date": "1999"},
    {"kind": "song", "id": "so:2", "name": "\u65e5\u672c", "artists": ["ar:2"]},
    {"kind": "playlist", "id": "pl:1", "name": "P", "songs": ["so:2", "so:1\n", "so:2"],
     "description": "tab\there"},
    {"kind": "podcast", "id": "po:1", "name": "Pod", "publisher": "Pub, Inc.", "language": "pt-BR",
     "genres": ["g:a,b"]},
    {"kind": "episode", "id": "ep:1", "name": "E", "podcast": "po:1", "duration_ms": 60000,
     "description": ""},
]


@pytest.mark.neo4j
@pytest.mark.slow
def test_initial_load_keeps_every_awkward_value(tmp_path: Path) -> None:
    """Quotes, commas, line breaks (in names, descriptions and ids), aliases, unicode and edge
    properties survive the CSV files; a later ingest over Bolt finds every record unchanged,
    so the two paths store the same content hashes."""
    feed = tmp_path / "tricky.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in TRICKY), encoding="utf-8")
    reference = MemoryStore()
    assert ingest(reference, [str(feed)]).rejections == []
    home = tmp_path / "neo4j"
    try:
        first = initial_load(home, server.free_port(), [str(feed)], wait_for_indexes=True)
        assert (first.created, first.rejections) == (len(TRICKY), [])
        assert "indexes" in first.stages
        info = server.status(home)
        assert info is not None
        store = Neo4jStore.connect(info.uri)
        try:
            assert store.content_hash() == reference.content_hash()
            assert store.counts() == reference.counts()
            again = ingest(store, [str(feed)])
            assert (again.unchanged, again.created, again.updated) == (len(TRICKY), 0, 0)
        finally:
            store.close()
    finally:
        server.stop(home)


def test_csv_marks_only_files_with_line_breaks(tmp_path: Path) -> None:
    feed = tmp_path / "tricky.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in TRICKY), encoding="utf-8")
    plan = prepare(None, [str(feed)], IngestReport())
    files = write_csv(plan.created, tmp_path)
    names = sorted(p.name for p in files.multiline)
    # ar:2's name and description, ar:3's description; so:1's id in its edges and in the
    # playlist's; the tab is no line break.
    assert names == ["nodes-artist.csv", "nodes-song.csv", "rels-CONTAINS.csv",
                     "rels-ON_ALBUM.csv", "rels-PERFORMED_BY.csv"]
    args = import_args(files, tmp_path / "report")
    assert "--multiline-fields-format=v2" in args
    assert files.relationships == reference_relationships(plan.created)


def reference_relationships(items: list[Item]) -> int:
    return sum(len(to_record(i).relations) for i in items)


@pytest.mark.neo4j
@pytest.mark.slow
def test_initial_load_into_a_home_whose_path_has_a_comma(tmp_path: Path) -> None:
    """neo4j-admin splits its file lists on commas; the load must not depend on the path."""
    feed = str(FIXTURES / "catalog.jsonl")
    home = tmp_path / "generated 1,000" / "neo4j"
    try:
        report = initial_load(home, server.free_port(), [feed])
        assert report.rejections == []
        assert report.created > 0
        info = server.status(home)
        assert info is not None
        store = Neo4jStore.connect(info.uri)
        try:
            assert store.counts().total_nodes == report.created
        finally:
            store.close()
    finally:
        server.stop(home)
