"""The simulator's runner: one policy over the seeded traffic, through the real search path.

Each policy gets a fresh learning state (no searches, feedback, outcomes, policy snapshots or
click memory in the store), a fresh `Service` over the same Neo4j and catalog, a simulated clock
that starts at the same instant, and the same intents; the clicks for a page are drawn from
(seed, intent, attempt), so two policies that show the same page get the same clicks.

Per search it keeps: candidate recall (a relevant entity is in the plan's candidate set, at most
the budget), the reciprocal rank of the first relevant entity in the final page's top 10
(0 beyond), the plan's cost (the store round trips its sources take: `api.learning.SOURCE_COST`),
the feedback events it got, and, once settled, the reward the service logged for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, cast

import numpy as np

from api.feedback import handle_feedback
from api.schemas import Action, FeedbackIn
from api.search import SearchResult
from api.service import Service
from api.settings import Settings
from bandit import Outcome, Plan, decode
from bench.sim_users import PAGE, Clicks, Intent
from graph.neo4j_store import Neo4jStore

START: Final = 1_800_000_000.0  # the simulated clock's first instant (unix seconds)
RETRY_GAP_S: Final = (4.0, 30.0)  # a retry comes this many seconds after the page
SETTLE_EVERY: Final = 20  # intents between sweeps for searches whose window closed
READY_S: Final = 900.0
# Generous, so that a loaded machine does not drop store-backed sources: the figures are about
# what each plan finds, not about latency.
SIM_SETTINGS: Final = Settings(rate_limit_per_minute=0, search_deadline_ms=10_000, warm_start=0)
LEARNING_LABELS: Final = ("Search", "Feedback", "Outcome", "PolicyState", "Query")


class SimClock:
    """The service's clock, moved by the simulator."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass(slots=True)
class Row:
    """One search of one policy."""

    index: int  # the intent
    cls: str
    attempt: int  # 0: the intent's first search; 1: its retry
    search_id: str
    recall: bool
    rr: float
    cost: float
    plan: dict[str, int]
    feedback: int
    took: bool
    ms: float
    reward: float = 0.0
    hit: bool = False


@dataclass(slots=True)
class PolicyRun:
    policy: str
    rows: list[Row] = field(default_factory=list)
    sources: tuple[str, ...] = ()
    first_stage: tuple[str, ...] = ()
    outcomes: int = 0
    seconds: float = 0.0
    after: object = None  # what `run_policy`'s `after` returned

    @property
    def primary(self) -> list[Row]:
        return [r for r in self.rows if r.attempt == 0]


def clear_learning(store: Neo4jStore) -> None:
    """Delete every trace of learning (searches, feedback, outcomes, snapshots, memory), keeping
    the catalog."""
    for label in LEARNING_LABELS:
        while True:  # in batches: one transaction for 100k nodes is heavy on a small heap
            records, _, _ = store.driver.execute_query(
                f"MATCH (n:{label}) WITH n LIMIT 20000 DETACH DELETE n RETURN count(*) AS n",
                database_=store.database)
            if not records or records[0]["n"] == 0:
                break
    store.driver.execute_query("MATCH (m:Meta) WHERE m.key IN ['outcomes', 'warm-start'] "
                               "DETACH DELETE m", database_=store.database)


def first_relevant(ids: Sequence[str], relevant: frozenset[str], cutoff: int = PAGE) -> float:
    return next((1.0 / (1 + i) for i, e in enumerate(ids[:cutoff]) if e in relevant), 0.0)


class Runner:
    """Drives one started `Service` with intents and the click model."""

    def __init__(self, service: Service, clock: SimClock, clicks: Clicks) -> None:
        self.service = service
        self.clock = clock
        self.clicks = clicks
        assert service.learner is not None
        self.learner = service.learner
        self.costs = {s.name: s.cost for s in self.learner.space.sources}

    def search(self, text: str, user: str | None) -> SearchResult:
        searcher = self.service.searcher
        assert searcher is not None
        return searcher.search(text, user=user, limit=PAGE, kinds=frozenset())

    def attempt(self, intent: Intent, attempt: int) -> tuple[Row, bool]:
        """One search of the intent and the user's clicks; True when the user retries."""
        text = intent.query if attempt == 0 else intent.retry
        assert text is not None
        t0 = time.perf_counter()
        result = self.search(text, intent.user)
        ms = (time.perf_counter() - t0) * 1000
        record = result.record
        shown = self.clock.now
        session = self.clicks.session(intent, record.page, attempt)
        for event in session.events:
            self.clock.now = shown + event.after_s
            handle_feedback(self.service, FeedbackIn(record.search_id, event.entity_id,
                                                     cast(Action, event.action), event.position))
        found = {e for ids in record.candidates.values() for e in ids}
        row = Row(intent.index, intent.cls, attempt, record.search_id,
                  bool(found & intent.relevant), first_relevant(record.page, intent.relevant),
                  self.cost(result.plan), dict(record.plan), len(session.events),
                  session.satisfied, ms)
        return row, session.retry

    def cost(self, plan: Plan) -> float:
        return float(sum(self.costs.get(n, 0.0) for n in plan.sources))

    def run(self, intents: Sequence[Intent], rng: np.random.Generator,
            progress: Callable[[int], None] | None = None) -> list[Row]:
        rows: list[Row] = []
        for n, intent in enumerate(intents):
            self.clock.now += intent.gap_s
            row, again = self.attempt(intent, 0)
            rows.append(row)
            if again:
                self.clock.now += float(rng.uniform(*RETRY_GAP_S))
                rows.append(self.attempt(intent, 1)[0])
            if n % SETTLE_EVERY == SETTLE_EVERY - 1:
                self.learner.settle_expired()
            self.learner.sync()
            if progress is not None:
                progress(n + 1)
        return rows

    def finish(self) -> dict[str, Outcome]:
        """Close every feedback window, settle, apply; the logged outcome of every search."""
        self.clock.now += self.learner.reward.timeout_s + 1.0
        self.wait_logged()
        while self.learner.settle_expired() > 0:
            pass
        self.learner.sync()
        return outcomes(self.service)

    def wait_logged(self, timeout: float = 30.0) -> None:
        """Searches are written by a background thread: wait until none is pending."""
        end = time.monotonic() + timeout
        while self.service.events._pending and time.monotonic() < end:
            time.sleep(0.05)


def outcomes(service: Service) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    seq = 0
    while True:
        rows = service.events.outcomes_after(seq)
        if not rows:
            return out
        for _, doc in rows:
            record = decode(doc)
            if isinstance(record, Outcome):
                out[record.search_id] = record
        seq = rows[-1][0]


def seed_policy(service: Service, seed: int) -> None:
    """The learner seeds its policy with the process id: give it the run's seed instead, so a
    run's exploration draws repeat."""
    learner = service.learner
    if learner is not None and hasattr(learner.policy, "rng"):
        learner.policy.rng = np.random.default_rng(seed)


def run_policy(uri: str, policy: str, intents: Sequence[Intent], clicks: Clicks, *,
               settings: Settings = SIM_SETTINGS, seed: int = 0,
               progress: Callable[[int], None] | None = None,
               after: Callable[[Runner], object] | None = None) -> PolicyRun:
    """`policy` over `intents` from a fresh learning state (see the module docstring);
    `after` runs on the same service once the intents are done and settled."""
    started = time.perf_counter()
    store = Neo4jStore.connect(uri)
    try:
        clear_learning(store)
    finally:
        store.close()
    clock = SimClock()
    service = Service.connect(replace(settings, policy=policy), uri)
    service.clock = clock
    service.start()
    try:
        if not service.wait_ready(READY_S):
            raise RuntimeError(f"the service did not get ready: {service.load_error}")
        seed_policy(service, seed)
        runner = Runner(service, clock, clicks)
        rows = runner.run(intents, np.random.default_rng(seed), progress)
        settled = runner.finish()
        space = runner.learner.space
        extra = after(runner) if after is not None else None
    finally:
        service.close()
    for row in rows:
        o = settled.get(row.search_id)
        if o is not None:
            row.reward, row.hit = o.reward.value, o.reward.hit
    return PolicyRun(policy, rows, space.names,
                     tuple(s.name for s in space.sources if s.stage == "first"),
                     len(settled), time.perf_counter() - started, extra)
