"""The policies, one file each, behind one protocol (`base.Policy`), and `load(state)`.

- `Fixed`: one plan always (baselines and fallbacks: `Fixed.single`, `Fixed.equal`, `Fixed.rrf`).
- `EpsilonGreedy`, `LinUCB`, `LinTS`: contextual bandits over a menu of named plans.
- `SemiBandit`: per-source models of "does source s with k candidates hold the take", the
  budget allocated greedily by marginal gain (the goal formulation).
- `VWPolicy` (in `bandit.policies.vw`, imported on demand): Vowpal Wabbit's `--cb_explore_adf`
  over the same menu, the reference peer.
"""

from __future__ import annotations

from typing import Any

from bandit.plan import ActionSpace
from bandit.policies.base import Policy, PolicyBase
from bandit.policies.epsilon_greedy import EpsilonGreedy
from bandit.policies.fixed import Fixed
from bandit.policies.lints import LinTS
from bandit.policies.linucb import LinUCB
from bandit.policies.semibandit import SemiBandit

_KINDS: dict[str, type[PolicyBase]] = {
    cls.kind: cls for cls in (Fixed, EpsilonGreedy, LinUCB, LinTS, SemiBandit)
}


def create(spec: str, space: ActionSpace, seed: int = 0) -> Policy:
    """A fresh policy from a settings string: "semibandit", "linucb", "lints",
    "epsilon_greedy", "vw", "fixed:equal", "fixed:rrf" or "fixed:single:<source>"."""
    if spec == "vw":
        from bandit.policies.vw import VWPolicy

        return VWPolicy(space, seed=seed)
    if spec == "fixed:equal":
        return Fixed.equal(space)
    if spec == "fixed:rrf":
        return Fixed.rrf(space)
    if spec.startswith("fixed:single:"):
        source = spec.removeprefix("fixed:single:")
        if source not in space.names:
            raise ValueError(f"no source {source!r} in the action space")
        return Fixed.single(space, source)
    learners: dict[str, type[PolicyBase]] = {
        c.kind: c for c in (EpsilonGreedy, LinUCB, LinTS, SemiBandit)}
    if spec not in learners:
        raise ValueError(f"unknown policy {spec!r}")
    return learners[spec](space, seed=seed)


def load(state: dict[str, Any]) -> Policy:
    """The policy that `state()` described, parameters and RNG included."""
    kind = state.get("policy")
    if kind == "vw":
        from bandit.policies.vw import VWPolicy

        return VWPolicy.from_state(state)
    if kind not in _KINDS:
        raise ValueError(f"unknown policy {kind!r}")
    return _KINDS[kind].from_state(state)


__all__ = ["EpsilonGreedy", "Fixed", "LinTS", "LinUCB", "Policy", "PolicyBase", "SemiBandit",
           "create", "load"]
