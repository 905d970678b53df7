"""Contextual epsilon-greedy over the menu: the best predicted plan, else one at random.

Each plan's ridge model predicts the target; with probability 1 - epsilon the policy runs the
best feasible plan (the first on ties), otherwise a feasible plan uniformly at random. The
propensity is exact: (1 - epsilon) [best] + epsilon / number of feasible plans. With
epsilon = 1 it is the uniform random logging policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from bandit.context import HASH_DIM
from bandit.linear import Array
from bandit.plan import ActionSpace, Plan
from bandit.policies.base import space_from
from bandit.policies.menu import MenuPolicy, Target, greedy_mix


class EpsilonGreedy(MenuPolicy):
    kind = "epsilon_greedy"

    def __init__(self, space: ActionSpace, *, epsilon: float = 0.1,
                 menu: Sequence[Plan] | None = None, hash_dim: int = HASH_DIM, l2: float = 1.0,
                 target: Target = "hit", seed: int = 0) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError("epsilon must be in [0, 1]")
        super().__init__(space, menu=menu, hash_dim=hash_dim, l2=l2, target=target, seed=seed)
        self.epsilon = epsilon

    def pmf(self, x: Array, feasible: Array) -> Array:
        return greedy_mix(self.bank.theta @ x, feasible, self.epsilon)

    def config(self) -> dict[str, Any]:
        return super().config() | {"epsilon": self.epsilon}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(space_from(config), epsilon=config["epsilon"], **cls.menu_kwargs(config))
