"""Graph-embedding neighbours: saved entity vectors and the Expander that serves them.

Serving needs numpy only: training (torch, PyKEEN, PyG) lives in `retrievers.graph_train`.

Vectors are trained on one catalog version. The expander is built from the saved files plus the
store: it keeps the rows whose entity the store still holds, with their current kind and name,
and `refresh` redoes that when the catalog version moves. An entity added after training has
no vector, so it is neither found nor usable as a seed until `tunegraph train graph` runs again:
retraining is what picks new entities up; `stale` says when that is due.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from graph.model import REL_ENDPOINTS, Kind, RelType
from graph.store import GraphStore
from retrievers.base import Candidate

DEFAULT_DIR: Final = Path(".tunegraph/embeddings")
KGE_MODELS: Final = ("rotate", "complex")
PYG_MODELS: Final = ("lightgcn",)
FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def source_name(model: str) -> str:
    """The expander (and candidate source) name: "kge" for PyKEEN's models, "gnn" for PyG's."""
    if model in KGE_MODELS:
        return "kge"
    if model in PYG_MODELS:
        return "gnn"
    raise ValueError(f"unknown model {model!r}; choose from {KGE_MODELS + PYG_MODELS}")


@dataclass(frozen=True)
class TrainedEmbeddings:
    """One model's entity vectors (and, for RotatE and ComplEx, relation vectors; complex
    numbers as (real, imaginary) pairs), the id and kind of each entity row, the catalog
    version and seed they were trained on, their settings and held-out metrics.

    `link_scores` is the model's own score of (head, relation, tail), which both the held-out
    evaluation and the expander rank by, so the metrics describe what is served.
    """

    model: str
    ids: list[str]
    kinds: list[str]
    vectors: FloatArray
    relations: list[str]
    relation_vectors: FloatArray  # [len(relations), dim]; no rows for LightGCN
    seed: int
    catalog_version: int
    config: dict[str, float | int | str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0

    def queries(self, rows: Sequence[int] | IntArray, relation: str | None = None, *,
                inverse: bool = False) -> FloatArray:
        """The vectors a tail is compared with: each head rotated (RotatE) or multiplied
        (ComplEx) by the relation, or by its conjugate to go from tail to head (`inverse`).
        No relation, or a model without relation vectors: the entity vectors themselves."""
        q = self.vectors[np.asarray(rows, dtype=np.int64)]
        if relation is None or relation not in self.relations:
            return q
        r = self.relation_vectors[self.relations.index(relation)].view(np.complex64)
        rotated = q.view(np.complex64) * (np.conj(r) if inverse else r)
        return np.ascontiguousarray(rotated).view(np.float32)

    def link_scores(self, queries: FloatArray, tails: FloatArray,
                    tail_squares: FloatArray | None = None) -> FloatArray:
        """[queries, tails] scores, higher is better. ComplEx and LightGCN score the dot
        product (Re<h*r, conj(t)> in ComplEx's terms); RotatE -|h*r - t|^2, which ranks like
        its distance. A mean of queries ranks tails by the mean of their scores (weights
        summing to 1), which is how several seeds combine. `tail_squares`, the tails' squared
        norms, saves recomputing them per request."""
        dots = queries @ tails.T
        if self.model == "rotate":
            if tail_squares is None:
                tail_squares = np.einsum("ij,ij->i", tails, tails)
            squares = np.einsum("ij,ij->i", queries, queries)[:, None] + tail_squares
            return np.asarray(2 * dots - squares, dtype=np.float32)
        return np.asarray(dots, dtype=np.float32)

    def save(self, directory: str | Path) -> Path:
        """Write vectors.npy, relations.npy, entities.json ([id, kind] per row), meta.json.

        Written beside the target and renamed into place, so a process loading the directory
        meanwhile sees the old files or the new ones, never half of each.
        """
        path = Path(directory)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        np.save(tmp / "vectors.npy", self.vectors, allow_pickle=False)
        np.save(tmp / "relations.npy", self.relation_vectors, allow_pickle=False)
        rows = [[i, k] for i, k in zip(self.ids, self.kinds, strict=True)]
        (tmp / "entities.json").write_text(json.dumps(rows, ensure_ascii=False))
        meta = {"model": self.model, "relations": self.relations, "seed": self.seed,
                "catalog_version": self.catalog_version, "config": self.config,
                "metrics": self.metrics, "train_seconds": self.train_seconds}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        old = path.with_name(path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> TrainedEmbeddings:
        path = Path(directory)
        meta: dict[str, Any] = json.loads((path / "meta.json").read_text())
        rows: list[list[str]] = json.loads((path / "entities.json").read_text())
        vectors = np.load(path / "vectors.npy", allow_pickle=False).astype(np.float32)
        relations = np.load(path / "relations.npy", allow_pickle=False).astype(np.float32)
        if vectors.ndim != 2 or len(rows) != len(vectors):
            raise ValueError(f"{path}: {len(rows)} entities but vectors of shape "
                             f"{vectors.shape}")
        return cls(model=str(meta["model"]), ids=[r[0] for r in rows],
                   kinds=[r[1] for r in rows], vectors=vectors,
                   relations=list(meta["relations"]), relation_vectors=relations,
                   seed=int(meta["seed"]), catalog_version=int(meta["catalog_version"]),
                   config=meta["config"], metrics=meta["metrics"],
                   train_seconds=float(meta["train_seconds"]))


def _links() -> dict[tuple[str, str], tuple[str, bool]]:
    """(seed kind, wanted kind) -> the relation that leads there, and whether it is walked
    backwards. Same kind is plain similarity, except artists: RELATED_TO is co-listening."""
    links = {(Kind.ARTIST.value, Kind.ARTIST.value): (RelType.RELATED_TO.value, False)}
    for rel, (heads, tail) in REL_ENDPOINTS.items():
        for head in heads - {tail}:
            links[(head.value, tail.value)] = (rel.value, False)
            links[(tail.value, head.value)] = (rel.value, True)
    return links


LINKS: Final = _links()


@dataclass(frozen=True, eq=False)
class _Tables:
    """What a request reads, built at once from the embeddings and the store, swapped whole."""

    version: int  # the store's catalog version when built
    row: dict[str, int]  # entity id -> row, for live entities only
    names: list[str]  # per row; "" for entities that are gone
    kinds: list[str]
    by_kind: dict[str, tuple[IntArray, FloatArray, FloatArray]]  # kind -> live rows, their
    # vectors and squared norms
    missing: int  # live entities without a vector (added since training)


def _build(embeddings: TrainedEmbeddings, store: GraphStore) -> _Tables:
    version = store.catalog_version()  # first: a write landing meanwhile triggers a rebuild
    live = {e.id: (e.kind.value, e.name) for e in store.iter_entities()}
    ids = embeddings.ids
    keep = [n for n, i in enumerate(ids) if i in live]
    kinds = [live[i][0] if i in live else k for i, k in zip(ids, embeddings.kinds, strict=True)]
    rows_of: dict[str, list[int]] = {}
    for n in keep:
        rows_of.setdefault(kinds[n], []).append(n)
    by_kind = {}
    for kind, rows in rows_of.items():
        index = np.array(rows, dtype=np.int64)
        vectors = np.ascontiguousarray(embeddings.vectors[index])
        by_kind[kind] = (index, vectors, np.einsum("ij,ij->i", vectors, vectors))
    return _Tables(version=version, row={ids[n]: n for n in keep},
                   names=[live[i][1] if i in live else "" for i in ids], kinds=kinds,
                   by_kind=by_kind, missing=len(live) - len(keep))


class GraphEmbeddingExpander:
    """Seeds -> the entities the model scores best from them.

    Unless `kinds` is given, it returns entities of the seeds' own kinds. From an artist to
    artists, and from one kind to another that a relation joins (a playlist to its songs, a
    song to its album, an album to its songs), a seed's query is its vector carried along that
    relation, so neighbours are the model's link predictions, as evaluated. Otherwise (songs
    like a song) the query is the seed's own vector: nearest by the model's score. Seeds weigh
    1/(1 + rank), normalised, and their queries are averaged; seeds without a vector are
    ignored. Search is exact, one matrix-vector product per kind (about 1 ms for the catalog's
    32k songs), over arrays held in process: a request never reads the store.
    """

    def __init__(self, embeddings: TrainedEmbeddings, store: GraphStore, *,
                 name: str | None = None) -> None:
        self.name = name or source_name(embeddings.model)
        self.embeddings = embeddings
        self._t = _build(embeddings, store)

    @classmethod
    def load(cls, store: GraphStore, model: str,
             directory: str | Path = DEFAULT_DIR) -> GraphEmbeddingExpander:
        """The expander for the embeddings saved under directory/<model>."""
        return cls(TrainedEmbeddings.load(Path(directory) / model), store)

    @property
    def stale(self) -> bool:
        """True when the catalog changed after training: retrain to place new entities."""
        return self._t.version != self.embeddings.catalog_version

    @property
    def missing(self) -> int:
        """How many entities of the catalog have no vector (added after training)."""
        return self._t.missing

    def refresh(self, store: GraphStore) -> bool:
        """Rebuild the tables if the store's catalog version moved; True when it did."""
        if store.catalog_version() == self._t.version:
            return False
        self._t = _build(self.embeddings, store)
        return True

    def expand(self, seeds: Sequence[Candidate], k: int, *,
               kinds: Sequence[str] = ()) -> list[Candidate]:
        t = self._t  # one snapshot for the whole request, whatever refresh does meanwhile
        rank: dict[str, int] = {}
        for r, c in enumerate(seeds):
            rank.setdefault(c.entity_id, r)
        rows = [t.row[i] for i in rank if i in t.row]
        if k <= 0 or not rows:
            return []
        weights = np.array([1.0 / (1 + rank[self.embeddings.ids[r]]) for r in rows],
                           dtype=np.float32)
        weights /= weights.sum()
        found: list[tuple[float, str, int, str]] = []
        for kind in sorted(set(kinds or [t.kinds[r] for r in rows]) & set(t.by_kind)):
            queries = self._queries(t, rows, kind)
            index, vectors, squares = t.by_kind[kind]
            scores = self.embeddings.link_scores((weights @ queries)[None, :], vectors,
                                                 squares)[0]
            m = min(k + len(rows), len(scores))  # room for the seeds, which are dropped
            best = np.argpartition(-scores, m - 1)[:m] if m < len(scores) else np.arange(m)
            found += [(-float(scores[j]), self.embeddings.ids[index[j]], int(index[j]), kind)
                      for j in best if self.embeddings.ids[index[j]] not in rank]
        return [Candidate(i, -s, self.name, self._reason(t, row, rows, kind))
                for s, i, row, kind in sorted(found)[:k]]

    def _queries(self, t: _Tables, rows: list[int], kind: str) -> FloatArray:
        """One query per seed row, towards entities of `kind`."""
        out = []
        for r in rows:
            rel, inverse = LINKS.get((t.kinds[r], kind), (None, False))
            out.append(self.embeddings.queries([r], rel, inverse=inverse)[0])
        return np.stack(out)

    def _reason(self, t: _Tables, row: int, seed_rows: list[int], kind: str) -> str:
        """Credit the seed whose own query scores this neighbour highest."""
        scores = self.embeddings.link_scores(self._queries(t, seed_rows, kind),
                                             self.embeddings.vectors[row][None, :])[:, 0]
        return f"graph neighbour of {t.names[seed_rows[int(np.argmax(scores))]]}"
