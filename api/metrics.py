"""Prometheus metrics of the search path (request latency by route comes from Litestar's plugin).

With several worker processes, `tunegraph serve` sets PROMETHEUS_MULTIPROC_DIR so that /metrics
sums every worker's figures (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

SOURCE_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

SEARCHES: Final = Counter("tunegraph_searches", "Searches answered", ["degraded"])
FEEDBACK: Final = Counter("tunegraph_feedback", "Feedback events stored", ["action", "result"])
SOURCE_LATENCY: Final = Histogram("tunegraph_source_seconds", "Time per candidate source",
                                  ["source"], buckets=SOURCE_BUCKETS)
SOURCE_ERRORS: Final = Counter("tunegraph_source_errors", "Sources unavailable in a search",
                               ["source", "why"])
SOURCE_CACHE: Final = Counter("tunegraph_source_cache", "Source answers looked up in the cache "
                              "of repeated queries", ["source", "result"])
POLICY_CHOICES: Final = Counter("tunegraph_policy_choices", "Plans chosen", ["policy", "plan"])
CATALOG_VERSION: Final = Gauge("tunegraph_catalog_version", "Catalog version being served",
                               multiprocess_mode="max")
SUGGESTS: Final = Counter("tunegraph_suggests", "Type-ahead requests answered")
REFUSED: Final = Counter("tunegraph_refused", "Requests refused at capacity (503)")
