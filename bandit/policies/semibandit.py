"""The per-source (semi-bandit) policy: learn, per source and k, P(its top k holds the take).

For source s and level j (k = j * step, up to the source's cap) a ridge model estimates
c_s(k | x) = P(the entity the user takes is in s's top k | context), from the shared features
plus s's own features. The reward says which source found what (`SourceOutcome.rank`), so one
search teaches every source that ran, not just the plan as a whole:

- level j of source s is observed when s was asked for at least j * step candidates, or when it
  returned fewer than it was asked (its whole list is known); the observation is
  rank < j * step. Levels above what was asked are censored, never guessed, since only hits
  would be visible there and the estimate would drift up.
- a source that failed (`plan.unavailable`) has no outcome and teaches nothing.
- any logging policy's outcomes teach it (it is a per-source supervised model), so it can be
  warmed up from the log of a fixed plan.

Choosing: with the per-source curves (clipped to [0, 1], made monotone in k), the value of an
allocation is P(some source holds the take) = 1 - prod_s (1 - c_s(k_s)) (sources treated as
independent given the context; overlapping sources make this optimistic about spreading), minus
latency_weight * cost for each source that runs. The budget goes out greedily in blocks: at each
step the (source, extra units) with the best gain per unit, where the gain is the rise of the
optimistic curve c_s + alpha * sd of the source being extended, from the units it has, times the
mean curves' misses of the others (so no source saturates the product before it has been tried).
The optimism is counted once per source, not again at every unit: otherwise the source with the
largest feature norm (on the service: the probed ones) wins every step of a fresh policy and
takes the whole budget. Ties go to the source with fewer units, so the very first plans spread
the budget. Expanders get units only once a first-stage source has some.

Exploration with an exact propensity: with probability eps_global the plan is uniform over all
feasible full allocations, with eps_local a uniform move of one unit from one source to another
(a neighbour of the greedy plan), else the greedy plan:
P(a) = (1 - eps_g - eps_l) [a = greedy] + eps_l [a in N(greedy)] / |N| + eps_g [a full] / |F|.

Levels sit at multiples of `step`: a source asked for k = 9 observes no level (unless its list
ran out), so plans that are not whole steps teach it little. Defaults (alpha 0.1, eps_local
0.03, eps_global 0.02) come from the benchmark's traffic: last-1,000 recall over two seeds
(with 16 hash buckets then) was 0.815 at alpha 0.1, 0.811 at 0.05, 0.792 at 0.15, 0.802 at
0.3, 0.777 at 0.6 (within noise of each other up to 0.3).
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np

from bandit.context import HASH_DIM, SOURCE_DIM, Context, Featurizer
from bandit.linear import Array, RidgeBank
from bandit.plan import ActionSpace, Plan, Units, UnitsArray
from bandit.policies.base import PolicyBase, space_from
from bandit.reward import Reward

Curves = list[list[float]]


class SemiBandit(PolicyBase):
    kind = "semibandit"

    def __init__(self, space: ActionSpace, *, alpha: float = 0.1, eps_local: float = 0.03,
                 eps_global: float = 0.02, hash_dim: int = HASH_DIM, l2: float = 1.0,
                 seed: int = 0) -> None:
        if alpha < 0 or eps_local < 0 or eps_global < 0 or eps_local + eps_global > 1:
            raise ValueError("need alpha >= 0, eps >= 0 and eps_local + eps_global <= 1")
        super().__init__(space, seed)
        self.alpha = alpha
        self.eps_local = eps_local
        self.eps_global = eps_global
        self.featurizer = Featurizer(hash_dim)
        self.caps = space.unit_caps()
        self.offsets = [int(v) for v in np.concatenate([[0], np.cumsum(self.caps)[:-1]])]
        self.first = [space.is_first(i) for i in range(len(space.sources))]
        self.costs = [s.cost * space.latency_weight for s in space.sources]
        self.index = {n: i for i, n in enumerate(space.names)}
        self.has_cost = any(c > 0 for c in self.costs)
        self.model_source = np.repeat(np.arange(len(self.caps)), self.caps)
        self.names = space.names
        # grid[s, u]: where source s's curve value at u units sits in `_values` (mean row, then
        # optimistic row, one column per model and a last one held at 0): column 0 is c(0) = 0,
        # past the cap the curve stays at its last level (the greedy never reads there)
        n_models = int(sum(self.caps))
        self.grid = np.array([[n_models if u == 0 or c == 0 else self.offsets[s] + min(u, c) - 1
                               for u in range(space.units + 1)]
                              for s, c in enumerate(self.caps)], dtype=np.int64)
        self._values = np.zeros((2, n_models + 1))
        self._full: dict[frozenset[str], tuple[UnitsArray, int]] = {}
        dim = self.featurizer.shared_dim + SOURCE_DIM
        self.bank = RidgeBank(int(sum(self.caps)), dim, l2)
        # choose and update of one search share the features (a Context is immutable)
        self._memo: tuple[Context | None, Array] = (None, np.zeros(0))

    def features(self, context: Context) -> Array:
        """One row per source: the shared features then that source's own."""
        if context is self._memo[0]:
            return self._memo[1]
        shared = self.featurizer.shared(context)
        out = np.empty((len(self.caps), self.bank.dim))
        out[:, : len(shared)] = shared
        out[:, len(shared):] = self.featurizer.sources(context, self.names)
        self._memo = (context, out)
        return out

    def curves(self, context: Context) -> tuple[Curves, Curves]:
        """Per source: the mean curve and the optimistic curve, c(0) = 0, one entry per unit."""
        mean, var = self.bank.mean_var(self.features(context)[self.model_source])
        values = self._values
        values[0, :-1] = mean
        values[1, :-1] = mean + self.alpha * np.sqrt(var)
        np.clip(values, 0.0, 1.0, out=values)
        curves = np.maximum.accumulate(values[:, self.grid], axis=2)
        np.maximum(curves[1], curves[0], out=curves[1])
        means, opts = curves.tolist()
        return means, opts

    def greedy(self, means: Curves, opts: Curves, blocked: list[bool]) -> Units:
        n, caps, first, costs = len(self.caps), self.caps, self.first, self.costs
        units = [0] * n
        left = self.space.units
        seeded = False
        while left > 0:
            miss = [1.0 - means[s][units[s]] for s in range(n)]
            # others[s]: the product of the other sources' misses (prefix times suffix)
            others = [1.0] * n
            acc = 1.0
            for s in range(n):
                others[s] = acc
                acc *= miss[s]
            acc = 1.0
            for s in range(n - 1, -1, -1):
                others[s] *= acc
                acc *= miss[s]
            best_gain, best_s, best_m, best_u = -math.inf, -1, 0, 0
            for s in range(n):
                u = units[s]
                room = caps[s] - u
                if room > left:
                    room = left
                if room <= 0 or blocked[s] or not (seeded or first[s]):
                    continue
                here = opts[s][u]
                curve = opts[s]
                rest = others[s]
                cost = costs[s] if u == 0 else 0.0
                for m in range(1, room + 1):
                    gain = ((curve[u + m] - here) * rest - cost) / m
                    if gain > best_gain + 1e-12 or (gain > best_gain - 1e-12 and u < best_u):
                        best_gain, best_s, best_m, best_u = gain, s, m, u
            if best_s < 0 or (best_gain <= 0 and self.has_cost):
                break
            units[best_s] += best_m
            left -= best_m
            seeded = seeded or first[best_s]
        return tuple(units)

    def neighbours(self, units: Units, blocked: list[bool]) -> list[Units]:
        """Allocations one unit away from `units`: one unit moved from one source to another
        (never leaving an expander without a first-stage source)."""
        out: list[Units] = []
        for s, t in self._moves(units, blocked):
            moved = list(units)
            moved[s] -= 1
            moved[t] += 1
            out.append(tuple(moved))
        return out

    def _moves(self, units: Units, blocked: list[bool]) -> list[tuple[int, int]]:
        n, caps, first = len(units), self.caps, self.first
        seeds = sum(1 for s in range(n) if units[s] and first[s])
        moves = []
        for s in range(n):
            if not units[s]:
                continue
            last_seed = first[s] and units[s] == 1 and seeds == 1
            for t in range(n):
                if t == s or blocked[t] or units[t] >= caps[t] or (last_seed and not first[t]):
                    continue
                moves.append((s, t))
        return moves

    def _count_moves(self, units: Units, blocked: list[bool]) -> int:
        """len(self._moves(units, blocked)), without listing them."""
        n, caps, first = len(units), self.caps, self.first
        open_ = [not blocked[t] and units[t] < caps[t] for t in range(n)]
        n_open = sum(open_)
        open_later = sum(1 for t in range(n) if open_[t] and not first[t])
        seeds = sum(1 for s in range(n) if units[s] and first[s])
        count = 0
        for s in range(n):
            if units[s]:
                count += n_open - open_[s]
                if first[s] and units[s] == 1 and seeds == 1:
                    count -= open_later  # moving the last seed to an expander strands it
        return count

    def _feasible(self, a: Units, blocked: list[bool]) -> bool:
        if sum(a) > self.space.units:
            return False
        if any(u > c or (u and b) for u, c, b in zip(a, self.caps, blocked, strict=True)):
            return False
        return not any(a) or any(u and f for u, f in zip(a, self.first, strict=True))

    def full(self, down: frozenset[str]) -> tuple[UnitsArray, int]:
        """The feasible full allocations for this outage set, and how many units they use."""
        hit = self._full.get(down)
        if hit is None:
            table = self.space.full_allocations(down)
            hit = self._full[down] = (table, int(table[0].sum()))
        return hit

    def _mixture(self, context: Context) -> tuple[Units, list[bool], frozenset[str]]:
        down = context.unavailable()
        blocked = [name in down for name in self.names]
        means, opts = self.curves(context)
        return self.greedy(means, opts, blocked), blocked, down

    def _probability(self, a: Units, best: Units, blocked: list[bool],
                     down: frozenset[str]) -> float:
        n_near = self._count_moves(best, blocked)
        eps_l = self.eps_local if n_near else 0.0
        p = (1.0 - self.eps_global - eps_l) if a == best else 0.0
        feasible = self._feasible(a, blocked)
        if n_near and feasible and a != best:
            diff = sorted(x - y for x, y in zip(a, best, strict=True) if x != y)
            if diff == [-1, 1]:
                p += eps_l / n_near
        table, used = self.full(down)
        if feasible and sum(a) == used:
            p += self.eps_global / len(table)
        return p

    def _choose(self, context: Context, rng: np.random.Generator) -> Plan:
        best, blocked, down = self._mixture(context)
        table, _ = self.full(down)
        if not any(best) and not table.any():
            return self.fallback(context)
        r = rng.random()
        a = best
        if r < self.eps_global:
            a = tuple(int(u) for u in table[int(rng.integers(len(table)))])
        elif r < self.eps_global + self.eps_local:
            near = self.neighbours(best, blocked)
            if near:
                a = near[int(rng.integers(len(near)))]
        p = self._probability(a, best, blocked, down)
        step = self.space.step
        ks = tuple((n, u * step) for n, u in zip(self.names, a, strict=True) if u)
        return Plan(ks, self.space.budget, "union", p, self.kind)

    def probability(self, context: Context, plan: Plan) -> float:
        best, blocked, down = self._mixture(context)
        if not any(best) and not self.full(down)[0].any():
            return 1.0 if plan.key == self.fallback(context).key else 0.0
        a = self.space.units_of(plan)
        return 0.0 if a is None else self._probability(a, best, blocked, down)

    def update(self, context: Context, plan: Plan, reward: Reward) -> None:
        models: list[int] = []
        rows: list[int] = []
        ys: list[float] = []
        step = self.space.step
        for o in reward.sources:
            s = self.index.get(o.source)
            if s is None:
                continue
            top = self.caps[s] if o.returned < o.k else min(o.k // step, self.caps[s])
            for j in range(1, top + 1):
                models.append(self.offsets[s] + j - 1)
                rows.append(s)
                ys.append(1.0 if o.rank is not None and o.rank < j * step else 0.0)
        if models:
            x = self.features(context)[rows]
            self.bank.update(np.array(models, dtype=np.int64), x, np.array(ys))

    def config(self) -> dict[str, Any]:
        return super().config() | {
            "alpha": self.alpha, "eps_local": self.eps_local, "eps_global": self.eps_global,
            "hash_dim": self.featurizer.hash_dim, "l2": self.bank.l2,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(space_from(config), alpha=config["alpha"], eps_local=config["eps_local"],
                   eps_global=config["eps_global"], hash_dim=config["hash_dim"],
                   l2=config["l2"], seed=config["seed"])

    def params(self) -> dict[str, Any]:
        return {"bank": self.bank.state()}

    def load_params(self, params: dict[str, Any]) -> None:
        self.bank = RidgeBank.from_state(params["bank"])
