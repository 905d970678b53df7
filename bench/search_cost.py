"""Where a search's CPU goes: the API process against Neo4j, per source and per whole search.

    .venv/bin/python -m bench.search_cost [--catalog .tunegraph/catalog.jsonl.gz] [--home DIR]
        [--searches 500] [--warmup 100]

The load benchmark says how many searches a second two cores serve; this says why. It loads the
catalog into a fresh Neo4j (or uses the running local one under `--home`, such as
.tunegraph/neo4j), then, with the load benchmark's query mix, one request at a time:

1. each source alone (the in-process ones, and the store-backed ones whose work is mostly in
   Neo4j), as CPU seconds of this process and of the Neo4j process per call;
2. the whole search path in process (`Searcher.search`), the same two CPU figures per search;
3. the same searches over HTTP to `tunegraph serve --workers 1`, CPU of the server's process tree
   and of Neo4j per search.
4. both once more with the same queries, which the cache of repeated queries (api.cache) then
   answers: what a repeat of a head query costs.

CPU is read from /proc (utime + stime), so it counts every thread, the service's background
refresh loop too: its idle cost per second is measured first and printed, not subtracted. The
last line turns the HTTP figures into the ceiling they imply: cores divided by CPU per search.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TypeVar

import httpx

from api.cache import TtlLru
from api.service import Service
from api.settings import FULLTEXT_MODES, Settings
from bench.evalkit import catalog_neo4j
from bench.load_bench import entity_names, make_paths, serving
from graph import server
from retrievers.base import Candidate, Expander, Query, Retriever

TICK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")
SETTINGS = Settings(rate_limit_per_minute=0, search_deadline_ms=10_000)


def search_texts(paths: Sequence[str]) -> list[str]:
    """The query text of each of the load benchmark's /v1/search paths."""
    return [urllib.parse.parse_qs(urllib.parse.urlparse(p).query)["q"][0] for p in paths]


def cpu_s(pids: Sequence[int]) -> float:
    """utime + stime of `pids`, in seconds (a pid that has gone counts 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    out = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        for child in children.read_text().split():
            out += tree(int(child))
    return out


class Meter:
    """CPU milliseconds per call of this process and of Neo4j, and wall-clock percentiles."""

    def __init__(self, neo4j: list[int], app: Callable[[], list[int]]) -> None:
        self.neo4j, self.app = neo4j, app

    def run(self, call: Callable[[T], object],
            args: Sequence[T]) -> tuple[float, float, float, float]:
        pids = self.app()
        a0, n0 = cpu_s(pids), cpu_s(self.neo4j)
        walls = []
        for arg in args:
            t = time.perf_counter()
            call(arg)
            walls.append((time.perf_counter() - t) * 1000)
        a1, n1 = cpu_s(pids), cpu_s(self.neo4j)
        walls.sort()
        n = max(1, len(args))
        return ((a1 - a0) * 1000 / n, (n1 - n0) * 1000 / n, statistics.median(walls),
                walls[int(0.95 * (len(walls) - 1))])


@contextlib.contextmanager
def neo4j_for(feed: Path, home: Path | None) -> Iterator[server.ServerInfo]:
    if home is None:
        with catalog_neo4j(feed, prefix="tg-cost-") as info:
            yield info
        return
    found = server.status(home)
    if found is None:
        raise SystemExit(f"no Neo4j is running under {home}")
    yield found


def idle_ms_per_s(meter: Meter, seconds: float = 5.0) -> tuple[float, float]:
    got = meter.run(time.sleep, [seconds])
    return got[0] / seconds, got[1] / seconds


def _retrieve(source: Retriever, text: str) -> object:
    return source.retrieve(Query(text), 60)


def _expand(expander: Expander, seeds: Sequence[Candidate]) -> object:
    return expander.expand(seeds, 30)


def source_rows(svc: Service, meter: Meter, queries: Sequence[str]) -> list[str]:
    idx = svc.indexes
    rows = []
    for name, source in sorted(idx.retrievers.items()):
        rows.append((name, "retriever", *meter.run(partial(_retrieve, source), queries)))
    fuzzy = idx.retrievers["fuzzy"]
    seeds = [[Candidate(c.entity_id, c.score, "fused") for c in fuzzy.retrieve(Query(q), 5)]
             for q in queries]
    for name, expander in sorted(idx.expanders.items()):
        rows.append((name, "expander",
                     *meter.run(partial(_expand, expander), [s for s in seeds if s])))
    return [f"| {n} | {what}{' (store)' if n in idx.remote else ''} | {a:.2f} | {b:.2f} | "
            f"{p50:.2f} / {p95:.2f} |" for n, what, a, b, p50, p95 in rows]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalog", type=Path, default=Path(".tunegraph/catalog.jsonl.gz"))
    ap.add_argument("--home", type=Path, help="a running local Neo4j home holding the catalog")
    ap.add_argument("--searches", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--policy", default="fixed:rrf",
                    help="the plan policy (default: every source, as a cold start runs)")
    ap.add_argument("--cache-entries", type=int, default=Settings().cache_entries,
                    help="the cache of repeated queries' size (0: off, to compare)")
    ap.add_argument("--fulltext", choices=FULLTEXT_MODES, default=Settings().fulltext,
                    help="full text from the in-process index or Neo4j's (to compare)")
    args = ap.parse_args(argv)
    paths = make_paths(entity_names(args.catalog))["search"]
    texts = search_texts(paths)
    warm, timed = texts[:args.warmup], texts[args.warmup:args.warmup + args.searches]
    warm_paths = paths[:args.warmup]
    timed_paths = paths[args.warmup:args.warmup + args.searches]
    with neo4j_for(args.catalog, args.home) as info:
        neo4j = tree(info.pid)
        meter = Meter(neo4j, lambda: [os.getpid()])
        svc = Service.connect(replace(SETTINGS, policy=args.policy, fulltext=args.fulltext,
                                      cache_entries=args.cache_entries), info.uri)
        store_calls: list[int] = []
        svc.start()
        try:
            if not svc.wait_ready(900):
                raise SystemExit(f"the service did not get ready: {svc.load_error}")
            searcher = svc.searcher
            assert searcher is not None
            for q in warm:
                searcher.search(q, user=None, limit=20, kinds=frozenset())
            idle = idle_ms_per_s(meter)
            sources = source_rows(svc, meter, timed)
            def search(q: str) -> None:
                got = searcher.search(q, user=None, limit=20, kinds=frozenset())
                store_calls.append(sum(1 for name, k in got.plan.ks
                                       if k > 0 and name in svc.indexes.remote))

            whole = meter.run(search, timed)
            entries, size = len(svc.indexes.results), cache_bytes(svc.indexes.results)
            again = meter.run(search, timed)  # the same queries: answered from the cache
        finally:
            svc.close()
        log = Path(os.environ.get("TMPDIR", "/tmp")) / "tg-search-cost-serve.log"
        policy_env = {"TUNEGRAPH_POLICY": args.policy, "TUNEGRAPH_FULLTEXT": args.fulltext,
                      "TUNEGRAPH_CACHE_ENTRIES": str(args.cache_entries)}
        with serving(info.uri, 1, log, policy_env) as (url, _, pid), \
                httpx.Client(base_url=url, timeout=30) as c:
            http = Meter(neo4j, lambda: tree(pid))
            for p in warm_paths:
                c.get(p)
            http_idle = idle_ms_per_s(http)

            def get(p: str) -> None:
                c.get(p).raise_for_status()

            served = http.run(get, timed_paths)
            served_again = http.run(get, timed_paths)
    print(f"### CPU per call, ms: policy {args.policy}, full text {args.fulltext}, "
          f"{statistics.mean(store_calls):.2f} "
          f"store-backed sources a search ({len(timed)} queries of the load benchmark's mix, "
          "one at a time; wall p50 / p95 in ms)\n")
    print("| what | kind | API process CPU | Neo4j CPU | wall p50 / p95 |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(sources))
    print(f"| whole search, in process | Searcher.search | {whole[0]:.2f} | {whole[1]:.2f} | "
          f"{whole[2]:.2f} / {whole[3]:.2f} |")
    print(f"| whole search, over HTTP | serve --workers 1 | {served[0]:.2f} | {served[1]:.2f} | "
          f"{served[2]:.2f} / {served[3]:.2f} |")
    print(f"| whole search, in process, each query again | cache of repeated queries | "
          f"{again[0]:.2f} | {again[1]:.2f} | {again[2]:.2f} / {again[3]:.2f} |")
    print(f"| whole search, over HTTP, each query again | cache of repeated queries | "
          f"{served_again[0]:.2f} | {served_again[1]:.2f} | {served_again[2]:.2f} / "
          f"{served_again[3]:.2f} |")
    print(f"\nIdle background CPU per second (not subtracted above): in process {idle[0]:.1f} ms "
          f"app / {idle[1]:.1f} ms Neo4j; served {http_idle[0]:.1f} ms / {http_idle[1]:.1f} ms.")
    print(f"The cache held {entries:,} answers after the first pass, {size / 2**20:.1f} MB by "
          f"sys.getsizeof ({size / 1024 / max(1, entries):.1f} KB an answer; strings shared "
          "with the indexes counted as if owned).")
    per = served[0] + served[1]
    cores = os.cpu_count() or 1
    print(f"Ceiling implied over HTTP: {cores} cores / {per:.1f} ms CPU a search = "
          f"{cores * 1000 / per:.0f} searches/s, before the load generator's own CPU.")


def cache_bytes(cache: TtlLru[tuple[Candidate, ...]]) -> int:
    """Bytes of the cached answers: tuples, candidates, their strings and dicts."""
    total = 0
    for answer in cache.values():
        total += sys.getsizeof(answer)
        for c in answer:
            total += sum(sys.getsizeof(x) for x in (c, c.entity_id, c.reason, c.extra))
    return total


if __name__ == "__main__":
    main()
