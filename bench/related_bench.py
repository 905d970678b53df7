"""Related entities: the Cypher traversals against the in-process adjacency, on the loaded catalog.

    .venv/bin/python -m bench.related_bench [--uri bolt://127.0.0.1:7687] [--searches 300]

Seeds are what a search hands the expander: three entities, here drawn by popularity from the
catalog (the first stage finds popular entities more often), k 60. Each seed set is expanded by
both expanders in turn; the table gives the median and p95 wall time of one call and the
process CPU per call, and counts the seed sets whose answers differ (ids, order or reasons).
The first pass over the seeds warms both (page cache, query plan, the local "shares playlists"
cache is cleared after it, so the timed pass pays for its misses).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial

from graph.neo4j_store import Neo4jStore
from graph.snapshot import Snapshot
from retrievers.base import Candidate, Expander
from retrievers.related import RelatedExpander
from retrievers.related_local import LocalRelatedExpander

K = 60


def _expand(expander: Expander, seeds: Sequence[Candidate]) -> list[Candidate]:
    return expander.expand(seeds, K)


def _timed(call: Callable[[Sequence[Candidate]], list[Candidate]],
           seed_sets: list[list[Candidate]]) -> tuple[list[float], float, list[list[Candidate]]]:
    walls, out = [], []
    cpu = time.process_time()
    for seeds in seed_sets:
        t = time.perf_counter()
        out.append(call(seeds))
        walls.append((time.perf_counter() - t) * 1000)
    return walls, (time.process_time() - cpu) * 1000 / len(seed_sets), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uri", default="bolt://127.0.0.1:7687")
    ap.add_argument("--searches", type=int, default=300)
    args = ap.parse_args()
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
    rows = []
    answers = []
    expanders: list[tuple[str, Expander]] = [("cypher (Neo4j)", cypher), ("in-process", local)]
    for name, expander in expanders:
        call = partial(_expand, expander)
        _timed(call, seed_sets)  # warm
        if expander is local:
            local.clear_cache()
        walls, cpu, out = _timed(call, seed_sets)
        answers.append(out)
        walls.sort()
        rows.append((name, statistics.median(walls), walls[int(0.95 * len(walls))], cpu))
    differ = sum(1 for a, b in zip(*answers, strict=True)
                 if [(c.entity_id, c.reason) for c in a] != [(c.entity_id, c.reason) for c in b])
    print(f"{args.searches} seed sets of 3, k {K}; answers differ for {differ}\n")
    print("| expander | median ms | p95 ms | API process CPU ms a call |\n|---|---:|---:|---:|")
    for name, med, p95, cpu in rows:
        print(f"| {name} | {med:.2f} | {p95:.2f} | {cpu:.2f} |")
    store.close()


if __name__ == "__main__":
    main()
