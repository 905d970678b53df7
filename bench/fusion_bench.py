"""CPU of reciprocal-rank fusion on lists the size a search fuses (five sources of 60).

    .venv/bin/python -m bench.fusion_bench

A search fuses two or three times (the expanders' seeds, an "rrf" plan's cut, the RRF ranker),
so this is a small but per-search cost. Prints the median of 7 runs of 200 calls per k.
"""

from __future__ import annotations

import random
import statistics
import timeit
from functools import partial

from retrievers.base import Candidate
from retrievers.fusion import rrf

SOURCES = ("fuzzy", "fulltext", "text", "understand", "memory")


def main() -> None:
    rng = random.Random(7)
    pool = [f"s:{i}" for i in range(400)]
    lists = {s: [Candidate(e, rng.random(), s) for e in rng.sample(pool, 60)] for s in SOURCES}
    print("| k | microseconds a call (median of 7 x 200) |\n|---:|---:|")
    for k in (3, 60, 80):
        runs = [timeit.timeit(partial(rrf, lists, k), number=200) / 200 * 1e6
                for _ in range(7)]
        print(f"| {k} | {statistics.median(runs):.0f} |")


if __name__ == "__main__":
    main()
