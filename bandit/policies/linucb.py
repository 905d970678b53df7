"""LinUCB over the menu (disjoint models): the plan with the highest upper confidence bound.

Score of plan a at context x: theta_a . x + alpha * sqrt(x^T A_a^-1 x) (Li et al., 2010). The
choice is deterministic, so the propensity is 1 for the best plan; `floor` mixes in a uniform
choice with that probability, which gives every feasible plan support (needed when the log is to
evaluate other policies offline). The propensity stays exact: (1 - floor) [best] + floor / n.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from bandit.context import HASH_DIM
from bandit.linear import Array
from bandit.plan import ActionSpace, Plan
from bandit.policies.base import space_from
from bandit.policies.menu import MenuPolicy, Target, greedy_mix


class LinUCB(MenuPolicy):
    kind = "linucb"

    def __init__(self, space: ActionSpace, *, alpha: float = 0.1, floor: float = 0.0,
                 menu: Sequence[Plan] | None = None, hash_dim: int = HASH_DIM, l2: float = 1.0,
                 target: Target = "hit", seed: int = 0) -> None:
        if alpha < 0 or not 0.0 <= floor <= 1.0:
            raise ValueError("need alpha >= 0 and floor in [0, 1]")
        super().__init__(space, menu=menu, hash_dim=hash_dim, l2=l2, target=target, seed=seed)
        self.alpha = alpha
        self.floor = floor

    def pmf(self, x: Array, feasible: Array) -> Array:
        mean, var = self.bank.mean_var_shared(x)
        return greedy_mix(mean + self.alpha * np.sqrt(var), feasible, self.floor)

    def config(self) -> dict[str, Any]:
        return super().config() | {"alpha": self.alpha, "floor": self.floor}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(space_from(config), alpha=config["alpha"], floor=config["floor"],
                   **cls.menu_kwargs(config))
