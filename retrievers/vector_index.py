"""Nearest neighbours over entity vectors by cosine: exact numpy for small sets, usearch HNSW above.

Exact search is one matrix-vector product, and that is memory-bound: 256 float32 dimensions cost
about 0.4 ms per 10k rows on one core here, so the 88k real catalog already takes 6-12 ms, far
over a 1 ms budget. Sets above `exact_limit` rows get a usearch HNSW graph instead. usearch
rather than hnswlib or faiss: it is already a dependency (the graph-embedding expander uses it),
it stores int8-quantised vectors (a quarter of float32; search ~2x faster than float32 at equal
recall in our measurements), its `add` builds on all cores, and it has a plain typed-enough
numpy API. The graph proposes `rescore` candidates, scored again exactly from the float32 rows,
so the int8 rounding does not reorder the top k.

A kind filter searches that kind alone when it is small (exact) or a small share of a large
catalog (its own HNSW graph: post-filtering the global graph would need hundreds of candidates
for a kind that is a few percent of it). A large kind that is a large share (songs are a third
of the real catalog) is searched in the global graph with proportionally more candidates, kept
if of the kind, which spares building a second graph over most of the catalog. Ties are broken
by row, and rows are given in id order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from graph.model import Kind

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
EXACT_LIMIT: Final = 10_000  # rows: ~0.4 ms exact at 256 dimensions, about what HNSW costs
# Real catalog, 659 real query texts (short, far from every entity text: the hard case for a
# graph): connectivity 16 reached recall@10 0.976 at ef 128 and 0.984 at ef 200; 24 reached
# 0.984 and 0.989, in about the same build time. Half the build effort (ef_add 64) cost 0.03.
CONNECTIVITY: Final = 24
EXPANSION_ADD: Final = 128
# ef 128 on the real catalog (2026-12-02, quiet machine): 0.96 ms median at recall@10 0.980;
# ef 160: 1.04 ms at 0.984; ef 96: 0.78 ms at 0.976 (bench/text_embed_bench.py).
EXPANSION_SEARCH: Final = 128
RESCORE: Final = 40  # HNSW candidates rescored exactly; more did not raise recall at a given ef
OWN_GRAPH_SHARE: Final = 0.2  # a large kind below this share of the catalog gets its own graph
# A kind with at most this many rows is searched exactly even when the catalog has a graph:
# artists of the real catalog (26,350 rows) took 0.62 ms exact against 1.29 ms median (6.4 ms
# p95) through the shared graph, filtered (bench/text_embed_bench.py, 2026-12-02).
KIND_EXACT_LIMIT: Final = 30_000


def _dot(vectors: F32, query: F32) -> F32:
    """Row-wise dot products in numpy's own single-threaded loop, not BLAS. BLAS's two threads
    made a 5k-row product 0.08 ms at the median but 6-8 ms at p95 on this shared 2-core
    machine (thread hand-offs under contention); this loop takes 0.22 ms at both."""
    out: F32 = np.einsum("ij,j->i", vectors, query)
    return out


@dataclass(frozen=True, slots=True, eq=False)
class _Block:
    """One searchable set of rows: exact when `hnsw` is None."""

    rows: I64
    vectors: F32 | None  # this block's rows, contiguous, for exact search
    hnsw: Any  # usearch.index.Index keyed by position in `rows`, or None
    kind: str | None = None  # set when `hnsw` is the global graph, to be post-filtered
    share: float = 1.0  # of the global graph's rows that are of `kind`


def _top(scores: F32, rows: I64, k: int) -> list[tuple[int, float]]:
    """The k best (row, score) pairs, by score then row."""
    if len(scores) > k:
        cut = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= cut  # every tie at the cut stays, so the row order breaks it
        scores, rows = scores[keep], rows[keep]
    order = np.lexsort((rows, -scores))[:k]
    return [(int(rows[i]), float(scores[i])) for i in order]


class VectorIndex:
    """Search L2-normalised float32 rows by cosine, optionally within some kinds."""

    def __init__(self, vectors: F32, kinds: Sequence[Kind], *, exact_limit: int = EXACT_LIMIT,
                 connectivity: int = CONNECTIVITY, expansion_add: int = EXPANSION_ADD,
                 expansion_search: int = EXPANSION_SEARCH, rescore: int = RESCORE,
                 threads: int = 0, kind_exact_limit: int = KIND_EXACT_LIMIT) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.exact_limit = exact_limit
        self.rescore = rescore
        self._hnsw = {"connectivity": connectivity, "expansion_add": expansion_add,
                              "expansion_search": expansion_search}
        self._threads = threads
        self._codes = np.array([k.value for k in kinds], dtype=object)
        self._all = self._block(np.arange(len(kinds), dtype=np.int64))
        self._kinds: dict[Kind, _Block] = {}
        for kind in Kind:
            rows = np.flatnonzero(self._codes == kind.value).astype(np.int64)
            share = len(rows) / max(1, len(kinds))
            if not len(rows):
                continue
            if share == 1.0:
                self._kinds[kind] = self._all
            elif len(rows) <= max(exact_limit, kind_exact_limit):
                self._kinds[kind] = _Block(rows, np.ascontiguousarray(self.vectors[rows]), None)
            elif share >= OWN_GRAPH_SHARE:
                self._kinds[kind] = _Block(rows, None, self._all.hnsw, kind.value, share)
            else:
                self._kinds[kind] = self._block(rows)

    def _block(self, rows: I64) -> _Block:
        if len(rows) <= self.exact_limit:
            return _Block(rows, np.ascontiguousarray(self.vectors[rows]), None)
        from usearch.index import Index

        hnsw = Index(ndim=self.vectors.shape[1], metric="cos", dtype="i8",
                     connectivity=self._hnsw["connectivity"],
                     expansion_add=self._hnsw["expansion_add"],
                     expansion_search=self._hnsw["expansion_search"])
        hnsw.add(np.arange(len(rows), dtype=np.int64), self.vectors[rows],
                 threads=self._threads)
        return _Block(rows, None, hnsw)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def expansion_search(self) -> int:
        return int(self._all.hnsw.expansion_search) if self._all.hnsw is not None else 0

    def set_expansion_search(self, ef: int) -> None:
        """Trade latency for recall on every graph (benchmarks sweep it)."""
        for block in (self._all, *self._kinds.values()):
            if block.hnsw is not None:
                block.hnsw.expansion_search = ef

    @property
    def approximate(self) -> bool:
        """True when unfiltered queries go through an HNSW graph."""
        return self._all.hnsw is not None

    def search(self, query: F32, k: int,
               kinds: frozenset[Kind] = frozenset()) -> list[tuple[int, float]]:
        """The k rows most similar to `query`, as (row, cosine), best first."""
        if k <= 0 or not len(self.vectors):
            return []
        blocks = [self._all] if not kinds or kinds >= self._kinds.keys() else [
            self._kinds[kind] for kind in sorted(kinds) if kind in self._kinds]
        found = [self._search_block(b, query, k) for b in blocks]
        rows = np.concatenate([f[0] for f in found]) if found else np.zeros(0, np.int64)
        scores = np.concatenate([f[1] for f in found]) if found else np.zeros(0, np.float32)
        return _top(scores, rows, k)

    def _search_block(self, block: _Block, query: F32, k: int) -> tuple[I64, F32]:
        if block.hnsw is None:
            assert block.vectors is not None
            return block.rows, _dot(block.vectors, query)
        want = max(k, self.rescore)
        if block.kind is None:
            found = block.hnsw.search(query, min(len(block.rows), want), threads=1)
            rows = block.rows[np.asarray(found.keys, dtype=np.int64)]
            return rows, _dot(self.vectors[rows], query)
        # The global graph, filtered: twice the candidates the kind's share predicts.
        count = min(len(self._all.rows), int(2 * want / block.share) + 1)
        found = block.hnsw.search(query, count, threads=1)
        rows = np.asarray(found.keys, dtype=np.int64)
        rows = rows[self._codes[rows] == block.kind]
        if len(rows) < k:  # a query far from the kind: search the kind exactly
            rows = block.rows
        return rows, _dot(self.vectors[rows], query)
