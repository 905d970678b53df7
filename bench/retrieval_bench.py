"""Latency of every candidate generator at the real catalog and at a generated 1M-entity one.

    .venv/bin/python -m bench.retrieval_bench [--large 1000000] [--queries 600] [--uri URI]

Each scale gets a fresh Neo4j in a temporary home, loaded with the offline importer (`--uri`
uses a server already holding the real catalog for the first scale). "real" is the real
catalog (88,717 records); "large" is the real catalog plus `ingest.synthetic` records up to
`--large` entities, so the same real queries meet ten times more distractors. Queries: a seeded
sample of the development set (bench/data/devset.jsonl, every class). Every generator runs
alone (top 50, one query at a time, after a warm-up); "lexical" is the whole lexical path
(fuzzy and understanding here, full text in a worker thread, fused). Tantivy (the plain
baseline of bench/baselines.py) runs in the same process for a ratio. Prints median and p95 ms
per generator and scale, the lexical path's held-out artist-variant figures at each scale, and
build times.
"""

from __future__ import annotations

import argparse
import gzip
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from bench.baselines import TantivyBaseline
from bench.devset import DEFAULT_CATALOG, DEFAULT_OUT, DevQuery, read
from bench.evalkit import Scores, catalog_server, optional_retrievers, pct, run_sources, table
from graph.model import Entity
from ingest.synthetic import generate
from retrievers.base import Query, Retriever
from retrievers.lexical import LexicalPath
from retrievers.memory import InProcessMemoryLog, MemoryRetriever

K = 50


def large_feed(real: Path, n: int, out: Path) -> int:
    """The real catalog's lines, then synthetic records up to about `n` entities."""
    count = 0
    enc = msgspec.json.Encoder()
    with gzip.open(real, "rb") as src, out.open("wb") as dst:
        for line in src:
            dst.write(line)
            count += 1
        for rec in generate(max(0, n - count)):
            dst.write(enc.encode(rec) + b"\n")
            count += 1
    return count


def measure(store_feed: Path, uri: str | None, qs: Sequence[DevQuery], *, optional: bool = True
            ) -> tuple[dict[str, tuple[float, float]], dict[str, float], tuple[float, ...]]:
    """(per generator (median, p95) ms, build seconds, lexical held-out hit@1/hit@10/MRR).
    `optional`: also the generators other issues add (bench.evalkit.optional_retrievers)."""
    texts = [q.query for q in qs]
    builds: dict[str, float] = {}
    with catalog_server(store_feed, uri) as store:
        t0 = time.perf_counter()
        path = LexicalPath.build(store)
        builds["lexical (fuzzy + understand)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        memory = MemoryRetriever.build(store, InProcessMemoryLog())
        builds["memory"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        extra, why = optional_retrievers(store) if optional else ({}, {})
        builds.update({f"{n} (optional)": time.perf_counter() - t0 for n in extra})
        for module, reason in why.items():
            print(f"{module} not measured: {reason}")
        sources: dict[str, Retriever] = {**path.sources, "memory": memory, **extra}
        runs = run_sources(sources, texts, K)
        lexical_ms, held = [], Scores()
        for q in qs:
            t1 = time.perf_counter()
            got = path.search(Query(q.query), 10)
            lexical_ms.append((time.perf_counter() - t1) * 1e3)
            if q.cls == "artist_variant" and q.split == "test":
                held.add([f.entity_id for f in got.fused], set(q.relevant))
        entities: list[Entity] = list(store.iter_entities())
        t0 = time.perf_counter()
        tantivy = TantivyBaseline(entities)
        builds["tantivy baseline"] = time.perf_counter() - t0
        del entities
        tv_ms = []
        for text in texts:
            t1 = time.perf_counter()
            tantivy.search(text, 10)
            tv_ms.append((time.perf_counter() - t1) * 1e3)
        path.close()
    out = {n: pct(v) for n, v in runs.ms.items()}
    out["lexical (whole path)"] = pct(lexical_ms)
    out["tantivy baseline"] = pct(tv_ms)
    return out, builds, held.figures


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    ap.add_argument("--devset", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=600)
    ap.add_argument("--uri", help="a Neo4j already holding the real catalog (first scale only)")
    ap.add_argument("--no-optional-large", action="store_true",
                    help="skip other issues' generators at the large scale (the text one "
                    "embeds and writes back every entity first)")
    args = ap.parse_args(argv)
    every = read(args.devset)
    qs = random.Random(7).sample(every, min(args.queries, len(every)))
    results = {}
    with tempfile.TemporaryDirectory(prefix="tg-rbench-") as tmp:
        results["real"] = measure(args.catalog, args.uri, qs)
        if args.large:
            feed = Path(tmp) / "large.jsonl"
            n = large_feed(args.catalog, args.large, feed)
            print(f"large feed: {n:,} records", flush=True)
            results[f"{n:,}"] = measure(feed, None, qs, optional=not args.no_optional_large)
    scales = list(results)
    names = list(dict.fromkeys(n for r in results.values() for n in r[0]))
    rows = [(n, *(f"{results[s][0][n][0]:.2f} / {results[s][0][n][1]:.2f}"
                  if n in results[s][0] else "-" for s in scales)) for n in names]
    print(f"### Latency per generator, median / p95 ms ({len(qs)} queries, top {K})\n")
    print(table(["generator", *scales], rows))
    print("\n### Lexical path on the held-out artist variants of the sample (hit@1, hit@10, "
          "MRR)\n")
    print(table(["scale", "hit@1", "hit@10", "MRR"], [(s, *results[s][2]) for s in scales]))
    print("\n### Build seconds\n")
    builds = list(dict.fromkeys(b for r in results.values() for b in r[1]))
    print(table(["index", *scales], [(b, *(f"{results[s][1].get(b, float('nan')):.1f}"
                                            for s in scales)) for b in builds]))


if __name__ == "__main__":
    main()
