"""Graph-embedding neighbours: saved entity vectors, a nearest-neighbour index, the Expander."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from graph.store import GraphStore
from retrievers.base import Candidate

if TYPE_CHECKING:
    from retrievers.graph_train import GraphSplit

DEFAULT_DIR: Final = Path(".tunegraph/embeddings")
KGE_MODELS: Final = ("rotate", "complex")
PYG_MODELS: Final = ("lightgcn",)
# Per kind, at most this many vectors are searched exactly (one matmul, ~5 ms at 250k x 128);
# a bigger kind gets a usearch HNSW index, whose hits are then rescored exactly.
EXACT_LIMIT: Final = 250_000
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class TrainedEmbeddings:
    """One model's entity vectors (L2-normalised rows) with what it takes to serve and judge
    them: ids, kinds and names per row, the seed and catalog version, and held-out metrics."""

    model: str
    ids: list[str]
    kinds: list[str]
    names: list[str]
    vectors: FloatArray
    dim: int
    epochs: int
    seed: int
    catalog_version: int
    metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    config: dict[str, float | int | str] = field(default_factory=dict)

    def save(self, directory: str | Path) -> Path:
        """Write vectors.npy, entities.json (id, kind, name per row) and meta.json."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / "vectors.npy", self.vectors, allow_pickle=False)
        rows = [[i, k, n] for i, k, n in zip(self.ids, self.kinds, self.names, strict=True)]
        (path / "entities.json").write_text(json.dumps(rows, ensure_ascii=False))
        meta = {"model": self.model, "dim": self.dim, "epochs": self.epochs, "seed": self.seed,
                "catalog_version": self.catalog_version, "metrics": self.metrics,
                "train_seconds": self.train_seconds, "config": self.config}
        (path / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> TrainedEmbeddings:
        path = Path(directory)
        meta: dict[str, Any] = json.loads((path / "meta.json").read_text())
        rows: list[list[str]] = json.loads((path / "entities.json").read_text())
        vectors = np.load(path / "vectors.npy", allow_pickle=False).astype(np.float32)
        if len(rows) != len(vectors):
            raise ValueError(f"{path}: {len(rows)} entities but {len(vectors)} vectors")
        return cls(model=meta["model"], ids=[r[0] for r in rows], kinds=[r[1] for r in rows],
                   names=[r[2] for r in rows], vectors=vectors, dim=int(meta["dim"]),
                   epochs=int(meta["epochs"]), seed=int(meta["seed"]),
                   catalog_version=int(meta["catalog_version"]), metrics=meta["metrics"],
                   train_seconds=float(meta["train_seconds"]), config=meta["config"])


def source_name(model: str) -> str:
    """The expander name for a model: "kge" for PyKEEN's models, "gnn" for PyG's."""
    return "kge" if model in KGE_MODELS else "gnn"


class _KindBlock:
    """The rows of one kind, their vectors contiguous, and an HNSW index when too many."""

    def __init__(self, rows: npt.NDArray[np.int64], vectors: FloatArray, exact_limit: int):
        self.rows = rows
        self.vectors = np.ascontiguousarray(vectors[rows])
        self.ann: Any = None
        if len(rows) > exact_limit:
            from usearch.index import Index

            self.ann = Index(ndim=vectors.shape[1], metric="cos", dtype="f32")
            self.ann.add(np.arange(len(rows)), self.vectors, threads=1)

    def nearest(self, query: FloatArray, m: int) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """About the m rows most similar to `query`, with their exact cosine."""
        m = min(m, len(self.rows))
        if self.ann is not None:
            local = np.asarray(self.ann.search(query, m).keys, dtype=np.int64)
        else:
            scores = self.vectors @ query
            local = np.argpartition(-scores, m - 1)[:m] if m < len(scores) else np.arange(m)
        return self.rows[local], self.vectors[local] @ query


class GraphEmbeddingExpander:
    """Seeds -> the entities nearest to their weighted mean vector (cosine).

    Seeds weigh 1/(1 + rank); seeds without a vector are ignored. Unless `kinds` is given, it
    returns entities of the seeds' own kinds (`same_kind=True`): a song's vector is close to
    songs like it, while nearness across kinds means little for translational models such as
    RotatE, which place a song and its artist a rotation apart. With `same_kind=False`, empty
    `kinds` means all kinds. Everything it needs is read at construction, never per request;
    given a store, it keeps only the ids the store still holds, with their current names.
    """

    def __init__(self, embeddings: TrainedEmbeddings, store: GraphStore | None = None, *,
                 name: str | None = None, same_kind: bool = True,
                 exact_limit: int = EXACT_LIMIT) -> None:
        self.name = name or source_name(embeddings.model)
        self.same_kind = same_kind
        ids, kinds, names = embeddings.ids, embeddings.kinds, embeddings.names
        keep = np.arange(len(ids))
        if store is not None:
            current = {e.id: e for e in store.get(ids)}
            keep = np.array([n for n, i in enumerate(ids) if i in current], dtype=np.int64)
            kinds = [current[i].kind.value if i in current else k for i, k in zip(ids, kinds,
                                                                                  strict=True)]
            names = [current[i].name if i in current else n for i, n in zip(ids, names,
                                                                            strict=True)]
        self._ids, self._kinds, self._names = ids, kinds, names
        self._vectors = np.ascontiguousarray(embeddings.vectors, dtype=np.float32)
        self._row = {ids[n]: int(n) for n in keep}
        by_kind: dict[str, list[int]] = {}
        for n in keep:
            by_kind.setdefault(kinds[n], []).append(int(n))
        self._blocks = {k: _KindBlock(np.array(r, dtype=np.int64), self._vectors, exact_limit)
                        for k, r in by_kind.items()}

    def expand(self, seeds: Sequence[Candidate], k: int, *,
               kinds: Sequence[str] = ()) -> list[Candidate]:
        if k <= 0:
            return []
        rows = list(dict.fromkeys(self._row[c.entity_id] for c in seeds
                                  if c.entity_id in self._row))
        seed_ids = {c.entity_id for c in seeds}
        if not rows:
            return []
        rank = {c.entity_id: r for r, c in reversed(list(enumerate(seeds)))}
        weights = np.array([1.0 / (1 + rank[self._ids[r]]) for r in rows], dtype=np.float32)
        query = weights @ self._vectors[rows]
        norm = float(np.linalg.norm(query))
        if norm == 0.0:
            return []
        query /= norm
        wanted = kinds or ([self._kinds[r] for r in rows] if self.same_kind else self._blocks)
        found: list[tuple[float, str, int]] = []
        for kind in sorted(set(wanted) & set(self._blocks)):
            got, scores = self._blocks[kind].nearest(query, k + len(rows))
            found += [(-float(s), self._ids[r], int(r)) for r, s in zip(got, scores, strict=True)
                      if self._ids[r] not in seed_ids]
        best = sorted(found)[:k]
        return [Candidate(i, -s, self.name, self._reason(r, rows, weights)) for s, i, r in best]

    def _reason(self, row: int, seed_rows: list[int], weights: FloatArray) -> str:
        """Credit the seed that contributes most to this neighbour's score."""
        pull = weights * (self._vectors[seed_rows] @ self._vectors[row])
        return f"graph neighbour of {self._names[seed_rows[int(np.argmax(pull))]]}"


# -- training entry point ---------------------------------------------------------------------

def train_main(out_dir: str | Path = DEFAULT_DIR, store: GraphStore | None = None, *,
               models: Sequence[str] = ("rotate", "lightgcn"), seed: int = 0,
               epochs: int | None = None, dim: int = 64, holdout: float = 0.1) -> str:
    """Train `models` on one shared held-out split, save each under out_dir/<model>, and
    return a markdown table of their held-out metrics next to the degree baseline.

    `epochs=None` takes each model's default (the KGE models and LightGCN need different
    counts). The saved vectors are those evaluated: trained without the held-out edges.
    """
    from retrievers import graph_train

    if store is None:
        raise ValueError("train_main needs the catalog store")
    unknown = [m for m in models if m not in KGE_MODELS + PYG_MODELS]
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {KGE_MODELS + PYG_MODELS}")
    split = graph_train.split_graph(store, holdout=holdout, seed=seed)
    rows = [("degree (baseline)", "-", "-", "-", graph_train.degree_baseline(split))]
    for model in models:
        if model in KGE_MODELS:
            trained = graph_train.train_kge(store, model=model, dim=dim, seed=seed, split=split,
                                            epochs=epochs or graph_train.KGE_EPOCHS)
        else:
            trained = graph_train.train_pyg(store, dim=dim, seed=seed, split=split,
                                            epochs=epochs or graph_train.PYG_EPOCHS)
        trained.save(Path(out_dir) / model)
        rows.append((model, str(trained.dim), str(trained.epochs),
                     f"{trained.train_seconds:.1f}", trained.metrics))
    return metrics_table(rows, split)


def metrics_table(rows: Sequence[tuple[str, str, str, str, dict[str, float]]],
                  split: GraphSplit | None = None) -> str:
    """Markdown: model, dim, epochs, train seconds, MRR and Hits@10 per held-out relation."""
    rels = ("RELATED_TO", "CONTAINS")
    head = ["model", "dim", "epochs", "train s"] + [f"{r} {m}" for r in rels
                                                      for m in ("MRR", "Hits@10")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, dim, epochs, seconds, metrics in rows:
        cells = [name, dim, epochs, seconds] + [
            f"{metrics[f'{r}/{m}']:.3f}" if f"{r}/{m}" in metrics else "-"
            for r in rels for m in ("mrr", "hits@10")]
        lines.append("| " + " | ".join(cells) + " |")
    if split is not None:
        counts = ", ".join(f"{r} {len(p)}" for r, p in split.heldout.items())
        lines.append(f"\nHeld-out edges: {counts}; ranked among all entities of the tail's "
                     "kind, filtered, ties counted half.")
    return "\n".join(lines)
