"""Shared pieces of the retrieval evaluation and benchmark: metrics, tables, sources, servers."""

from __future__ import annotations

import contextlib
import importlib
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graph import server
from graph.neo4j_store import Neo4jStore
from graph.store import GraphStore
from ingest.bulk import initial_load
from retrievers.base import Candidate, Query, Retriever

Ranked = Sequence[str]
CUTOFF = 10


@dataclass(slots=True)
class Scores:
    """hit@1, hit@10, MRR (first relevant in the top 10, else 0) over some queries."""

    n: int = 0
    h1: float = 0.0
    h10: float = 0.0
    rr: float = 0.0

    def add(self, ranked: Ranked, relevant: set[str]) -> None:
        rank = next((i for i, e in enumerate(ranked[:CUTOFF]) if e in relevant), None)
        self.n += 1
        self.h1 += rank == 0
        self.h10 += rank is not None
        self.rr += 0.0 if rank is None else 1.0 / (rank + 1)

    @property
    def figures(self) -> tuple[float, float, float]:
        n = max(self.n, 1)
        return self.h1 / n, self.h10 / n, self.rr / n


def pct(times_ms: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile."""
    if len(times_ms) < 2:
        return (times_ms[0], times_ms[0]) if times_ms else (float("nan"), float("nan"))
    return statistics.median(times_ms), statistics.quantiles(times_ms, n=20)[-1]


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(slots=True)
class Timed:
    """Per-source candidate lists and milliseconds for each query."""

    lists: dict[str, list[list[Candidate]]] = field(default_factory=lambda: defaultdict(list))
    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def run_sources(sources: Mapping[str, Retriever], texts: Sequence[str], k: int,
                warmup: int = 5) -> Timed:
    out = Timed()
    for name, src in sources.items():
        for text in texts[:warmup]:
            src.retrieve(Query(text), k)
        for text in texts:
            t0 = time.perf_counter()
            got = src.retrieve(Query(text), k)
            out.ms[name].append((time.perf_counter() - t0) * 1e3)
            out.lists[name].append(got)
    return out


def optional_retrievers(store: GraphStore) -> tuple[dict[str, Retriever], dict[str, str]]:
    """Generators other issues add (text embeddings, ...) when importable and buildable here:
    any class in the modules below with a `name` and a `build(store)` classmethod. Returns the
    sources and, per module that did not load, why."""
    found: dict[str, Retriever] = {}
    why: dict[str, str] = {}
    for module in ("retrievers.text_embed",):
        try:
            mod = importlib.import_module(module)
            classes = [c for c in vars(mod).values() if isinstance(c, type)
                       and c.__module__ == mod.__name__ and hasattr(c, "retrieve")
                       and isinstance(getattr(c, "name", None), str) and hasattr(c, "build")]
            for cls in classes:
                src = cls.build(store)
                found[src.name] = src
        except Exception as exc:  # another team's work in progress: report, do not fail
            why[module] = f"{type(exc).__name__}: {exc}"[:200]
    return found, why


@contextlib.contextmanager
def catalog_neo4j(feed: Path, prefix: str = "tg-eval-") -> Iterator[server.ServerInfo]:
    """A fresh Neo4j holding `feed`, loaded with the offline importer in a temporary home
    (search indexes online), stopped at the end."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        home = Path(tmp) / "neo4j"
        try:
            initial_load(home, server.free_port(), [str(feed)], wait_for_indexes=True)
            info = server.status(home)
            assert info is not None
            yield info
        finally:
            server.stop(home)


@contextlib.contextmanager
def catalog_uri(feed: Path, uri: str | None = None, prefix: str = "tg-eval-") -> Iterator[str]:
    """The URI of a Neo4j holding `feed`: `uri` as it is, or `catalog_neo4j(feed)`'s."""
    if uri is not None:
        yield uri
        return
    with catalog_neo4j(feed, prefix) as info:
        yield info.uri


@contextlib.contextmanager
def catalog_server(feed: Path, uri: str | None = None) -> Iterator[Neo4jStore]:
    """A store over `catalog_uri(feed, uri)`, closed at the end."""
    with catalog_uri(feed, uri) as found:
        store = Neo4jStore.connect(found)
        try:
            yield store
        finally:
            store.close()


def timed_call(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
