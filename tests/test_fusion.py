"""Fusion: reciprocal-rank fusion on hand-checked lists, and Platt calibration that really fits."""

from __future__ import annotations

import random

import pytest

from retrievers.base import Candidate
from retrievers.fusion import RRF_K, Calibrator, fit_platt, rrf


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
