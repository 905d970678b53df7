"""Fusing candidate lists: reciprocal-rank fusion, and per-source score calibration.

Each source's score is native to it (BM25, cosine, edit similarity, counts), so raw scores cannot
be compared across sources. Reciprocal-rank fusion ignores scores and uses ranks only: the
baseline. `Calibrator` maps each source's (score, rank) to a probability that the candidate is
relevant, with one logistic model per source (Platt scaling) fitted on labelled examples (the
development queries, later user feedback). Calibrated scores are comparable, so candidates can
be fused by the probability that any source is right. Besides the score and rank, a model may
use the score relative to its list's best (raw scale varies by query: BM25) and whether the
candidate's kind is one the query asks for ("songs by adele").

Fusion takes whatever lists it is given: any subset of sources, each cut at any k.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
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


def _best_first(f: Fused) -> tuple[float, str]:
    return -f.score, f.entity_id


def _order(fused: dict[str, Fused], k: int) -> list[Fused]:
    """The best `k`, by score then id (a heap when `k` is a small part: the seeds take 3)."""
    if 4 * k < len(fused):
        return heapq.nsmallest(k, fused.values(), key=_best_first)
    return sorted(fused.values(), key=_best_first)[:k]


def rrf(lists: Mapping[str, Sequence[Candidate]], k: int, *, c: int = RRF_K,
        weights: Mapping[str, float] | None = None) -> list[Fused]:
    """Reciprocal-rank fusion: score = sum over sources of weight / (c + rank + 1)."""
    fused: dict[str, Fused] = {}
    for source, cands in lists.items():
        w = 1.0 if weights is None else weights.get(source, 1.0)
        for rank, cand in enumerate(cands):
            f = fused.get(cand.entity_id)
            if f is None:  # not setdefault: that would build a Fused for every candidate
                f = fused[cand.entity_id] = Fused(cand.entity_id, 0.0)
            f.score += w / (c + rank + 1)
            f.sources[source] = (rank, cand.score)
    return _order(fused, k)


KindFit = Callable[[str], float]  # entity id -> +1 a kind the query asks for, -1 not, 0 unknown


@dataclass(frozen=True, slots=True)
class Platt:
    """P(relevant) = sigmoid(a * score + b * log(1 + rank) + c + d * score / best score in the
    list + e * kind fit)."""

    a: float
    b: float
    c: float
    d: float = 0.0
    e: float = 0.0

    def __call__(self, score: float, rank: int, relative: float = 1.0,
                 kind_fit: float = 0.0) -> float:
        z = (self.a * score + self.b * math.log1p(rank) + self.c + self.d * relative
             + self.e * kind_fit)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


# Before any fitting: trust rank only, so the first hit of any source counts about 0.5.
UNFITTED = Platt(0.0, -1.0, 0.0)


def relative_scores(cands: Sequence[Candidate]) -> list[float]:
    """Each score over the list's best (1 for the best; 0 when the best is not positive)."""
    top = cands[0].score if cands else 0.0
    return [c.score / top if top > 0 else 0.0 for c in cands]


def fit_platt(scores: Sequence[float], ranks: Sequence[int], labels: Sequence[bool], *,
              relative: Sequence[float] | None = None, kind_fit: Sequence[float] | None = None,
              l2: float = 1e-3, iterations: int = 50) -> Platt:
    """Logistic regression by Newton's method (five parameters: no library needed). Features
    not given are left out (their weights stay 0)."""
    n = len(scores)
    cols = [np.asarray(scores, float), np.log1p(np.asarray(ranks, float)), np.ones(n)]
    extra = [np.asarray(v, float) for v in (relative, kind_fit) if v is not None]
    x = np.column_stack(cols + extra)
    y = np.asarray(labels, float)
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    weights = [float(v) for v in w]
    d = weights.pop(3) if relative is not None else 0.0
    e = weights.pop(3) if kind_fit is not None else 0.0
    return Platt(weights[0], weights[1], weights[2], d, e)


@dataclass(slots=True)
class Calibrator:
    """One Platt model per source; unfitted sources fall back to rank only."""

    models: dict[str, Platt] = field(default_factory=dict)

    def probability(self, source: str, score: float, rank: int, relative: float = 1.0,
                    kind_fit: float = 0.0) -> float:
        return self.models.get(source, UNFITTED)(score, rank, relative, kind_fit)

    def fuse(self, lists: Mapping[str, Sequence[Candidate]], k: int, *,
             kind_fit: KindFit | None = None) -> list[Fused]:
        """Score = P(at least one source is right) = 1 - prod(1 - p_source), over whichever
        sources `lists` holds."""
        miss: dict[str, float] = {}
        fused: dict[str, Fused] = {}
        for source, cands in lists.items():
            for rank, (cand, rel) in enumerate(zip(cands, relative_scores(cands), strict=True)):
                fit = kind_fit(cand.entity_id) if kind_fit is not None else 0.0
                p = self.probability(source, cand.score, rank, rel, fit)
                miss[cand.entity_id] = miss.get(cand.entity_id, 1.0) * (1.0 - p)
                f = fused.get(cand.entity_id)
                if f is None:
                    f = fused[cand.entity_id] = Fused(cand.entity_id, 0.0)
                f.sources[source] = (rank, cand.score)
        for entity_id, f in fused.items():
            f.score = 1.0 - miss[entity_id]
        return _order(fused, k)
