"""In-process sources in a union plan run at the full budget and fill the room overlap leaves."""

from __future__ import annotations

from dataclasses import replace

import pytest

from graph import server
from graph.neo4j_store import Neo4jStore
from retrievers.base import Query
from tests.api_support import TEST_SETTINGS, running_service

pytestmark = pytest.mark.neo4j


def test_in_process_sources_fill_the_room_past_their_k(neo4j_catalog: Neo4jStore,
                                                       neo4j_server: server.ServerInfo) -> None:
    """fixed:equal gives each first-stage source 12 of 60; their overlap leaves room, which the
    next results of understand or text (run at 60) help fill, after their own top 12."""
    settings = replace(TEST_SETTINGS, policy="fixed:equal", cache_entries=0)
    with running_service(neo4j_server.uri, settings) as service:
        searcher, idx = service.searcher, service.indexes
        assert searcher is not None
        got = searcher.search("rock", user=None, limit=20, kinds=frozenset())
        ks = dict(got.plan.ks)
        lists = got.record.candidates
        union = {e for ids in lists.values() for e in ids}
        deeper = []
        for name in ("understand", "text"):
            k = ks.get(name, 0)
            if k == 0 or name not in idx.retrievers:
                continue
            alone = [c.entity_id for c in idx.retrievers[name].retrieve(Query("rock"), 60)]
            assert lists[name][:k] == alone[:k]  # its own top k first: what rewards credit
            assert set(lists[name]) <= set(alone)
            if len(lists[name]) > k:
                deeper.append(name)
        assert len(union) <= got.plan.budget
        assert deeper, (ks, {n: len(ids) for n, ids in lists.items()})


def test_understanding_fills_the_room_of_a_plan_that_leaves_it_out(
        neo4j_catalog: Neo4jStore, neo4j_server: server.ServerInfo) -> None:
    """Its answer is nearly free once the readings are made, so a plan without it (here fuzzy
    names alone, which finds fewer than the budget for "rock") still gets its results as filler,
    within the budget."""
    settings = replace(TEST_SETTINGS, policy="fixed:single:fuzzy", cache_entries=0)
    with running_service(neo4j_server.uri, settings) as service:
        searcher, idx = service.searcher, service.indexes
        assert searcher is not None
        got = searcher.search("rock", user=None, limit=20, kinds=frozenset())
        assert dict(got.plan.ks).get("understand", 0) == 0
        lists = got.record.candidates
        assert len(lists["fuzzy"]) < got.plan.budget
        alone = [c.entity_id for c in idx.retrievers["understand"].retrieve(Query("rock"), 60)]
        fill = lists.get("understand", [])
        assert fill, {n: len(ids) for n, ids in lists.items()}
        assert set(fill) <= set(alone)
        assert len({e for ids in lists.values() for e in ids}) <= got.plan.budget
