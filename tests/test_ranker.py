"""The learned linear ranker: untrained it orders like RRF; its class blocks let a source's weight
differ by query class; states saved with an older, shorter layout still load."""

from __future__ import annotations

import numpy as np

from graph.model import Kind
from retrievers.base import Candidate
from retrievers.fusion import rrf
from retrievers.ranker import CLASSES, CROSSED, Item, LinearRanker, Query, class_block

SOURCES = ("names", "graph")
ITEMS = {f"e{i}": Item(Kind.ARTIST, 0.5) for i in range(6)}


def lists_for(names: list[str], graph: list[str]) -> dict[str, list[Candidate]]:
    return {"names": [Candidate(e, 1.0 - 0.1 * r, "names") for r, e in enumerate(names)],
            "graph": [Candidate(e, 1.0 - 0.1 * r, "graph") for r, e in enumerate(graph)]}


# The same two lists for both classes: names puts e0 first, graph puts e3 first.
LISTS = lists_for(["e0", "e1", "e2", "e3"], ["e3", "e4", "e5", "e0"])


def order(ranker: LinearRanker, cls: str) -> list[str]:
    return [f.entity_id for f in ranker.rank(LISTS, ITEMS, Query(cls=cls), 10)]


def test_untrained_it_orders_like_reciprocal_rank_fusion() -> None:
    ranker = LinearRanker(SOURCES)
    for cls in ("", "artist", "similar"):
        assert order(ranker, cls)[:2] == [f.entity_id for f in rrf(LISTS, 10)][:2]


def test_the_class_block_holds_found_and_rank_and_nothing_else_does() -> None:
    ranker = LinearRanker(SOURCES)
    ids, plain = ranker.features(LISTS, ITEMS, Query())
    _, crossed = ranker.features(LISTS, ITEMS, Query(cls="kind:podcast"))
    base = plain.shape[1] - len(CLASSES) * CROSSED * len(SOURCES)
    assert not plain[:, base:].any()
    block = class_block("kind:podcast")
    assert block == CLASSES.index("kind")
    at = base + block * CROSSED * len(SOURCES)
    row = ids.index("e3")  # names rank 3, graph rank 0
    assert crossed[row, at:at + 4].tolist() == [1.0, 0.25, 1.0, 1.0]
    outside = np.delete(crossed[:, base:], range(at - base, at - base + 4), axis=1)
    assert not outside.any()
    assert np.array_equal(crossed[:, :base], plain[:, :base])


def test_it_learns_a_different_best_source_per_class() -> None:
    """Users of "artist" queries take names' top entity, users of "similar" queries graph's:
    one weight per source could serve only one of them; the class blocks serve both."""
    ranker = LinearRanker(SOURCES)
    wanted = {"artist": "e0", "similar": "e3"}
    for _ in range(200):
        for cls, target in wanted.items():
            ids, x = ranker.features(LISTS, ITEMS, Query(cls=cls))
            ranker.step(x, ids.index(target), order(ranker, cls).index(target))
    assert order(ranker, "artist")[0] == "e0"
    assert order(ranker, "similar")[0] == "e3"


def test_a_state_of_the_older_layout_loads_with_zero_class_weights() -> None:
    trained = LinearRanker(SOURCES)
    trained.weights = trained.weights + 0.5
    old = trained.state()
    base = trained.dim - len(CLASSES) * CROSSED * len(SOURCES)
    old["weights"] = trained.weights[:base].tolist()
    loaded = LinearRanker.from_state(old)
    assert loaded.dim == trained.dim
    assert np.array_equal(loaded.weights[:base], trained.weights[:base])
    assert not loaded.weights[base:].any()
