"""The search path: plan, run the sources within a deadline, fuse, build the page, log it.

One request, as few hops as possible: the planner names the sources and their k; in-process
sources run inline while the store-backed ones (full-text, related) run on a small thread pool,
each within what is left of the page deadline; the best fused first-stage results seed the
expanders; everything is fused into one page of cards (from memory, no store round trip); the
decision is logged with what every source found, for the learners.

A source that fails, times out or is skipped because the store is down is *unavailable*: it is
logged as such (never as a source that found nothing) and the page says `degraded`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from threading import BoundedSemaphore
from typing import Final

from api import metrics, schemas
from api.cards import Card
from api.eventlog import EventLog, SearchRecord
from api.health import StoreHealth, is_outage
from api.indexes import Indexes
from api.plans import Plan, Planner
from graph.model import Kind
from retrievers.base import Candidate, Query
from retrievers.fusion import Fused, rrf
from retrievers.understand import Interpretation

log = logging.getLogger(__name__)
RELATED_ON_TOP: Final = 3  # the top hits carry related content
REMOTE_WORKERS: Final = 8
# Store calls in flight at most (per process); past that, store sources are skipped rather than
# queued, so a slow store cannot pile up work or exhaust the driver's connection pool.
REMOTE_IN_FLIGHT: Final = 16


@dataclass(slots=True)
class SourceRun:
    name: str
    k: int
    candidates: list[Candidate] = field(default_factory=list)
    ms: float = 0.0
    status: str = "ok"  # ok | unavailable | skipped
    error: str = ""


@dataclass(frozen=True, slots=True)
class SearchResult:
    page: schemas.SearchPage
    record: SearchRecord


def _interpretation(i: Interpretation) -> schemas.Interpretation:
    return schemas.Interpretation(
        kinds=sorted(k.value for k in i.kinds), confidence=round(i.confidence, 4),
        explanation=i.explanation, artist=i.artist, genres=list(i.genres),
        years=list(i.years) if i.years else None, text=i.text, entity=i.entity)


class Searcher:
    """Answers searches from the current `Indexes` (swapped by the service on refresh)."""

    def __init__(self, indexes: Callable[[], Indexes], planner: Planner, events: EventLog,
                 health: StoreHealth, *, deadline_ms: float) -> None:
        self._indexes = indexes
        self.planner = planner
        self.events = events
        self.health = health
        self.deadline_s = deadline_ms / 1000
        self._pool = ThreadPoolExecutor(REMOTE_WORKERS, thread_name_prefix="store-source")
        self._in_flight = BoundedSemaphore(REMOTE_IN_FLIGHT)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def search(self, text: str, *, user: str | None, limit: int, kinds: frozenset[Kind],
               debug: bool = False) -> SearchResult:
        started = time.perf_counter()
        deadline = started + self.deadline_s
        idx = self._indexes()
        query = Query(text, kinds, user)
        plan = self.planner.plan(query)
        runs = self._run_stage(idx, plan.retrieve, deadline,
                               lambda src, k: idx.retrievers[src].retrieve(query, k))
        first = {r.name: r.candidates for r in runs.values() if r.status == "ok"}
        seeds = [Candidate(f.entity_id, f.score, "fused") for f in rrf(first, plan.seeds)]
        if seeds and plan.expand:
            runs |= self._run_stage(idx, plan.expand, deadline,
                                    lambda src, k: self._expand(idx, src, seeds, k, kinds))
        lists = {r.name: r.candidates for r in runs.values() if r.status == "ok"}
        fused = [f for f in rrf(lists, 4 * limit) if f.entity_id in idx.cards][:limit]
        unavailable = sorted(r.name for r in runs.values() if r.status != "ok")
        degraded = bool(unavailable)
        search_id = uuid.uuid4().hex
        items = self._items(idx, fused, runs, debug)
        interpretations = [_interpretation(i) for i in idx.understand.interpret(text)[:3]]
        total_ms = (time.perf_counter() - started) * 1000
        page = schemas.SearchPage(
            search_id=search_id, query=text, items=items, interpretations=interpretations,
            degraded=degraded,
            debug=self._debug(plan, runs, idx.version, total_ms) if debug else None)
        record = SearchRecord(
            search_id=search_id, at=time.time(), query=text, user=user,
            kinds=sorted(k.value for k in kinds), limit=limit, policy=plan.policy,
            plan=dict(plan.sources), propensity=plan.propensity,
            candidates={name: [c.entity_id for c in r.candidates] for name, r in runs.items()
                        if r.status == "ok"},
            unavailable=unavailable, page=[i.id for i in items], degraded=degraded,
            context=dict(plan.context))
        self.events.add_search(record)
        metrics.SEARCHES.labels(degraded=str(degraded).lower()).inc()
        metrics.POLICY_CHOICES.labels(policy=plan.policy, plan=_plan_label(plan)).inc()
        return SearchResult(page, record)

    @staticmethod
    def _expand(idx: Indexes, name: str, seeds: Sequence[Candidate], k: int,
                kinds: frozenset[Kind]) -> list[Candidate]:
        got = idx.expanders[name].expand(seeds, k if not kinds else 4 * k)
        if kinds:  # expanders know no kind filter in their protocol: filter on the cards
            got = [c for c in got if (card := idx.cards.get(c.entity_id)) and card.kind in kinds]
        return got[:k]

    def _run_stage(self, idx: Indexes, plan: Mapping[str, int], deadline: float,
                   call: Callable[[str, int], list[Candidate]]) -> dict[str, SourceRun]:
        runs = {name: SourceRun(name, k) for name, k in plan.items() if k > 0}
        futures: dict[str, tuple[Future[list[Candidate]], float]] = {}
        for name, run in runs.items():  # store-backed sources first, so they overlap the rest
            if name not in idx.remote:
                continue
            if not self.health.available():
                run.status, run.error = "skipped", "store unavailable"
            elif not self._in_flight.acquire(blocking=False):
                run.status, run.error = "skipped", "too many store calls in flight"
            else:
                futures[name] = (self._pool.submit(self._remote, call, name, run.k),
                                 time.perf_counter())
        for name, run in runs.items():
            if name in idx.remote:
                continue
            t = time.perf_counter()
            try:
                run.candidates = call(name, run.k)
            except Exception as exc:
                log.exception("source %s failed", name)
                run.status, run.error = "unavailable", f"{type(exc).__name__}: {exc}"[:200]
            run.ms = (time.perf_counter() - t) * 1000
        for name, (future, t) in futures.items():
            run = runs[name]
            try:
                run.candidates = future.result(timeout=max(0.0, deadline - time.perf_counter()))
            except FutureTimeout:
                run.status, run.error = "unavailable", "deadline passed"
            except Exception as exc:
                run.status, run.error = "unavailable", f"{type(exc).__name__}: {exc}"[:200]
            run.ms = (time.perf_counter() - t) * 1000
        for run in runs.values():
            metrics.SOURCE_LATENCY.labels(source=run.name).observe(run.ms / 1000)
            if run.status != "ok":
                metrics.SOURCE_ERRORS.labels(source=run.name, why=run.status).inc()
        return runs

    def _remote(self, call: Callable[[str, int], list[Candidate]], name: str,
                k: int) -> list[Candidate]:
        try:
            return call(name, k)
        except Exception as exc:
            if is_outage(exc):
                self.health.failed(exc)
            raise
        finally:
            self._in_flight.release()

    @staticmethod
    def _items(idx: Indexes, fused: Sequence[Fused], runs: Mapping[str, SourceRun],
               debug: bool) -> list[schemas.Item]:
        items = []
        for pos, f in enumerate(fused):
            card = idx.cards.get(f.entity_id)
            assert card is not None  # fused was filtered on the cards
            related = [_related(c) for c in (idx.cards.get(i) for i in card.related) if c] \
                if pos < RELATED_ON_TOP else []
            provenance = None
            if debug:
                provenance = [schemas.Provenance(src, rank, round(score, 6),
                                                 _reason(runs[src], f.entity_id))
                              for src, (rank, score) in sorted(f.sources.items())]
            items.append(schemas.Item(
                id=card.id, kind=card.kind.value, name=card.name, subtitle=card.subtitle,
                score=round(f.score, 6), sources=sorted(f.sources), related=related,
                related_label=card.related_label if related else "", provenance=provenance))
        return items

    @staticmethod
    def _debug(plan: Plan, runs: Mapping[str, SourceRun], version: int,
               total_ms: float) -> schemas.PageDebug:
        sources = {r.name: schemas.SourceDebug(r.k, len(r.candidates), round(r.ms, 3),
                                               r.status, r.error)  # type: ignore[arg-type]
                   for r in runs.values()}
        return schemas.PageDebug(plan.policy, dict(plan.sources), plan.propensity, sources,
                                 version, round(total_ms, 3))


def _related(card: Card) -> schemas.RelatedItem:
    return schemas.RelatedItem(card.id, card.kind.value, card.name)


def _reason(run: SourceRun, entity_id: str) -> str:
    return next((c.reason for c in run.candidates if c.entity_id == entity_id), "")


def _plan_label(plan: Plan) -> str:
    """A short, bounded label for the metrics: which sources ran."""
    return "+".join(sorted(s for s, k in plan.sources.items() if k > 0)) or "none"
