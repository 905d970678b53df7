"""Test fixtures: one throwaway Neo4j server per test session, and stores to run contracts over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from graph import server
from graph.memory_store import MemoryStore
from graph.neo4j_store import Neo4jStore
from graph.store import GraphStore
from ingest.pipeline import ingest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[server.ServerInfo]:
    """A real Neo4j on a free loopback port with its own data directory, stopped at the end.
    Tests never use a server someone left running, nor NEO4J_URI."""
    home = tmp_path_factory.mktemp("neo4j-home")
    with server.running(home, pagecache="256m") as info:
        yield info


@pytest.fixture(scope="session")
def _neo4j_session_store(neo4j_server: server.ServerInfo) -> Iterator[Neo4jStore]:
    store = Neo4jStore.connect(neo4j_server.uri)
    store.apply_schema()
    yield store
    store.close()


@pytest.fixture(scope="session")
def shared_neo4j(_neo4j_session_store: Neo4jStore) -> Neo4jStore:
    """The session's Neo4j as it is, for module-scoped fixtures that load their own data."""
    return _neo4j_session_store


@pytest.fixture
def neo4j_store(_neo4j_session_store: Neo4jStore) -> Neo4jStore:
    """The session's Neo4j, emptied (schema kept) before each test."""
    _neo4j_session_store.clear()
    return _neo4j_session_store


@pytest.fixture(params=["memory", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def any_store(request: pytest.FixtureRequest) -> GraphStore:
    """An empty store with its schema applied: every GraphStore implementation in turn."""
    if request.param == "memory":
        return MemoryStore()
    store: Neo4jStore = request.getfixturevalue("neo4j_store")
    return store


@pytest.fixture(scope="module")
def memory_catalog() -> MemoryStore:
    """The fixture catalog in a MemoryStore, shared by a module's tests (read only)."""
    store = MemoryStore()
    ingest(store, [str(FIXTURES / "catalog.jsonl")])
    return store


def load_fixture_catalog(store: Neo4jStore) -> None:
    """Empty the store, ingest the fixture catalog and wait for the full-text index."""
    store.clear()
    ingest(store, [str(FIXTURES / "catalog.jsonl")])
    store.driver.execute_query("CALL db.index.fulltext.awaitEventuallyConsistentIndexRefresh()")


@pytest.fixture
def neo4j_catalog(_neo4j_session_store: Neo4jStore) -> Neo4jStore:
    """The session's Neo4j holding exactly the fixture catalog, full-text index refreshed."""
    load_fixture_catalog(_neo4j_session_store)
    return _neo4j_session_store


@pytest.fixture
def own_neo4j(tmp_path: Path) -> Iterator[tuple[Path, server.ServerInfo]]:
    """A Neo4j of the test's own (to kill or freeze) holding the fixture catalog."""
    home = tmp_path / "neo4j"
    info = server.start(home, server.free_port(), pagecache="128m")
    try:
        store = Neo4jStore.connect(info.uri)
        store.apply_schema()
        ingest(store, [str(FIXTURES / "catalog.jsonl")])
        store.close()
        yield home, info
    finally:
        server.stop(home)
