"""The Policy protocol every policy follows, and the plumbing they share (seeded RNG, state).

A policy maps a `Context` to a `Plan` that carries the probability of being chosen:

    plan = policy.choose(ctx)                 # uses and advances the policy's own seeded RNG
    policy.update(ctx, plan_as_run, reward)   # learn; never touches the RNG
    policy.probability(ctx, plan) -> float    # P(choose(ctx) gives plan's action); no RNG use
    policy.sample(ctx, rng) -> Plan           # a draw with someone else's RNG (for estimators)
    policy.state() -> dict                    # JSON-able: {"policy", "config", "params", "rng"}
    load(state) -> Policy                     # (bandit.policies.load) the same policy back

The parameters depend only on the sequence of updates, so replaying the logged outcomes in log
order rebuilds them bit for bit, whatever the RNG did (`bandit.log.replay`). Several API
processes that apply the same outcomes in the same order hold the same parameters; the RNG is
per process (pass a different seed to each, or not: identical seeds only mean identical
exploration draws for identical contexts).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import msgspec
import numpy as np

from bandit.context import Context
from bandit.plan import ActionSpace, Plan, restrict
from bandit.reward import Reward


@runtime_checkable
class Policy(Protocol):
    """Context in, plan (with propensity) out; learns from rewards (see the module docstring)."""

    kind: ClassVar[str]
    space: ActionSpace

    def choose(self, context: Context) -> Plan: ...

    def update(self, context: Context, plan: Plan, reward: Reward) -> None: ...

    def probability(self, context: Context, plan: Plan) -> float: ...

    def sample(self, context: Context, rng: np.random.Generator) -> Plan: ...

    def state(self) -> dict[str, Any]: ...


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's exact state, JSON-able (its 128-bit integers as strings)."""
    s = rng.bit_generator.state
    return {"bit_generator": s["bit_generator"],
            "state": {k: str(v) for k, v in s["state"].items()},
            "has_uint32": s["has_uint32"], "uinteger": s["uinteger"]}


def rng_from_state(d: dict[str, Any]) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = {"bit_generator": d["bit_generator"],
                               "state": {k: int(v) for k, v in d["state"].items()},
                               "has_uint32": d["has_uint32"], "uinteger": d["uinteger"]}
    return rng


class PolicyBase:
    """Shared plumbing: the space, the seeded RNG, choose/sample, state and its inverse.
    Subclasses define `kind`, `_choose`, `update`, `probability`, `config`, `from_config`,
    `params` and `load_params`."""

    kind: ClassVar[str] = ""

    def __init__(self, space: ActionSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def choose(self, context: Context) -> Plan:
        return self._choose(context, self.rng)

    def sample(self, context: Context, rng: np.random.Generator) -> Plan:
        return self._choose(context, rng)

    def _choose(self, context: Context, rng: np.random.Generator) -> Plan:
        raise NotImplementedError

    def update(self, context: Context, plan: Plan, reward: Reward) -> None:
        raise NotImplementedError

    def probability(self, context: Context, plan: Plan) -> float:
        raise NotImplementedError

    def fallback(self, context: Context) -> Plan:
        """When no plan of the policy's own is feasible: an equal split over what is up."""
        first = [s.name for s in self.space.sources if s.stage == "first"]
        base = self.space.plan(self.space.split(first), name="equal:first")
        return restrict(self.space, base, context.unavailable()).chosen(1.0, self.kind)

    def config(self) -> dict[str, Any]:
        return {"space": plain(self.space), "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_params(self, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {"policy": self.kind, "version": 1, "config": self.config(),
                "params": self.params(), "rng": rng_state(self.rng)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        if state.get("policy") != cls.kind:
            raise ValueError(f"state is for {state.get('policy')!r}, not {cls.kind!r}")
        policy = cls.from_config(state["config"])
        policy.load_params(state["params"])
        policy.rng = rng_from_state(state["rng"])
        return policy


def plain(obj: Any) -> Any:
    """`obj` as plain JSON values (lists, not tuples), as it comes back from json.loads."""
    return msgspec.json.decode(msgspec.json.encode(obj))


def space_from(config: dict[str, Any]) -> ActionSpace:
    return msgspec.convert(config["space"], ActionSpace)
