"""The action: which sources run with how many candidates each, the budget rules and the menu.

Sources are configuration (`SourceSpec`, in an `ActionSpace`), never constants: the API builds
the space from the retrievers it composed. A first-stage source works from the query text; a
second-stage source (an expander) works from seeds found by the first stage, so a plan that runs
an expander must also run some first-stage source.

A `Plan` says, per source, how many candidates to take (`k`), and how they are merged:

- `merge="union"`: the candidate set is the union of each source's top-k; sum(k) <= budget.
- `merge="rrf"`: each source returns up to k (<= budget), the lists are fused by reciprocal-rank
  fusion and the top `budget` of the fused list is kept.

Either way at most `budget` candidates go on, which is what "equal budget" compares. The
semi-bandit allocates in units of `step` candidates (`units`: one count per source, in the
space's order). A plan carries the probability that its policy chose it (`propensity`), the
policy's name, and, once the API has run it, which of its sources failed (`unavailable`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import combinations
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

Stage = Literal["first", "second"]
Merge = Literal["union", "rrf"]
Units = tuple[int, ...]
UnitsArray = npt.NDArray[np.int64]


class SourceSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One source ("arm"). `k_max`: never ask it for more (0 means no limit beyond the budget);
    `cost`: latency cost of running it at all, in reward units (used with the space's
    `latency_weight`)."""

    name: str
    stage: Stage = "first"
    k_max: int = 0
    cost: float = 0.0


class Plan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Sources that run, each with its k (> 0, in the space's order), and how they merge."""

    ks: tuple[tuple[str, int], ...]
    budget: int
    merge: Merge = "union"
    propensity: float = 1.0
    policy: str = ""
    name: str = ""
    unavailable: tuple[str, ...] = ()

    def k(self, source: str) -> int:
        for name, k in self.ks:
            if name == source:
                return k
        return 0

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.ks)

    @property
    def total(self) -> int:
        return sum(k for _, k in self.ks)

    @property
    def key(self) -> tuple[tuple[tuple[str, int], ...], int, str]:
        """The action's identity: two plans with equal keys are the same action."""
        return (self.ks, self.budget, self.merge)

    def with_unavailable(self, names: Iterable[str]) -> Plan:
        """The plan as run: `names` (sources of the plan that errored or timed out) recorded."""
        mine = set(self.sources)
        failed = tuple(n for n in self.sources if n in set(names) & mine)
        return msgspec.structs.replace(self, unavailable=failed)

    def chosen(self, propensity: float, policy: str) -> Plan:
        return msgspec.structs.replace(self, propensity=propensity, policy=policy)


class ActionSpace(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The sources, the total candidate budget and the allocation step."""

    sources: tuple[SourceSpec, ...]
    budget: int = 60
    step: int = 10
    latency_weight: float = 0.0

    def __post_init__(self) -> None:
        names = [s.name for s in self.sources]
        if not names or len(set(names)) != len(names):
            raise ValueError("an action space needs at least one source and unique names")
        if not any(s.stage == "first" for s in self.sources):
            raise ValueError("an action space needs a first-stage source")
        if self.step < 1 or self.budget < self.step:
            raise ValueError("need 1 <= step <= budget")
        if any(s.k_max < 0 or s.cost < 0 for s in self.sources):
            raise ValueError("k_max and cost must be >= 0")

    @classmethod
    def of(cls, first: Sequence[str], second: Sequence[str] = (), *, budget: int = 60,
           step: int = 10) -> ActionSpace:
        specs = [SourceSpec(n) for n in first] + [SourceSpec(n, "second") for n in second]
        return cls(tuple(specs), budget, step)

    @property
    def names(self) -> tuple[str, ...]:
        return _names(self)

    @property
    def units(self) -> int:
        return self.budget // self.step

    def k_cap(self, i: int) -> int:
        spec = self.sources[i]
        return self.budget if spec.k_max == 0 else min(spec.k_max, self.budget)

    def unit_caps(self) -> Units:
        return tuple(self.k_cap(i) // self.step for i in range(len(self.sources)))

    def is_first(self, i: int) -> bool:
        return self.sources[i].stage == "first"

    def plan(self, ks: Mapping[str, int], *, merge: Merge = "union", name: str = "",
             policy: str = "", propensity: float = 1.0) -> Plan:
        pairs = tuple((n, int(ks[n])) for n in self.names if ks.get(n, 0) > 0)
        return Plan(pairs, self.budget, merge, propensity, policy, name)

    def plan_from_units(self, units: Sequence[int], *, propensity: float = 1.0,
                        policy: str = "") -> Plan:
        pairs = tuple((n, u * self.step) for n, u in zip(self.names, units, strict=True) if u)
        return Plan(pairs, self.budget, "union", propensity, policy)

    def units_of(self, plan: Plan) -> Units | None:
        """The plan as units per source, or None when it is not a union of whole steps."""
        if plan.merge != "union" or plan.budget != self.budget:
            return None
        out = [0] * len(self.sources)
        index = _index(self)
        for name, k in plan.ks:
            if name not in index or k % self.step:
                return None
            out[index[name]] = k // self.step
        return tuple(out)

    def latency(self, plan: Plan) -> float:
        """The plan's latency cost in reward units: latency_weight * the cost of each source."""
        if not self.latency_weight:
            return 0.0
        index = _index(self)
        return self.latency_weight * sum(self.sources[index[n]].cost for n in plan.sources)

    def check(self, plan: Plan) -> list[str]:
        """Why `plan` breaks the budget rules (empty when it is valid)."""
        problems: list[str] = []
        index = _index(self)
        if plan.budget != self.budget:
            problems.append(f"budget {plan.budget} is not the space's {self.budget}")
        seen = [n for n, _ in plan.ks]
        if seen != [n for n in self.names if n in seen]:
            problems.append("sources unknown, repeated or out of order")
        for name, k in plan.ks:
            if name in index and not 0 < k <= self.k_cap(index[name]):
                problems.append(f"{name}: k={k} outside 1..{self.k_cap(index[name])}")
        if plan.merge == "union" and plan.total > self.budget:
            problems.append(f"union of {plan.total} candidates exceeds the budget")
        stages = {self.sources[index[n]].stage for n in seen if n in index}
        if "second" in stages and "first" not in stages:
            problems.append("an expander runs without any first-stage source")
        if not 0.0 < plan.propensity <= 1.0:
            problems.append(f"propensity {plan.propensity} outside (0, 1]")
        if not set(plan.unavailable) <= set(seen):
            problems.append("unavailable names a source the plan does not run")
        return problems

    def split(self, names: Sequence[str], total: int | None = None,
              start: Mapping[str, int] | None = None) -> dict[str, int]:
        """`total` (default: the budget) split as equally as the caps allow, on top of `start`,
        earlier names taking the remainder."""
        left = self.budget if total is None else total
        index = _index(self)
        caps = {n: self.k_cap(index[n]) for n in names}
        ks = {n: 0 if start is None else start.get(n, 0) for n in names}
        while left > 0:
            open_ = [n for n in names if ks[n] < caps[n]]
            if not open_:
                break
            share = max(left // len(open_), 1)
            for n in open_:
                give = min(share, caps[n] - ks[n], left)
                ks[n] += give
                left -= give
        return {n: k for n, k in ks.items() if k > 0}

    def feasible(self, units: Sequence[int], unavailable: frozenset[str]) -> bool:
        """Units within caps and budget, no unavailable source, expanders only with a seed."""
        caps = self.unit_caps()
        if sum(units) > self.units or any(u > c for u, c in zip(units, caps, strict=True)):
            return False
        if any(u and n in unavailable for u, n in zip(units, self.names, strict=True)):
            return False
        runs_first = any(u and self.is_first(i) for i, u in enumerate(units))
        return runs_first or not any(units)

    def full_allocations(self, unavailable: frozenset[str]) -> UnitsArray:
        """Every feasible allocation that uses as many units as can be used (all of them,
        unless caps or outages make that impossible), one row each; cached per outage set."""
        return _full_allocations(self, unavailable)


@lru_cache(maxsize=256)
def _names(space: ActionSpace) -> tuple[str, ...]:
    return tuple(s.name for s in space.sources)


@lru_cache(maxsize=256)
def _index(space: ActionSpace) -> dict[str, int]:
    return {s.name: i for i, s in enumerate(space.sources)}


@lru_cache(maxsize=256)
def _full_allocations(space: ActionSpace, unavailable: frozenset[str]) -> UnitsArray:
    caps = [0 if n in unavailable else c for n, c in zip(space.names, space.unit_caps(),
                                                          strict=True)]
    first = [space.is_first(i) for i in range(len(caps))]
    if not any(c for c, f in zip(caps, first, strict=True) if f):
        return np.zeros((1, len(caps)), dtype=np.int64)
    rows: list[list[int]] = []

    def fill(i: int, left: int, row: list[int]) -> None:
        if i == len(caps):
            rows.append(list(row))
            return
        for u in range(min(caps[i], left) + 1):
            row.append(u)
            fill(i + 1, left - u, row)
            row.pop()

    fill(0, space.units, [])
    table = np.array(rows, dtype=np.int64)
    seeded = table[:, np.array(first)].sum(axis=1) > 0
    table = table[seeded]
    sums = table.sum(axis=1)
    full: UnitsArray = table[sums == sums.max()]
    full.setflags(write=False)
    return full


def default_menu(space: ActionSpace) -> tuple[Plan, ...]:
    """Named plans: each first-stage source alone, each pair of them, each first-stage source
    with each expander (two thirds / one third), equal splits over the first stage and over
    all sources, and reciprocal-rank fusion of all sources at the full budget."""
    first = [s.name for s in space.sources if s.stage == "first"]
    second = [s.name for s in space.sources if s.stage == "second"]
    menu = [space.plan(space.split([n]), name=f"single:{n}") for n in first]
    menu += [space.plan(space.split([a, b]), name=f"pair:{a}+{b}")
             for a, b in combinations(first, 2)]
    seed_k = space.budget - space.budget // 3
    for a in first:
        for e in second:
            ks = space.split([a], seed_k)
            ks.update(space.split([e], space.budget - sum(ks.values())))
            menu.append(space.plan(ks, name=f"expand:{a}+{e}"))
    if len(first) > 1:
        menu.append(space.plan(space.split(first), name="equal:first"))
    if second:
        menu.append(space.plan(space.split(list(space.names)), name="equal:all"))
    rrf = {n: space.k_cap(i) for i, n in enumerate(space.names)}
    menu.append(space.plan(rrf, merge="rrf", name="rrf:all"))
    return tuple(menu)


def restrict(space: ActionSpace, plan: Plan, unavailable: frozenset[str]) -> Plan:
    """`plan` without the sources the context marks down: their share goes equally to the
    plan's remaining sources; with no first-stage source left, an equal split over the
    available first-stage sources (an empty plan when there is none)."""
    if not unavailable & set(plan.sources):
        return plan
    kept = [n for n in plan.sources if n not in unavailable]
    index = _index(space)
    if not any(space.is_first(index[n]) for n in kept):
        kept = [s.name for s in space.sources if s.stage == "first" and s.name not in unavailable]
    if plan.merge == "rrf":
        ks = {n: space.k_cap(index[n]) for n in kept}
    else:
        start = {n: plan.k(n) for n in kept}
        ks = space.split(kept, plan.budget - sum(start.values()), start) if kept else {}
    return space.plan(ks, merge=plan.merge, name=plan.name, policy=plan.policy)
