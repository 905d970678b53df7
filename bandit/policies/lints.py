"""Linear Thompson sampling over the menu, with the propensity computed by quadrature.

Each plan's posterior is theta_a ~ N(mean_a, v^2 A_a^-1) (Agrawal and Goyal, 2013). At a fixed
context x only the score x . theta_a matters, and it is exactly N(m_a, s_a^2) with
m_a = x . mean_a and s_a = v sqrt(x^T A_a^-1 x), independent across plans; so one draw per plan
of a scalar normal is a full Thompson draw, with no d-dimensional sampling.

P(plan a has the highest draw) has no closed form; it is the one-dimensional integral
E_{t ~ N(m_a, s_a^2)} prod_{b != a} Phi((t - m_b) / s_b), computed with 64-node Gauss-Hermite
quadrature (checked against Monte Carlo in the tests). `floor` mixes in a uniform choice, so the
logged propensity is (1 - floor) P_TS(a) + floor / n, never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from bandit.context import HASH_DIM, Context
from bandit.linear import Array
from bandit.plan import ActionSpace, Plan
from bandit.policies.base import space_from
from bandit.policies.menu import MenuPolicy, Target

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(64)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
# the outer nodes carry weights below 1e-12: dropping them changes nothing measurable
_KEEP = _WEIGHTS > 1e-12
_NODES, _WEIGHTS = _NODES[_KEEP], _WEIGHTS[_KEEP] / _WEIGHTS[_KEEP].sum()
# nodes past +-5 hold 6e-7 of the weight: the reach within which a rival plan must come
_REACH = 5.0
_TINY = 1e-12


def norm_cdf(z: Array) -> Array:
    """Standard normal CDF (Abramowitz and Stegun 7.1.26; absolute error below 1.5e-7)."""
    x = np.abs(z) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return np.asarray(0.5 * (1.0 + np.sign(z) * erf))


def win_probability(i: int, mean: Array, sd: Array, feasible: Array) -> float:
    """P(independent N(mean[i], sd[i]^2) beats every other feasible one). A rival whose mean
    lies more than 6 of its sd below mean[i] - 5 sd[i] is left out (its factor is above
    1 - 1e-9 wherever the weight is)."""
    others = (feasible > 0) & (np.arange(len(mean)) != i)
    others &= (mean[i] - _REACH * sd[i] - mean) < 6.0 * sd
    if not others.any():
        return 1.0
    t = mean[i] + sd[i] * _NODES
    z = (t[None, :] - mean[others][:, None]) / sd[others][:, None]
    return float(np.clip(np.prod(norm_cdf(z), axis=0) @ _WEIGHTS, 0.0, 1.0))


class LinTS(MenuPolicy):
    kind = "lints"

    def __init__(self, space: ActionSpace, *, v: float = 0.1, floor: float = 0.0,
                 menu: Sequence[Plan] | None = None, hash_dim: int = HASH_DIM, l2: float = 1.0,
                 target: Target = "hit", seed: int = 0) -> None:
        if v <= 0 or not 0.0 <= floor <= 1.0:
            raise ValueError("need v > 0 and floor in [0, 1]")
        super().__init__(space, menu=menu, hash_dim=hash_dim, l2=l2, target=target, seed=seed)
        self.v = v
        self.floor = floor

    def _posterior(self, context: Context) -> tuple[Array, Array]:
        mean, var = self.bank.mean_var_shared(self.vector(context))
        return mean, self.v * np.sqrt(var) + _TINY

    def _propensity(self, i: int, mean: Array, sd: Array, feasible: Array) -> float:
        p_ts = win_probability(i, mean, sd, feasible)
        p = (1.0 - self.floor) * p_ts + self.floor / float(feasible.sum())
        return max(p, _TINY)

    def _choose(self, context: Context, rng: np.random.Generator) -> Plan:
        feasible = self.feasible(context)
        if not feasible.any():
            return self.fallback(context)
        mean, sd = self._posterior(context)
        if self.floor > 0 and rng.random() < self.floor:
            i = int(rng.choice(np.flatnonzero(feasible)))
        else:
            draw = np.where(feasible > 0, mean + sd * rng.standard_normal(len(mean)), -np.inf)
            i = int(np.argmax(draw))
        return self.menu[i].chosen(self._propensity(i, mean, sd, feasible), self.kind)

    def probability(self, context: Context, plan: Plan) -> float:
        feasible = self.feasible(context)
        if not feasible.any():
            return 1.0 if plan.key == self.fallback(context).key else 0.0
        i = self.arms.get(plan.key)
        if i is None or not feasible[i]:
            return 0.0
        mean, sd = self._posterior(context)
        return self._propensity(i, mean, sd, feasible)

    def pmf(self, x: Array, feasible: Array) -> Array:
        mean, var = self.bank.mean_var_shared(x)
        sd = self.v * np.sqrt(var) + _TINY
        return np.array([self._propensity(i, mean, sd, feasible) if feasible[i] else 0.0
                         for i in range(len(mean))])

    def config(self) -> dict[str, Any]:
        return super().config() | {"v": self.v, "floor": self.floor}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(space_from(config), v=config["v"], floor=config["floor"],
                   **cls.menu_kwargs(config))
