"""An open-loop load generator: requests at a fixed rate whatever the answers, as real traffic.

A closed loop (wrk: each connection waits for its answer) slows down with the server and so can
never overload it; this one keeps sending at `rate` per second, so past capacity the service must
refuse (429/503) rather than let answers pile up into timeouts. Used by the steady-load and
overload tests (short variants) and by `python -m bench.loadgen` (full runs).

    .venv/bin/python -m bench.loadgen URL --rate 100 --seconds 60 --paths paths.txt
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass(slots=True)
class LoadResult:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)  # 0: timeout or connection error
    latencies_ms: list[float] = field(default_factory=list)  # of answered requests
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        """Answers that are neither 2xx nor an explicit refusal (429, 503), and no answers."""
        return sum(n for s, n in self.statuses.items() if not (200 <= s < 300 or s in (429, 503)))

    @property
    def refused(self) -> int:
        return self.statuses[429] + self.statuses[503]

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    def percentile(self, q: float) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]

    def row(self) -> str:
        return (f"sent {self.sent}, ok {self.ok}, refused {self.refused}, errors {self.errors}, "
                f"p50 {self.percentile(50):.1f} ms, p95 {self.percentile(95):.1f} ms, "
                f"p99 {self.percentile(99):.1f} ms over {self.seconds:.1f} s")


async def _run(base_url: str, paths: Sequence[str], rate: float, seconds: float,
               timeout: float, concurrency_cap: int) -> LoadResult:
    result = LoadResult()
    limits = httpx.Limits(max_connections=concurrency_cap, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:
        tasks: list[asyncio.Task[None]] = []

        async def one(path: str) -> None:
            t0 = time.perf_counter()
            try:
                r = await client.get(path)
                result.statuses[r.status_code] += 1
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            except httpx.HTTPError:
                result.statuses[0] += 1

        started = time.perf_counter()
        interval = 1.0 / rate
        n = 0
        while (now := time.perf_counter() - started) < seconds:
            due = n * interval
            if due > now:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.create_task(one(paths[n % len(paths)])))
            n += 1
        result.sent = n
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - started
    return result


def run(base_url: str, paths: Sequence[str], *, rate: float, seconds: float,
        timeout: float = 10.0, concurrency_cap: int = 512) -> LoadResult:
    """Send `rate` requests a second for `seconds` (cycling through `paths`)."""
    if not paths:
        raise ValueError("no paths to request")
    return asyncio.run(_run(base_url, paths, rate, seconds, timeout, concurrency_cap))


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("url")
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--paths", type=Path, help="one path per line (default /v1/search?q=rock)")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args(argv)
    paths = args.paths.read_text().split() if args.paths else ["/v1/search?q=rock"]
    print(run(args.url, paths, rate=args.rate, seconds=args.seconds, timeout=args.timeout).row())


if __name__ == "__main__":
    main()
