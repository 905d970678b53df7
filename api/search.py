"""The search path: probe, plan, run the sources within a deadline, rank, build the page, log it.

One request, as few hops as possible:
1. read the query (query understanding) and probe the cheap in-process sources (fuzzy names,
   the click memory) at the full budget: their lists are features for the policy and are reused;
2. the policy (`Learner`) picks the plan: which sources run and k for each, under the budget;
3. the plan's other first-stage sources run, store-backed ones (full-text) on a small thread
   pool within what is left of the page deadline, in-process ones at the full budget (cut to
   their k, like the probes); the best fused first-stage results seed the second stage
   (related entities, graph-embedding neighbours), which runs in process;
4. the candidate union (or, for an "rrf" plan, the top of the fused list) is ranked into one page
   of cards, read from memory with no store round trip;
5. the decision (context, plan with its propensity, every source's candidates) is logged.

A source that fails, times out, is skipped because the store is down, or is an expander left
without seeds is *unavailable*: logged as such (never as a source that found nothing), and the
page says `degraded` when a store-backed source was lost.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from threading import BoundedSemaphore
from typing import Final

from api import metrics, schemas
from api.cards import Card, Cards
from api.context import UserStats, build_context, source_features
from api.eventlog import EventLog, SearchRecord
from api.health import StoreHealth, is_outage
from api.indexes import Indexes
from api.learning import Learner, decision_json, query_class
from api.page import PageItem, collapse_versions, follow_reading, followed
from bandit import Context, Plan
from graph.model import Kind
from retrievers import ranker
from retrievers.base import Candidate, Query
from retrievers.fusion import Fused, rrf
from retrievers.understand import Interpretation

log = logging.getLogger(__name__)
RELATED_ON_TOP: Final = 3  # the top hits carry related content
SEEDS: Final = 3  # best fused first-stage results handed to the expanders
PROBES: Final = ("fuzzy", "memory")  # in-process and cheap: run before the plan is chosen
# Query understanding's answer costs next to nothing once the readings are made (they are, for
# every search): a plan that leaves it out still gets its results as filler for the room.
FILLER: Final = "understand"
REMOTE_WORKERS: Final = 8
# Store calls in flight at most (per process); past that, store sources are skipped rather than
# queued, so a slow store cannot pile up work or exhaust the driver's connection pool.
REMOTE_IN_FLIGHT: Final = 16
# A followed reading's answer joins the candidates for this many pages: versions collapse, so
# one page of songs may take more than one page of the answer.
ANSWER_PAGES: Final = 3
NO_SEEDS: Final = "no seeds"  # an expander with nothing to expand: not run, and no outage


@dataclass(slots=True)
class SourceRun:
    name: str
    k: int
    candidates: list[Candidate] = field(default_factory=list)
    ms: float = 0.0
    status: str = "ok"  # ok | unavailable | skipped
    error: str = ""
    cached: bool = False  # answered from the snapshot's cache of repeated queries


@dataclass(frozen=True, slots=True)
class SearchResult:
    page: schemas.SearchPage
    record: SearchRecord
    plan: Plan


def _interpretation(i: Interpretation) -> schemas.Interpretation:
    return schemas.Interpretation(
        kinds=sorted(k.value for k in i.kinds), confidence=round(i.confidence, 4),
        explanation=i.explanation, artist=i.artist, genres=list(i.genres),
        years=list(i.years) if i.years else None, text=i.text, entity=i.entity)


class Searcher:
    """Answers searches from the current `Indexes` (swapped by the service on refresh)."""

    def __init__(self, indexes: Callable[[], Indexes], learner: Learner,
                 ranker_of: Callable[[], ranker.LinearRanker | None], events: EventLog,
                 health: StoreHealth, users: UserStats, *, deadline_ms: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._indexes = indexes
        self.learner = learner
        self._ranker = ranker_of
        self.events = events
        self.health = health
        self.users = users
        self.deadline_s = deadline_ms / 1000
        self.clock = clock
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
        budget = self.learner.space.budget
        readings = self._readings(idx, text)

        def key(src: str, k: int) -> Hashable | None:
            return None if src == "memory" else (src, text, kinds, k)

        probes = self._run_stage(idx, {p: budget for p in PROBES if p in idx.retrievers},
                                 deadline, lambda src, k: idx.retrievers[src].retrieve(query, k),
                                 key)
        plan, context = self._choose(idx, text, readings, probes, user)
        first = {name: k for name, k in plan.ks if name in idx.retrievers}
        probed = {name: run.candidates for name, run in probes.items() if run.status == "ok"}
        runs = {name: run for name, run in probes.items() if name in first}
        # The plan's other in-process sources run at the full budget too, like the probes (it
        # costs them next to nothing more); every in-process list is then cut to its k, and its
        # further results can fill the room that overlap leaves (see _merge). Store-backed ones
        # fetch only their k.
        deep = {n: k if n in idx.remote else budget for n, k in first.items() if n not in runs}
        runs |= self._run_stage(idx, deep, deadline,
                                lambda src, k: self._retrieve(idx, src, query, readings, k), key)
        for name, run in runs.items():
            if name not in idx.remote:
                if run.status == "ok":
                    probed.setdefault(name, run.candidates)
                run.candidates, run.k = run.candidates[:first[name]], first[name]
        if FILLER in idx.retrievers and FILLER not in first:
            probed.setdefault(FILLER, idx.understand.from_readings(readings, query, budget))
        found = {r.name: r.candidates for r in runs.values() if r.status == "ok"}
        seeds = [Candidate(f.entity_id, f.score, "fused") for f in rrf(found, SEEDS)]
        second = {name: k for name, k in plan.ks if name in idx.expanders}
        seed_ids = tuple(s.entity_id for s in seeds)
        if seeds:
            runs |= self._run_stage(idx, second, deadline,
                                    lambda src, k: self._expand(idx, src, seeds, k, kinds),
                                    lambda src, k: (src, seed_ids, kinds, k))
        else:
            runs |= {n: SourceRun(n, k, status="skipped", error=NO_SEEDS)
                     for n, k in second.items()}
        unavailable = sorted(r.name for r in runs.values() if r.status != "ok")
        plan = plan.with_unavailable(unavailable)
        lists = self._merge(plan, {r.name: r.candidates for r in runs.values()
                                   if r.status == "ok"}, probed)
        answer = probed.get(FILLER, [])
        best = followed(readings)
        if best is not None:
            lists = _with_answer(lists, answer[:ANSWER_PAGES * limit])
        in_answer = {c.entity_id for c in answer}

        def satisfies(entity_id: str) -> bool:
            assert best is not None
            found = idx.understand.satisfies(best, entity_id)
            return entity_id in in_answer if found is None else found

        ranked = follow_reading(self._rank(idx, lists, readings, user, limit,
                                           query_class(context)),
                                readings, idx.cards, text, satisfies)
        page_items = collapse_versions(_after_the_similar(ranked, readings, idx.cards),
                                       idx.cards, text, limit)
        degraded = not self.health.available() or any(
            r.name in idx.remote and r.status != "ok" and r.error != NO_SEEDS
            for r in runs.values())
        search_id = uuid.uuid4().hex
        items = self._items(idx, page_items, lists, debug)
        total_ms = (time.perf_counter() - started) * 1000
        page = schemas.SearchPage(
            search_id=search_id, query=text, items=items,
            interpretations=[_interpretation(i) for i in readings[:3]], degraded=degraded,
            debug=self._debug(plan, runs, idx.version, total_ms) if debug else None)
        at = self.clock()
        candidates = {name: tuple(c.entity_id for c in cands) for name, cands in lists.items()}
        record = SearchRecord(
            search_id=search_id, at=at, query=text, user=user,
            kinds=sorted(k.value for k in kinds), limit=limit, policy=plan.policy,
            plan=dict(plan.ks), propensity=plan.propensity,
            candidates={n: list(ids) for n, ids in candidates.items()},
            scores={n: [round(c.score, 6) for c in cands] for n, cands in lists.items()},
            unavailable=unavailable, page=[i.id for i in items], degraded=degraded,
            decision=decision_json(search_id, at, context, plan, candidates),
            wanted_kinds=sorted(k.value for r in readings[:1] for k in r.kinds))
        self.events.add_search(record)
        metrics.SEARCHES.labels(degraded=str(degraded).lower()).inc()
        metrics.POLICY_CHOICES.labels(policy=plan.policy, plan=plan.name or "allocation").inc()
        return SearchResult(page, record, plan)

    def _choose(self, idx: Indexes, text: str, readings: Sequence[Interpretation],
                probes: Mapping[str, SourceRun], user: str | None) -> tuple[Plan, Context]:
        store_up = self.health.available()
        lists = {n: r.candidates for n, r in probes.items() if r.status == "ok"}
        cls = query_class(build_context(text, readings, lists, {}, (0, ()), self.clock()))
        features = {name: source_features(name, lists.get(name, []),
                                          self.learner.hit_rate(name, cls),
                                          available=store_up or name not in idx.remote)
                    for name in self.learner.space.names}
        context = build_context(text, readings, lists, features, self.users.get(user),
                                self.clock())
        return self.learner.choose(context), context

    @staticmethod
    def _readings(idx: Indexes, text: str) -> tuple[Interpretation, ...]:
        found = idx.readings.get(text)
        if found is None:
            found = tuple(idx.understand.interpret(text))
            idx.readings.put(text, found)
        return found

    @staticmethod
    def _retrieve(idx: Indexes, name: str, query: Query, readings: Sequence[Interpretation],
                  k: int) -> list[Candidate]:
        if name == "understand":  # the readings are made once per search
            return idx.understand.from_readings(readings, query, k)
        return idx.retrievers[name].retrieve(query, k)

    @staticmethod
    def _expand(idx: Indexes, name: str, seeds: Sequence[Candidate], k: int,
                kinds: frozenset[Kind]) -> list[Candidate]:
        got = idx.expanders[name].expand(seeds, k if not kinds else 4 * k)
        if kinds:  # expanders know no kind filter in their protocol: filter on the cards
            got = [c for c in got if (card := idx.cards.get(c.entity_id)) and card.kind in kinds]
        return got[:k]

    @staticmethod
    def _merge(plan: Plan, lists: dict[str, list[Candidate]],
               probed: Mapping[str, list[Candidate]]) -> dict[str, list[Candidate]]:
        """The plan's candidate set: for an "rrf" plan each list cut to the entities in the top
        `budget` of their fusion; else the union of the lists (each within its k), and where
        sources overlap, the room left under the budget filled with the next results of the
        probes and of the plan's other in-process sources (computed anyway; taken in turn, best
        first). The probes' further results that are in the set already join their lists too,
        at no cost to the budget, so the ranker and the provenance see every probe that found
        an entity. What lies past the plan's k is the
        probes' own ranking, but rewards credit a source within its k only.
        """
        if plan.merge == "rrf":
            keep = {f.entity_id for f in rrf(lists, plan.budget)}
            return {n: [c for c in cands if c.entity_id in keep] for n, cands in lists.items()}
        seen = {c.entity_id for cands in lists.values() for c in cands}
        room = plan.budget - len(seen)
        out = {n: list(cands) for n, cands in lists.items()}
        queues = {n: full[len(out.get(n, [])):] for n, full in probed.items()}
        for depth in range(max((len(q) for q in queues.values()), default=0)):
            for name, queue in queues.items():
                if depth >= len(queue):
                    continue
                c = queue[depth]
                if c.entity_id in seen or room > 0:
                    if c.entity_id not in seen:
                        seen.add(c.entity_id)
                        room -= 1
                    out.setdefault(name, []).append(c)
        return out

    def _rank(self, idx: Indexes, lists: Mapping[str, list[Candidate]],
              readings: Sequence[Interpretation], user: str | None, limit: int,
              cls: str) -> list[Fused]:
        learned = self._ranker()
        if learned is None:
            fused = ranker.rrf_rank(lists, 4 * limit)
        else:
            wanted = frozenset(k for r in readings[:1] for k in r.kinds)
            items = {c.entity_id: ranker.Item(card.kind, card.popularity, card.genres)
                     for cands in lists.values() for c in cands
                     if (card := idx.cards.get(c.entity_id)) is not None}
            query = ranker.Query(wanted, self.users.get(user)[1], cls)
            fused = learned.rank(lists, items, query, 4 * limit)
        return [f for f in fused if f.entity_id in idx.cards]

    def _run_stage(self, idx: Indexes, plan: Mapping[str, int], deadline: float,
                   call: Callable[[str, int], list[Candidate]],
                   key: Callable[[str, int], Hashable | None]) -> dict[str, SourceRun]:
        """Run `plan`'s sources: an answer in the snapshot's cache first (`key` None: never
        cached), then the store-backed ones on the pool, then the in-process ones inline."""
        runs = {name: SourceRun(name, k) for name, k in plan.items() if k > 0}
        keys = {name: key(name, run.k) for name, run in runs.items()}
        for name, run in runs.items():
            cache_key = keys[name]
            hit = idx.results.get(cache_key) if cache_key is not None else None
            if hit is not None:
                run.candidates, run.cached = list(hit), True
            metrics.SOURCE_CACHE.labels(source=name, result="hit" if hit is not None else
                                        "miss" if cache_key is not None else "off").inc()

        def remember(name: str, found: list[Candidate]) -> list[Candidate]:
            if (cache_key := keys[name]) is not None:
                idx.results.put(cache_key, tuple(found))
            return found

        futures: dict[str, tuple[Future[list[Candidate]], float]] = {}
        for name, run in runs.items():  # store-backed sources first, so they overlap the rest
            if name not in idx.remote or run.cached:
                continue
            if not self.health.available():
                run.status, run.error = "skipped", "store unavailable"
            elif not self._in_flight.acquire(blocking=False):
                run.status, run.error = "skipped", "too many store calls in flight"
            else:
                futures[name] = (self._pool.submit(self._remote, call, name, run.k, remember),
                                 time.perf_counter())
        for name, run in runs.items():
            if name in idx.remote or run.cached:
                continue
            t = time.perf_counter()
            try:
                run.candidates = remember(name, call(name, run.k))
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

    def _remote(self, call: Callable[[str, int], list[Candidate]], name: str, k: int,
                remember: Callable[[str, list[Candidate]], list[Candidate]]) -> list[Candidate]:
        try:
            return remember(name, call(name, k))
        except Exception as exc:
            if is_outage(exc):
                self.health.failed(exc)
            raise
        finally:
            self._in_flight.release()

    @staticmethod
    def _items(idx: Indexes, page: Sequence[PageItem], lists: Mapping[str, list[Candidate]],
               debug: bool) -> list[schemas.Item]:
        items = []
        for pos, item in enumerate(page):
            f = item.fused
            card = idx.cards.get(f.entity_id)
            assert card is not None  # fused was filtered on the cards
            related = [_related(c) for c in (idx.cards.get(i) for i in card.related) if c] \
                if pos < RELATED_ON_TOP else []
            provenance = None
            if debug:
                provenance = [schemas.Provenance(src, rank, round(score, 6),
                                                 _reason(lists[src], f.entity_id))
                              for src, (rank, score) in sorted(f.sources.items())]
            items.append(schemas.Item(
                id=card.id, kind=card.kind.value, name=card.name, subtitle=card.subtitle,
                score=round(f.score, 6), sources=sorted(f.sources), related=related,
                related_label=card.related_label if related else "", provenance=provenance,
                other_versions=item.versions - 1))
        return items

    @staticmethod
    def _debug(plan: Plan, runs: Mapping[str, SourceRun], version: int,
               total_ms: float) -> schemas.PageDebug:
        sources = {r.name: schemas.SourceDebug(r.k, len(r.candidates), round(r.ms, 3),
                                               r.status, r.error,  # type: ignore[arg-type]
                                               r.cached)
                   for r in runs.values()}
        return schemas.PageDebug(plan.policy, dict(plan.ks), round(plan.propensity, 6), sources,
                                 version, round(total_ms, 3))


SIMILAR_CONFIDENCE: Final = 0.5  # a "like X" reading this sure moves X below the similar ones


def _after_the_similar(fused: list[Fused], readings: Sequence[Interpretation],
                       cards: Cards) -> list[Fused]:
    """"artists like X" / "songs like X" ask for others than X: when that is the best reading,
    X itself (any version of it) goes after the first RELATED_ON_TOP results (it stays on the
    page: the user may want it)."""
    best = readings[0] if readings else None
    if best is None or not best.similar or best.confidence < SIMILAR_CONFIDENCE:
        return fused
    like = best.entity or best.artist  # "songs like <title>": the song; else the artist
    card = cards.get(like) if like else None
    group = (card.group or card.id) if card is not None else like

    def is_like(f: Fused) -> bool:
        c = cards.get(f.entity_id)
        return f.entity_id == like or (c is not None and (c.group or c.id) == group)

    anchors = [f for f in fused[:RELATED_ON_TOP] if is_like(f)]
    if not anchors:
        return fused
    rest = [f for f in fused if f not in anchors]
    return [*rest[:RELATED_ON_TOP], *anchors, *rest[RELATED_ON_TOP:]]


def _with_answer(lists: dict[str, list[Candidate]],
                 answer: Sequence[Candidate]) -> dict[str, list[Candidate]]:
    """The structured answer of a reading the page follows joins the candidates whatever the
    plan (it was computed anyway), after what the plan took of it."""
    have = lists.get(FILLER, [])
    seen = {c.entity_id for c in have}
    return {**lists, FILLER: [*have, *(c for c in answer if c.entity_id not in seen)]}


def _related(card: Card) -> schemas.RelatedItem:
    return schemas.RelatedItem(card.id, card.kind.value, card.name)


def _reason(candidates: Sequence[Candidate], entity_id: str) -> str:
    return next((c.reason for c in candidates if c.entity_id == entity_id), "")
