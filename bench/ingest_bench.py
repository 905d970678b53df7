"""Ingest throughput: TuneGraph's pipeline against a naive baseline, on real and generated feeds.

Each run gets a fresh Neo4j (empty data directory) on a free loopback port, so runs do not
disturb each other. Prints one table. Usage:

    .venv/bin/python -m bench.ingest_bench [--sizes 100000 1000000] [--real FEED] [--repeat 1]

The baseline is what the issue names: one `UNWIND $rows MERGE (n:Label {id})` per kind in
batches of 5,000 with the plain driver, then the relationships the same way with labelled MATCH
for the endpoints; no validation, no reference checks, no content hashes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
from neo4j import GraphDatabase

from graph import server
from graph.model import Kind
from graph.neo4j_store import Neo4jStore
from ingest.bulk import initial_load
from ingest.feed import Upsert, decode
from ingest.pipeline import ingest
from ingest.reader import read_lines
from ingest.synthetic import generate

BATCH = 5_000


def write_feed(records: Iterable[dict[str, Any]], path: Path) -> int:
    enc = msgspec.json.Encoder()
    n = 0
    with path.open("wb") as f:
        for rec in records:
            f.write(enc.encode(rec) + b"\n")
            n += 1
    return n


def _fresh_server(work: Path, name: str) -> tuple[Path, server.ServerInfo]:
    home = work / name
    return home, server.start(home, server.free_port(), pagecache="2g", max_heap="4g")


def run_initial(feed: Path, work: Path) -> tuple[float, int, int]:
    """`tunegraph ingest --initial` into an empty home: validate, offline import, start."""
    home = work / f"init-{time.monotonic_ns()}"
    try:
        report = initial_load(home, server.free_port(), [str(feed)])
        assert report.rejected == 0, report.rejections[:3]
        return report.elapsed_s, report.records, report.relationships
    finally:
        server.stop(home)


def run_tunegraph(feed: Path, work: Path) -> tuple[float, int, int]:
    home, info = _fresh_server(work, f"tg-{time.monotonic_ns()}")
    try:
        store = Neo4jStore.connect(info.uri)
        store.apply_schema()
        report = ingest(store, [str(feed)])
        assert report.rejected == 0, report.rejections[:3]
        store.close()
        return report.elapsed_s, report.records, report.relationships
    finally:
        server.stop(home)


NodeRows = dict[Kind, list[dict[str, Any]]]
RelRows = dict[tuple[str, Kind, Kind], list[dict[str, str]]]


def _baseline_rows(feed: Path) -> tuple[NodeRows, RelRows]:
    nodes: NodeRows = defaultdict(list)
    rels: RelRows = defaultdict(list)
    kinds: dict[str, Kind] = {}
    parsed = []
    for line in feed.read_bytes().splitlines():
        op = decode(line)
        assert isinstance(op, Upsert)
        parsed.append(op)
        kinds[op.entity.id] = op.entity.kind
    for op in parsed:
        e = op.entity
        nodes[e.kind].append({"id": e.id, "name": e.name, "popularity": e.popularity})
        for ref in op.refs:
            rels[(ref.type.value, e.kind, ref.kind)].append({"s": e.id, "d": ref.dst})
    return nodes, rels


def run_baseline(feed: Path, work: Path) -> tuple[float, int, int]:
    home, info = _fresh_server(work, f"base-{time.monotonic_ns()}")
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
        return elapsed, sum(len(r) for r in nodes.values()), n_rels
    finally:
        server.stop(home)


LOADERS = {"bolt ingest": run_tunegraph, "first load": run_initial,
           "naive baseline": run_baseline}


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
    rows = []
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        work = Path(tmp)
        feeds: list[tuple[str, Path]] = []
        if args.real.exists():
            real = work / "real.jsonl"
            lines = read_lines(str(args.real))  # uncompressed, so both loaders read the same
            real.write_bytes(b"".join((ln.data or b"") + b"\n" for ln in lines))
            feeds.append(("real catalog", real))
        for size in args.sizes:
            path = work / f"syn-{size}.jsonl"
            write_feed(generate(size), path)
            feeds.append((f"generated {size:,}", path))
        for label, feed in feeds:
            big = feed.stat().st_size > 100_000_000
            for name in (args.big_loaders if big else args.loaders):
                runner = LOADERS[name]
                times, recs, rels = [], 0, 0
                for _ in range(args.repeat):
                    t, recs, rels = runner(feed, work)
                    times.append(t)
                    print(f"  {label} {name}: {t:.1f} s", flush=True)
                med = statistics.median(times)
                rows.append((label, name, recs, rels, med, recs / med, (recs + rels) / med))
    print()
    print("| feed | loader | records | relationships | median s | records/s | (records+rels)/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, name, recs, rels, med, rate, total in rows:
        print(f"| {label} | {name} | {recs:,} | {rels:,} | {med:.1f} | {rate:,.0f} "
              f"| {total:,.0f} |")


if __name__ == "__main__":
    main()
