"""Load benchmark: requests/s and p50/p95/p99 of /v1/search and /v1/suggest under wrk on loopback.

    .venv/bin/python -m bench.load_bench [--catalog .tunegraph/catalog.jsonl.gz] [--generated N]
        [--workers 2] [--duration 20] [--connections 16] [--mix distinct|zipf:S]
        [--keep-logs DIR]

For each catalog (the real one, and with --generated N a synthetic catalog of N entities made by
`ingest.synthetic`), it loads a fresh Neo4j with the offline importer, starts `tunegraph serve`
(Granian, --workers), waits for /ready, warms up, then runs wrk (closed loop, --connections) for
each route with queries drawn from the catalog itself: names with one or two typos, exact names,
artist + "songs", genre + "playlist" (search) and 1-6 character name prefixes (suggest). Prints
one markdown table. wrk reports latency from its own clock; non-2xx answers count as errors.

The search stream decides what the service's cache of repeated queries (api.cache) can do.
`--mix distinct` (the default) sends a pool of 20,000 different queries in turn, so that within a
run almost no query comes twice: the cost of a search that the cache cannot help. `--mix zipf:S`
draws the stream from that pool with Zipf exponent S over a random ranking of the pool, as search
logs repeat their head queries (query frequencies in search logs follow a power law with an
exponent near 1), after a warm-up drawn from the same law, as a service that has been up a while.
The table gives the share of source answers the cache served during the measured run (from
/metrics, all workers).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import httpx

from bench import loadgen
from bench.fuzzy_bench import typo
from bench.ingest_bench import write_feed
from graph import server
from ingest.bulk import initial_load
from ingest.feed import Upsert, decode
from ingest.reader import read_lines
from ingest.synthetic import generate

QUERIES: Final = 2000  # suggest prefixes
POOL: Final = 20_000  # distinct search queries
STREAM: Final = 60_000  # requests in a Zipf stream (more than a 20 s run sends)
LUA: Final = r"""
local paths = {}
for line in io.lines(os.getenv("TG_PATHS")) do paths[#paths + 1] = line end
local counter = 0
setup = function(thread) thread:set("offset", math.random(#paths)) end
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[((offset + counter) % #paths) + 1])
end
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    'JSON {"requests": %d, "seconds": %.3f, "errors": %d, "p50": %.3f, "p95": %.3f, "p99": %.3f}\n',
    summary.requests, summary.duration / 1e6, errors, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def entity_names(feed: Path, limit: int = 200_000) -> list[tuple[str, str]]:
    """(kind, name) of the feed's entities, up to `limit`."""
    out = []
    for line in read_lines(str(feed)):
        if line.data is None:
            continue
        op = decode(line.data)
        if isinstance(op, Upsert):
            out.append((op.entity.kind.value, op.entity.name))
            if len(out) >= limit:
                break
    return out


def search_queries(names: Sequence[tuple[str, str]], n: int, rng: random.Random) -> list[str]:
    """`n` different search texts made from the catalog's own names."""
    artists = [n for k, n in names if k == "artist"]
    genres = [n for k, n in names if k == "genre"]
    known = [n for k, n in names if k in ("artist", "song", "album", "playlist", "podcast")]
    out: dict[str, None] = {}
    for _ in range(20 * n):
        roll = rng.random()
        if roll < 0.5:
            q = typo(rng.choice(known), rng)
        elif roll < 0.7:
            q = rng.choice(known)
        elif roll < 0.85 and artists:
            q = f"{rng.choice(artists)} songs"
        else:
            q = f"{rng.choice(genres) if genres else 'rock'} playlist"
        if q[:150].strip():
            out.setdefault(q[:150])
        if len(out) >= n:
            break
    return list(out)


def zipf_stream(pool: Sequence[str], exponent: float, n: int, rng: random.Random) -> list[str]:
    """`n` draws from `pool`, the i-th most frequent (a random ranking) with weight i^-exponent."""
    ranked = rng.sample(list(pool), len(pool))
    weights = [1.0 / (i + 1) ** exponent for i in range(len(ranked))]
    return rng.choices(ranked, weights=weights, k=n)


def make_paths(names: Sequence[tuple[str, str]], seed: int = 3,
               mix: str = "distinct") -> dict[str, list[str]]:
    """wrk's request streams: "search" (measured), "search-warmup" (run before it; for a Zipf
    mix the same law, else other queries), "suggest"."""
    rng = random.Random(seed)
    pool = search_queries(names, 2 * POOL, rng)
    measured, other = pool[:POOL], pool[POOL:]
    if mix == "distinct":
        search, warmup = measured, other
    elif mix.startswith("zipf:"):
        exponent = float(mix.split(":", 1)[1])
        search = zipf_stream(measured, exponent, STREAM, random.Random(seed + 1))
        warmup = zipf_stream(measured, exponent, STREAM // 4, random.Random(seed + 2))
    else:
        raise SystemExit(f"--mix {mix}: distinct or zipf:EXPONENT")
    known = [n for k, n in names if k in ("artist", "song", "album", "playlist", "podcast")]
    suggest = [n[:rng.randint(1, 6)] for n in rng.sample(known, min(QUERIES, len(known)))]
    enc = urllib.parse.quote
    return {"search": [f"/v1/search?q={enc(q)}&limit=20" for q in search],
            "search-warmup": [f"/v1/search?q={enc(q)}&limit=20" for q in warmup],
            "suggest": [f"/v1/suggest?q={enc(q)}&limit=8" for q in suggest if q.strip()]}


def cache_counts(url: str) -> tuple[float, float]:
    """(hits, lookups) of the cache of repeated queries so far, summed over sources/workers."""
    hits = lookups = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("tunegraph_source_cache_total{"):
            value = float(line.rsplit(" ", 1)[1])
            if 'result="hit"' in line:
                hits += value
            if 'result="off"' not in line:
                lookups += value
    return hits, lookups


@contextmanager
def serving(uri: str, workers: int, log: Path,
            env_extra: dict[str, str] | None = None) -> Iterator[tuple[str, float, int]]:
    port = server.free_port()
    env = {**os.environ, "NEO4J_URI": uri, "TUNEGRAPH_RATE_LIMIT_PER_MINUTE": "0",
           "TUNEGRAPH_LOG_LEVEL": "WARNING", **(env_extra or {})}
    started = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port),
                                 "--workers", str(workers)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited {proc.returncode}; see {log}")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield url, time.perf_counter() - started, proc.pid
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)


def wrk(url: str, paths: list[str], work: Path, *, duration: int,
        connections: int) -> dict[str, Any]:
    script, listing = work / "paths.lua", work / "paths.txt"
    script.write_text(LUA)
    listing.write_text("\n".join(paths) + "\n")
    done = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}",
                           f"-d{duration}s", "--timeout", "5s", "-s", str(script), url],
                          capture_output=True, text=True, env={**os.environ,
                                                               "TG_PATHS": str(listing)})
    line = next(x for x in done.stdout.splitlines() if x.startswith("JSON "))
    result: dict[str, Any] = json.loads(line[5:])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def run_catalog(label: str, feed: Path, args: argparse.Namespace, work: Path) -> list[str]:
    home = work / f"neo4j-{label.replace(' ', '-').replace(',', '')}"
    report = initial_load(home, server.free_port(), [str(feed)])
    info = server.status(home)
    assert info is not None
    rows = []
    try:
        paths = make_paths(entity_names(feed), mix=args.mix)
        with serving(info.uri, args.workers, work / f"serve-{label}.log") as (url, ready_s, _):
            for route in ("search-warmup", "suggest"):  # warm JIT, the page cache (and the
                wrk(url, paths[route], work, duration=5,  # query cache for a Zipf mix)
                    connections=args.connections)
            search_rps = 0.0
            for route in ("search", "suggest"):
                hits, lookups = cache_counts(url)
                r = wrk(url, paths[route], work, duration=args.duration,
                        connections=args.connections)
                hits2, lookups2 = cache_counts(url)
                share = (hits2 - hits) / (lookups2 - lookups) if lookups2 > lookups else 0.0
                search_rps = r["rps"] if route == "search" else search_rps
                mix = args.mix if route == "search" else "-"
                cached = f"{share:.0%}" if route == "search" else "-"
                rows.append(f"| {label} ({report.records:,} records) | /v1/{route} | {mix} | "
                            f"{cached} | {args.workers} | {args.connections} | "
                            f"{r['rps']:,.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                            f"{r['p99']:.1f} | {r['errors']} | {ready_s:.0f} |")
            rate = args.steady or round(args.steady_share * search_rps)
            if rate > 0:
                STEADY.extend(steady_and_overload(url, paths["search"], label, rate,
                                                  args.steady_seconds))
    finally:
        server.stop(home)
    return rows


STEADY: list[str] = []


def steady_and_overload(url: str, paths: list[str], label: str, rate: float,
                        seconds: float) -> list[str]:
    """The full variants of the steady-load and overload fault tests: an open loop at `rate`
    searches/s for `seconds` (criterion: zero errors, p95 within the README's figure), then
    5x that rate for 10 s (criterion: only 2xx, 429 or 503, no timeouts) and how long until a
    search answers 200 again (criterion: within 10 s)."""
    out = []
    result = loadgen.run(url, paths, rate=rate, seconds=seconds)
    out.append(f"| {label} | steady {rate:g}/s for {seconds:g} s | {result.row()} |")
    flood = loadgen.run(url, paths, rate=5 * rate, seconds=10)
    stopped = time.monotonic()
    while httpx.get(f"{url}{paths[0]}", timeout=10).status_code != 200:
        time.sleep(0.1)
    out.append(f"| {label} | overload {5 * rate:g}/s for 10 s | {flood.row()}; 200 again "
               f"{time.monotonic() - stopped:.1f} s after |")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--catalog", default=".tunegraph/catalog.jsonl.gz")
    ap.add_argument("--generated", type=int, default=0, help="also a synthetic catalog")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--steady", type=float, default=0.0,
                    help="also the full steady-load (this many searches/s) and overload runs")
    ap.add_argument("--steady-share", type=float, default=0.0,
                    help="or at this share of the closed-loop search rate wrk measured")
    ap.add_argument("--steady-seconds", type=float, default=60.0)
    ap.add_argument("--mix", default="distinct",
                    help="the search stream: distinct, or zipf:EXPONENT (e.g. zipf:1.0)")
    ap.add_argument("--keep-logs", type=Path, default=None, metavar="DIR",
                    help="copy the service's logs here (the work directory is removed)")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run `make system`")
    work = Path(tempfile.mkdtemp(prefix="tg-load-"))
    rows = ["| catalog | route | search mix | cache served | workers | connections | "
            "requests/s | p50 ms | p95 ms | p99 ms | errors | ready after s |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    try:
        rows += run_catalog("real", Path(args.catalog), args, work)
        print("\n".join(rows), "\n".join(STEADY), sep="\n", flush=True)  # in case 1M fails
        if args.generated:
            feed = work / "generated.jsonl"
            write_feed(generate(args.generated), feed)
            rows += run_catalog(f"generated {args.generated:,}", feed, args, work)
    finally:
        if args.keep_logs is not None:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in work.glob("serve-*.log"):
                shutil.copy2(log, args.keep_logs / log.name)
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(rows))
    if STEADY:
        print("\n| catalog | load | result |\n|---|---|---|")
        print("\n".join(STEADY))


if __name__ == "__main__":
    main()
