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

from bandit.policies.base import Policy, PolicyBase
from bandit.policies.epsilon_greedy import EpsilonGreedy
from bandit.policies.fixed import Fixed
from bandit.policies.lints import LinTS
from bandit.policies.linucb import LinUCB
from bandit.policies.semibandit import SemiBandit

_KINDS: dict[str, type[PolicyBase]] = {
    cls.kind: cls for cls in (Fixed, EpsilonGreedy, LinUCB, LinTS, SemiBandit)
}


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
           "load"]
