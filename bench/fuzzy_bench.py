"""Fuzzy names: build time and memory, query latency and typo hit rates against naive rapidfuzz.

Prints one markdown table. Usage:

    .venv/bin/python -m bench.fuzzy_bench [--real FEED] [--large 1000000] [--queries 300]

"real" is the real catalog ingested into a MemoryStore (`FuzzyIndex.build(store)`); "large" is the
real catalog's entities plus synthetic ones (`ingest.synthetic`) up to `--large` entities, indexed
straight from the entities (`FuzzyIndex.from_entities`), so the real typo queries meet 10x more
distractors. Queries: real artist, album, song, playlist and podcast names with one or two
generated typos (substitution, deletion, insertion, transposition), often lower-cased, accents and
a leading "The" sometimes dropped. A hit is the target entity, or one with the very same name.
The baseline is `rapidfuzz.process.extract(query, names, scorer=WRatio, limit=10)` over every name
and alias, plain and with `utils.default_process` (lower-casing, punctuation to spaces).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import random
import statistics
import string
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import msgspec
from anyascii import anyascii
from rapidfuzz import fuzz, process, utils

from graph.memory_store import MemoryStore
from graph.model import Entity, Kind
from ingest.feed import Upsert, decode
from ingest.pipeline import ingest
from ingest.synthetic import generate
from retrievers.fuzzy import FuzzyIndex

QUERY_KINDS = frozenset({Kind.ARTIST, Kind.ALBUM, Kind.SONG, Kind.PLAYLIST, Kind.PODCAST})
Row = tuple[str, str, str]


def rss_mb(field: str = "VmRSS") -> float:
    """Resident (or, with VmHWM, peak resident) memory of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    with contextlib.suppress(OSError):  # Linux: writing 5 resets VmHWM to the current RSS
        Path("/proc/self/clear_refs").write_text("5")


def typo(name: str, rng: random.Random) -> str:
    """A plausible misspelling of `name` as a user would type it."""
    q = anyascii(name) if rng.random() < 0.5 else name
    q = q.lower() if rng.random() < 0.7 else q
    if q.lower().startswith("the ") and rng.random() < 0.5:
        q = q[4:]
    letters = [i for i, c in enumerate(q) if c.isalpha()]
    for _ in range(1 if len(letters) <= 6 else rng.randint(1, 2)):
        letters = [i for i, c in enumerate(q) if c.isalpha()]
        if len(letters) < 3:
            break
        i = rng.choice(letters[1:])  # users rarely get the first letter wrong
        op = rng.choice(("sub", "del", "ins", "swap"))
        c = rng.choice(string.ascii_lowercase)
        if op == "sub":
            q = q[:i] + c + q[i + 1:]
        elif op == "del":
            q = q[:i] + q[i + 1:]
        elif op == "ins":
            q = q[:i] + c + q[i:]
        elif i + 1 < len(q):
            q = q[:i] + q[i + 1] + q[i] + q[i + 2:]
    return q


def make_queries(entities: Sequence[Entity], n: int, seed: int = 11) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pool = [e for e in entities if e.kind in QUERY_KINDS and len(e.name) >= 3]
    return [(typo(e.name, rng), e.id) for e in rng.sample(pool, n)]


def timed(fn: Callable[[str], list[str]], queries: Sequence[tuple[str, str]],
          names: dict[str, str]) -> tuple[list[float], float, float]:
    """Per-query milliseconds, hit@1 and hit@10 (target id or the same name)."""
    for q, _ in queries[:5]:  # warm caches
        fn(q)
    gc.collect()
    times: list[float] = []
    h1 = h10 = 0
    for q, target in queries:
        t0 = time.perf_counter()
        got = fn(q)
        times.append((time.perf_counter() - t0) * 1e3)
        hits = [g == target or names.get(g) == names[target] for g in got[:10]]
        h1 += bool(hits[:1] and hits[0])
        h10 += any(hits)
    return times, h1 / len(queries), h10 / len(queries)


def pct(times: Sequence[float]) -> str:
    p95 = statistics.quantiles(times, n=20)[-1]
    return f"{statistics.median(times):.2f} / {p95:.2f}"


def hits(h1: float, h10: float) -> str:
    return f"hit@1 {h1:.3f}, hit@10 {h10:.3f}"


def real_entities(feed: str) -> tuple[FuzzyIndex, list[Entity], float, float, float]:
    store = MemoryStore()
    ingest(store, [feed])
    entities = list(store.iter_entities())
    gc.collect()
    before = rss_mb()
    reset_peak()
    t0 = time.perf_counter()
    index = FuzzyIndex.build(store)
    return (index, entities, time.perf_counter() - t0, rss_mb() - before,
            rss_mb("VmHWM") - before)


def synthetic(n: int) -> Iterator[Entity]:
    enc = msgspec.json.Encoder()
    for rec in generate(n):
        op = decode(enc.encode(rec))
        if isinstance(op, Upsert):
            yield op.entity


def large_index(real: list[Entity], n: int) -> tuple[FuzzyIndex, float, float, float]:
    entities = real + list(synthetic(max(0, n - len(real))))
    gc.collect()
    before = rss_mb()
    reset_peak()
    t0 = time.perf_counter()
    index = FuzzyIndex.from_entities(entities)
    elapsed = time.perf_counter() - t0
    del entities
    gc.collect()
    return index, elapsed, rss_mb() - before, rss_mb("VmHWM") - before


def fuzzy_fn(index: FuzzyIndex) -> Callable[[str], list[str]]:
    return lambda q: [m.entity_id for m in index.search(q, 50)]


def suggest_times(index: FuzzyIndex, queries: Sequence[tuple[str, str]]) -> list[float]:
    rng = random.Random(5)
    prefixes = [q[:rng.randint(1, 6)] for q, _ in queries]
    times = []
    for p in prefixes:
        t0 = time.perf_counter()
        index.suggest(p, 10)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def baseline_fn(entities: Sequence[Entity], processed: bool) -> Callable[[str], list[str]]:
    choices = [(t, e.id) for e in entities for t in (e.name, *e.aliases)]
    texts = [t for t, _ in choices]
    proc = utils.default_process if processed else None
    return lambda q: [choices[i][1] for _, _, i in
                      process.extract(q, texts, scorer=fuzz.WRatio, limit=10, processor=proc)]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--real", default=".tunegraph/catalog.jsonl.gz")
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--baseline-queries", type=int, default=300)
    args = ap.parse_args(argv)
    rows: list[Row] = []
    index, entities, build_s, mem, peak = real_entities(args.real)
    names = {e.id: e.name for e in entities}
    queries = make_queries(entities, args.queries)
    rows.append((f"build, real ({len(entities):,} entities, {len(index):,} names)",
                 f"{build_s:.1f} s", f"index {index.nbytes / 1e6:.0f} MB, RSS +{mem:.0f} MB, "
                 f"peak +{peak:.0f} MB"))
    times, h1, h10 = timed(fuzzy_fn(index), queries, names)
    rows.append(("fuzzy top-50, real, typo queries", pct(times), hits(h1, h10)))
    rows.append(("suggest top-10, real, 1-6 char prefixes", pct(suggest_times(index, queries)), ""))
    for processed in (False, True):
        label = "WRatio + default_process" if processed else "plain WRatio"
        times, h1, h10 = timed(baseline_fn(entities, processed),
                               queries[:args.baseline_queries], names)
        rows.append((f"baseline extract, {label}, real ({args.baseline_queries} queries)",
                     pct(times), hits(h1, h10)))
    del index
    big, build_s, mem, peak = large_index(entities, args.large)
    rows.append((f"build, large ({args.large:,} entities, {len(big):,} names)", f"{build_s:.1f} s",
                 f"index {big.nbytes / 1e6:.0f} MB, RSS +{mem:.0f} MB, peak +{peak:.0f} MB"))
    times, h1, h10 = timed(fuzzy_fn(big), queries, names)
    rows.append(("fuzzy top-50, large, typo queries", pct(times), hits(h1, h10)))
    rows.append(("suggest top-10, large", pct(suggest_times(big, queries)), ""))
    print("| measure | time (median / p95 ms, or s) | result |\n|---|---|---|")
    for what, t, result in rows:
        print(f"| {what} | {t} | {result} |")


if __name__ == "__main__":
    main()
