"""The cyclic garbage collector's pauses during searches, with the serving indexes frozen or not.

    .venv/bin/python -m bench.gc_bench [--home .tunegraph/neo4j] [--searches 3000] [--runs 2]

A service process holds its indexes as some hundreds of thousands of tracked Python objects
(cards, memory, string pools' owners...). CPython's collector scans all of them in each full
(generation 2) collection, with the GIL held: every request in flight waits. `api.service`
freezes the heap after each index build (`gc.freeze`), so full collections scan only what is
younger. This runs the search path in process (`Searcher.search`, the load benchmark's query
mix, one at a time, the cache of repeated queries off) against a running local Neo4j, once
as served (frozen) and once with the heap unfrozen after the build (as before), alternating,
and prints per generation how many collections ran, their total and longest pause, and the
searches' wall-clock percentiles.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from api.service import Service
from bench.load_bench import entity_names, make_paths
from bench.search_cost import SETTINGS, neo4j_for, search_texts


class Pauses:
    """Collector pauses by generation, from `gc.callbacks`."""

    def __init__(self) -> None:
        self.ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._t = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.ms[int(info["generation"])].append((time.perf_counter() - self._t) * 1000)


def one_run(svc: Service, texts: Sequence[str], frozen: bool) -> list[str]:
    searcher = svc.searcher
    assert searcher is not None
    if not frozen:
        gc.unfreeze()  # as before the change: everything alive back under the collector
    tracked = len(gc.get_objects())
    pauses = Pauses()
    gc.callbacks.append(pauses)
    walls = []
    try:
        for q in texts:
            t = time.perf_counter()
            searcher.search(q, user=None, limit=20, kinds=frozenset())
            walls.append((time.perf_counter() - t) * 1000)
    finally:
        gc.callbacks.remove(pauses)
        gc.collect()
        gc.freeze()
    label = "frozen (served)" if frozen else "not frozen (before)"
    p50, p95, p99 = np.percentile(walls, [50, 95, 99]).tolist()
    return [f"| {label} | {tracked:,} | {gen} | {len(ms)} | {sum(ms):.1f} | "
            f"{max(ms, default=0):.2f} | {p50:.1f} / {p95:.1f} / {p99:.1f} |"
            for gen, ms in pauses.ms.items()]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalog", type=Path, default=Path(".tunegraph/catalog.jsonl.gz"))
    ap.add_argument("--home", type=Path, help="a running local Neo4j home holding the catalog")
    ap.add_argument("--searches", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=2, help="pairs of runs, alternating")
    args = ap.parse_args(argv)
    paths = make_paths(entity_names(args.catalog))["search"]
    texts = search_texts(paths)
    rows = []
    with neo4j_for(args.catalog, args.home) as info:
        svc = Service.connect(replace(SETTINGS, policy="fixed:rrf", cache_entries=0), info.uri)
        svc.start()
        try:
            if not svc.wait_ready(900):
                raise SystemExit(f"the service did not get ready: {svc.load_error}")
            assert svc.searcher is not None
            for q in texts[:100]:
                svc.searcher.search(q, user=None, limit=20, kinds=frozenset())
            timed = texts[100:100 + args.searches]
            for _ in range(args.runs):
                for frozen in (False, True):
                    rows += one_run(svc, timed, frozen)
        finally:
            svc.close()
    print(f"### Collector pauses over {len(timed)} searches in process (fixed:rrf, cache off)\n")
    print("| heap | tracked objects at start | generation | collections | total ms | "
          "longest ms | search p50 / p95 / p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
