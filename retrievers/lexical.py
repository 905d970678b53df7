"""The lexical path: fuzzy names, full text and query understanding, run together and fused.

`LexicalPath.search` runs the sources a plan names (each with its own k; by default all three
with DEFAULT_K), the full-text query in a worker thread while fuzzy names and query
understanding run here, and fuses whatever lists came back with per-source Platt calibration
(`retrievers.fusion`): P(relevant) from the source's score, rank, score relative to its list's
best, and whether the candidate's kind is the one the query reads as asking for ("songs by
adele" asks for songs). The fused score is P(at least one source is right).

The API can also run the sources itself (`sources`) and call `fuse` on any subset; a bandit
choosing which sources run and with what k needs nothing else.

CALIBRATION below was fitted on the tuning split of the development queries
(bench/data/devset.jsonl); `python -m bench.retrieval_eval --fit` refits it on a real Neo4j
holding the real catalog and rewrites the block between the FITTED markers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from graph.model import Kind
from graph.neo4j_store import Neo4jStore
from graph.store import GraphStore
from retrievers.base import Candidate, Query, Retriever
from retrievers.fulltext import FullTextRetriever
from retrievers.fusion import Calibrator, Fused, KindFit, Platt
from retrievers.fuzzy import FuzzyIndex, FuzzyRetriever
from retrievers.understand import Interpretation, QueryUnderstanding, fuzzy_linker

SOURCES: Final = ("fuzzy", "fulltext", "understand")
DEFAULT_K: Final = 50
REMOTE: Final = frozenset({"fulltext"})  # read the store per query: run in a worker thread

# BEGIN FITTED: written by `python -m bench.retrieval_eval --fit`; do not edit by hand
CALIBRATION: Final[dict[str, Platt]] = {
    "fuzzy": Platt(5.5434, -1.2231, -19.3644, 15.5428, 1.1299),
    "fulltext": Platt(0.0277, -0.6725, -8.3737, 7.7559, 1.9795),
    "understand": Platt(-2.4728, -0.6771, -0.4874, 2.7063, 4.3920),
}
# END FITTED


def fitted_calibrator() -> Calibrator:
    return Calibrator(dict(CALIBRATION))


@dataclass(frozen=True, slots=True)
class LexicalResult:
    """The fused page candidates, each source's own list, the query's readings, and how many
    milliseconds each source took."""

    fused: list[Fused]
    lists: dict[str, list[Candidate]]
    readings: list[Interpretation]
    ms: dict[str, float] = field(default_factory=dict)


class LexicalPath:
    """Fuzzy + full-text + query understanding behind one Retriever (`retrieve`), with the
    sources also available one by one (`sources`, `fuse`)."""

    name = "lexical"

    def __init__(self, fuzzy: FuzzyRetriever | None, understand: QueryUnderstanding | None,
                 fulltext: Retriever | None = None, *, calibrator: Calibrator | None = None
                 ) -> None:
        self.fuzzy, self.understand, self.fulltext = fuzzy, understand, fulltext
        self.calibrator = calibrator or fitted_calibrator()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lexical")

    @classmethod
    def build(cls, store: GraphStore, *, fulltext: bool = True,
              calibrator: Calibrator | None = None) -> LexicalPath:
        """Every source from one read of the catalog; full text when the store is Neo4j."""
        version = store.catalog_version()
        entities = list(store.iter_entities())
        fuzzy = FuzzyIndex.from_entities(entities, version)
        artists = FuzzyIndex.from_entities([e for e in entities if e.kind is Kind.ARTIST],
                                           version)
        understand = QueryUnderstanding(store, linker=fuzzy_linker(artists))
        text = FullTextRetriever(store) if fulltext and isinstance(store, Neo4jStore) else None
        return cls(FuzzyRetriever(fuzzy), understand, text, calibrator=calibrator)

    @property
    def sources(self) -> dict[str, Retriever]:
        found: dict[str, Retriever | None] = {"fuzzy": self.fuzzy, "fulltext": self.fulltext,
                                              "understand": self.understand}
        return {n: s for n, s in found.items() if s is not None}

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def search(self, query: Query, k: int, plan: Mapping[str, int] | None = None
               ) -> LexicalResult:
        """Run the planned sources (name -> k; default all, DEFAULT_K each) and fuse them."""
        sources = self.sources
        plan = plan if plan is not None else {n: DEFAULT_K for n in sources}
        plan = {n: n_k for n, n_k in plan.items() if n in sources and n_k > 0}
        ms: dict[str, float] = {}
        futures: dict[str, Future[tuple[list[Candidate], float]]] = {
            n: self._pool.submit(_timed, sources[n], query, n_k)
            for n, n_k in plan.items() if n in REMOTE}
        lists: dict[str, list[Candidate]] = {}
        readings: list[Interpretation] = []
        if self.understand is not None:
            t0 = time.perf_counter()
            readings = self.understand.interpret(query.text)
            if "understand" in plan:
                lists["understand"] = self.understand.from_readings(readings, query,
                                                                    plan["understand"])
            ms["understand"] = (time.perf_counter() - t0) * 1e3
        for n, n_k in plan.items():
            if n not in REMOTE and n != "understand":
                lists[n], ms[n] = _timed(sources[n], query, n_k)
        for n, fut in futures.items():
            lists[n], ms[n] = fut.result()
        return LexicalResult(self.fuse(lists, k, readings), lists, readings, ms)

    def fuse(self, lists: Mapping[str, Sequence[Candidate]], k: int,
             readings: Sequence[Interpretation] = ()) -> list[Fused]:
        """Calibrated fusion of any subset of source lists."""
        return self.calibrator.fuse(lists, k, kind_fit=self.kind_fit(readings))

    def kind_fit(self, readings: Sequence[Interpretation]) -> KindFit | None:
        """+confidence for candidates of the kinds the best reading asks for, -confidence for
        other kinds; None when the query names no kind."""
        if not readings or not readings[0].kinds or self.understand is None:
            return None
        asked, conf, kind_of = readings[0].kinds, readings[0].confidence, self.understand.kind_of

        def fit(entity_id: str) -> float:
            kind = kind_of(entity_id)
            return 0.0 if kind is None else conf if kind in asked else -conf
        return fit

    def retrieve(self, query: Query, k: int) -> list[Candidate]:
        if k <= 0:
            return []
        result = self.search(query, k)
        return [Candidate(f.entity_id, f.score, self.name, "+".join(sorted(f.sources)))
                for f in result.fused]


def _timed(source: Retriever, query: Query, k: int) -> tuple[list[Candidate], float]:
    t0 = time.perf_counter()
    got = source.retrieve(query, k)
    return got, (time.perf_counter() - t0) * 1e3
