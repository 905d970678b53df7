"""Full text: Neo4j's Lucene index against the in-process Tantivy index, on the loaded catalog.

    .venv/bin/python -m bench.fulltext_bench [--uri bolt://127.0.0.1:7687]
        [--home .tunegraph/neo4j] [--devset bench/data/devset.jsonl] [--k 60]

Runs every development query (bench/data/devset.jsonl, all splits: neither index is fitted to
them) through both retrievers at k 60, the first-stage budget, and prints two tables: hit@1,
hit@10, hit@k and MRR@10 per query class (a query's relevant ids come from the devset), and the
median and p95 wall time of one call with the CPU per call of this process and of Neo4j
(`bench.search_cost.Meter`). A first pass collects the answers and warms both (page cache,
query plan, the local index's cache of fuzzy document frequencies, which then holds what a
service would have seen of these words). Also: how alike the two top 10s are.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from bench.devset import CLASSES, DEFAULT_OUT, read
from bench.search_cost import Meter, tree
from graph import server
from graph.neo4j_store import Neo4jStore
from graph.snapshot import Snapshot
from retrievers.base import Candidate, Query, Retriever
from retrievers.fulltext import FullTextRetriever
from retrievers.fulltext_local import LocalFullTextRetriever


def _retrieve(retriever: Retriever, k: int, text: str) -> list[Candidate]:
    return retriever.retrieve(Query(text), k)


def quality(ranks: Sequence[int | None], k: int) -> str:
    """hit@1 | hit@10 | hit@k | MRR@10 of first-relevant ranks (None: not found)."""
    n = max(1, len(ranks))
    h1 = sum(r == 0 for r in ranks) / n
    h10 = sum(r is not None and r < 10 for r in ranks) / n
    hk = sum(r is not None and r < k for r in ranks) / n
    mrr = sum(1 / (r + 1) for r in ranks if r is not None and r < 10) / n
    return f"{h1:.3f} | {h10:.3f} | {hk:.3f} | {mrr:.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--uri", default="bolt://127.0.0.1:7687")
    ap.add_argument("--home", type=Path, default=Path(".tunegraph/neo4j"),
                    help="the Neo4j home behind --uri, for its CPU")
    ap.add_argument("--devset", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--k", type=int, default=60)
    args = ap.parse_args(argv)
    found = server.status(args.home)
    if found is None:
        raise SystemExit(f"no Neo4j is running under {args.home}")
    store = Neo4jStore.connect(args.uri)
    snap = Snapshot.read(store)
    t = time.perf_counter()
    local = LocalFullTextRetriever(snap.entities)
    build_s = time.perf_counter() - t
    queries = read(args.devset)
    texts = [q.query for q in queries]
    retrievers: list[tuple[str, Retriever]] = [("Neo4j (Lucene)", FullTextRetriever(store)),
                                               ("in-process (Tantivy)", local)]
    print(f"catalog: {len(snap.entities):,} entities; Tantivy index built in {build_s:.2f} s; "
          f"{len(queries)} development queries, k {args.k}\n")
    meter = Meter(tree(found.pid), lambda: [os.getpid()])
    answers: dict[str, list[list[str]]] = {}
    costs = []
    for name, r in retrievers:
        answers[name] = [[c.entity_id for c in _retrieve(r, args.k, t)] for t in texts]
        costs.append((name, *meter.run(partial(_retrieve, r, args.k), texts)))
    ranks: dict[str, dict[str, list[int | None]]] = defaultdict(lambda: defaultdict(list))
    for name, lists in answers.items():
        for q, ids in zip(queries, lists, strict=True):
            rank = next((i for i, e in enumerate(ids) if e in set(q.relevant)), None)
            ranks[q.cls][name].append(rank)
            ranks["all"][name].append(rank)
    print(f"| class | queries | index | hit@1 | hit@10 | hit@{args.k} | MRR@10 |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for cls in (*[c for c in CLASSES if c in ranks], "all"):
        for name, _ in retrievers:
            got = ranks[cls][name]
            print(f"| {cls} | {len(got)} | {name} | {quality(got, args.k)} |")
    a, b = (answers[name] for name, _ in retrievers)
    shared = [len(set(x[:10]) & set(y[:10])) / len(x[:10]) for x, y in zip(a, b, strict=True)
              if x]
    print(f"\nTop 10s alike: {sum(shared) / max(1, len(shared)):.2f} of Neo4j's top 10 is in "
          f"the local top 10 (mean over {len(shared)} queries Neo4j answers)\n")
    print("| index | median ms | p95 ms | API process CPU ms a call | Neo4j CPU ms a call |")
    print("|---|---:|---:|---:|---:|")
    for name, own, db, med, p95 in costs:
        print(f"| {name} | {med:.2f} | {p95:.2f} | {own:.2f} | {db:.2f} |")
    store.close()


if __name__ == "__main__":
    main()
