"""The plan's candidate set (`Searcher._merge`): union within the budget, filled from the probes."""

from __future__ import annotations

from api.learning import action_space
from api.search import Searcher
from retrievers.base import Candidate


def _cands(source: str, ids: list[str]) -> list[Candidate]:
    return [Candidate(i, 1.0 - n / 100, source) for n, i in enumerate(ids)]


SPACE = action_space(["fuzzy", "memory", "fulltext"], ["related"], budget=6, step=2,
                     latency_weight=0.0)


def test_overlap_is_filled_from_the_probes_and_found_entities_join_their_lists() -> None:
    """fuzzy k=2 and fulltext k=2 overlap on one entity: 3 of a budget of 6 are used, so the
    probes' next results (fuzzy, then memory, in turn) fill 3 more. Memory was not in the plan:
    its results that are in the set already join its list too (no budget), new ones fill."""
    plan = SPACE.plan({"fuzzy": 2, "fulltext": 2})
    fuzzy_full = _cands("fuzzy", ["a", "b", "c", "d", "e"])
    memory_full = _cands("memory", ["b", "x", "y"])
    lists = {"fuzzy": fuzzy_full[:2], "fulltext": _cands("fulltext", ["b", "z"])}
    out = Searcher._merge(plan, lists, {"fuzzy": fuzzy_full, "memory": memory_full})
    union = {c.entity_id for cands in out.values() for c in cands}
    assert len(union) == plan.budget
    assert [c.entity_id for c in out["fuzzy"]] == ["a", "b", "c", "d"]  # its own order kept
    assert [c.entity_id for c in out["memory"]] == ["b", "x"]  # "b" at no cost, then a new one
    assert [c.entity_id for c in out["fulltext"]] == ["b", "z"]  # not a probe: unchanged
    assert union == {"a", "b", "c", "d", "x", "z"}


def test_a_full_budget_takes_no_new_entities_but_probes_still_vouch() -> None:
    plan = SPACE.plan({"fuzzy": 6})
    fuzzy_full = _cands("fuzzy", ["a", "b", "c", "d", "e", "f", "g"])
    out = Searcher._merge(plan, {"fuzzy": fuzzy_full[:6]},
                          {"fuzzy": fuzzy_full, "memory": _cands("memory", ["g", "c"])})
    assert [c.entity_id for c in out["fuzzy"]] == ["a", "b", "c", "d", "e", "f"]
    assert [c.entity_id for c in out["memory"]] == ["c"]


def test_an_rrf_plan_keeps_the_top_of_the_fusion_only() -> None:
    plan = SPACE.plan({"fuzzy": 6, "fulltext": 6}, merge="rrf")
    lists = {"fuzzy": _cands("fuzzy", list("abcdefgh")), "fulltext": _cands("fulltext",
                                                                            list("hgfedcba"))}
    out = Searcher._merge(plan, lists, {"fuzzy": lists["fuzzy"]})
    union = {c.entity_id for cands in out.values() for c in cands}
    assert len(union) == plan.budget
    assert "memory" not in out


def test_a_plan_whose_sources_found_nothing_is_filled_from_the_probes() -> None:
    """Full text alone, finding nothing: the page is the probes' results, never empty."""
    plan = SPACE.plan({"fulltext": 6})
    out = Searcher._merge(plan, {"fulltext": []}, {"fuzzy": _cands("fuzzy", ["a", "b"])})
    assert [c.entity_id for c in out["fuzzy"]] == ["a", "b"]
    assert out["fulltext"] == []
