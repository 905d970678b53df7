"""Related entities: the Cypher traversals against the in-process adjacency, on the loaded catalog.

    .venv/bin/python -m bench.related_bench [--uri bolt://127.0.0.1:7687]
        [--home .tunegraph/neo4j] [--searches 300]

Seeds are what a search hands the expander: three entities, here drawn by popularity from the
catalog (the first stage finds popular entities more often), k 60. Each seed set is expanded by
both expanders in turn; the table gives the median and p95 wall time of one call and the CPU
per call of this process and of Neo4j (`bench.search_cost.Meter`), and counts the seed sets
whose answers differ (ids, order or reasons). The first pass over the seeds, which collects
the answers, warms both (page cache, query plan); the local "shares playlists" cache is cleared
after it, so the timed pass pays for its misses.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from bench.search_cost import Meter, tree
from graph import server
from graph.neo4j_store import Neo4jStore
from graph.snapshot import Snapshot
from retrievers.base import Candidate, Expander
from retrievers.related import RelatedExpander
from retrievers.related_local import LocalRelatedExpander

K = 60


def _expand(expander: Expander, seeds: Sequence[Candidate]) -> list[Candidate]:
    return expander.expand(seeds, K)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uri", default="bolt://127.0.0.1:7687")
    ap.add_argument("--home", type=Path, default=Path(".tunegraph/neo4j"),
                    help="the Neo4j home behind --uri, for its CPU")
    ap.add_argument("--searches", type=int, default=300)
    args = ap.parse_args()
    found = server.status(args.home)
    if found is None:
        raise SystemExit(f"no Neo4j is running under {args.home}")
    store = Neo4jStore.connect(args.uri)
    t = time.perf_counter()
    snap = Snapshot.read(store)
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    local = LocalRelatedExpander(snap)
    build_s = time.perf_counter() - t
    cypher = RelatedExpander(store)
    rng = random.Random(3)
    ents = list(snap.entities)
    weights = [0.02 + e.popularity for e in ents]
    seed_sets = [[Candidate(e.id, 1.0, "fused") for e in rng.choices(ents, weights, k=3)]
                 for _ in range(args.searches)]
    print(f"catalog: {len(ents):,} entities, {len(snap.relations):,} relationships; "
          f"snapshot read {read_s:.1f} s, adjacency built {build_s:.2f} s")
    meter = Meter(tree(found.pid), lambda: [os.getpid()])
    rows, answers = [], []
    expanders: list[tuple[str, Expander]] = [("cypher (Neo4j)", cypher), ("in-process", local)]
    for name, expander in expanders:
        answers.append([expander.expand(s, K) for s in seed_sets])  # also the warm-up
        local.clear_cache()
        rows.append((name, *meter.run(partial(_expand, expander), seed_sets)))
    differ = sum(1 for a, b in zip(*answers, strict=True)
                 if [(c.entity_id, c.reason) for c in a] != [(c.entity_id, c.reason) for c in b])
    print(f"{args.searches} seed sets of 3, k {K}; answers differ for {differ}\n")
    print("| expander | median ms | p95 ms | API process CPU ms a call | Neo4j CPU ms a call |")
    print("|---|---:|---:|---:|---:|")
    for name, own, db, med, p95 in rows:
        print(f"| {name} | {med:.2f} | {p95:.2f} | {own:.2f} | {db:.2f} |")
    store.close()


if __name__ == "__main__":
    main()
