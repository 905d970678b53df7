"""The learned linear ranker: untrained it orders like RRF; IPW steps move the taken entity up;
its class blocks let a source's weight differ by query class, and a query the memory was taught
has a block of its own; the memory evidence is a feature; states of older layouts still load."""

from __future__ import annotations

import numpy as np

from graph.model import Kind
from retrievers import memory
from retrievers.base import Candidate
from retrievers.fusion import rrf
from retrievers.ranker import CLASSES, CROSSED, Item, LinearRanker, Query, class_block

SOURCES = ("names", "graph")
ITEMS = {f"e{i}": Item(Kind.ARTIST, 0.5) for i in range(6)}


def lists_for(names: list[str], graph: list[str]) -> dict[str, list[Candidate]]:
    return {"names": [Candidate(e, 1.0 - 0.1 * r, "names") for r, e in enumerate(names)],
            "graph": [Candidate(e, 1.0 - 0.1 * r, "graph") for r, e in enumerate(graph)]}


# names puts e0 first, graph puts e3 first.
LISTS = lists_for(["e0", "e1", "e2", "e3"], ["e3", "e4", "e5", "e0"])


def order(ranker: LinearRanker, cls: str = "") -> list[str]:
    return [f.entity_id for f in ranker.rank(LISTS, ITEMS, Query(cls=cls), 10)]


def crossed_at(ranker: LinearRanker) -> int:
    return ranker.dim - len(CLASSES) * CROSSED * len(ranker.sources)


def test_untrained_it_orders_like_reciprocal_rank_fusion() -> None:
    ranker = LinearRanker(SOURCES)
    for cls in ("", "artist", "similar"):
        assert order(ranker, cls)[:2] == [f.entity_id for f in rrf(LISTS, 10)][:2]


def test_users_who_take_the_graph_sources_top_teach_it_to_go_first() -> None:
    """e3 is first for graph and last for names; e0 the other way round, and RRF ties them (the
    tie goes to e0 by id). Takes of e3 at its page position make the graph's ranks count more."""
    ranker = LinearRanker(SOURCES)
    assert order(ranker)[0] == "e0"
    for _ in range(100):
        ids, x = ranker.features(LISTS, ITEMS, Query())
        ranker.step(x, ids.index("e3"), order(ranker).index("e3"))
    assert order(ranker)[0] == "e3"
    graph_rr, names_rr = ranker.weights[4], ranker.weights[1]
    assert graph_rr > names_rr


def test_the_state_round_trips() -> None:
    ranker = LinearRanker(SOURCES)
    ranker.weights = ranker.weights + np.linspace(0, 1, ranker.dim)
    ranker.updates = 7
    loaded = LinearRanker.from_state(ranker.state())
    assert np.array_equal(loaded.weights, ranker.weights)
    assert loaded.updates == 7
    assert loaded.sources == SOURCES


def test_a_real_take_in_the_memory_is_a_feature_that_takes_can_teach() -> None:
    """Only a memory score above what a predicted query gives marks a real take; takes of such
    entities teach the ranker to put them above the other sources' agreed top."""
    sources = ("names", "graph", memory.MemoryRetriever.name)
    lists = lists_for(["e0", "e1"], ["e0", "e2"])
    predicted = memory.PREDICTED_SCORE_MAX * 0.9
    taught_score = 0.4 / (0.4 + memory.ALPHA)  # one reformulation's weight, no other take
    lists["memory"] = [Candidate("e3", taught_score, "memory"), Candidate("e0", predicted,
                                                                       "memory")]
    ranker = LinearRanker(sources)
    ids, x = ranker.features(lists, ITEMS, Query())
    taught_col = ranker.evidence_at
    assert [ids[i] for i in np.flatnonzero(x[:, taught_col])] == ["e3"]

    def page() -> list[str]:
        return [f.entity_id for f in ranker.rank(lists, ITEMS, Query(), 10)]

    assert page()[0] == "e0"
    for _ in range(30):
        ranker.step(x, ids.index("e3"), page().index("e3"))
    assert page()[0] == "e3"
    assert ranker.weights[taught_col] > 0


def test_a_state_of_an_older_layout_loads_with_the_new_weights_at_their_start() -> None:
    """States saved before the evidence feature and the class blocks hold a prefix of the
    layout."""
    ranker = LinearRanker(SOURCES)
    ranker.weights = ranker.weights + 0.5
    at = ranker.evidence_at
    old = {"sources": list(SOURCES), "weights": ranker.weights[:at].tolist(), "updates": 3}
    loaded = LinearRanker.from_state(old)
    assert np.array_equal(loaded.weights[:at], ranker.weights[:at])
    assert not loaded.weights[at:].any()


def test_the_class_block_holds_found_and_rank_and_nothing_else_does() -> None:
    ranker = LinearRanker(SOURCES)
    ids, plain = ranker.features(LISTS, ITEMS, Query())
    _, crossed = ranker.features(LISTS, ITEMS, Query(cls="kind:podcast"))
    base = crossed_at(ranker)
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


def test_a_query_the_memory_was_taught_has_the_taught_block_whatever_its_class() -> None:
    sources = ("names", memory.MemoryRetriever.name)
    ranker = LinearRanker(sources)
    taught = {"names": [Candidate("e0", 1.0, "names")],
              "memory": [Candidate("e3", 0.5, "memory")]}
    predicted = {"names": [Candidate("e0", 1.0, "names")],
                 "memory": [Candidate("e3", memory.PREDICTED_SCORE_MAX, "memory")]}
    width = CROSSED * len(sources)

    def block_of(lists: dict[str, list[Candidate]]) -> int | None:
        _, x = ranker.features(lists, ITEMS, Query(cls="artist"))
        used = [b for b in range(len(CLASSES))
                if x[:, crossed_at(ranker) + b * width: crossed_at(ranker) + (b + 1) * width].any()]
        assert len(used) <= 1
        return used[0] if used else None

    assert block_of(taught) == CLASSES.index("taught")
    assert block_of(predicted) == CLASSES.index("artist")
