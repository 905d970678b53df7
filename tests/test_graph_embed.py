"""Graph embeddings: the held-out split, the ranking evaluation, training, saving and serving."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from graph import server
from graph.memory_store import MemoryStore
from graph.model import Kind, RelType
from graph.neo4j_store import Neo4jStore
from graph.store import GraphStore
from ingest.pipeline import ingest
from retrievers.base import Candidate
from retrievers.graph_embed import GraphEmbeddingExpander, TrainedEmbeddings
from retrievers.graph_split import (
    FloatArray,
    GraphSplit,
    IntArray,
    Scorer,
    degree_baseline,
    evaluate,
    split_graph,
)
from retrievers.graph_train import TrainConfig, config_for, link_scorer, train
from tests.conftest import FIXTURES

MODELS = ("rotate", "complex", "lightgcn")
RELATED, CONTAINS = "RELATED_TO", "CONTAINS"


def quick(model: str, epochs: int = 20) -> TrainConfig:
    """Settings for the 201-record fixture: small batches, so a few epochs are many steps."""
    return dataclasses.replace(config_for(model, epochs=epochs), batch_size=256)


_QUICK: dict[tuple[int, str], tuple[GraphStore, GraphEmbeddingExpander]] = {}


def quick_expander(store: GraphStore, model: str) -> GraphEmbeddingExpander:
    """An expander over `model` trained briefly on all of `store`, once per store and model
    (the contract test uses this too). The store is kept with it, so its id stays its own."""
    key = (id(store), model)
    if key not in _QUICK:
        with torch_threads(1):
            trained = train(split_graph(store, holdout=0.0, seed=0), quick(model))
        _QUICK[key] = (store, GraphEmbeddingExpander(trained, store))
    return _QUICK[key][1]


class torch_threads:
    """One torch thread inside: the fixture graph is tiny, and on a busy machine more
    threads only wait for each other."""

    def __init__(self, n: int) -> None:
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self) -> None:
        torch.set_num_threads(self.n)

    def __exit__(self, *_: object) -> None:
        torch.set_num_threads(self.before)


@pytest.fixture(scope="module")
def split(memory_catalog: MemoryStore) -> GraphSplit:
    return split_graph(memory_catalog, holdout=0.2, seed=0)


@pytest.fixture(scope="module")
def trained(split: GraphSplit) -> dict[str, TrainedEmbeddings]:
    with torch_threads(1):
        return {m: train(split, quick(m, epochs=10 if m == "complex" else 20)) for m in MODELS}


@pytest.fixture
def own_catalog() -> MemoryStore:
    """A private copy of the fixture catalog, for tests that change it."""
    store = MemoryStore()
    ingest(store, [str(FIXTURES / "catalog.jsonl")])
    return store


def _seeds(*ids: str) -> list[Candidate]:
    return [Candidate(i, 1.0, "fuzzy") for i in ids]


# -- the split --------------------------------------------------------------------------------

def test_split_holds_out_whole_pairs_and_keeps_every_entity_placed(split: GraphSplit) -> None:
    train_pairs = {(int(h), split.relations[int(r)], int(t)) for h, r, t in split.train}
    assert len(train_pairs) == len(split.train)
    for rel, pairs in split.heldout.items():
        assert len(pairs) > 0
        for h, t in pairs:
            assert (h, rel, t) not in train_pairs
            assert (t, rel, h) not in train_pairs  # the reverse co-listening edge goes too
            assert t in split.known[(rel, int(h))]
    placed = set(split.train[:, 0]) | set(split.train[:, 2])
    assert placed == set(range(len(split.ids)))
    for kind, (lo, hi) in split.kind_ranges.items():
        assert set(split.kinds[lo:hi]) == {kind}
    assert sum(hi - lo for lo, hi in split.kind_ranges.values()) == len(split.ids)


def test_split_is_seeded(memory_catalog: MemoryStore, split: GraphSplit) -> None:
    again = split_graph(memory_catalog, holdout=0.2, seed=0)
    other = split_graph(memory_catalog, holdout=0.2, seed=1)
    assert np.array_equal(again.train, split.train)
    assert not np.array_equal(other.heldout[RELATED], split.heldout[RELATED])


# -- the evaluation, on a graph where the answer is known -------------------------------------

def _tiny() -> GraphSplit:
    """Artists at rows 0-4, a playlist at 5, songs at 6-9. Held out: a0 RELATED_TO a1 (a0 is
    also related to a2) and p5 CONTAINS s6 (p5 also contains s7)."""
    kinds = ["artist"] * 5 + ["playlist"] + ["song"] * 4
    i64 = np.int64
    return GraphSplit(
        ids=[f"e{n}" for n in range(10)], kinds=kinds,
        popularity=np.array([0, 0, 0, 0.9, 0.1, 0, 0, 0, 0.2, 0.8], dtype=np.float32),
        kind_ranges={"artist": (0, 5), "playlist": (5, 6), "song": (6, 10)},
        relations=[CONTAINS, RELATED],
        train=np.array([[0, 1, 2], [3, 1, 4], [2, 1, 4], [5, 0, 7], [5, 0, 9]], dtype=i64),
        heldout={RELATED: np.array([[0, 1]], dtype=i64), CONTAINS: np.array([[5, 6]], dtype=i64)},
        known={(RELATED, 0): np.array([1, 2], dtype=i64), (RELATED, 3): np.array([4], dtype=i64),
               (RELATED, 2): np.array([4], dtype=i64),
               (CONTAINS, 5): np.array([6, 7, 9], dtype=i64)},
        seed=0, catalog_version=1)


def _table(scores: dict[str, list[float]]) -> Scorer:
    """A scorer giving every head of a relation the same row of tail scores."""
    def scorer(rel: str, heads: IntArray, span: tuple[int, int]) -> FloatArray:
        row = np.array(scores[rel], dtype=np.float32)
        assert len(row) == span[1] - span[0]
        return np.tile(row, (len(heads), 1))
    return scorer


def test_the_true_tail_scored_highest_ranks_first() -> None:
    # e2 (a known tail), e0 (the head itself) and e7/e9 (known) outscore the truth: filtered.
    m = evaluate(_tiny(), _table({RELATED: [9, 5, 9, 1, 2], CONTAINS: [5, 9, 1, 9]}))
    assert m[f"{RELATED}/mrr"] == m[f"{CONTAINS}/mrr"] == 1.0
    assert m[f"{RELATED}/hits@10"] == 1.0
    assert m[f"{RELATED}/n"] == m[f"{CONTAINS}/n"] == 1.0


def test_ties_count_half_and_better_tails_count_whole() -> None:
    flat = evaluate(_tiny(), _table({RELATED: [0] * 5, CONTAINS: [0] * 4}))
    # RELATED_TO: e3, e4 tie with the truth (e0 is the head, e2 is known): rank 1 + 2/2.
    assert flat[f"{RELATED}/mrr"] == pytest.approx(1 / 2)
    # CONTAINS: only e8 is left to compete, tied: rank 1.5.
    assert flat[f"{CONTAINS}/mrr"] == pytest.approx(1 / 1.5)
    worse = evaluate(_tiny(), _table({RELATED: [0, 1, 0, 2, 3], CONTAINS: [1, 0, 2, 0]}))
    assert worse[f"{RELATED}/mrr"] == pytest.approx(1 / 3)
    assert worse[f"{CONTAINS}/mrr"] == pytest.approx(1 / 2)


def test_degree_baseline_ranks_by_training_tail_degree_then_popularity() -> None:
    m = degree_baseline(_tiny())
    # RELATED_TO tails in training: e2 once, e4 twice; e3 (0.9) beats e1 by popularity, e4
    # by degree; e2 is filtered. The truth e1 is third.
    assert m[f"{RELATED}/mrr"] == pytest.approx(1 / 3)
    # CONTAINS: e7 and e9 are known; e8 has popularity 0.2 over e6's 0: second.
    assert m[f"{CONTAINS}/mrr"] == pytest.approx(1 / 2)


# -- training ---------------------------------------------------------------------------------

def test_every_model_trains_and_reports_its_metrics(trained: dict[str, TrainedEmbeddings],
                                                    split: GraphSplit) -> None:
    for model, t in trained.items():
        assert t.ids == split.ids
        assert t.kinds == split.kinds
        assert t.vectors.dtype == np.float32
        assert np.isfinite(t.vectors).all()
        dim = int(t.config["dim"])
        width = dim if model == "lightgcn" else 2 * dim  # complex, as real pairs
        assert t.vectors.shape == (len(split.ids), width)
        assert t.relation_vectors.shape == (len(t.relations), width)
        assert t.relations == ([] if model == "lightgcn" else split.relations)
        assert t.metrics[f"{RELATED}/n"] == len(split.heldout[RELATED])
        assert 0 < t.metrics[f"{CONTAINS}/mrr"] <= 1
        assert t.train_seconds > 0
        assert t.catalog_version == split.catalog_version


def test_models_learn_the_training_graph(split: GraphSplit,
                                         trained: dict[str, TrainedEmbeddings]) -> None:
    """Scored as the expander scores, the training edges rank far above a model that knows
    nothing (every score alike), whose MRR is about 0.08 and 0.05 here."""
    on_train = dataclasses.replace(split, heldout={
        rel: split.train[split.train[:, 1] == split.relations.index(rel)][:, [0, 2]]
        for rel in (RELATED, CONTAINS)})
    flat = evaluate(on_train, _table({RELATED: [0] * 27, CONTAINS: [0] * 48}))
    for model in ("rotate", "lightgcn"):
        m = evaluate(on_train, link_scorer(trained[model]))
        for rel in (RELATED, CONTAINS):
            assert m[f"{rel}/mrr"] > 3 * flat[f"{rel}/mrr"], (model, rel, m)


@pytest.mark.parametrize("model", ["rotate", "lightgcn"])
def test_training_is_reproducible_with_a_seed(model: str, split: GraphSplit,
                                              trained: dict[str, TrainedEmbeddings],
                                              memory_catalog: MemoryStore) -> None:
    with torch_threads(1):
        again = train(split, quick(model))
        other = train(split_graph(memory_catalog, holdout=0.2, seed=1), quick(model))
    assert np.array_equal(again.vectors, trained[model].vectors)
    assert again.metrics == trained[model].metrics
    assert not np.allclose(other.vectors, trained[model].vectors)


def test_saved_embeddings_load_back_unchanged(trained: dict[str, TrainedEmbeddings],
                                              tmp_path: Path) -> None:
    first = trained["rotate"]
    path = first.save(tmp_path / "rotate")
    trained["lightgcn"].save(path)  # a second save replaces the first whole
    loaded = TrainedEmbeddings.load(path)
    assert loaded.model == "lightgcn"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rotate"]
    first.save(path)
    loaded = TrainedEmbeddings.load(path)
    assert dataclasses.replace(loaded, vectors=first.vectors,
                               relation_vectors=first.relation_vectors) == first
    assert np.array_equal(loaded.vectors, first.vectors)
    assert np.array_equal(loaded.relation_vectors, first.relation_vectors)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["catalog_version"] == first.catalog_version
    assert meta["seed"] == 0


# -- serving ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "name"), [("rotate", "kge"), ("lightgcn", "gnn")])
def test_expander_returns_same_kind_neighbours_without_the_seeds(
        model: str, name: str, memory_catalog: MemoryStore) -> None:
    expander = quick_expander(memory_catalog, model)
    assert expander.name == name
    out = expander.expand(_seeds("ar:taylor-swift", "ar:katy-perry"), 8)
    assert len(out) == 8
    found = memory_catalog.get([c.entity_id for c in out])
    assert {e.kind.value for e in found} == {"artist"}
    assert not {"ar:taylor-swift", "ar:katy-perry"} & {c.entity_id for c in out}
    assert {c.reason for c in out} <= {"graph neighbour of Taylor Swift",
                                       "graph neighbour of Katy Perry"}
    assert all(c.source == name for c in out)
    songs = expander.expand(_seeds("ar:taylor-swift"), 5, kinds=["song"])
    assert {e.kind.value for e in memory_catalog.get([c.entity_id for c in songs])} == {"song"}
    assert expander.expand(_seeds("so:does-not-exist"), 5) == []
    assert expander.expand(_seeds("ar:taylor-swift"), 0) == []


@pytest.mark.parametrize(("model", "relation"), [("rotate", RELATED), ("lightgcn", None)])
def test_artist_neighbours_are_the_models_best_scores(model: str, relation: str | None,
                                                      memory_catalog: MemoryStore) -> None:
    expander = quick_expander(memory_catalog, model)
    e = expander.embeddings
    row = e.ids.index("ar:u2")
    artists = [n for n, k in enumerate(e.kinds) if k == "artist" and n != row]
    scores = e.link_scores(e.queries([row], relation), e.vectors[artists])[0]
    expected = [e.ids[artists[j]] for j in np.argsort(-scores, kind="stable")[:5]]
    out = expander.expand(_seeds("ar:u2"), 5)
    assert [c.entity_id for c in out] == expected
    assert [c.score for c in out] == pytest.approx(sorted(scores, reverse=True)[:5], rel=1e-4)


def test_from_a_playlist_the_kge_finds_its_songs(memory_catalog: MemoryStore) -> None:
    """Across kinds the query follows the relation (CONTAINS), so the songs found from a
    playlist are mostly the ones it holds, trained on (all 24 here; chance gives about 3)."""
    expander = quick_expander(memory_catalog, "rotate")
    playlists = [e.id for e in memory_catalog.iter_entities() if e.kind == Kind.PLAYLIST]
    held_total = found_total = 0
    for playlist in playlists:
        held = {r.dst for r in memory_catalog.relations(playlist, [RelType.CONTAINS])}
        out = expander.expand(_seeds(playlist), len(held), kinds=["song"])
        held_total += len(held)
        found_total += len({c.entity_id for c in out} & held)
    assert held_total == 24
    assert found_total >= held_total / 2


def test_expander_follows_catalog_changes_without_reading_it_per_request(
        own_catalog: MemoryStore, tmp_path: Path) -> None:
    trained = train(split_graph(own_catalog, holdout=0.0, seed=0), quick("lightgcn", 5))
    expander = GraphEmbeddingExpander(trained, own_catalog)
    assert not expander.stale
    assert expander.missing == 0
    before = expander.expand(_seeds("ar:u2"), 3)
    gone = before[0].entity_id
    feed = tmp_path / "change.jsonl"
    feed.write_text(json.dumps({"op": "delete", "id": gone}) + "\n" + json.dumps(
        {"kind": "artist", "id": "ar:new", "name": "Newcomer", "related": ["ar:u2"]}) + "\n")
    ingest(own_catalog, [str(feed)])
    assert expander.expand(_seeds("ar:u2"), 3) == before  # until refreshed, its own tables
    assert expander.refresh(own_catalog)
    assert not expander.refresh(own_catalog)
    assert expander.stale
    assert expander.missing == 1
    after = [c.entity_id for c in expander.expand(_seeds("ar:u2"), 50)]
    assert gone not in after
    assert "ar:new" not in after
    assert after[:2] == [c.entity_id for c in before[1:]]
    assert expander.expand(_seeds("ar:new"), 3) == []
    own_catalog.clear()  # requests read only the expander's tables
    assert [c.entity_id for c in expander.expand(_seeds("ar:u2"), 50)] == after


# -- the command ------------------------------------------------------------------------------

@pytest.mark.neo4j
def test_train_command_saves_what_it_reports_and_repeats_itself(
        neo4j_catalog: Neo4jStore, neo4j_server: server.ServerInfo, memory_catalog: MemoryStore,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from api.cli import main

    monkeypatch.setenv("NEO4J_URI", neo4j_server.uri)
    args = ["train", "graph", "--models", "rotate", "lightgcn", "--epochs", "3", "--dim", "8",
            "--seed", "5", "--threads", "1"]
    with torch_threads(1):  # what --threads sets, put back afterwards
        assert main([*args, "--out", str(tmp_path / "a")]) == 0
        table = capsys.readouterr().out
        assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert "| degree (baseline) |" in table
    assert "| rotate | 8 | 3 |" in table
    assert "| lightgcn | 8 | 3 |" in table
    for model in ("rotate", "lightgcn"):
        a = TrainedEmbeddings.load(tmp_path / "a" / model)
        b = TrainedEmbeddings.load(tmp_path / "b" / model)
        assert a.catalog_version == neo4j_catalog.catalog_version()
        assert a.seed == 5
        assert np.array_equal(a.vectors, b.vectors)  # same seed, same catalog
        assert f"{a.metrics[f'{RELATED}/mrr']:.3f}" in table
        # The same catalog in the in-process store trains to the very same vectors.
        with torch_threads(1):
            here = train(split_graph(memory_catalog, holdout=0.1, seed=5),
                         config_for(model, epochs=3, dim=8))
        assert np.array_equal(here.vectors, a.vectors)
