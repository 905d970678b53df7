"""Graph embeddings on the real catalog: held-out link prediction, training time, serving latency.

Prints markdown tables. Usage:

    .venv/bin/python -m bench.graph_embed_bench [--catalog FEED] [--models rotate lightgcn]
        [--epochs N] [--dim D] [--seed 0] [--device cpu|cuda] [--threads N] [--out DIR]

The catalog is ingested into a MemoryStore, then `graph_train.train_main` trains each model on
one seeded split (10% of RELATED_TO pairs and CONTAINS edges held out) with its tuned defaults
and prints held-out MRR and Hits@10 next to the degree baseline, plus training seconds (wall
clock on `--device`; pass `--device cuda` to train on a GPU). Then each saved model is served
by `GraphEmbeddingExpander` and timed: k=10 neighbours of one seed per call, seeds drawn
(seeded) from artists, songs and playlists, median and p95 over the calls. `--serve-only
--out DIR` skips training and times the embeddings already saved in DIR. On a busy machine
multi-threaded BLAS makes these matrix-vector products about 10x slower (measured here: p50
9.6 ms against 1.2 ms for RotatE); run with OPENBLAS_NUM_THREADS=1, as a server should.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from graph.memory_store import MemoryStore
from graph.model import Kind
from ingest.pipeline import ingest
from retrievers.base import Candidate
from retrievers.graph_embed import GraphEmbeddingExpander
from retrievers.graph_train import train_main

SEED_KINDS = (Kind.ARTIST, Kind.SONG, Kind.PLAYLIST)


def latency_table(store: MemoryStore, out: Path, models: Sequence[str], *, calls: int,
                  seed: int) -> str:
    """Per model: expander build seconds, and expand(k=10) latency from one seed."""
    rng = random.Random(seed)
    by_kind = {k: [e.id for e in store.iter_entities() if e.kind == k] for k in SEED_KINDS}
    seeds = [rng.choice(by_kind[SEED_KINDS[i % len(SEED_KINDS)]]) for i in range(calls)]
    lines = ["| expander | model | build s | entities served | p50 ms | p95 ms |",
             "|---|---|---|---|---|---|"]
    for model in models:
        began = time.perf_counter()
        expander = GraphEmbeddingExpander.load(store, model, out)
        build = time.perf_counter() - began
        times = []
        for entity in seeds:
            began = time.perf_counter()
            expander.expand([Candidate(entity, 1.0, "bench")], 10)
            times.append((time.perf_counter() - began) * 1000)
        p95 = statistics.quantiles(times, n=20)[-1]
        served = store.counts().total_nodes - expander.missing
        lines.append(f"| {expander.name} | {model} | {build:.1f} | {served:,} | "
                     f"{statistics.median(times):.2f} | {p95:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default=".tunegraph/catalog.jsonl.gz")
    parser.add_argument("--models", nargs="+", default=["rotate", "lightgcn"],
                        choices=["rotate", "complex", "lightgcn"])
    parser.add_argument("--epochs", type=int, help="default: each model's tuned count")
    parser.add_argument("--dim", type=int, help="default: each model's tuned size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--calls", type=int, default=300, help="expand calls timed per model")
    parser.add_argument("--out", help="where the embeddings go (default: a temporary folder)")
    parser.add_argument("--serve-only", action="store_true",
                        help="no training: time the expanders over the embeddings in --out")
    args = parser.parse_args(argv)
    if args.serve_only and not args.out:
        parser.error("--serve-only needs --out")

    began = time.perf_counter()
    store = MemoryStore()
    ingest(store, [args.catalog])
    print(f"Catalog: {store.counts().total_nodes:,} entities, "
          f"{store.counts().total_relationships:,} relationships, loaded in "
          f"{time.perf_counter() - began:.1f} s."
          + ("" if args.serve_only else f" Training on {args.device}.") + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        if not args.serve_only:
            print(train_main(store, out, models=args.models, seed=args.seed,
                             epochs=args.epochs, dim=args.dim, device=args.device,
                             threads=args.threads))
            print()
        print(latency_table(store, out, args.models, calls=args.calls, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
