"""Off-policy evaluation: a candidate policy's value estimated from a logged policy's outcomes.

For logged samples (x_i, a_i, r_i) with logging propensity p_i = plan.propensity, and the
candidate's probability q_i = pi(a_i | x_i), with weights w_i = q_i / p_i:

- IPS: mean(w_i r_i). Unbiased when the logging policy gave every action the candidate takes a
  positive probability.
- SNIPS (self-normalised): sum(w_i r_i) / sum(w_i). Slightly biased, much lower variance.
- DR (doubly robust): mean(rhat(x_i, pi) + w_i (r_i - rhat(x_i, a_i))), with a reward model rhat
  fitted with cross-fitting (fitted on the other folds, predicted on each fold) and
  rhat(x, pi) = E_{a ~ pi(x)} rhat(x, a) estimated from `draws` seeded draws of the candidate
  (exact when the candidate is deterministic). Unbiased if either the propensities or the
  model are right.

Confidence intervals: by default the normal approximation, mean +- z * sd / sqrt(n) of the
per-sample terms (IPS, DR), and the delta method for SNIPS, se = sqrt(sum w^2 (r - V)^2) / sum w.
With `ci="bootstrap"`, percentile intervals from `resamples` seeded bootstrap resamples. The
report also gives the logged policy's observed value (the plain mean, normal interval), the
effective sample size (sum w)^2 / sum w^2, the largest weight, the share of samples where the
candidate could take the logged action, and the mean weight: an unbiased estimate of how much
of the candidate's probability falls on actions the logging policy could take. Well below 1,
the candidate goes where the log never went, and IPS (and, less, DR) cannot see it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import msgspec
import numpy as np
import numpy.typing as npt

from bandit.context import HASH_DIM, Context, Featurizer
from bandit.linear import Array
from bandit.log import Outcome, Record
from bandit.plan import ActionSpace, Plan
from bandit.policies.base import Policy

Metric = Literal["value", "hit"]
CI = Literal["normal", "bootstrap"]


class Sample(msgspec.Struct, frozen=True):
    """One logged search: context, the plan as logged (its propensity), the reward seen."""

    context: Context
    plan: Plan
    reward: float


class Estimate(msgspec.Struct, frozen=True):
    method: str
    value: float
    lo: float
    hi: float
    se: float
    n: int


class Report(msgspec.Struct, frozen=True):
    observed: Estimate
    ips: Estimate
    snips: Estimate
    dr: Estimate
    ess: float
    max_weight: float
    support: float
    mean_weight: float
    alpha: float = 0.05
    ci: CI = "normal"


class RewardModel(Protocol):
    def predict(self, context: Context, plan: Plan) -> float: ...


def samples(records: Sequence[Record], metric: Metric = "value") -> list[Sample]:
    """The outcomes of a log as OPE samples (reward: page value, or 1/0 for a hit)."""
    return [Sample(r.context, r.plan, r.reward.value if metric == "value" else float(r.reward.hit))
            for r in records if isinstance(r, Outcome)]


def _z(alpha: float) -> float:
    return statistics.NormalDist().inv_cdf(1.0 - alpha / 2.0)


def _mean_estimate(method: str, terms: Array, alpha: float) -> Estimate:
    n = len(terms)
    value = float(terms.mean())
    se = float(terms.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    half = _z(alpha) * se
    return Estimate(method, value, value - half, value + half, se, n)


def observed(rewards: Array, alpha: float = 0.05) -> Estimate:
    return _mean_estimate("observed", np.asarray(rewards, float), alpha)


def ips(rewards: Array, p_log: Array, p_target: Array, alpha: float = 0.05) -> Estimate:
    w = np.asarray(p_target, float) / np.asarray(p_log, float)
    return _mean_estimate("IPS", w * np.asarray(rewards, float), alpha)


def snips(rewards: Array, p_log: Array, p_target: Array, alpha: float = 0.05) -> Estimate:
    w = np.asarray(p_target, float) / np.asarray(p_log, float)
    r = np.asarray(rewards, float)
    total = float(w.sum())
    n = len(r)
    if total <= 0:
        return Estimate("SNIPS", math.nan, math.nan, math.nan, math.inf, n)
    value = float(w @ r) / total
    se = math.sqrt(float((w * w) @ ((r - value) ** 2))) / total
    half = _z(alpha) * se
    return Estimate("SNIPS", value, value - half, value + half, se, n)


def dr(rewards: Array, p_log: Array, p_target: Array, q_logged: Array, q_target: Array,
       alpha: float = 0.05) -> Estimate:
    w = np.asarray(p_target, float) / np.asarray(p_log, float)
    terms = np.asarray(q_target, float) + w * (np.asarray(rewards, float) - q_logged)
    return _mean_estimate("DR", terms, alpha)


def bootstrap_ci(point: Estimate, columns: Sequence[Array], fn: Callable[..., float], *,
                 resamples: int = 1000, alpha: float = 0.05, seed: int = 0) -> Estimate:
    """`point` with a percentile interval from resampling the rows of `columns`."""
    rng = np.random.default_rng(seed)
    n = len(columns[0])
    stats = np.empty(resamples)
    for b in range(resamples):
        idx = rng.integers(0, n, n)
        stats[b] = fn(*(c[idx] for c in columns))
    lo, hi = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return msgspec.structs.replace(point, lo=float(lo), hi=float(hi),
                                   se=float(stats.std(ddof=1)))


class LinearRewardModel:
    """Ridge regression of the reward on plan shares crossed with the shared features:
    phi(x, a) = [k_s / budget for each source, RRF?, 1] (outer) shared(x)."""

    def __init__(self, space: ActionSpace, hash_dim: int = HASH_DIM, l2: float = 1.0) -> None:
        self.space = space
        self.featurizer = Featurizer(hash_dim)
        self.l2 = l2
        self.w: Array | None = None

    def phi(self, context: Context, plan: Plan) -> Array:
        share = [plan.k(n) / plan.budget for n in self.space.names]
        a = np.array([*share, float(plan.merge == "rrf"), 1.0])
        return np.outer(a, self.featurizer.shared(context)).ravel()

    def fit(self, data: Sequence[Sample]) -> LinearRewardModel:
        x = np.array([self.phi(s.context, s.plan) for s in data])
        y = np.array([s.reward for s in data])
        self.w = np.linalg.solve(x.T @ x + self.l2 * np.eye(x.shape[1]), x.T @ y)
        return self

    def predict(self, context: Context, plan: Plan) -> float:
        if self.w is None:
            raise RuntimeError("fit the reward model first")
        return float(self.phi(context, plan) @ self.w)


def _dm_terms(data: Sequence[Sample], target: Policy, fit: Callable[[Sequence[Sample]],
              RewardModel], folds: int, draws: int, seed: int) -> tuple[Array, Array]:
    """Cross-fitted rhat(x_i, a_i) and rhat(x_i, pi) for every sample."""
    rng = np.random.default_rng(seed)
    fold = np.arange(len(data)) % folds
    q_logged = np.empty(len(data))
    q_target = np.empty(len(data))
    for f in range(folds):
        model = fit([s for s, g in zip(data, fold, strict=True) if g != f])
        for i in np.flatnonzero(fold == f).tolist():
            s = data[i]
            q_logged[i] = model.predict(s.context, s.plan)
            q_target[i] = float(np.mean([model.predict(s.context, target.sample(s.context, rng))
                                         for _ in range(draws)]))
    return q_logged, q_target


def evaluate(data: Sequence[Sample], target: Policy, *,
             reward_model: Callable[[Sequence[Sample]], RewardModel] | None = None,
             folds: int = 2, draws: int = 8, alpha: float = 0.05, ci: CI = "normal",
             resamples: int = 1000, seed: int = 0) -> Report:
    """IPS, SNIPS and DR estimates of `target`'s value on the logged `data`."""
    if len(data) < 2 * folds:
        raise ValueError("too few samples to evaluate")
    r = np.array([s.reward for s in data])
    p_log = np.array([s.plan.propensity for s in data])
    p_t = np.array([target.probability(s.context, s.plan) for s in data])
    fit = reward_model or (lambda d: LinearRewardModel(target.space).fit(d))
    q_logged, q_target = _dm_terms(data, target, fit, folds, draws, seed)
    est = [observed(r, alpha), ips(r, p_log, p_t, alpha), snips(r, p_log, p_t, alpha),
           dr(r, p_log, p_t, q_logged, q_target, alpha)]
    if ci == "bootstrap":
        fns: list[Callable[..., float]] = [
            lambda r_: float(r_.mean()),
            lambda r_, p_, t_: ips(r_, p_, t_).value,
            lambda r_, p_, t_: snips(r_, p_, t_).value,
            lambda r_, p_, t_, ql, qt: dr(r_, p_, t_, ql, qt).value,
        ]
        cols: list[list[npt.NDArray[np.float64]]] = [
            [r], [r, p_log, p_t], [r, p_log, p_t], [r, p_log, p_t, q_logged, q_target]]
        est = [bootstrap_ci(e, c, fn, resamples=resamples, alpha=alpha, seed=seed)
               for e, c, fn in zip(est, cols, fns, strict=True)]
    w = p_t / p_log
    ess = float(w.sum() ** 2 / (w @ w)) if w.any() else 0.0
    return Report(est[0], est[1], est[2], est[3], ess, float(w.max()), float((p_t > 0).mean()),
                  float(w.mean()), alpha, ci)


def format_report(report: Report, candidate: str, logged: str = "logged policy") -> str:
    """A markdown table: the logged policy's observed value, then the three estimates."""
    level = f"{1 - report.alpha:.1%}".replace(".0%", "%")
    rows = [f"| policy | estimator | value | {level} interval ({report.ci}) | n |",
            "|---|---|---:|---|---:|"]
    o = report.observed
    rows.append(f"| {logged} | observed | {o.value:.4f} | [{o.lo:.4f}, {o.hi:.4f}] | {o.n} |")
    for e in (report.ips, report.snips, report.dr):
        rows.append(f"| {candidate} | {e.method} | {e.value:.4f} | [{e.lo:.4f}, {e.hi:.4f}] "
                    f"| {e.n} |")
    rows.append("")
    rows.append(f"effective sample size {report.ess:.1f}, largest weight "
                f"{report.max_weight:.2f}, support {report.support:.1%}, mean weight "
                f"{report.mean_weight:.3f} (about 1 when the log covers the candidate)")
    return "\n".join(rows)
