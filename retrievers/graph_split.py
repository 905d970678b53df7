"""Graph-embedding evaluation data: the held-out split, filtered typed ranking, a degree baseline.

Numpy only; the models that are trained on the split are in `retrievers.graph_train`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from graph.export import to_triples
from graph.model import REL_ENDPOINTS, Kind, RelType
from graph.store import GraphStore

HELDOUT_RELATIONS: Final = (RelType.RELATED_TO.value, RelType.CONTAINS.value)
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
# (relation, head rows, tail row range) -> scores of every tail in the range, [heads, range].
Scorer = Callable[[str, IntArray, tuple[int, int]], FloatArray]
Triple = tuple[str, str, str]


@dataclass(frozen=True)
class GraphSplit:
    """The catalog as integer triples, with some RELATED_TO and CONTAINS edges held out.

    Rows are entities that keep at least one training edge, ordered by kind (Kind order) and
    then id, so each kind is one contiguous row range: typed negatives and typed ranking are
    slices. `known` maps (relation, head row) to every true tail row, held out or not, for the
    filtered ranking.
    """

    ids: list[str]
    kinds: list[str]
    popularity: FloatArray
    kind_ranges: dict[str, tuple[int, int]]
    relations: list[str]
    train: IntArray  # [n, 3] (head row, relation index, tail row), sorted, no repeats
    heldout: dict[str, IntArray]  # relation -> [m, 2] (head row, tail row)
    known: dict[tuple[str, int], IntArray]
    seed: int
    catalog_version: int

    def kind_of_rows(self) -> tuple[IntArray, IntArray]:
        """Per row, the first row and the size of its kind's range (typed negative sampling)."""
        start = np.zeros(len(self.ids), dtype=np.int64)
        size = np.zeros(len(self.ids), dtype=np.int64)
        for lo, hi in self.kind_ranges.values():
            start[lo:hi], size[lo:hi] = lo, hi - lo
        return start, size


def split_graph(store: GraphStore, *, holdout: float, seed: int) -> GraphSplit:
    """Hold out a seeded `holdout` fraction of the RELATED_TO and CONTAINS edges.

    Starts from `graph.export.to_triples`, the export PyKEEN's own factory is built from.
    RELATED_TO is held out by unordered pair (both directions together): 55% of co-listening
    edges have their reverse in the catalog, and keeping it in training would leak the answer.
    A held-out pair whose endpoint would be left with no training edge goes back to training,
    since no model can place an entity it never saw.
    """
    version = store.catalog_version()
    entities = {e.id: e for e in store.iter_entities()}
    triples = sorted(set(to_triples(store)))  # a song twice in a playlist is one fact
    held = _choose_heldout(triples, holdout, seed)
    train = [t for t in triples if _pair(t) not in held]
    degree: dict[str, int] = defaultdict(int)
    for h, _, t in train:
        degree[h] += 1
        degree[t] += 1
    present = set(triples)
    for edge in triples:  # cold starts go back to training (both directions of the pair)
        if _pair(edge) in held and (degree[edge[0]] == 0 or degree[edge[2]] == 0):
            held.discard(_pair(edge))
            back = {edge, (edge[2], edge[1], edge[0])} & present
            train.extend(back)
            for h, _, t in back:
                degree[h] += 1
                degree[t] += 1
    kind_order = {k.value: i for i, k in enumerate(Kind)}
    ids = sorted(degree, key=lambda i: (kind_order[entities[i].kind.value], i))
    row = {i: n for n, i in enumerate(ids)}
    relations = sorted({r for _, r, _ in triples})
    rel_index = {r: n for n, r in enumerate(relations)}
    heldout = {rel: np.array([(row[h], row[t]) for h, r, t in triples
                              if r == rel and _pair((h, r, t)) in held],
                             dtype=np.int64).reshape(-1, 2)
               for rel in HELDOUT_RELATIONS}
    known: dict[tuple[str, int], list[int]] = defaultdict(list)
    for h, r, t in triples:
        if r in HELDOUT_RELATIONS:
            known[(r, row[h])].append(row[t])
    kinds = [entities[i].kind.value for i in ids]
    return GraphSplit(
        ids=ids, kinds=kinds,
        popularity=np.array([entities[i].popularity for i in ids], dtype=np.float32),
        kind_ranges=_ranges(kinds), relations=relations,
        train=np.array(sorted((row[h], rel_index[r], row[t]) for h, r, t in set(train)),
                       dtype=np.int64).reshape(-1, 3),
        heldout=heldout, known={k: np.array(v, dtype=np.int64) for k, v in known.items()},
        seed=seed, catalog_version=version)


def _pair(t: Triple) -> Triple:
    """The unordered pair an edge belongs to, which is what gets held out."""
    a, b = sorted((t[0], t[2]))
    return (t[1], a, b)


def _choose_heldout(triples: list[Triple], holdout: float, seed: int) -> set[Triple]:
    pairs = sorted({_pair(t) for t in triples if t[1] in HELDOUT_RELATIONS})
    order = np.random.default_rng(seed).permutation(len(pairs))
    return {pairs[i] for i in order[:round(holdout * len(pairs))]}


def _ranges(kinds: list[str]) -> dict[str, tuple[int, int]]:
    ranges: dict[str, tuple[int, int]] = {}
    for n, kind in enumerate(kinds):
        lo, _ = ranges.get(kind, (n, n))
        ranges[kind] = (lo, n + 1)
    return ranges


# -- evaluation -------------------------------------------------------------------------------

def evaluate(split: GraphSplit, scorer: Scorer, *, batch: int = 256) -> dict[str, float]:
    """Filtered tail ranking of each held-out edge among every entity of the tail's kind.

    The head's other true tails, and the head itself (an artist is not its own neighbour; the
    expander drops seeds too), are left out of the ranking. Ties count half (the expected rank
    under random tie-breaking), so a model that scores everything alike gets no credit for it.
    """
    metrics: dict[str, float] = {}
    for rel, pairs in split.heldout.items():
        if not len(pairs):
            continue
        lo, hi = split.kind_ranges[REL_ENDPOINTS[RelType(rel)][1].value]
        ranks = [_filtered_ranks(scorer(rel, pairs[i:i + batch, 0], (lo, hi)), rel,
                                 pairs[i:i + batch], (lo, hi), split.known)
                 for i in range(0, len(pairs), batch)]
        r = np.concatenate(ranks)
        metrics[f"{rel}/mrr"] = float(np.mean(1.0 / r))
        metrics[f"{rel}/hits@10"] = float(np.mean(r <= 10))
        metrics[f"{rel}/n"] = float(len(r))
    return metrics


def _filtered_ranks(scores: FloatArray, rel: str, pairs: IntArray, span: tuple[int, int],
                    known: dict[tuple[str, int], IntArray]) -> npt.NDArray[np.float64]:
    lo, hi = span
    scores = np.array(scores, dtype=np.float64)  # a copy: the filter writes into it
    ranks = np.empty(len(pairs), dtype=np.float64)
    for i, (h, t) in enumerate(pairs):
        true = scores[i, t - lo]
        scores[i, known[(rel, int(h))] - lo] = -np.inf  # the true tail too: counted below
        if lo <= h < hi:
            scores[i, h - lo] = -np.inf
        higher = np.count_nonzero(scores[i] > true)
        ranks[i] = 1 + higher + 0.5 * np.count_nonzero(scores[i] == true)
    return ranks


def degree_baseline(split: GraphSplit) -> dict[str, float]:
    """The trivial model: rank tails by how often they are a training tail of the relation,
    ties broken by catalog popularity (in [0, 1], so it never outweighs one edge)."""
    tail_degree: dict[str, FloatArray] = {}
    for n, rel in enumerate(split.relations):
        tails = split.train[split.train[:, 1] == n, 2]
        counts = np.bincount(tails, minlength=len(split.ids)).astype(np.float32)
        tail_degree[rel] = counts + 0.5 * split.popularity

    def scorer(rel: str, heads: IntArray, span: tuple[int, int]) -> FloatArray:
        return np.tile(tail_degree[rel][span[0]:span[1]], (len(heads), 1))

    return evaluate(split, scorer)
