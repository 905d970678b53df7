"""Ranking the candidate union into one page: reciprocal-rank fusion (the baseline) and a learned
linear ranker trained from logged clicks with inverse propensity weighting of positions.

Features of one candidate (`features`): per source, whether it found it, 1/(1+rank) and its
score squashed to [0, 1]; how many sources found it; popularity; whether its kind is one the
query reads as asking for; the share of its genres among the user's top genres; its kind; and
whether the click memory's score for it needs a real take for this query (`memory.taught`:
above what a predicted query alone can give). The memory's found and rank cannot say that, since
the cold-start predictions put most exact names in it; a misspelling that one user's retry
taught is found by the memory and little else, and this feature lets takes teach the ranker to
trust that. Its weight starts at 0, so an untrained ranker still orders like RRF.

Each source's found and reciprocal rank are also copied into one block of the query's class
(`api.learning.query_class`: the kind of its best reading), zero in every other block, so that a
source's weight can differ by class: "artists like X" may trust the related entities more than
names. A query for which the memory holds a real take uses the "taught" block instead of its
class's: within a class, the ranker learns to trust fuzzy names' top hit, and a taught
misspelling is exactly where that hit is wrong; in the taught block it learns how far the
memory's own ranking can be trusted once people have taken something for these very words.

Learning (`LinearRanker.fit` / `step`): a listwise softmax loss over the logged candidate set of a
search, for the entity the user took, weighted by 1/eta(position): users look at lower positions
less often, so a take at position p stands for 1/eta(p) takes had every position been looked at
(Joachims et al. 2017, "Unbiased learning-to-rank with biased feedback"). eta(p) follows the
position-based model eta(p) = (1/(1+p))^ETA_POWER, clipped at ETA_MIN so that one deep click
cannot dominate. The weights start as RRF-like (reciprocal ranks count, nothing else), so an
untrained ranker orders like the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from graph.model import Kind
from retrievers import memory
from retrievers.base import Candidate
from retrievers.fusion import Fused, rrf

KINDS: Final = tuple(Kind)
PER_SOURCE: Final = 3  # found, reciprocal rank, squashed score
GLOBAL: Final = ("n_sources", "popularity", "kind_match", "affinity", "bias")
# After the kinds, so that a state saved before it existed is a prefix of the layout.
EVIDENCE: Final = ("memory_taught",)
# Query classes with a block of crossed features; "kind:<kinds>" classes share one block, and a
# query for which the memory holds a real take has the "taught" block whatever its class.
CLASSES: Final = ("similar", "artist+song", "artist", "genre", "decade", "kind", "text", "short",
                  "taught")
CROSSED: Final = 2  # of the per-source features, the first two (found, reciprocal rank)
ETA_POWER: Final = 0.7
ETA_MIN: Final = 0.1
Vector = npt.NDArray[np.float64]


def eta(position: int) -> float:
    """Examination probability of a position (0-based), position-based model."""
    return max(ETA_MIN, float((1.0 / (1.0 + position)) ** ETA_POWER))


def squash(score: float) -> float:
    """Any source's native score into [0, 1): scores in [0, 1] barely move, BM25 saturates."""
    return score / (1.0 + score) if score > 1.0 else max(0.0, score) * 0.5


@dataclass(frozen=True, slots=True)
class Item:
    """What the ranker knows of a candidate beyond the source lists."""

    kind: Kind
    popularity: float
    genres: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    """What the ranker knows of the query: the kinds its readings ask for, the user's genres."""

    kinds: frozenset[Kind] = frozenset()
    user_genres: tuple[str, ...] = ()
    cls: str = ""  # the query's class ("" or one not in CLASSES: no crossed block)


def class_block(cls: str) -> int | None:
    """The crossed-feature block of a query class, or None."""
    bucket = "kind" if cls.startswith("kind:") else cls
    return CLASSES.index(bucket) if bucket in CLASSES else None


@dataclass(slots=True)
class LinearRanker:
    """score(candidate) = w . features; `sources` fixes the feature layout."""

    sources: tuple[str, ...]
    weights: Vector = field(default_factory=lambda: np.zeros(0))
    l2: float = 1e-3
    lr: float = 0.05
    updates: int = 0

    def __post_init__(self) -> None:
        if len(self.weights) == 0:
            self.weights = self.baseline_weights()

    @property
    def dim(self) -> int:
        return self._crossed_at + len(CLASSES) * CROSSED * len(self.sources)

    @property
    def _crossed_at(self) -> int:
        return self.evidence_at + len(EVIDENCE)

    @property
    def evidence_at(self) -> int:
        """The column of the first EVIDENCE feature."""
        return PER_SOURCE * len(self.sources) + len(GLOBAL) + len(KINDS)

    def baseline_weights(self) -> Vector:
        w = np.zeros(self.dim)
        for i in range(len(self.sources)):
            w[PER_SOURCE * i + 1] = 1.0  # reciprocal rank: RRF's signal
        return w

    def features(self, lists: Mapping[str, Sequence[Candidate]], items: Mapping[str, Item],
                 query: Query) -> tuple[list[str], npt.NDArray[np.float64]]:
        """(entity ids, feature matrix) for the union of `lists`, ids in first-seen order."""
        ids: dict[str, int] = {}
        for cands in lists.values():
            for c in cands:
                ids.setdefault(c.entity_id, len(ids))
        x = np.zeros((len(ids), self.dim))
        for s, name in enumerate(self.sources):
            for rank, c in enumerate(lists.get(name, ())):
                row = ids[c.entity_id]
                if x[row, PER_SOURCE * s] == 0:
                    x[row, PER_SOURCE * s: PER_SOURCE * s + 3] = (1.0, 1.0 / (1.0 + rank),
                                                                   squash(c.score))
        g = PER_SOURCE * len(self.sources)
        x[:, g] = x[:, 0:g:PER_SOURCE].sum(axis=1) / max(1, len(self.sources))
        user = set(query.user_genres)
        for entity_id, row in ids.items():
            item = items.get(entity_id)
            if item is None:
                continue
            x[row, g + 1] = item.popularity
            x[row, g + 2] = float(item.kind in query.kinds) if query.kinds else 0.0
            if user and item.genres:
                x[row, g + 3] = len(user & set(item.genres)) / len(user)
            x[row, g + len(GLOBAL) + KINDS.index(item.kind)] = 1.0
        x[:, g + 4] = 1.0
        taught = False
        for c in lists.get(memory.MemoryRetriever.name, ()):
            if memory.taught(c.score):
                x[ids[c.entity_id], self.evidence_at] = 1.0
                taught = True
        block = class_block("taught" if taught else query.cls)
        if block is not None:
            at = self._crossed_at + block * CROSSED * len(self.sources)
            for s in range(len(self.sources)):
                x[:, at + CROSSED * s: at + CROSSED * (s + 1)] = \
                    x[:, PER_SOURCE * s: PER_SOURCE * s + CROSSED]
        return list(ids), x

    def rank(self, lists: Mapping[str, Sequence[Candidate]], items: Mapping[str, Item],
             query: Query, k: int) -> list[Fused]:
        ids, x = self.features(lists, items, query)
        if not ids:
            return []
        scores = x @ self.weights
        order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))[:k]
        where = {name: {c.entity_id: (r, c.score) for r, c in enumerate(cands)}
                 for name, cands in lists.items()}
        return [Fused(ids[i], float(scores[i]),
                      {n: w[ids[i]] for n, w in where.items() if ids[i] in w}) for i in order]

    def step(self, x: Vector, taken: int, position: int) -> float:
        """One IPW-weighted softmax step for one search; returns the example's loss."""
        scores = x @ self.weights
        scores -= scores.max()
        p = np.exp(scores)
        p /= p.sum()
        weight = 1.0 / eta(position)
        grad = weight * (x.T @ p - x[taken]) + self.l2 * (self.weights - self.baseline_weights())
        self.weights = self.weights - self.lr * grad
        self.updates += 1
        return float(-weight * math.log(max(p[taken], 1e-12)))

    def fit(self, examples: Sequence[tuple[Vector, int, int]], *, epochs: int = 5,
            seed: int = 0) -> list[float]:
        """Batch training (`tunegraph train ranker`): epochs of `step` in seeded order;
        returns the mean loss per epoch."""
        rng = np.random.default_rng(seed)
        losses = []
        for _ in range(epochs):
            order = rng.permutation(len(examples))
            losses.append(float(np.mean([self.step(*examples[i]) for i in order]))
                          if len(order) else 0.0)
        return losses

    def state(self) -> dict[str, object]:
        return {"sources": list(self.sources), "weights": self.weights.tolist(),
                "updates": self.updates}

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> LinearRanker:
        sources = tuple(str(s) for s in state["sources"])  # type: ignore[attr-defined]
        weights = np.asarray(state["weights"], dtype=np.float64)
        ranker = cls(sources)
        if len(weights) > ranker.dim:
            raise ValueError(f"{len(weights)} ranker weights for a layout of {ranker.dim}")
        # A state saved before the evidence feature or the class blocks existed holds a prefix
        # of the layout: the rest start where a new ranker's do.
        ranker.weights[:len(weights)] = weights
        ranker.updates = int(state.get("updates", 0))  # type: ignore[call-overload]
        return ranker


def rrf_rank(lists: Mapping[str, Sequence[Candidate]], k: int) -> list[Fused]:
    """The baseline ranker: reciprocal-rank fusion of every list."""
    return rrf(lists, k)
