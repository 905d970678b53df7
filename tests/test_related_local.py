"""The in-process related expander gives the Cypher expander's answers: same ids, order, scores
and reasons, over every entity of the fixture catalog and of a seeded synthetic one."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from graph.neo4j_store import Neo4jStore
from graph.snapshot import Snapshot
from ingest.pipeline import ingest
from ingest.synthetic import generate
from retrievers.base import Candidate
from retrievers.related import RelatedExpander
from retrievers.related_local import LocalRelatedExpander
from tests.test_ingest import write_feed

pytestmark = pytest.mark.neo4j


def _seeds(ids: list[str]) -> list[Candidate]:
    return [Candidate(i, 1.0, "fused") for i in ids]


def _same_answers(store: Neo4jStore, seed_sets: list[list[str]], per_branch: int) -> int:
    cypher = RelatedExpander(store, per_branch=per_branch)
    local = LocalRelatedExpander(Snapshot.read(store), per_branch=per_branch)
    compared = 0
    for ids in seed_sets:
        for k, kinds in ((60, ()), (10, ()), (30, ("song",)), (20, ("artist", "album"))):
            want = cypher.expand(_seeds(ids), k, kinds=kinds)
            got = local.expand(_seeds(ids), k, kinds=kinds)
            assert [(c.entity_id, c.reason) for c in got] == \
                [(c.entity_id, c.reason) for c in want], (ids, k, kinds)
            assert [c.score for c in got] == pytest.approx([c.score for c in want], abs=1e-12)
            compared += len(want)
    return compared


def test_same_as_cypher_on_the_fixture_catalog(neo4j_catalog: Neo4jStore) -> None:
    ids = sorted(e.id for e in neo4j_catalog.iter_entities())
    rng = random.Random(5)
    seed_sets = [[i] for i in ids] + [rng.sample(ids, 3) for _ in range(60)] + [
        ["ar:taylor-swift", "so:does-not-exist"]]
    # a cap of 3 makes every capped branch cut, so the tie-breaks at the cut are compared too
    for cap in (25, 3):
        assert _same_answers(neo4j_catalog, seed_sets, cap) > 1_000


def test_same_as_cypher_on_a_synthetic_catalog(neo4j_store: Neo4jStore, tmp_path: Path) -> None:
    ingest(neo4j_store, [write_feed(tmp_path / "syn.jsonl", list(generate(4_000, seed=11)))])
    by_kind: dict[str, list[str]] = {}
    for e in neo4j_store.iter_entities():
        by_kind.setdefault(e.kind.value, []).append(e.id)
    rng = random.Random(9)
    seed_sets = [[i] for ids in by_kind.values()
                 for i in rng.sample(sorted(ids), min(25, len(ids)))]
    seed_sets += [[rng.choice(sorted(by_kind[k])) for k in rng.sample(sorted(by_kind), 3)]
                  for _ in range(40)]
    assert _same_answers(neo4j_store, seed_sets, 25) > 1_000

