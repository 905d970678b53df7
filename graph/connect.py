"""Which Neo4j to use: `NEO4J_URI` when set, else the local server that `tunegraph neo4j` runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from graph import server
from graph.neo4j_store import Neo4jStore


@dataclass(frozen=True, slots=True)
class Connection:
    uri: str
    user: str | None
    password: str | None
    database: str


def resolve(home: Path | None = None) -> Connection:
    """The connection settings, or a ServerError saying how to get a server."""
    database = os.environ.get("NEO4J_DATABASE", "neo4j")
    uri = os.environ.get("NEO4J_URI")
    if uri:
        return Connection(uri, os.environ.get("NEO4J_USER"), os.environ.get("NEO4J_PASSWORD"),
                          database)
    home = home or server.default_home()
    info = server.status(home)
    if info is None:
        raise server.ServerError(
            f"no Neo4j is running for {home}: start one with `tunegraph neo4j start` "
            "or set NEO4J_URI to use another server")
    return Connection(info.uri, None, None, database)


def open_store(home: Path | None = None, *, retry_s: float = 30.0,
               connect_timeout_s: float = 30.0) -> Neo4jStore:
    c = resolve(home)
    return Neo4jStore.connect(c.uri, c.user, c.password, c.database, retry_s=retry_s,
                              connect_timeout_s=connect_timeout_s)
