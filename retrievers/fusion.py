"""Fusing candidate lists: reciprocal-rank fusion, and per-source score calibration.

Each source's score is native to it (BM25, cosine, edit similarity, counts), so raw scores cannot
be compared across sources. Reciprocal-rank fusion ignores scores and uses ranks only: the
baseline. `Calibrator` maps each source's (score, rank) to a probability that the candidate is
relevant, with one logistic model per source (Platt scaling) fitted on labelled examples (the
development queries, later user feedback). Calibrated scores are comparable, so candidates can
be fused by the probability that any source is right.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from retrievers.base import Candidate

RRF_K = 60  # the constant from Cormack et al. (2009); damps the head of each list


@dataclass(slots=True)
class Fused:
    """One entity after fusion: its fused score and, per source, (rank from 0, native score)."""

    entity_id: str
    score: float
    sources: dict[str, tuple[int, float]] = field(default_factory=dict)


def _order(fused: dict[str, Fused], k: int) -> list[Fused]:
    return sorted(fused.values(), key=lambda f: (-f.score, f.entity_id))[:k]


def rrf(lists: Mapping[str, Sequence[Candidate]], k: int, *, c: int = RRF_K,
        weights: Mapping[str, float] | None = None) -> list[Fused]:
    """Reciprocal-rank fusion: score = sum over sources of weight / (c + rank + 1)."""
    fused: dict[str, Fused] = {}
    for source, cands in lists.items():
        w = 1.0 if weights is None else weights.get(source, 1.0)
        for rank, cand in enumerate(cands):
            f = fused.setdefault(cand.entity_id, Fused(cand.entity_id, 0.0))
            f.score += w / (c + rank + 1)
            f.sources[source] = (rank, cand.score)
    return _order(fused, k)


@dataclass(frozen=True, slots=True)
class Platt:
    """P(relevant) = sigmoid(a * score + b * log(1 + rank) + c)."""

    a: float
    b: float
    c: float

    def __call__(self, score: float, rank: int) -> float:
        z = self.a * score + self.b * math.log1p(rank) + self.c
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


# Before any fitting: trust rank only, so the first hit of any source counts about 0.5.
UNFITTED = Platt(0.0, -1.0, 0.0)


def fit_platt(scores: Sequence[float], ranks: Sequence[int], labels: Sequence[bool], *,
              l2: float = 1e-3, iterations: int = 50) -> Platt:
    """Logistic regression by Newton's method (three parameters: no library needed)."""
    x = np.column_stack([np.asarray(scores, float), np.log1p(np.asarray(ranks, float)),
                         np.ones(len(scores))])
    y = np.asarray(labels, float)
    w = np.zeros(3)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(3)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return Platt(float(w[0]), float(w[1]), float(w[2]))


@dataclass(slots=True)
class Calibrator:
    """One Platt model per source; unfitted sources fall back to rank only."""

    models: dict[str, Platt] = field(default_factory=dict)

    def probability(self, source: str, score: float, rank: int) -> float:
        return self.models.get(source, UNFITTED)(score, rank)

    def fuse(self, lists: Mapping[str, Sequence[Candidate]], k: int) -> list[Fused]:
        """Score = P(at least one source is right) = 1 - prod(1 - p_source)."""
        miss: dict[str, float] = {}
        fused: dict[str, Fused] = {}
        for source, cands in lists.items():
            for rank, cand in enumerate(cands):
                p = self.probability(source, cand.score, rank)
                miss[cand.entity_id] = miss.get(cand.entity_id, 1.0) * (1.0 - p)
                f = fused.setdefault(cand.entity_id, Fused(cand.entity_id, 0.0))
                f.sources[source] = (rank, cand.score)
        for entity_id, f in fused.items():
            f.score = 1.0 - miss[entity_id]
        return _order(fused, k)
