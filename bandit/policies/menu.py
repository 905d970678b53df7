"""What the menu policies share: one ridge model per named plan over the whole context vector.

The context vector is the shared features followed by every source's features in the space's
order (`Featurizer.shared`, `Featurizer.sources`), so each plan's model can weigh what it knows
about the sources it runs. An arm is feasible when the context marks none of its sources down;
with no feasible arm the policy falls back to an equal split over what is up.

The learning target is `reward.hit` by default (did some source hold the taken entity: the
candidate-recall objective) or `reward.value` (page-level, position-discounted), minus the
plan's latency cost when the space sets one. An outcome
whose plan is not on the menu, or whose plan had a source fail, teaches nothing: the arm was not
run as chosen, and an outage must not read as a miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import msgspec
import numpy as np

from bandit.context import HASH_DIM, SOURCE_DIM, Context, Featurizer
from bandit.linear import Array, RidgeBank
from bandit.plan import ActionSpace, Plan, default_menu
from bandit.policies.base import PolicyBase, plain
from bandit.reward import Reward

Target = Literal["hit", "value"]


class MenuPolicy(PolicyBase):
    """Base for epsilon-greedy, LinUCB and linear Thompson sampling over a menu of plans."""

    def __init__(self, space: ActionSpace, *, menu: Sequence[Plan] | None = None,
                 hash_dim: int = HASH_DIM, l2: float = 1.0, target: Target = "hit",
                 seed: int = 0) -> None:
        super().__init__(space, seed)
        self.menu = tuple(menu) if menu else default_menu(space)
        for plan in self.menu:
            problems = space.check(plan)
            if problems:
                raise ValueError(f"menu plan {plan.name}: {'; '.join(problems)}")
        self.arms = {p.key: i for i, p in enumerate(self.menu)}
        self.featurizer = Featurizer(hash_dim)
        self.target = target
        dim = self.featurizer.shared_dim + len(space.sources) * SOURCE_DIM
        self.bank = RidgeBank(len(self.menu), dim, l2)
        self._masks: dict[frozenset[str], Array] = {}
        # choose and update of one search share the vector (a Context is immutable)
        self._memo: tuple[Context | None, Array] = (None, np.zeros(0))

    def vector(self, context: Context) -> Array:
        if context is self._memo[0]:
            return self._memo[1]
        shared = self.featurizer.shared(context)
        per_source = self.featurizer.sources(context, self.space.names)
        x = np.concatenate([shared, per_source.ravel()])
        self._memo = (context, x)
        return x

    def feasible(self, context: Context) -> Array:
        """1.0 for each arm none of whose sources the context marks down, else 0.0."""
        down = context.unavailable()
        mask = self._masks.get(down)
        if mask is None:
            mask = np.array([0.0 if down & set(p.sources) else 1.0 for p in self.menu])
            self._masks[down] = mask
        return mask

    def pmf(self, x: Array, feasible: Array) -> Array:
        """The exact probability of each arm at context vector x (zero where infeasible)."""
        raise NotImplementedError

    def _choose(self, context: Context, rng: np.random.Generator) -> Plan:
        feasible = self.feasible(context)
        if not feasible.any():
            return self.fallback(context)
        p = self.pmf(self.vector(context), feasible)
        i = pick(p, rng)
        return self.menu[i].chosen(float(p[i]), self.kind)

    def probability(self, context: Context, plan: Plan) -> float:
        feasible = self.feasible(context)
        if not feasible.any():
            return 1.0 if plan.key == self.fallback(context).key else 0.0
        i = self.arms.get(plan.key)
        if i is None or not feasible[i]:
            return 0.0
        return float(self.pmf(self.vector(context), feasible)[i])

    def update(self, context: Context, plan: Plan, reward: Reward) -> None:
        i = self.arms.get(plan.key)
        if i is None or plan.unavailable:
            return
        y = float(reward.hit) if self.target == "hit" else reward.value
        self.bank.update_one(i, self.vector(context), y - self.space.latency(plan))

    def config(self) -> dict[str, Any]:
        return super().config() | {
            "menu": [plain(p) for p in self.menu],
            "hash_dim": self.featurizer.hash_dim, "l2": self.bank.l2, "target": self.target,
        }

    @classmethod
    def menu_kwargs(cls, config: dict[str, Any]) -> dict[str, Any]:
        return {"menu": [msgspec.convert(p, Plan) for p in config["menu"]],
                "hash_dim": config["hash_dim"], "l2": config["l2"], "target": config["target"],
                "seed": config["seed"]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {"bank": self.bank.state()}

    def load_params(self, params: dict[str, Any]) -> None:
        self.bank = RidgeBank.from_state(params["bank"])


def pick(p: Array, rng: np.random.Generator) -> int:
    """An index drawn with probabilities p (one uniform draw)."""
    c = np.cumsum(p)
    i = int(np.searchsorted(c, rng.random() * c[-1], side="right"))
    i = min(i, len(p) - 1)
    while p[i] <= 0.0:  # rounding at the edge of a zero-probability arm
        i -= 1
    return i


def greedy_mix(scores: Array, feasible: Array, epsilon: float) -> Array:
    """(1 - epsilon) on the best feasible score (first on ties), epsilon spread uniformly."""
    masked = np.where(feasible > 0, scores, -np.inf)
    p: Array = feasible * (epsilon / feasible.sum())
    p[int(np.argmax(masked))] += 1.0 - epsilon
    return p

