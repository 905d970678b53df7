"""Fixed plans: the baselines and fallbacks (one source, an equal split, RRF of all sources).

A fixed policy always returns its plan with propensity 1, minus any source the context marks
down (`bandit.plan.restrict` moves that share to the plan's other sources). It learns nothing;
`update` only counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import msgspec
import numpy as np

from bandit.context import Context
from bandit.plan import ActionSpace, Plan, restrict
from bandit.policies.base import PolicyBase, plain, space_from
from bandit.reward import Reward


class Fixed(PolicyBase):
    """Always the same plan."""

    kind = "fixed"

    def __init__(self, space: ActionSpace, plan: Plan, seed: int = 0) -> None:
        super().__init__(space, seed)
        problems = space.check(plan)
        if problems:
            raise ValueError(f"invalid plan {plan.name}: {'; '.join(problems)}")
        self.plan = plan
        self.updates = 0

    @property
    def label(self) -> str:
        return self.plan.name or "fixed"

    @classmethod
    def single(cls, space: ActionSpace, source: str) -> Fixed:
        return cls(space, space.plan(space.split([source]), name=f"single:{source}"))

    @classmethod
    def equal(cls, space: ActionSpace, sources: Sequence[str] | None = None) -> Fixed:
        names = list(space.names if sources is None else sources)
        label = "equal:all" if sources is None else "equal:" + "+".join(names)
        return cls(space, space.plan(space.split(names), name=label))

    @classmethod
    def rrf(cls, space: ActionSpace) -> Fixed:
        ks = {n: space.k_cap(i) for i, n in enumerate(space.names)}
        return cls(space, space.plan(ks, merge="rrf", name="rrf:all"))

    def _choose(self, context: Context, rng: np.random.Generator) -> Plan:
        return restrict(self.space, self.plan, context.unavailable()).chosen(1.0, self.kind)

    def probability(self, context: Context, plan: Plan) -> float:
        mine = restrict(self.space, self.plan, context.unavailable())
        return 1.0 if mine.key == plan.key else 0.0

    def update(self, context: Context, plan: Plan, reward: Reward) -> None:
        self.updates += 1

    def config(self) -> dict[str, Any]:
        return super().config() | {"plan": plain(self.plan)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(space_from(config), msgspec.convert(config["plan"], Plan), config["seed"])

    def params(self) -> dict[str, Any]:
        return {"updates": self.updates}

    def load_params(self, params: dict[str, Any]) -> None:
        self.updates = int(params["updates"])
