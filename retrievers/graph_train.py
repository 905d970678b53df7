"""Graph-embedding training: PyKEEN RotatE/ComplEx and PyG LightGCN on a held-out split.

`train_main` is `tunegraph train graph`: one split, each model trained and evaluated on it, the
vectors saved for `retrievers.graph_embed` to serve. Same seed, catalog, device and thread count
give the same vectors (CPU; CUDA's scatter kernels are not deterministic).
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from pykeen.losses import NSSALoss
from pykeen.models import ComplEx, RotatE
from pykeen.sampling import NegativeSampler
from pykeen.training import SLCWATrainingLoop
from pykeen.triples import TriplesFactory
from pykeen.utils import set_random_seed
from torch_geometric.nn.models import LightGCN

from graph.store import GraphStore
from retrievers.graph_embed import DEFAULT_DIR, KGE_MODELS, PYG_MODELS, TrainedEmbeddings
from retrievers.graph_split import (
    HELDOUT_RELATIONS,
    FloatArray,
    GraphSplit,
    IntArray,
    Scorer,
    degree_baseline,
    evaluate,
    split_graph,
)


@dataclass(frozen=True)
class TrainConfig:
    """One model's training settings. For RotatE and ComplEx `dim` is complex, so their
    served vectors have 2 x dim reals; `negatives` and `margin` are theirs, `layers` LightGCN's.
    """

    model: str
    dim: int
    epochs: int
    lr: float
    batch_size: int
    negatives: int = 4
    margin: float = 6.0
    layers: int = 2
    device: str = "cpu"


# Tuned on the real catalog's 10% held-out split (seed 0), 1 torch thread on 2 busy cores.
# RotatE: dim 32 reached RELATED_TO MRR 0.19 in 24 epochs; dim 64 0.21 in 20, 0.22 in 30.
# LightGCN: lr 0.01 beat 0.03 (0.16 vs 0.14 at 20 epochs); dim 128 cost 3x per epoch.
# ComplEx is not tuned: at lr 0.02 or 0.002 (standard-normal or Xavier start) it was still at
# chance after 6-12 epochs, where RotatE was well past the baseline.
DEFAULTS: Final = {
    "rotate": TrainConfig("rotate", dim=64, epochs=20, lr=0.02, batch_size=8192),
    "complex": TrainConfig("complex", dim=64, epochs=20, lr=0.02, batch_size=8192),
    "lightgcn": TrainConfig("lightgcn", dim=64, epochs=30, lr=0.01, batch_size=16384),
}


def config_for(model: str, *, epochs: int | None = None, dim: int | None = None,
               device: str = "cpu") -> TrainConfig:
    """A model's default settings, with `epochs` and `dim` replaced where given."""
    if model not in DEFAULTS:
        raise ValueError(f"unknown model {model!r}; choose from {sorted(DEFAULTS)}")
    changes: dict[str, Any] = {"device": device}
    if epochs is not None:
        changes["epochs"] = epochs
    if dim is not None:
        changes["dim"] = dim
    return dataclasses.replace(DEFAULTS[model], **changes)


def train(split: GraphSplit, config: TrainConfig) -> TrainedEmbeddings:
    """Fit one model on the split's training edges and evaluate it on the held-out ones with
    `graph_split.evaluate`: the same typed filtered ranking for every model and the baseline,
    scored by `TrainedEmbeddings.link_scores`, as the expander scores."""
    fit = fit_kge if config.model in KGE_MODELS else fit_lightgcn
    vectors, relation_vectors, seconds = fit(split, config)
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k != "model"}
    trained = TrainedEmbeddings(
        model=config.model, ids=list(split.ids), kinds=list(split.kinds), vectors=vectors,
        relations=list(split.relations) if len(relation_vectors) else [],
        relation_vectors=relation_vectors, seed=split.seed,
        catalog_version=split.catalog_version, config=settings, train_seconds=seconds)
    return dataclasses.replace(trained, metrics=evaluate(split, link_scorer(trained)))


def link_scorer(trained: TrainedEmbeddings) -> Scorer:
    """The held-out ranking's scorer over saved embeddings."""
    def scorer(rel: str, heads: IntArray, span: tuple[int, int]) -> FloatArray:
        return trained.link_scores(trained.queries(heads, rel), trained.vectors[span[0]:span[1]])

    return scorer


# -- PyKEEN -----------------------------------------------------------------------------------

class KindNegativeSampler(NegativeSampler):
    """Corrupts the head or the tail with a random entity of the same kind.

    Uniform negatives over all 88k entities mostly teach that a song is not a genre; typed
    ones teach which song, which is what the ranking (and the neighbour search) asks. Draws
    from torch's global generator, which PyKEEN's `set_random_seed` seeds.
    """

    def __init__(self, *, mapped_triples: torch.Tensor, kind_start: torch.Tensor,
                 kind_size: torch.Tensor, **kwargs: Any) -> None:
        super().__init__(mapped_triples=mapped_triples, **kwargs)
        self.kind_start, self.kind_size = kind_start, kind_size

    def corrupt_batch(self, positive_batch: torch.Tensor) -> torch.Tensor:
        b, n, device = positive_batch.shape[0], self.num_negs_per_pos, positive_batch.device
        start, size = self.kind_start.to(device), self.kind_size.to(device)
        negative = positive_batch.unsqueeze(1).repeat(1, n, 1)
        column = (2 * (torch.rand(b, n, device=device) < 0.5).long()).unsqueeze(-1)  # h or t
        entity = negative.gather(2, column).squeeze(-1)
        drawn = start[entity] + (torch.rand(b, n, device=device) * size[entity]).long()
        return negative.scatter(2, column, drawn.unsqueeze(-1))


def fit_kge(split: GraphSplit, config: TrainConfig) -> tuple[FloatArray, FloatArray, float]:
    """Train RotatE (self-adversarial loss, as in its paper) or ComplEx (PyKEEN's softplus
    loss and regulariser) with PyKEEN's sLCWA loop and Adam; returns entity and relation
    vectors (complex numbers as real pairs) and the training seconds."""
    set_random_seed(split.seed)
    factory = TriplesFactory(
        mapped_triples=torch.from_numpy(split.train),
        entity_to_id={i: n for n, i in enumerate(split.ids)},
        relation_to_id={r: n for n, r in enumerate(split.relations)})
    kge: RotatE | ComplEx
    if config.model == "rotate":
        kge = RotatE(triples_factory=factory, embedding_dim=config.dim,
                     loss=NSSALoss(margin=config.margin), random_seed=split.seed)
    else:
        kge = ComplEx(triples_factory=factory, embedding_dim=config.dim, random_seed=split.seed)
    kge = kge.to(config.device)
    start, size = (torch.from_numpy(a) for a in split.kind_of_rows())
    loop = SLCWATrainingLoop(
        model=kge, triples_factory=factory, optimizer="adam",
        optimizer_kwargs={"lr": config.lr}, negative_sampler=KindNegativeSampler,
        negative_sampler_kwargs={"kind_start": start, "kind_size": size,
                                 "num_negs_per_pos": config.negatives},
        automatic_memory_optimization=False)  # its batch-size search is for GPUs
    began = time.perf_counter()
    # PyKEEN calls gc.collect() after every epoch; with the catalog's millions of Python
    # objects alive that alone costs a second. Frozen objects are skipped by collections.
    gc.freeze()
    try:
        loop.train(triples_factory=factory, num_epochs=config.epochs,
                   batch_size=config.batch_size, use_tqdm=False, pin_memory=False)
    finally:
        gc.unfreeze()
    seconds = time.perf_counter() - began
    with torch.no_grad():
        entities, relations = (r(indices=None).detach() for r in
                               (kge.entity_representations[0], kge.relation_representations[0]))
    return _real_pairs(entities), _real_pairs(relations), seconds


def _real_pairs(x: torch.Tensor) -> FloatArray:
    """A complex [n, d] tensor as float32 [n, 2d], each number's real then imaginary part
    (numpy's complex64 layout, so `.view(np.complex64)` gets the numbers back)."""
    pairs = torch.view_as_real(x).reshape(len(x), -1)
    return np.ascontiguousarray(pairs.cpu().numpy(), dtype=np.float32)


# -- PyTorch Geometric ------------------------------------------------------------------------

def normalized_adjacency(split: GraphSplit) -> torch.Tensor:
    """D^-1/2 A D^-1/2 of the undirected training graph (every relation type), sparse CSR.

    Normalised once here rather than by every LGConv call at every step: the graph is fixed.
    """
    both = np.concatenate([split.train[:, [0, 2]], split.train[:, [2, 0]]])
    both = np.unique(both, axis=0)
    degree = np.bincount(both[:, 0], minlength=len(split.ids)).astype(np.float32)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1.0))
    values = inv_sqrt[both[:, 0]] * inv_sqrt[both[:, 1]]
    n = len(split.ids)
    return torch.sparse_coo_tensor(torch.from_numpy(both.T.copy()), torch.from_numpy(values),
                                   (n, n), check_invariants=False).coalesce().to_sparse_csr()


def fit_lightgcn(split: GraphSplit,
                 config: TrainConfig) -> tuple[FloatArray, FloatArray, float]:
    """Train PyG's LightGCN with its BPR loss on every training edge, in both directions, with
    one negative of the destination's kind per positive (typed, as for the KGE models).

    A link scores the dot product of the two propagated embeddings, whatever its relation
    (the tail's kind is what tells CONTAINS from RELATED_TO in the ranking); the propagated
    embeddings are the saved vectors, with no relation vectors.
    """
    torch.manual_seed(split.seed)
    device = torch.device(config.device)
    model = LightGCN(len(split.ids), config.dim, config.layers).to(device)
    adjacency = normalized_adjacency(split).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(split.seed)  # on CPU, wherever the model is
    pairs = torch.from_numpy(np.concatenate([split.train[:, [0, 2]], split.train[:, [2, 0]]]))
    start, size = (torch.from_numpy(a) for a in split.kind_of_rows())
    began = time.perf_counter()
    for _ in range(config.epochs):
        order = torch.randperm(len(pairs), generator=generator)
        for batch in torch.split(order, config.batch_size):
            src, dst = pairs[batch, 0], pairs[batch, 1]
            neg = start[dst] + (torch.rand(len(batch), generator=generator) * size[dst]).long()
            src, dst, neg = src.to(device), dst.to(device), neg.to(device)
            emb = model.get_embedding(adjacency)
            loss = model.recommendation_loss(
                (emb[src] * emb[dst]).sum(-1), (emb[src] * emb[neg]).sum(-1),
                node_id=torch.unique(torch.cat([src, dst, neg])))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - began
    with torch.no_grad():
        vectors = model.get_embedding(adjacency).cpu().numpy()
    return np.asarray(vectors, dtype=np.float32), np.zeros((0, config.dim), np.float32), seconds


# -- the command ------------------------------------------------------------------------------

def train_main(store: GraphStore, out_dir: str | Path = DEFAULT_DIR, *,
               models: Sequence[str] = ("rotate", "lightgcn"), seed: int = 0,
               epochs: int | None = None, dim: int | None = None, holdout: float = 0.1,
               device: str = "cpu", threads: int | None = None) -> str:
    """Train `models` on one shared held-out split, save each under out_dir/<model>, and
    return a markdown table of their held-out metrics next to the degree baseline.

    `epochs` and `dim` default to each model's tuned settings (`DEFAULTS`). The
    saved vectors are those evaluated, trained without the held-out edges; `holdout=0` trains
    on every edge and reports no metrics.
    """
    unknown = [m for m in models if m not in KGE_MODELS + PYG_MODELS]
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {KGE_MODELS + PYG_MODELS}")
    if threads:
        torch.set_num_threads(threads)
    split = split_graph(store, holdout=holdout, seed=seed)
    rows: list[tuple[str, str, str, str, dict[str, float]]] = [
        ("degree (baseline)", "-", "-", "-", degree_baseline(split))]
    for model in models:
        config = config_for(model, epochs=epochs, dim=dim, device=device)
        trained = train(split, config)
        trained.save(Path(out_dir) / model)
        rows.append((model, str(config.dim), str(config.epochs),
                     f"{trained.train_seconds:.1f}", trained.metrics))
    return metrics_table(rows, split)


def metrics_table(rows: Sequence[tuple[str, str, str, str, dict[str, float]]],
                  split: GraphSplit | None = None) -> str:
    """Markdown: model, dim, epochs, train seconds, MRR and Hits@10 per held-out relation."""
    head = ["model", "dim", "epochs", "train s"] + [
        f"{r} {m}" for r in HELDOUT_RELATIONS for m in ("MRR", "Hits@10")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, dim, epochs, seconds, metrics in rows:
        cells = [name, dim, epochs, seconds] + [
            f"{metrics[f'{r}/{m}']:.3f}" if f"{r}/{m}" in metrics else "-"
            for r in HELDOUT_RELATIONS for m in ("mrr", "hits@10")]
        lines.append("| " + " | ".join(cells) + " |")
    if split is not None:
        counts = ", ".join(f"{r} {len(p):,}" for r, p in split.heldout.items())
        lines.append(f"\nHeld-out edges: {counts} (seed {split.seed}, catalog version "
                     f"{split.catalog_version}); each ranked among every entity of the tail's "
                     "kind, filtered, ties counted half.")
    return "\n".join(lines)
