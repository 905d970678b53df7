"""Tests for graph.server against a real local Neo4j: start, reuse, stop, restart, failures."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import GraphDatabase

from graph import server


def _query(uri: str, cypher: str) -> int:
    with GraphDatabase.driver(uri, auth=None) as driver:
        records, _, _ = driver.execute_query(cypher, database_="neo4j")
        return int(records[0][0])


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[server.ServerInfo]:
    """One server shared by this module's tests (each start costs about 10 s)."""
    home = tmp_path_factory.mktemp("server-home")
    with server.running(home, pagecache="128m", max_heap="1g") as info:
        yield info
    assert server.status(home) is None


@pytest.mark.neo4j
def test_answers_and_reports_status(srv: server.ServerInfo) -> None:
    assert srv.uri == f"bolt://127.0.0.1:{srv.port}"
    assert _query(srv.uri, "RETURN 1") == 1
    assert server.status(srv.home) == srv
    state = json.loads((srv.home / "server.json").read_text())
    assert state == {"pid": srv.pid, "port": srv.port}
    assert "ready on" in (srv.home / "logs" / "server.log").read_text()


@pytest.mark.neo4j
def test_node_count(srv: server.ServerInfo) -> None:
    before = server.node_count(srv.uri)
    _query(srv.uri, "CREATE (n:Probe {at: timestamp()}) RETURN 1")
    assert server.node_count(srv.uri) == before + 1


@pytest.mark.neo4j
def test_start_on_running_home_returns_the_same_server(srv: server.ServerInfo) -> None:
    again = server.start(srv.home, server.free_port())
    assert again == srv


@pytest.mark.neo4j
def test_occupied_port_is_refused(srv: server.ServerInfo, tmp_path: Path) -> None:
    home = tmp_path / "other"
    with pytest.raises(server.ServerError, match=rf"port {srv.port} .* already in use"):
        server.start(home, srv.port)
    assert server.status(home) is None
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(server.ServerError, match=rf"port {port} .* already in use"):
            server.start(home, port)
    assert not (home / "server.json").exists()


@pytest.mark.neo4j
def test_failed_start_quotes_the_log(tmp_path: Path) -> None:
    with pytest.raises(server.ServerError, match="exited during start") as failure:
        server.start(tmp_path, server.free_port(), pagecache="lots", timeout=60)
    assert "lots" in str(failure.value)
    assert str(tmp_path / "logs" / "server.log") in str(failure.value)
    assert server.status(tmp_path) is None
    assert not (tmp_path / "server.json").exists()


@pytest.mark.neo4j
def test_data_survives_stop_and_start(tmp_path: Path) -> None:
    info = server.start(tmp_path, server.free_port(), pagecache="128m", max_heap="1g")
    _query(info.uri, "CREATE (:Keep {name: 'kept'}) RETURN 1")
    assert server.stop(tmp_path) is True
    assert server.status(tmp_path) is None
    assert server.stop(tmp_path) is False

    info = server.start(tmp_path, server.free_port(), pagecache="128m", max_heap="1g")
    try:
        assert server.node_count(info.uri) == 1
        assert _query(info.uri, "MATCH (k:Keep {name: 'kept'}) RETURN count(k)") == 1
    finally:
        assert server.kill(tmp_path) is True
    assert server.status(tmp_path) is None
    assert server.kill(tmp_path) is False


def test_stop_with_nothing_running(tmp_path: Path) -> None:
    assert server.stop(tmp_path) is False
    assert server.status(tmp_path) is None


def test_stale_state_file_is_cleaned_up(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / "server.json").write_text(json.dumps({"pid": gone.pid, "port": 1}))
    assert server.status(tmp_path) is None
    assert not (tmp_path / "server.json").exists()
    assert server.stop(tmp_path) is False
