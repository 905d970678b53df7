"""The first-load path through Neo4j's offline importer gives the same graph as ordinary ingest."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph import server
from graph.memory_store import MemoryStore
from graph.neo4j_store import Neo4jStore
from ingest.bulk import initial_load
from ingest.pipeline import ingest
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
