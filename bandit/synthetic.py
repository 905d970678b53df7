"""A rigged, seeded search environment for the bandit's tests and benchmark (no catalog, no API).

Each search belongs to a query class (known item, typo, artist + song, topic, "more like X").
Per class and source, the entity the user wants is somewhere in that source's list with
probability `found`, at rank `offset` + an exponential with mean `depth` (floored), in a list
of `length` results. Whether sources find it is correlated through a Gaussian copula (`rho`),
as real sources overlap. The context carries what an API would know: class-typical tokens,
exact-name and interpretation flags, and per-source features that are noisy hints (historical
hit rate, result count, top score, score gap; with `hints=False` the scores say nothing about
this search's ranks, so a plan's value given the context is its class's). A source fails with
probability `outage` when run. Other candidates are distractor ids drawn by popularity from one
pool, so lists overlap.

`run` executes a plan, `candidate_set` merges the lists (union, or RRF then the top `budget`)
in RRF order, and the simulated user plays the wanted entity when it is in that set.
`simulate` drives any policy through the real reward and log code. The real simulator (over
the API) comes later; this one only has to be honest enough to compare policies and to rig
learning tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bandit.context import Context, Interpretation, SourceFeatures
from bandit.log import Decision, Outcome
from bandit.plan import ActionSpace, Plan, SourceSpec
from bandit.policies.base import Policy
from bandit.reward import Feedback, credit

TARGET = "target"
RRF_K = 60


@dataclass(frozen=True)
class Truth:
    """P(the source's list holds the target); its rank: offset + floor(Exponential(depth))."""

    found: float
    depth: float = 3.0
    length: int = 200
    offset: int = 0


@dataclass(frozen=True)
class QueryClass:
    name: str
    weight: float
    tokens: tuple[str, ...]
    truth: Mapping[str, Truth]
    exact_name: float = 0.0
    interpretation: str = ""
    script: str = "latin"
    memory: float = 0.0


@dataclass(frozen=True)
class Search:
    search_id: str
    ts: float
    cls: str
    context: Context
    ranks: dict[str, int | None]
    lengths: dict[str, int]
    pool: tuple[str, ...]


@dataclass
class Trace:
    hits: list[bool] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


def default_space(budget: int = 60, step: int = 10) -> ActionSpace:
    """The sources the API will have: five first-stage ones, two expanders."""
    first = [SourceSpec("fuzzy"), SourceSpec("fulltext"), SourceSpec("understand", k_max=30),
             SourceSpec("text"), SourceSpec("memory", k_max=20)]
    second = [SourceSpec("related", "second"), SourceSpec("kge", "second")]
    return ActionSpace((*first, *second), budget, step)


COMMON = ("the", "music", "new", "best", "mix")


def default_classes() -> tuple[QueryClass, ...]:
    t = Truth
    return (
        QueryClass("known_item", 0.3, ("shape", "you", "hello", "bohemian", "rhapsody", "yellow",
                                       "imagine", "thriller"),
                   {"fuzzy": t(0.75, 2), "fulltext": t(0.7, 4), "text": t(0.3, 20),
                    "memory": t(0.45, 1, 8), "understand": t(0.1, 2, 10),
                    "related": t(0.1, 20), "kge": t(0.05, 30)},
                   exact_name=0.8, memory=0.5),
        QueryClass("typo", 0.2, ("tayler", "beyonse", "rhapsdy", "imagin", "thrillr", "yelow"),
                   {"fuzzy": t(0.7, 6), "fulltext": t(0.3, 10), "text": t(0.35, 25),
                    "memory": t(0.15, 1, 5), "related": t(0.05, 20)}),
        QueryClass("artist_song", 0.15, ("taylor", "swift", "love", "adele", "songs", "by"),
                   {"understand": t(0.8, 1.5, 30), "fulltext": t(0.45, 15), "fuzzy": t(0.25, 15),
                    "related": t(0.35, 8), "text": t(0.2, 30), "kge": t(0.2, 20)},
                   interpretation="artist+song"),
        QueryClass("topic", 0.25, ("sad", "trap", "chill", "podcast", "about", "crime",
                                   "workout", "focus"),
                   {"text": t(0.75, 18), "fulltext": t(0.3, 20), "understand": t(0.3, 4, 20),
                    "kge": t(0.35, 15), "related": t(0.15, 20), "memory": t(0.1, 2, 5)},
                   interpretation="genre"),
        QueryClass("more_like", 0.1, ("like", "similar", "radiohead", "artists", "sounds"),
                   {"related": t(0.6, 6), "kge": t(0.55, 12), "fuzzy": t(0.3, 3),
                    "fulltext": t(0.2, 10), "text": t(0.25, 20)},
                   interpretation="similar"),
    )


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


class RiggedEnv:
    """Draws searches and plays them out (see the module docstring)."""

    def __init__(self, space: ActionSpace, classes: Sequence[QueryClass], *, seed: int = 0,
                 rho: float = 0.3, outage: float = 0.0, distractors: int = 300,
                 hints: bool = True) -> None:
        self.space = space
        self.hints = hints
        self.classes = tuple(classes)
        self.rho = rho
        self.outage = outage
        self.rng = np.random.default_rng(seed)
        w = np.array([c.weight for c in self.classes])
        self.class_p = w / w.sum()
        pop = 1.0 / np.arange(1, distractors + 1)
        self.pool_p = pop / pop.sum()
        self.pool = tuple(f"d{i}" for i in range(distractors))
        self.n = 0

    def draw(self) -> Search:
        rng = self.rng
        cls = self.classes[int(rng.choice(len(self.classes), p=self.class_p))]
        g = rng.standard_normal()
        ranks: dict[str, int | None] = {}
        lengths: dict[str, int] = {}
        feats = []
        for name in self.space.names:
            truth = cls.truth.get(name, Truth(0.0, 1.0, 50))
            u = _phi(math.sqrt(self.rho) * g + math.sqrt(1 - self.rho) * rng.standard_normal())
            length = max(1, int(truth.length * rng.uniform(0.5, 1.0)))
            deep = truth.offset + int(rng.exponential(truth.depth))
            rank = min(deep, length - 1) if u < truth.found else None
            ranks[name], lengths[name] = rank, length
            shallow = self.hints and rank is not None and rank < 5
            top = self.hints and rank == 0
            feats.append(SourceFeatures(
                name, hit_rate=float(np.clip(truth.found + rng.normal(0, 0.05), 0, 1)),
                n_results=float(length), top_score=float(0.3 + 0.4 * shallow + rng.normal(0, 0.1)),
                score_gap=float(0.2 * top + abs(rng.normal(0, 0.05))),
                available=True))
        words = [*cls.tokens, *COMMON]
        tokens = tuple(str(w) for w in rng.choice(words, size=int(rng.integers(1, 4))))
        interp = ((Interpretation(cls.interpretation, float(rng.uniform(0.5, 1.0))),)
                  if cls.interpretation else ())
        ctx = Context(
            query_chars=sum(len(t) for t in tokens) + len(tokens) - 1, tokens=tokens,
            script=cls.script, exact_name=bool(rng.random() < cls.exact_name),
            interpretations=interp,
            memory_hits=int(rng.integers(1, 50)) if rng.random() < cls.memory else 0,
            user_history=int(rng.integers(0, 200)), hour=int(rng.integers(0, 24)),
            weekday=int(rng.integers(0, 7)), sources=tuple(feats))
        self.n += 1
        return Search(f"s{self.n}", float(self.n), cls.name, ctx, ranks, lengths, self.pool)

    def _list(self, search: Search, name: str, k: int) -> tuple[str, ...]:
        n = min(k, search.lengths[name])
        rank = search.ranks[name]
        others = self.rng.choice(len(self.pool), size=n, replace=False, p=self.pool_p)
        out = [self.pool[i] for i in others]
        if rank is not None and rank < n:
            out[rank] = TARGET
        return tuple(out)

    def run(self, search: Search, plan: Plan) -> tuple[Plan, dict[str, tuple[str, ...]]]:
        """The plan as run and each source's candidates. Failed sources are recorded as
        unavailable, and so are expanders left without seeds because every first-stage source
        of the plan failed (what the API should do too: they could not run)."""
        failed = [n for n in plan.sources if self.outage and self.rng.random() < self.outage]
        index = {n: i for i, n in enumerate(self.space.names)}
        if not any(self.space.is_first(index[n]) for n in plan.sources if n not in failed):
            failed = list(plan.sources)
        out = {name: self._list(search, name, k) for name, k in plan.ks if name not in failed}
        return plan.with_unavailable(failed), out

    def candidate_set(self, plan: Plan, lists: Mapping[str, Sequence[str]]) -> list[str]:
        fused = rrf_order(lists)
        if plan.merge == "rrf":
            return fused[: plan.budget]
        return fused

    def feedback(self, search: Search, page: Sequence[str]) -> list[Feedback]:
        if TARGET not in page:
            return []
        return [Feedback(search.search_id, TARGET, "play", page.index(TARGET), search.ts + 5)]

    def true_recall(self, plan: Plan, cls: QueryClass) -> float:
        """Exact P(the candidate set holds the target) for a union plan, with rho = 0, no
        outages and no hints (each source independent; the plans tested run no expander)."""
        if self.rho != 0 or self.outage or self.hints or plan.merge != "union":
            raise ValueError("true_recall is exact only for union plans, rho=0, no outages, "
                             "no hints")
        miss = 1.0
        for name, k in plan.ks:
            t = cls.truth.get(name)
            if t is None:
                continue
            # the length is uniform on [length/2, length]; we only test k below length/2
            if k > t.offset:
                miss *= 1.0 - t.found * (1.0 - math.exp(-(k - t.offset) / t.depth))
        return 1.0 - miss


def rrf_order(lists: Mapping[str, Sequence[str]]) -> list[str]:
    score: dict[str, float] = {}
    for items in lists.values():
        for rank, e in enumerate(items):
            score[e] = score.get(e, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(score, key=lambda e: (-score[e], e))


def simulate(env: RiggedEnv, policy: Policy, n: int, *, learn: bool = True,
             keep: bool = False) -> Trace:
    """`n` searches: choose, run, feedback, reward, update; hits are candidate recall."""
    trace = Trace()
    for _ in range(n):
        search = env.draw()
        plan = policy.choose(search.context)
        ran, lists = env.run(search, plan)
        cands = env.candidate_set(ran, lists)
        feedback = env.feedback(search, cands)
        reward = credit(ran, lists, feedback)
        if learn:
            policy.update(search.context, ran, reward)
        trace.hits.append(TARGET in cands)
        trace.values.append(reward.value)
        if keep:
            trace.decisions.append(Decision(search.search_id, search.ts, search.context, ran,
                                            dict(lists)))
            trace.outcomes.append(Outcome(search.search_id, search.ts + 10, search.context,
                                          ran, reward))
    return trace
