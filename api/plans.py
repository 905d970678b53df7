"""Query plans: which sources run, with how many candidates each. The fixed plan lives here;
the learning policies (bandit/) produce the same `Plan`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from retrievers.base import Query

FIXED_K: Final = 20  # per first-stage source
FIXED_EXPAND_K: Final = 10
FIXED_SEEDS: Final = 3


@dataclass(frozen=True, slots=True)
class Plan:
    """What one search runs. `propensity` is the probability that the policy `policy` picked
    this plan for this context (1.0 for a fixed plan)."""

    policy: str
    retrieve: Mapping[str, int]  # first-stage source -> k
    expand: Mapping[str, int] = field(default_factory=dict)  # expander -> k
    seeds: int = FIXED_SEEDS  # best fused first-stage results handed to the expanders
    propensity: float = 1.0
    context: Mapping[str, float] = field(default_factory=dict)  # the features it was chosen on

    @property
    def sources(self) -> dict[str, int]:
        return {**self.retrieve, **self.expand}


class Planner(Protocol):
    def plan(self, query: Query) -> Plan: ...


class FixedPlanner:
    """Every source, the same k each, fused by reciprocal rank: the baseline and the fallback."""

    name = "fixed-all-rrf"

    def __init__(self, retrievers: Sequence[str], expanders: Sequence[str], *,
                 k: int = FIXED_K, expand_k: int = FIXED_EXPAND_K) -> None:
        self._plan = Plan(self.name, {r: k for r in retrievers}, {e: expand_k for e in expanders})

    def plan(self, query: Query) -> Plan:
        return self._plan

    def update(self, search: object, rewards: Mapping[str, float]) -> None:
        """A fixed plan learns nothing."""

    def sources(self) -> Mapping[str, int]:
        return self._plan.sources
