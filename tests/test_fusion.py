"""Fusion: reciprocal-rank fusion on hand-checked lists, and Platt calibration that really fits."""

from __future__ import annotations

import random

import pytest

from retrievers.base import Candidate
from retrievers.fusion import RRF_K, Calibrator, Platt, fit_platt, relative_scores, rrf


def _list(source: str, ids: list[str]) -> list[Candidate]:
    return [Candidate(i, 10.0 - n, source) for n, i in enumerate(ids)]


def test_rrf_rewards_agreement_and_keeps_provenance() -> None:
    lists = {"fuzzy": _list("fuzzy", ["a", "b", "c"]), "fulltext": _list("fulltext", ["b", "d"])}
    fused = rrf(lists, 10)
    assert [f.entity_id for f in fused] == ["b", "a", "d", "c"]
    assert fused[0].score == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert fused[0].sources == {"fuzzy": (1, 9.0), "fulltext": (0, 10.0)}
    assert rrf(lists, 2) == fused[:2]
    weighted = rrf(lists, 10, weights={"fuzzy": 0.0})
    assert [f.entity_id for f in weighted][:2] == ["b", "d"]


def test_platt_learns_which_scores_mean_relevant() -> None:
    rng = random.Random(1)
    scores, ranks, labels = [], [], []
    for _ in range(2000):  # relevant when the score is high, with noise
        s = rng.random()
        scores.append(s)
        ranks.append(rng.randrange(20))
        labels.append(rng.random() < s * s)
    model = fit_platt(scores, ranks, labels)
    assert model.a > 2.0  # strongly increasing in the score
    assert abs(model.b) < 0.5  # rank carries no signal here
    assert model(0.9, 0) > 0.6 > 0.2 > model(0.1, 0)


def test_calibrated_fusion_prefers_the_source_that_is_right() -> None:
    calibrator = Calibrator()
    good = fit_platt([1.0] * 50 + [0.0] * 50, [0] * 100, [True] * 45 + [False] * 5 + [False] * 50)
    poor = fit_platt([1.0] * 50 + [0.0] * 50, [0] * 100, [True] * 5 + [False] * 95)
    calibrator.models = {"good": good, "poor": poor}
    lists = {"poor": [Candidate("x", 1.0, "poor")], "good": [Candidate("y", 1.0, "good")]}
    fused = calibrator.fuse(lists, 5)
    assert [f.entity_id for f in fused] == ["y", "x"]
    assert fused[0].score == pytest.approx(good(1.0, 0))
    both = calibrator.fuse({"poor": [Candidate("z", 1.0, "poor")],
                            "good": [Candidate("z", 1.0, "good")]}, 5)
    assert both[0].score == pytest.approx(1 - (1 - good(1.0, 0)) * (1 - poor(1.0, 0)))


def test_platt_learns_relative_scores_and_kind_fit() -> None:
    rng = random.Random(2)
    scores, ranks, rel, fit, labels = [], [], [], [], []
    for _ in range(3000):  # raw scale varies by query; relevance follows the relative score
        scale, r, kind = rng.uniform(1, 20), rng.random(), rng.choice((-1.0, 0.0, 1.0))
        scores.append(scale * r)
        ranks.append(rng.randrange(20))
        rel.append(r)
        fit.append(kind)
        labels.append(rng.random() < r * (0.2 if kind < 0 else 0.9))
    model = fit_platt(scores, ranks, labels, relative=rel, kind_fit=fit)
    assert model.d > 2.0  # the relative score carries the signal...
    assert abs(model.a) < 0.2  # ...the raw one hardly any
    assert model.e > 0.5  # a kind the query asks for makes relevance likelier
    assert model(5.0, 0, 0.9, 1.0) > model(5.0, 0, 0.9, -1.0)
    plain = fit_platt(scores, ranks, labels)
    assert (plain.d, plain.e) == (0.0, 0.0)


def test_relative_scores() -> None:
    assert relative_scores(_list("s", ["a", "b"])) == [1.0, pytest.approx(0.9)]
    assert relative_scores([Candidate("a", 0.0, "s")]) == [0.0]
    assert relative_scores([]) == []


def test_fusion_takes_any_subset_and_the_kind_fit() -> None:
    calibrator = Calibrator({"a": Platt(0.0, -1.0, 0.0, 0.0, 2.0),
                             "b": Platt(0.0, -1.0, 0.0, 0.0, 0.0)})
    lists = {"a": _list("a", ["song", "artist"]), "b": _list("b", ["artist"])}
    assert calibrator.fuse({}, 5) == []
    assert [f.entity_id for f in calibrator.fuse({"b": lists["b"]}, 5)] == ["artist"]
    assert [f.entity_id for f in calibrator.fuse(lists, 5)] == ["artist", "song"]
    asks_for_songs = {"song": 1.0, "artist": -1.0}
    fused = calibrator.fuse(lists, 5, kind_fit=asks_for_songs.__getitem__)
    assert [f.entity_id for f in fused] == ["song", "artist"]
    assert fused[0].sources == {"a": (0, 10.0)}
