"""The service serves graph-embedding neighbours ("kge") once `tunegraph train graph` has saved a
model: trained here, briefly, on the fixture catalog in the real Neo4j."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.service import Service
from graph import server
from graph.neo4j_store import Neo4jStore
from retrievers.graph_split import split_graph
from retrievers.graph_train import train
from tests.api_support import TEST_SETTINGS, client_for, running_service
from tests.conftest import load_fixture_catalog
from tests.test_graph_embed import quick, torch_threads

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]


@pytest.fixture(scope="module")
def client(neo4j_server: server.ServerInfo, shared_neo4j: Neo4jStore,
           tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Service, TestClient[Any]]]:
    store = shared_neo4j
    load_fixture_catalog(store)
    out: Path = tmp_path_factory.mktemp("embeddings")
    with torch_threads(1):
        train(split_graph(store, holdout=0.0, seed=0), quick("rotate")).save(out / "rotate")
    settings = dataclasses.replace(TEST_SETTINGS, embeddings_dir=out)
    with running_service(neo4j_server.uri, settings) as service, client_for(service) as c:
        yield service, c


def test_saved_embeddings_become_a_served_expander(
        client: tuple[Service, TestClient[Any]]) -> None:
    service, c = client
    assert "kge" in service.indexes.expanders
    assert "kge" in service.indexes.build_s
    assert service.learner is not None
    assert "kge" in service.learner.space.names
    r = c.get("/v1/search", params={"q": "taylor swift", "debug": "true"})
    assert r.status_code == 200, r.text
    kge = r.json()["debug"]["sources"]["kge"]
    assert kge["status"] == "ok", kge
    assert kge["found"] > 0, kge


def test_related_artists_give_embedding_neighbours_as_a_reason(
        client: tuple[Service, TestClient[Any]]) -> None:
    r = client[1].get("/v1/artists/ar:taylor-swift/related", params={"limit": 50})
    assert r.status_code == 200, r.text
    reasons = [why for item in r.json()["items"] for why in item["reasons"]]
    assert any(why.startswith("graph-embedding neighbour (kge, #") for why in reasons), reasons
