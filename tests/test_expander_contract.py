"""One contract over every expander: at most k, best first, real ids, no seeds back, a reason."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from graph.neo4j_store import Neo4jStore
from graph.snapshot import Snapshot
from graph.store import GraphStore
from retrievers.base import Candidate, Expander
from retrievers.related import RelatedExpander
from retrievers.related_local import LocalRelatedExpander
from tests.test_graph_embed import quick_expander

SEEDS = [["ar:taylor-swift"], ["ar:u2", "ar:ac-dc"], ["g:rock"], ["so:does-not-exist"]]

# name -> (which catalog it reads, how to build it). A new expander is one line here.
FACTORIES: dict[str, tuple[str, Callable[[GraphStore], Expander]]] = {
    "related": ("neo4j", lambda s: RelatedExpander(s)),  # type: ignore[arg-type]
    "related_local": ("memory", lambda s: LocalRelatedExpander(Snapshot.read(s))),
    "kge": ("memory", lambda s: quick_expander(s, "rotate")),  # trained once per store
    "gnn": ("memory", lambda s: quick_expander(s, "lightgcn")),
}


@pytest.fixture(params=[pytest.param(n, marks=pytest.mark.neo4j) if FACTORIES[n][0] == "neo4j"
                        else n for n in FACTORIES])
def expander_and_store(request: pytest.FixtureRequest) -> tuple[Expander, GraphStore]:
    where, factory = FACTORIES[request.param]
    store: GraphStore = request.getfixturevalue(
        "neo4j_catalog" if where == "neo4j" else "memory_catalog")
    return factory(store), store


def _seeds(ids: list[str]) -> list[Candidate]:
    return [Candidate(i, 1.0, "fuzzy") for i in ids]


@pytest.mark.parametrize("k", [0, 1, 10])
def test_expander_contract(expander_and_store: tuple[Expander, GraphStore], k: int) -> None:
    expander, store = expander_and_store
    for ids in SEEDS:
        out = expander.expand(_seeds(ids), k)
        assert len(out) <= k
        assert [c.score for c in out] == sorted((c.score for c in out), reverse=True)
        found = [c.entity_id for c in out]
        assert len(set(found)) == len(found)
        assert len(store.get(found)) == len(found)
        assert not set(found) & set(ids)
        assert all(c.source == expander.name and c.reason for c in out)
        assert expander.expand(_seeds(ids), k) == out
    assert expander.expand([], 5) == []


@pytest.mark.neo4j
@pytest.mark.parametrize("local", [False, True], ids=["cypher", "in-process"])
def test_related_artists_come_with_their_path(neo4j_catalog: Neo4jStore, local: bool) -> None:
    """RELATED_TO either way, each related artist once."""
    expander = LocalRelatedExpander(Snapshot.read(neo4j_catalog)) if local else RelatedExpander(
        neo4j_catalog)
    out = expander.expand(_seeds(["ar:taylor-swift"]), 50, kinds=["artist"])
    related = {r.dst for r in neo4j_catalog.relations("ar:taylor-swift")
               if r.type.value == "RELATED_TO"} | {
        r.src for r in neo4j_catalog.relations("ar:taylor-swift")
        if r.type.value == "RELATED_TO"}
    related.discard("ar:taylor-swift")
    assert related
    assert sorted(c.entity_id for c in out) == sorted(related)
    assert all(c.reason == "related artist Taylor Swift" for c in out)
