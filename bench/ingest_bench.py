"""Ingest throughput: TuneGraph's pipeline against a naive baseline, on real and generated feeds.

Each run gets a fresh Neo4j (empty data directory) on a free loopback port, so runs do not
disturb each other. Prints the machine's load, one table of medians, and where the time went.

    .venv/bin/python -m bench.ingest_bench [--sizes 100000 1000000] [--real FEED] [--repeat 1]

Loaders:
- "bolt ingest": `tunegraph ingest` over Bolt into an empty server (schema applied first).
- "first load": `tunegraph ingest --initial` into an empty home: validation, CSV, the offline
  importer, server start, schema; it returns once the `id` constraint is online.
- "first load, search-ready": the same run until the full-text, popularity and vector indexes
  are online too (they populate in the background; the API waits for them at start).
- "re-ingest, unchanged": the same feed again over Bolt into the loaded server; it must find
  every record unchanged (so the bulk path and Bolt ingest agree on every content hash).
- "naive baseline": what the issue names: the feed decoded as plain JSON (no validation), one
  `UNWIND $rows MERGE (n:Label {id})` per kind in batches of 5,000 with the plain driver, then
  the relationships the same way with labelled MATCH for the endpoints; per-label uniqueness
  constraints only; no reference checks, no content hashes, only id, name and popularity.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
from neo4j import GraphDatabase

from graph import server
from graph.model import Kind
from graph.neo4j_store import Neo4jStore
from ingest.bulk import INDEX_WAIT_S, initial_load
from ingest.pipeline import ingest
from ingest.reader import read_lines
from ingest.synthetic import generate

BATCH = 5_000
PAGECACHE, HEAP = "2g", "4g"
# Reference fields of the feed, per kind, with the kind they point at (for the baseline).
_REFS: dict[str, tuple[tuple[str, str, Kind], ...]] = {
    "artist": (("genres", "IN_GENRE", Kind.GENRE), ("related", "RELATED_TO", Kind.ARTIST)),
    "album": (("genres", "IN_GENRE", Kind.GENRE), ("artists", "BY", Kind.ARTIST)),
    "song": (("genres", "IN_GENRE", Kind.GENRE), ("artists", "PERFORMED_BY", Kind.ARTIST),
             ("album", "ON_ALBUM", Kind.ALBUM)),
    "playlist": (("genres", "IN_GENRE", Kind.GENRE), ("songs", "CONTAINS", Kind.SONG)),
    "podcast": (("genres", "IN_GENRE", Kind.GENRE),),
    "episode": (("genres", "IN_GENRE", Kind.GENRE), ("podcast", "EPISODE_OF", Kind.PODCAST)),
    "genre": (("parent", "SUBGENRE_OF", Kind.GENRE),),
}

Row = tuple[str, int, int, float, dict[str, float]]  # loader, records, rels, seconds, stages


def write_feed(records: Iterable[dict[str, Any]], path: Path) -> int:
    enc = msgspec.json.Encoder()
    n = 0
    with path.open("wb") as f:
        for rec in records:
            f.write(enc.encode(rec) + b"\n")
            n += 1
    return n


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def run_initial(feed: Path, work: Path) -> list[Row]:
    """`tunegraph ingest --initial` into an empty home, then search-ready, then a re-ingest."""
    home = work / f"init-{time.monotonic_ns()}"
    try:
        report = initial_load(home, server.free_port(), [str(feed)])
        assert report.rejected == 0, report.rejections[:3]
        info = server.status(home)
        assert info is not None
        store = Neo4jStore.connect(info.uri)
        mark = time.perf_counter()
        store.driver.execute_query("CALL db.awaitIndexes($s)", s=INDEX_WAIT_S)
        indexes = time.perf_counter() - mark
        again = ingest(store, [str(feed)])
        store.close()
        assert (again.created, again.updated, again.rejected) == (0, 0, 0), again
        recs, rels = report.records, report.relationships
        return [("first load", recs, rels, report.elapsed_s, report.stages),
                ("first load, search-ready", recs, rels, report.elapsed_s + indexes,
                 {"indexes": indexes}),
                ("re-ingest, unchanged", again.records, 0, again.elapsed_s, again.stages)]
    finally:
        server.stop(home)


def run_tunegraph(feed: Path, work: Path) -> list[Row]:
    home = work / f"tg-{time.monotonic_ns()}"
    info = server.start(home, server.free_port(), pagecache=PAGECACHE, max_heap=HEAP)
    try:
        store = Neo4jStore.connect(info.uri)
        store.apply_schema()
        report = ingest(store, [str(feed)])
        assert report.rejected == 0, report.rejections[:3]
        store.close()
        return [("bolt ingest", report.records, report.relationships, report.elapsed_s,
                 report.stages)]
    finally:
        server.stop(home)


NodeRows = dict[Kind, list[dict[str, Any]]]
RelRows = dict[tuple[str, Kind, Kind], list[dict[str, str]]]


def _baseline_rows(feed: Path) -> tuple[NodeRows, RelRows]:
    nodes: NodeRows = defaultdict(list)
    rels: RelRows = defaultdict(list)
    for line in feed.read_bytes().splitlines():
        rec = msgspec.json.decode(line)
        kind = Kind(rec["kind"])
        nodes[kind].append({"id": rec["id"], "name": rec["name"],
                            "popularity": rec.get("popularity", 0.0)})
        for name, rel_type, target in _REFS[rec["kind"]]:
            value = rec.get(name)
            listed = value if isinstance(value, list) else [] if value is None else [value]
            for dst in dict.fromkeys(d if isinstance(d, str) else d["id"] for d in listed):
                rels[(rel_type, kind, target)].append({"s": rec["id"], "d": dst})
    return nodes, rels


def run_baseline(feed: Path, work: Path) -> list[Row]:
    home = work / f"base-{time.monotonic_ns()}"
    info = server.start(home, server.free_port(), pagecache=PAGECACHE, max_heap=HEAP)
    try:
        driver = GraphDatabase.driver(info.uri, auth=None)
        for kind in Kind:
            driver.execute_query(f"CREATE CONSTRAINT IF NOT EXISTS FOR (n:{kind.label}) "
                                 "REQUIRE n.id IS UNIQUE")
        started = time.perf_counter()
        nodes, rels = _baseline_rows(feed)
        for kind, rows in nodes.items():
            for i in range(0, len(rows), BATCH):
                driver.execute_query(f"UNWIND $rows AS r MERGE (n:{kind.label} {{id: r.id}}) "
                                     "SET n.name = r.name, n.popularity = r.popularity",
                                     rows=rows[i:i + BATCH])
        n_rels = 0
        for (rtype, src, dst), rows in rels.items():
            for i in range(0, len(rows), BATCH):
                driver.execute_query(
                    f"UNWIND $rows AS r MATCH (a:{src.label} {{id: r.s}}) "
                    f"MATCH (b:{dst.label} {{id: r.d}}) MERGE (a)-[:{rtype}]->(b)",
                    rows=rows[i:i + BATCH])
            n_rels += len(rows)
        elapsed = time.perf_counter() - started
        driver.close()
        return [("naive baseline", sum(len(r) for r in nodes.values()), n_rels, elapsed, {})]
    finally:
        server.stop(home)


Runner = Callable[[Path, Path], list[Row]]
LOADERS: dict[str, Runner] = {"bolt ingest": run_tunegraph, "first load": run_initial,
                              "naive baseline": run_baseline}


def _feeds(args: argparse.Namespace, work: Path) -> list[tuple[str, Path]]:
    feeds: list[tuple[str, Path]] = []
    if args.real.exists():
        real = work / "real.jsonl"
        lines = read_lines(str(args.real))  # uncompressed, so every loader reads the same
        real.write_bytes(b"".join((ln.data or b"") + b"\n" for ln in lines))
        feeds.append(("real catalog", real))
    for size in args.sizes:
        path = work / f"syn-{size}.jsonl"
        write_feed(generate(size), path)
        feeds.append((f"generated {size:,}", path))
    return feeds


def _print(results: dict[tuple[str, str], list[tuple[int, int, float, dict[str, float]]]]
           ) -> None:
    print()
    print("| feed | loader | records | relationships | seconds | records/s | (records+rels)/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    stages: list[str] = []
    for (label, name), runs in results.items():
        recs, rels = runs[0][0], runs[0][1]
        med = statistics.median(r[2] for r in runs)
        print(f"| {label} | {name} | {recs:,} | {rels:,} | {med:.1f} | {recs / med:,.0f} "
              f"| {(recs + rels) / med:,.0f} |")
        keys = sorted({k for r in runs for k in r[3]})
        if keys:
            parts = ", ".join(f"{k} {statistics.median(r[3].get(k, 0.0) for r in runs):.1f}"
                              for k in keys)
            stages.append(f"- {label}, {name}: {parts}")
    print("\nSeconds per stage (medians):")
    print("\n".join(stages))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--real", type=Path, default=Path(".tunegraph/catalog.jsonl.gz"),
                        help="the real catalog feed (made by `tunegraph convert`)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--loaders", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--big-loaders", nargs="+", default=["first load", "naive baseline"],
                        choices=list(LOADERS), help="loaders for feeds of 500k records or more")
    args = parser.parse_args()
    print(f"start: {_load()}", flush=True)
    results: dict[tuple[str, str], list[tuple[int, int, float, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        work = Path(tmp)
        for label, feed in _feeds(args, work):
            big = feed.stat().st_size > 60_000_000
            for _ in range(args.repeat):
                for name in (args.big_loaders if big else args.loaders):
                    for loader, recs, rels, seconds, stages in LOADERS[name](feed, work):
                        results.setdefault((label, loader), []).append(
                            (recs, rels, seconds, stages))
                        print(f"  {label} {loader}: {seconds:.1f} s ({_load()})", flush=True)
    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"end: {_load()}; CPU seconds: this process "
          f"{usage[0].ru_utime + usage[0].ru_stime:.0f}, Neo4j and its tools "
          f"{usage[1].ru_utime + usage[1].ru_stime:.0f}")
    _print(results)


if __name__ == "__main__":
    main()
