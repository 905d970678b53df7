"""Learning to retrieve, in the service: the policy that plans each search, and how every API
process learns the same parameters from the shared outcome log in Neo4j.

- `choose`: the policy picks the plan (which sources, k each) for a search's `Context`.
- Outcomes: a search is settled once, by whichever process sees it first: at the first take
  (click, play, like, add) from the feedback so far, or with reward 0 when its feedback window
  (`TUNEGRAPH_FEEDBACK_EXPIRY_S`) closes with none. The outcome goes to the log under the next
  sequence number (`EventLog.add_outcome`).
- `sync`: every process applies the log's outcomes in sequence order, its own and the others',
  so their parameters agree, and replaying the log from the start rebuilds them exactly.
  Every SNAPSHOT_EVERY outcomes the state is saved to the graph, so a new process starts from
  the newest snapshot and replays only the tail.
- An admin reset saves a fresh state under a new epoch; every process reloads it at its next
  sync.

The per-source hit rates in each context (how often a source held the taken entity for queries
of the same class) are themselves learned from the log in sequence order, so they too agree.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from api.eventlog import EventLog, FeedbackEvent, SearchRecord
from bandit import (
    ActionSpace,
    Context,
    Decision,
    Feedback,
    Outcome,
    Plan,
    Policy,
    RewardConfig,
    SourceSpec,
    create,
    credit,
    load,
    outcome_for,
)
from bandit import decode as decode_record
from bandit import encode as encode_record
from graph.model import Kind
from retrievers import ranker as ranking
from retrievers.base import Candidate

log = logging.getLogger(__name__)
SNAPSHOT_EVERY: Final = 200
HIT_RATE_DECAY: Final = 0.97  # per outcome of the class: about the last 30 count
EPOCH_CHECK_EVERY: Final = 20  # syncs between looks for an admin reset
# What running a source costs, in reward units per unit of `latency_weight`: a store-backed
# source (full text with TUNEGRAPH_FULLTEXT=neo4j) pays a network round trip and Neo4j's CPU
# (~3 ms), STORE_COST; the in-process ones much less (full text ~0.6 ms,
# bench/fulltext_bench.py; text ~0.6 ms; related ~0.13 ms, bench/related_bench.py).
STORE_COST: Final = 1.0
SOURCE_COST: Final = {"fulltext": 0.2, "related": 0.05, "text": 0.2, "kge": 0.1, "gnn": 0.1}


def action_space(first: Sequence[str], second: Sequence[str], *, budget: int, step: int,
                 latency_weight: float, remote: frozenset[str] = frozenset()) -> ActionSpace:
    def cost(name: str) -> float:
        return STORE_COST if name in remote else SOURCE_COST.get(name, 0.0)

    specs = [SourceSpec(n, "first", cost=cost(n)) for n in first]
    specs += [SourceSpec(n, "second", cost=cost(n)) for n in second]
    return ActionSpace(tuple(specs), budget=budget, step=step, latency_weight=latency_weight)


def to_feedback(event: FeedbackEvent) -> Feedback:
    return Feedback(event.search_id, event.entity_id, event.action, event.position, event.at)


class Learner:
    """One process's policy, kept in step with the shared outcome log."""

    def __init__(self, events: EventLog, space: ActionSpace, spec: str, *,
                 reward: RewardConfig, clock: Callable[[], float], seed: int | None = None,
                 ranker: ranking.LinearRanker | None = None,
                 items: Callable[[Sequence[str]], dict[str, ranking.Item]] | None = None
                 ) -> None:
        self.events = events
        self.space = space
        self.spec = spec
        self.reward = reward
        self.clock = clock
        self.seed = os.getpid() if seed is None else seed
        fingerprint = zlib.crc32(msgspec.json.encode(space)) & 0xFFFFFFFF
        self.name = f"{spec}/{fingerprint:08x}"  # a snapshot is only for the same space
        self.policy: Policy = create(spec, space, self.seed)
        self.seq = 0
        self.epoch = 0
        self.hit_rates: dict[tuple[str, str], float] = {}
        # The learned ranker learns from the same outcomes in the same order, so it too agrees
        # across processes and is rebuilt by replay; `items` gives it the cards' kind,
        # popularity and genres.
        self.ranker = ranker
        self._items = items
        self._lock = threading.Lock()  # the parameters, between choose and update
        self._sync_lock = threading.Lock()
        self._syncs = 0

    def replica(self, seed: int = 0) -> Learner:
        """A learner like this one with fresh parameters at log position 0 (replay checks)."""
        return Learner(self.events, self.space, self.spec, reward=self.reward, clock=self.clock,
                       seed=seed, items=self._items,
                       ranker=ranking.LinearRanker(self.ranker.sources) if self.ranker else None)

    # -- deciding -------------------------------------------------------------------------------

    def choose(self, context: Context) -> Plan:
        with self._lock:
            return self.policy.choose(context)

    def hit_rate(self, source: str, query_class: str) -> float:
        return self.hit_rates.get((source, query_class), 0.0)

    # -- settling -------------------------------------------------------------------------------

    def settle_take(self, record: SearchRecord, feedback: Sequence[FeedbackEvent]) -> int | None:
        """Settle a search at its first take, from the feedback so far."""
        decision = self._decision(record)
        if decision is None:
            return None
        reward = credit(decision.plan, decision.candidates, [to_feedback(e) for e in feedback],
                        self.reward)
        outcome = Outcome(record.search_id, self.clock(), decision.context, decision.plan, reward)
        return self.events.add_outcome(record.search_id, encode_record(outcome), record)

    def settle_expired(self, limit: int = 500) -> int:
        """Settle searches whose window closed without a take (any process's, so that a crashed
        process's searches are settled too). Returns how many."""
        now = self.clock()
        stale = self.events.unsettled(now - self.reward.timeout_s, limit)
        if not stale:
            return 0
        feedback = self.events.feedback_for([r.search_id for r in stale])
        settled = 0
        for record in stale:
            decision = self._decision(record)
            if decision is None:
                continue
            fb = [to_feedback(e) for e in feedback.get(record.search_id, [])]
            outcome = outcome_for(decision, fb, now, self.reward)
            if outcome is not None and \
                    self.events.add_outcome(record.search_id, encode_record(outcome)):
                settled += 1
        return settled

    @staticmethod
    def _decision(record: SearchRecord) -> Decision | None:
        if not record.decision:
            return None
        found = decode_record(record.decision)
        return found if isinstance(found, Decision) else None

    # -- learning -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start from the newest snapshot of this policy (if any), then catch up."""
        snap = self.events.load_policy(self.name)
        if snap is not None:
            seq, state, epoch = snap
            self._load(seq, state, epoch)
        self.sync()

    def _load(self, seq: int, state: bytes, epoch: int) -> None:
        doc = json.loads(state)
        policy = load(doc["policy"])
        policy.rng = create(self.spec, self.space, self.seed).rng  # type: ignore[attr-defined]
        with self._lock:
            self.policy, self.seq, self.epoch = policy, seq, epoch
            self.hit_rates = {(s, c): r for s, c, r in doc.get("hit_rates", [])}
            if self.ranker is not None:
                saved = doc.get("ranker")
                self.ranker = (ranking.LinearRanker.from_state(saved) if saved else
                               ranking.LinearRanker(self.ranker.sources))

    def sync(self) -> int:
        """Apply the outcomes logged since the last sync, in sequence order."""
        with self._sync_lock:  # one applier at a time: an outcome is applied exactly once
            return self._sync()

    def _sync(self) -> int:
        self._syncs += 1
        if self._syncs % EPOCH_CHECK_EVERY == 0:
            snap = self.events.load_policy(self.name)
            if snap is not None and snap[2] > self.epoch:
                self._load(*snap)
        applied = 0
        while True:
            rows = self.events.outcomes_after(self.seq)
            outcomes = [(seq, o) for seq, doc in rows
                        if isinstance(o := decode_record(doc), Outcome)]
            records = self._ranker_records([o for _, o in outcomes])
            for seq, outcome in outcomes:
                self._apply(outcome)
                record = records.get(outcome.search_id)
                if record is not None:
                    self._rank_step(record, outcome)
                self.seq = seq
                applied += 1
                if seq % SNAPSHOT_EVERY == 0:
                    self.events.save_policy(self.name, seq, self.state(), self.epoch)
            if rows:
                self.seq = max(self.seq, rows[-1][0])
            if len(rows) < 2000:
                return applied

    def _ranker_records(self, outcomes: Sequence[Outcome]) -> dict[str, SearchRecord]:
        taken = [o.search_id for o in outcomes if o.reward.taken]
        if self.ranker is None or not taken:
            return {}
        return self.events.searches_by_id(taken)

    def _rank_step(self, record: SearchRecord, outcome: Outcome) -> None:
        """One IPW step of the ranker on this search: the best take, at its page position."""
        assert self.ranker is not None
        assert self._items is not None
        target = next((e for e in outcome.reward.taken if e in record.page), None)
        if target is None:
            return
        lists = {n: [Candidate(e, sc, n) for e, sc in zip(ids, record.scores.get(n, []),
                                                         strict=False)]
                 for n, ids in record.candidates.items()}
        ids = list(dict.fromkeys(e for v in record.candidates.values() for e in v))
        query = ranking.Query(frozenset(Kind(k) for k in record.wanted_kinds),
                              outcome.context.user_genres, query_class(outcome.context))
        got, x = self.ranker.features(lists, self._items(ids), query)
        if target in got:
            with self._lock:
                self.ranker.step(x, got.index(target), record.page.index(target))

    def _apply(self, outcome: Outcome) -> None:
        with self._lock:
            self.policy.update(outcome.context, outcome.plan, outcome.reward)
            cls = query_class(outcome.context)
            for o in outcome.reward.sources:
                key = (o.source, cls)
                old = self.hit_rates.get(key, 0.0)
                self.hit_rates[key] = HIT_RATE_DECAY * old + (1 - HIT_RATE_DECAY) * (
                    o.rank is not None)

    def state(self) -> bytes:
        with self._lock:
            return self._state()

    def _state(self) -> bytes:
        doc = {"policy": self.policy.state(),
               "hit_rates": [[s, c, r] for (s, c), r in sorted(self.hit_rates.items())],
               "ranker": self.ranker.state() if self.ranker else None}
        return json.dumps(doc).encode()

    def reset(self) -> None:
        """Admin: a fresh policy for every process, from the current log position on."""
        with self._sync_lock, self._lock:
            self.policy = create(self.spec, self.space, self.seed)
            self.hit_rates = {}
            if self.ranker is not None:
                self.ranker = ranking.LinearRanker(self.ranker.sources)
            self.epoch += 1
            state = self._state()
        self.events.save_policy(self.name, self.seq, state, self.epoch)


def query_class(context: Context) -> str:
    """A coarse class of the query for per-source hit rates: its best reading's kind."""
    best = max(context.interpretations, key=lambda i: i.confidence, default=None)
    return best.kind if best is not None else ("short" if context.query_chars <= 3 else "text")


def decision_json(search_id: str, at: float, context: Context, plan: Plan,
                  candidates: dict[str, tuple[str, ...]]) -> str:
    return encode_record(Decision(search_id, at, context, plan, candidates)).decode()
