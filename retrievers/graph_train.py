"""Graph-embedding training: the held-out split, a PyKEEN and a PyG model, filtered ranking."""

from __future__ import annotations

import gc
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch
from pykeen.losses import NSSALoss
from pykeen.models import ComplEx, RotatE
from pykeen.sampling import NegativeSampler
from pykeen.training import SLCWATrainingLoop
from pykeen.triples import TriplesFactory
from pykeen.utils import set_random_seed
from torch_geometric.nn.models import LightGCN

from graph.model import REL_ENDPOINTS, Kind, RelType
from graph.store import GraphStore
from retrievers.graph_embed import TrainedEmbeddings

HELDOUT_RELATIONS: Final = (RelType.RELATED_TO.value, RelType.CONTAINS.value)
KGE_MODELS: Final = {"rotate": RotatE, "complex": ComplEx}
KGE_EPOCHS: Final = 20
PYG_EPOCHS: Final = 30
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
# (relation, head rows, tail row range) -> scores of every tail in the range, [heads, range].
Scorer = Callable[[str, IntArray, tuple[int, int]], FloatArray]


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
    names: list[str]
    popularity: FloatArray
    kind_ranges: dict[str, tuple[int, int]]
    relations: list[str]
    train: IntArray  # [n, 3] (head row, relation index, tail row)
    heldout: dict[str, IntArray]  # relation -> [m, 2] (head row, tail row)
    known: dict[tuple[str, int], IntArray]
    seed: int
    catalog_version: int

    def kind_of_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, the first row and the size of its kind's range (typed negative sampling)."""
        start = np.zeros(len(self.ids), dtype=np.int64)
        size = np.zeros(len(self.ids), dtype=np.int64)
        for lo, hi in self.kind_ranges.values():
            start[lo:hi], size[lo:hi] = lo, hi - lo
        return torch.from_numpy(start), torch.from_numpy(size)


def split_graph(store: GraphStore, *, holdout: float, seed: int) -> GraphSplit:
    """Hold out a seeded `holdout` fraction of the RELATED_TO and CONTAINS edges.

    RELATED_TO is held out by unordered pair (both directions together): 55% of co-listening
    edges have their reverse in the catalog, and keeping it in training would leak the answer.
    A held-out pair whose endpoint would be left with no training edge goes back to training,
    since no model can place an entity it never saw.
    """
    entities = {e.id: e for e in store.iter_entities()}
    set_of_triples = {(r.src, r.type.value, r.dst) for r in store.iter_relations()}
    triples = sorted(set_of_triples)
    held = _choose_heldout(triples, holdout, seed)
    train = [t for t in triples if _pair(t) not in held]
    degree: dict[str, int] = defaultdict(int)
    for h, _, t in train:
        degree[h] += 1
        degree[t] += 1
    for edge in triples:  # cold starts go back to training (both directions of the pair)
        if _pair(edge) in held and (degree[edge[0]] == 0 or degree[edge[2]] == 0):
            held.discard(_pair(edge))
            back: set[tuple[str, str, str]] = {edge, (edge[2], edge[1], edge[0])}
            train.extend(back & set_of_triples)
            degree[edge[0]] += 1
            degree[edge[2]] += 1
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
        ids=ids, kinds=kinds, names=[entities[i].name for i in ids],
        popularity=np.array([entities[i].popularity for i in ids], dtype=np.float32),
        kind_ranges=_ranges(kinds), relations=relations,
        train=np.array(sorted((row[h], rel_index[r], row[t]) for h, r, t in set(train)),
                       dtype=np.int64).reshape(-1, 3),
        heldout=heldout, known={k: np.array(v, dtype=np.int64) for k, v in known.items()},
        seed=seed, catalog_version=store.catalog_version())


def _pair(t: tuple[str, str, str]) -> tuple[str, str, str]:
    """The unordered pair an edge belongs to, which is what gets held out."""
    return (t[1], *sorted((t[0], t[2])))  # type: ignore[return-value]


def _choose_heldout(triples: list[tuple[str, str, str]], holdout: float,
                    seed: int) -> set[tuple[str, str, str]]:
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

    Other true tails of the same head are left out of the ranking; ties count half (the
    "realistic" rank), so a model that scores everything alike gets no credit for it.
    """
    metrics: dict[str, float] = {}
    for rel, pairs in split.heldout.items():
        if not len(pairs):
            continue
        lo, hi = split.kind_ranges[REL_ENDPOINTS[RelType(rel)][1].value]
        ranks = [_filtered_ranks(scorer(rel, pairs[i:i + batch, 0], (lo, hi)), rel,
                                 pairs[i:i + batch], lo, split.known)
                 for i in range(0, len(pairs), batch)]
        r = np.concatenate(ranks)
        metrics[f"{rel}/mrr"] = float(np.mean(1.0 / r))
        metrics[f"{rel}/hits@10"] = float(np.mean(r <= 10))
        metrics[f"{rel}/n"] = float(len(r))
    return metrics


def _filtered_ranks(scores: FloatArray, rel: str, pairs: IntArray, lo: int,
                    known: dict[tuple[str, int], IntArray]) -> npt.NDArray[np.float64]:
    scores = np.array(scores, dtype=np.float64)  # a copy: the filter writes into it
    ranks = np.empty(len(pairs), dtype=np.float64)
    for i, (h, t) in enumerate(pairs):
        true = scores[i, t - lo]
        scores[i, known[(rel, int(h))] - lo] = -np.inf
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


# -- PyKEEN -----------------------------------------------------------------------------------

class KindNegativeSampler(NegativeSampler):
    """Corrupts the head or the tail with a random entity of the same kind.

    Uniform negatives over all 88k entities mostly teach that a song is not a genre; typed
    ones teach which song, which is what the ranking (and the neighbour search) asks.
    """

    def __init__(self, *, mapped_triples: torch.Tensor, kind_start: torch.Tensor,
                 kind_size: torch.Tensor, **kwargs: Any) -> None:
        super().__init__(mapped_triples=mapped_triples, **kwargs)
        self.kind_start, self.kind_size = kind_start, kind_size

    def corrupt_batch(self, positive_batch: torch.Tensor) -> torch.Tensor:
        b, n = positive_batch.shape[0], self.num_negs_per_pos
        negative = positive_batch.unsqueeze(1).repeat(1, n, 1)
        column = (2 * (torch.rand(b, n) < 0.5).long()).unsqueeze(-1)  # 0: head, 2: tail
        entity = negative.gather(2, column).squeeze(-1)
        drawn = self.kind_start[entity] + (torch.rand(b, n) * self.kind_size[entity]).long()
        return negative.scatter(2, column, drawn.unsqueeze(-1))


def fit_kge(split: GraphSplit, *, model: str = "rotate", dim: int = 64,
            epochs: int = KGE_EPOCHS,
            batch_size: int = 2048, negatives: int = 32, lr: float = 0.005) -> tuple[Any, float]:
    """Train RotatE or ComplEx (complex dimension `dim`) with PyKEEN's sLCWA loop on CPU;
    returns the model and the training seconds.

    Seeded through `pykeen.utils.set_random_seed` (python, numpy, torch) with the split's
    seed: the same seed and catalog give the same weights.
    """
    set_random_seed(split.seed)
    factory = TriplesFactory(
        mapped_triples=torch.from_numpy(split.train),
        entity_to_id={i: n for n, i in enumerate(split.ids)},
        relation_to_id={r: n for n, r in enumerate(split.relations)})
    # RotatE is trained as in its paper (self-adversarial loss); ComplEx keeps PyKEEN's default.
    loss = NSSALoss(margin=6.0) if model == "rotate" else None
    kge = KGE_MODELS[model](triples_factory=factory, embedding_dim=dim, loss=loss,
                            random_seed=split.seed)
    start, size = split.kind_of_rows()
    loop = SLCWATrainingLoop(
        model=kge, triples_factory=factory, optimizer="adam", optimizer_kwargs={"lr": lr},
        negative_sampler=KindNegativeSampler,
        negative_sampler_kwargs={"kind_start": start, "kind_size": size,
                                 "num_negs_per_pos": negatives},
        automatic_memory_optimization=False)  # its batch-size search is for GPUs
    began = time.perf_counter()
    # PyKEEN calls gc.collect() after every epoch; with the catalog's millions of Python
    # objects in memory that alone costs a second. Frozen objects are skipped by collections.
    gc.freeze()
    try:
        loop.train(triples_factory=factory, num_epochs=epochs, batch_size=batch_size,
                   use_tqdm=False, pin_memory=False)
    finally:
        gc.unfreeze()
    kge.eval()
    return kge, time.perf_counter() - began


def kge_scorer(kge: Any, split: GraphSplit) -> tuple[Scorer, FloatArray]:
    """A fast scorer for RotatE and ComplEx, and the entity vectors (complex as real pairs).

    Both reduce to one matmul against all tails: ComplEx scores Re<h*r, conj(t)>, RotatE
    -|h*r - t|, which ranks like 2 Re<h*r, conj(t)> - |t|^2. PyKEEN's `score_t` builds a
    [heads, tails, dim] tensor instead, minutes for the catalog's held-out edges.
    """
    with torch.no_grad():
        entities = kge.entity_representations[0](indices=None).detach()
        relations = kge.relation_representations[0](indices=None).detach()
    real = torch.view_as_real(entities).reshape(len(entities), -1)
    squared = (real * real).sum(1)
    rotate = isinstance(kge, RotatE)
    rel_index = {r: n for n, r in enumerate(split.relations)}

    def scorer(rel: str, heads: IntArray, span: tuple[int, int]) -> FloatArray:
        query = entities[torch.from_numpy(heads)] * relations[rel_index[rel]]
        dots = torch.view_as_real(query).reshape(len(heads), -1) @ real[span[0]:span[1]].T
        scores = 2 * dots - squared[span[0]:span[1]] if rotate else dots
        return np.asarray(scores.numpy(), dtype=np.float32)

    return scorer, np.asarray(real.numpy(), dtype=np.float32)


def train_kge(store: GraphStore | None, *, model: str = "rotate", dim: int = 64,
              epochs: int = KGE_EPOCHS, seed: int = 0, holdout: float = 0.1,
              batch_size: int = 2048,
              negatives: int = 32, lr: float = 0.005,
              split: GraphSplit | None = None) -> TrainedEmbeddings:
    """Split (unless given a split), fit, and evaluate with `evaluate`: our filtered typed
    ranking rather than PyKEEN's evaluator, so that every model and the baseline are ranked
    among the same candidates the same way."""
    split = split or split_graph(_need(store), holdout=holdout, seed=seed)
    kge, seconds = fit_kge(split, model=model, dim=dim, epochs=epochs, batch_size=batch_size,
                           negatives=negatives, lr=lr)
    scorer, vectors = kge_scorer(kge, split)
    config: dict[str, float | int | str] = {"batch_size": batch_size, "negatives": negatives,
                                            "lr": lr, "holdout": holdout}
    return _package(split, model, vectors, dim, epochs, seconds, evaluate(split, scorer),
                    config)


def _need(store: GraphStore | None) -> GraphStore:
    if store is None:
        raise ValueError("give a store or a split")
    return store


def _package(split: GraphSplit, model: str, vectors: npt.NDArray[Any], dim: int, epochs: int,
             seconds: float, metrics: dict[str, float],
             config: dict[str, float | int | str]) -> TrainedEmbeddings:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return TrainedEmbeddings(
        model=model, ids=list(split.ids), kinds=list(split.kinds), names=list(split.names),
        vectors=vectors / np.maximum(norms, 1e-12), dim=dim, epochs=epochs, seed=split.seed,
        catalog_version=split.catalog_version, metrics=metrics, train_seconds=seconds,
        config=config)


# -- PyTorch Geometric ------------------------------------------------------------------------

def normalized_adjacency(split: GraphSplit, relations: Sequence[str] = ()) -> torch.Tensor:
    """The symmetric-normalised adjacency D^-1/2 A D^-1/2 of the undirected training graph
    (all relation types unless `relations`), as a sparse CSR tensor.

    Normalised once here rather than by every LGConv call at every step: the graph is fixed.
    """
    keep = [split.relations.index(r) for r in relations] if relations else []
    edges = split.train if not keep else split.train[np.isin(split.train[:, 1], keep)]
    both = np.concatenate([edges[:, [0, 2]], edges[:, [2, 0]]])
    both = np.unique(both, axis=0)
    degree = np.bincount(both[:, 0], minlength=len(split.ids)).astype(np.float32)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1.0))
    values = inv_sqrt[both[:, 0]] * inv_sqrt[both[:, 1]]
    n = len(split.ids)
    return torch.sparse_coo_tensor(torch.from_numpy(both.T.copy()), torch.from_numpy(values),
                                   (n, n)).coalesce().to_sparse_csr()


def train_pyg(store: GraphStore | None, *, dim: int = 64, epochs: int = PYG_EPOCHS,
              seed: int = 0,
              holdout: float = 0.1, layers: int = 2, batch_size: int = 16384, lr: float = 0.01,
              relations: Sequence[str] = (), split: GraphSplit | None = None) -> TrainedEmbeddings:
    """Train PyG's LightGCN with a BPR loss on every training edge, in both directions, with
    one negative of the destination's kind per positive (typed, as for the KGE models).

    A link's score is the dot product of the two propagated embeddings; the served vectors are
    those embeddings, L2-normalised.
    """
    split = split or split_graph(_need(store), holdout=holdout, seed=seed)
    torch.manual_seed(seed)
    adjacency = normalized_adjacency(split, relations)
    model = LightGCN(len(split.ids), dim, layers, normalize=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    pairs = torch.from_numpy(np.concatenate([split.train[:, [0, 2]], split.train[:, [2, 0]]]))
    start, size = split.kind_of_rows()
    began = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(pairs), generator=generator)
        for batch in torch.split(order, batch_size):
            src, dst = pairs[batch, 0], pairs[batch, 1]
            neg = start[dst] + (torch.rand(len(batch), generator=generator) * size[dst]).long()
            emb = model.get_embedding(adjacency)
            pos_rank = (emb[src] * emb[dst]).sum(-1)
            neg_rank = (emb[src] * emb[neg]).sum(-1)
            loss = model.recommendation_loss(pos_rank, neg_rank,
                                             node_id=torch.unique(torch.cat([src, dst, neg])))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - began
    with torch.no_grad():
        emb_all = model.get_embedding(adjacency).numpy()

    def scorer(rel: str, heads: IntArray, span: tuple[int, int]) -> FloatArray:
        return np.asarray(emb_all[heads] @ emb_all[span[0]:span[1]].T, dtype=np.float32)

    config: dict[str, float | int | str] = {
        "layers": layers, "batch_size": batch_size, "lr": lr, "holdout": holdout,
        "relations": ",".join(relations) or "all"}
    return _package(split, "lightgcn", emb_all, dim, epochs, seconds, evaluate(split, scorer),
                    config)
