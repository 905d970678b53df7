"""Nearest neighbours over entity vectors by cosine: exact numpy for small sets, faiss above.

Exact search is one matrix-vector product, and that is memory-bound: 256 float32 dimensions cost
about 0.35 ms per 10k rows in numpy's own loop on one core here, and the 88k real catalog takes
1.5-2 ms even through BLAS, over a 1 ms budget. Sets above `exact_limit` rows get a faiss index of
4-bit product-quantised codes searched with faiss's "fast scan" kernels (`PQ{d/2}x4fs`: 2
dimensions a sub-quantiser, 16 centroids each, 128 bytes a row at 256 dimensions, scored with SIMD
lookup tables held in registers). Up to `scan_limit` rows every code is scanned; above it an
inverted file of `nlist` k-means cells (`IVF{nlist},PQ{d/2}x4fs`) scans the `nprobe` nearest cells.
The index proposes `rescore` candidates, scored again exactly from the float32 rows, so the
quantisation does not reorder the top k.

Why faiss, and not the usearch HNSW graph this module used until 2026-12-04
(`bench/text_embed_bench.py`, one query at a time, recall@10 against exact search with ties
counted, caches left cold by the exact search between timed ones): at the real catalog (88,717
rows, 659 real query texts) HNSW took 0.65 ms at recall 0.982 and the scan of every code
0.49-0.59 ms at 1.0, the same hour; at 1M synthetic rows HNSW took 5.2 ms at 0.921 and 455 s
to build (2026-12-02), the inverted file 1.1 ms at 0.952 and 85 s. The synthetic texts are
clustered near-duplicates, the hard case for a graph; a coarse quantiser plus a brute-force
scan of compact codes has no such weak spot.

A kind filter searches that kind alone: exactly when it has at most `kind_exact_limit` rows,
else through its own index (codes are 128 bytes a row, so a second index over a kind costs
little; post-filtering the catalog's index would need hundreds more candidates rescored for a
kind that is a few percent of it). Ties are broken by row, and rows are given in id order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from graph.model import Kind

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
EXACT_LIMIT: Final = 10_000  # rows: ~0.4 ms exact at 256 dimensions
# Rows up to which every PQ code is scanned (no inverted file). Warm caches, one thread,
# 2026-12-04: 88,717 real rows took 0.16 ms, 200,000 synthetic rows 0.42 ms (200 candidates
# rescored), at recall@10 0.9997-1.0.
SCAN_LIMIT: Final = 250_000
# Inverted file: nlist the power of two at or above 4 sqrt(rows), nprobe 3/64 of it. At 1M
# synthetic rows, warm caches, one thread, 200 synthetic names and 200 vocabulary phrases as
# queries: nlist 4096, nprobe 192: 0.67 ms at recall 0.984; nprobe 256: 0.88 ms at 0.987;
# nlist 2048, nprobe 128: 0.63 ms at 0.980; nlist 1024, nprobe 128: 0.95 ms at 0.979.
PROBE_SHARE: Final = 3 / 64
TRAIN_PER_CELL: Final = 64  # k-means training rows per cell (faiss warns below 39)
# Candidates rescored exactly. With codes this coarse the top 10 needs a deep list: at 1M,
# 100 candidates gave recall 0.966 and 500 gave 0.984 (IVF 4096, nprobe 192).
RESCORE: Final = 500
# A kind with at most this many rows is searched exactly beside a catalog index. It was 30,000
# beside HNSW; beside fast scan, each larger kind's own index is faster: with caches as cold as
# the benchmark leaves them, artists of the real catalog (26,350 rows) took 0.44 ms through it
# against 1.05 ms exact, albums (22,890) 0.39 against 0.91, both at recall@10 1.0 (2026-12-04).
KIND_EXACT_LIMIT: Final = EXACT_LIMIT
SEED: Final = 1234  # training sample and k-means


def _dot(vectors: F32, query: F32) -> F32:
    """Row-wise dot products in numpy's own single-threaded loop, not BLAS. BLAS's two threads
    made a 5k-row product 0.08 ms at the median but 6-8 ms at p95 on this shared 2-core
    machine (thread hand-offs under contention); this loop takes 0.22 ms at both."""
    out: F32 = np.einsum("ij,j->i", vectors, query)
    return out


def cells(rows: int) -> int:
    """The inverted file's cell count for `rows` rows: a power of two near 4 sqrt(rows)."""
    return max(16, 1 << math.ceil(math.log2(4 * math.sqrt(rows))))


@dataclass(frozen=True, slots=True, eq=False)
class _Block:
    """One searchable set of rows: exact when `ann` is None."""

    rows: I64
    vectors: F32 | None  # this block's rows, contiguous, for exact search
    ann: Any = None  # faiss index over the block, ids are positions in `rows`


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
                 scan_limit: int = SCAN_LIMIT, probe_share: float = PROBE_SHARE,
                 rescore: int = RESCORE, kind_exact_limit: int = KIND_EXACT_LIMIT) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.exact_limit = exact_limit
        self.scan_limit = scan_limit
        self.rescore = rescore
        self._probe_share = probe_share
        codes = np.array([k.value for k in kinds], dtype=object)
        self._all = self._block(np.arange(len(kinds), dtype=np.int64))
        self._kinds: dict[Kind, _Block] = {}
        for kind in Kind:
            rows = np.flatnonzero(codes == kind.value).astype(np.int64)
            if not len(rows):
                continue
            if len(rows) == len(kinds):
                self._kinds[kind] = self._all
            elif len(rows) <= max(exact_limit, kind_exact_limit):
                self._kinds[kind] = _Block(rows, np.ascontiguousarray(self.vectors[rows]))
            else:
                self._kinds[kind] = self._block(rows)

    def _block(self, rows: I64) -> _Block:
        if len(rows) <= self.exact_limit:
            return _Block(rows, np.ascontiguousarray(self.vectors[rows]))
        import faiss

        # The catalog's own block is every row: no copy of the matrix (1 GB at 1M rows).
        data = self.vectors if len(rows) == len(self.vectors) else self.vectors[rows]
        dim = data.shape[1]
        pq = f"PQ{dim // 2 if dim % 2 == 0 else dim}x4fs"
        ann: Any  # IndexPQFastScan or IndexIVFPQFastScan: the stubs type both as Index
        if len(rows) <= self.scan_limit:
            ann, nlist = faiss.index_factory(dim, pq, faiss.METRIC_INNER_PRODUCT), 0
        else:
            nlist = cells(len(rows))
            ann = faiss.index_factory(dim, f"IVF{nlist},{pq}", faiss.METRIC_INNER_PRODUCT)
            ann.nprobe = max(1, round(nlist * self._probe_share))
            ann.cp.seed = SEED
        ann.pq.cp.seed = SEED
        sample = np.random.default_rng(SEED).choice(
            len(rows), min(len(rows), max(TRAIN_PER_CELL * nlist, 65_536)), replace=False)
        ann.train(data[np.sort(sample)])
        ann.add(data)
        return _Block(rows, None, ann)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def nprobe(self) -> int:
        """Cells scanned per query by the catalog's inverted file (0: every code, or exact)."""
        return int(getattr(self._all.ann, "nprobe", 0))

    def set_nprobe(self, nprobe: int) -> None:
        """Trade latency for recall on every inverted file (benchmarks sweep it)."""
        for block in (self._all, *self._kinds.values()):
            if hasattr(block.ann, "nprobe"):
                block.ann.nprobe = nprobe

    @property
    def approximate(self) -> bool:
        """True when unfiltered queries go through a faiss index."""
        return self._all.ann is not None

    def describe(self, kind: Kind | None = None) -> str:
        """What serves a query (within `kind` when given), for benchmark tables."""
        block = self._all if kind is None else self._kinds.get(kind)
        ann = None if block is None else block.ann
        if ann is None:
            return "exact"
        if hasattr(ann, "nprobe"):
            return f"faiss IVF{ann.nlist} PQ 4-bit fast scan, nprobe {ann.nprobe}"
        return "faiss PQ 4-bit fast scan, every code"

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
        if block.ann is None:
            assert block.vectors is not None
            return block.rows, _dot(block.vectors, query)
        want = min(len(block.rows), max(k, self.rescore))
        _, found = block.ann.search(np.ascontiguousarray(query, np.float32)[None, :], want)
        positions = found[0]
        rows = block.rows[positions[positions >= 0]]
        return rows, _dot(self.vectors[rows], query)
