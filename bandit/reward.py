"""Reward from page feedback, with credit to each source whose candidates held the taken entity.

A take is feedback with a positive action weight (by default play, add to playlist and like 1.0,
click 0.5). Its value is `weight * discount(position)`, position counted from 0 on the final
page, with the DCG discount 1/log2(2 + position) (or none). For one search:

- `value`: the best take's value plus any penalties (negative weights; `skip` is 0 by default,
  set it below 0 to penalise), clipped to [-1, 1]. Several feedbacks on one entity (click, then
  play, then like) count once, at the best of them.
- per available source that ran: `rank` (from 0) of the best-ranked taken entity in that
  source's own list, or None; `returned` (how many candidates it gave back); `credit`, the best
  value among the takes it contained. `hit` says whether any source held a taken entity.
- a source that was unavailable (error, timeout: `plan.unavailable`) gets no outcome at all:
  it is listed in `unavailable`, never scored as a miss.
- a search with no feedback at all, once its window (`timeout_s`) closes, settles with value 0,
  every source a miss, and `expired=True`.

`credit` scores whatever feedback it is given (for learning at once); `settle` waits for the
window to close and ignores feedback after it, so that the same log always gives the same reward.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec

from bandit.plan import Plan

Action = Literal["click", "play", "like", "add", "skip"]
DEFAULT_WEIGHTS: dict[str, float] = {
    "click": 0.5, "play": 1.0, "like": 1.0, "add": 1.0, "skip": 0.0,
}


class Feedback(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="feedback"):
    """One user action on a result page; `position` counts from 0 on the final page."""

    search_id: str
    entity_id: str
    action: Action
    position: int
    ts: float


class RewardConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Action weights, position discount and how long a search waits for feedback."""

    weights: dict[str, float] = msgspec.field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    discount: Literal["log", "none"] = "log"
    timeout_s: float = 1800.0

    def value(self, feedback: Feedback) -> float:
        w = self.weights.get(feedback.action, 0.0)
        if self.discount == "none":
            return w
        return w / math.log2(2.0 + max(feedback.position, 0))


class SourceOutcome(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one available source did for one search."""

    source: str
    k: int
    returned: int
    rank: int | None
    credit: float

    @property
    def exhausted(self) -> bool:
        """It gave back fewer than asked: a larger k would not have found more."""
        return self.returned < self.k


class Reward(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The reward of one search, page-level and per source (see the module docstring)."""

    value: float
    hit: bool
    taken: tuple[str, ...]
    sources: tuple[SourceOutcome, ...]
    unavailable: tuple[str, ...] = ()
    expired: bool = False

    def outcome(self, source: str) -> SourceOutcome | None:
        for o in self.sources:
            if o.source == source:
                return o
        return None


def credit(plan: Plan, candidates: Mapping[str, Sequence[str]], feedbacks: Sequence[Feedback],
           config: RewardConfig | None = None) -> Reward:
    """Score `feedbacks` on a search run with `plan`, whose sources returned `candidates`
    (entity ids per source, best first)."""
    cfg = config or RewardConfig()
    best: dict[str, float] = {}
    penalty = 0.0
    for fb in feedbacks:
        v = cfg.value(fb)
        if v > 0:
            best[fb.entity_id] = max(best.get(fb.entity_id, 0.0), v)
        elif v < 0:
            penalty += v
    failed = set(plan.unavailable)
    outcomes = []
    for source, k in plan.ks:
        if source in failed:
            continue
        got = list(candidates.get(source, ()))[:k]
        ranks = [i for i, e in enumerate(got) if e in best]
        rank = ranks[0] if ranks else None
        cred = max((best[got[i]] for i in ranks), default=0.0)
        outcomes.append(SourceOutcome(source, k, len(got), rank, cred))
    value = max(-1.0, min(1.0, max(best.values(), default=0.0) + penalty))
    taken = tuple(sorted(best, key=lambda e: (-best[e], e)))
    hit = any(o.rank is not None for o in outcomes)
    return Reward(value, hit, taken, tuple(outcomes), tuple(plan.unavailable), not feedbacks)


def settle(plan: Plan, candidates: Mapping[str, Sequence[str]], decided_at: float,
           feedbacks: Sequence[Feedback], now: float,
           config: RewardConfig | None = None) -> Reward | None:
    """The final reward once the window (decided_at + timeout_s) has closed, else None.
    Feedback after the window is ignored; with none inside it, the search expires as 0."""
    cfg = config or RewardConfig()
    closes = decided_at + cfg.timeout_s
    if now < closes:
        return None
    return credit(plan, candidates, [f for f in feedbacks if f.ts <= closes], cfg)
