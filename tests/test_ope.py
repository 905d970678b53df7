"""Off-policy estimators against values known exactly: a small discrete world with an analytic
value (bias and interval coverage over many seeded logs), and the rigged search environment,
where a fixed plan's recall has a closed form."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from bandit.context import Context
from bandit.ope import Estimate, Sample, dr, evaluate, format_report, ips, observed, snips
from bandit.plan import ActionSpace, Plan, SourceSpec, default_menu
from bandit.policies import EpsilonGreedy, Fixed, LinUCB
from bandit.reward import Reward, credit
from bandit.synthetic import QueryClass, RiggedEnv, Truth

# ---- a discrete world: 3 contexts, 4 actions, Bernoulli rewards ------------------------------

P_X = np.array([0.5, 0.3, 0.2])
MU = np.array([[0.2, 0.5, 0.7, 0.1],
               [0.6, 0.3, 0.2, 0.4],
               [0.1, 0.1, 0.3, 0.9]])
LOGGING = np.array([[0.4, 0.3, 0.2, 0.1],
                    [0.25, 0.25, 0.25, 0.25],
                    [0.1, 0.2, 0.3, 0.4]])
TARGET = np.array([[0.0, 0.1, 0.9, 0.0],
                   [0.8, 0.0, 0.0, 0.2],
                   [0.0, 0.0, 0.05, 0.95]])
TRUE_VALUE = float(P_X @ (TARGET * MU).sum(axis=1))
REPLICATES, N = 400, 600


def discrete_logs(seed: int) -> tuple[np.ndarray, ...]:
    """REPLICATES logs of N samples each: rewards, logging and target propensities, and the
    true mean of the logged action and of the target at each context."""
    rng = np.random.default_rng(seed)
    x = rng.choice(3, size=(REPLICATES, N), p=P_X)
    u = rng.random((REPLICATES, N))
    a = (u[..., None] > np.cumsum(LOGGING[x], axis=-1)).sum(axis=-1)
    r = (rng.random((REPLICATES, N)) < MU[x, a]).astype(float)
    return r, LOGGING[x, a], TARGET[x, a], MU[x, a], (TARGET * MU).sum(axis=1)[x]


@pytest.fixture(scope="module")
def logs() -> tuple[np.ndarray, ...]:
    return discrete_logs(2024)


def run(estimator: str, logs: tuple[np.ndarray, ...], model: str = "constant") -> list[Estimate]:
    r, p_log, p_t, mu_logged, mu_target = logs
    out = []
    for i in range(REPLICATES):
        if estimator == "IPS":
            out.append(ips(r[i], p_log[i], p_t[i]))
        elif estimator == "SNIPS":
            out.append(snips(r[i], p_log[i], p_t[i]))
        elif model == "constant":  # a wrong reward model: DR must stay unbiased
            half = np.full(N, 0.5)
            out.append(dr(r[i], p_log[i], p_t[i], half, half))
        else:
            out.append(dr(r[i], p_log[i], p_t[i], mu_logged[i], mu_target[i]))
    return out


@pytest.mark.parametrize(("estimator", "model"), [("IPS", ""), ("SNIPS", ""),
                                                  ("DR", "constant"), ("DR", "true")])
def test_estimator_is_unbiased_and_its_interval_covers(logs: tuple[np.ndarray, ...],
                                                       estimator: str, model: str) -> None:
    est = run(estimator, logs, model)
    values = np.array([e.value for e in est])
    # SNIPS is biased by O(1/n); 4 standard errors of the mean of 400 replicates is ~0.006
    assert abs(values.mean() - TRUE_VALUE) < 4 * values.std() / np.sqrt(REPLICATES) + 0.002
    coverage = np.mean([e.lo <= TRUE_VALUE <= e.hi for e in est])
    assert 0.9 <= coverage <= 0.99, coverage


def test_dr_with_a_good_model_beats_ips_on_variance(logs: tuple[np.ndarray, ...]) -> None:
    ips_sd = np.std([e.value for e in run("IPS", logs)])
    dr_sd = np.std([e.value for e in run("DR", logs, "true")])
    assert dr_sd < 0.75 * ips_sd  # about 0.61 in this world


def test_estimators_on_the_logging_policy_itself_are_the_observed_mean() -> None:
    r, p_log, _, _, _ = discrete_logs(5)
    o = observed(r[0])
    assert ips(r[0], p_log[0], p_log[0]).value == pytest.approx(o.value)
    assert snips(r[0], p_log[0], p_log[0]).value == pytest.approx(o.value)


# ---- the rigged search environment, through evaluate() -------------------------------------

SPACE = ActionSpace((SourceSpec("fuzzy"), SourceSpec("fulltext"), SourceSpec("text"),
                     SourceSpec("memory")), budget=20, step=10)
CLASSES = (
    QueryClass("name", 0.6, ("shape", "you", "hello"),
               {"fuzzy": Truth(0.9, 4), "fulltext": Truth(0.5, 8), "text": Truth(0.1, 10)},
               exact_name=0.9),
    QueryClass("topic", 0.4, ("sad", "chill", "podcast"),
               {"text": Truth(0.8, 6), "fulltext": Truth(0.3, 10), "memory": Truth(0.2, 2, 40)},
               interpretation="genre"),
)
BY_NAME = {c.name: c for c in CLASSES}
# union plans only, where the recall has a closed form (RRF's cut does not)
MENU = [p for p in default_menu(SPACE) if p.merge == "union"]


@dataclass
class Log:
    data: list[Sample] = field(default_factory=list)
    rewards: list[Reward] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)


def logged(n: int, seed: int) -> tuple[Log, RiggedEnv]:
    """n searches logged by the uniform policy over the menu; reward = candidate recall."""
    env = RiggedEnv(SPACE, CLASSES, seed=seed, rho=0.0, outage=0.0, hints=False)
    logger = EpsilonGreedy(SPACE, epsilon=1.0, menu=MENU, seed=seed)
    log = Log()
    for _ in range(n):
        s = env.draw()
        plan = logger.choose(s.context)
        ran, lists = env.run(s, plan)
        reward = credit(ran, lists, env.feedback(s, env.candidate_set(ran, lists)))
        log.data.append(Sample(s.context, ran, float(reward.hit)))
        log.rewards.append(reward)
        log.classes.append(s.cls)
    return log, env


def true_value(choose: list[Plan], classes: list[str], env: RiggedEnv) -> float:
    return float(np.mean([env.true_recall(p, BY_NAME[c]) for p, c in zip(choose, classes,
                                                                          strict=True)]))


def test_evaluate_recovers_a_fixed_plans_known_recall() -> None:
    log, env = logged(3000, seed=1)
    data = log.data
    target = Fixed.single(SPACE, "fuzzy")
    truth = sum(c.weight * env.true_recall(target.plan, c) for c in CLASSES)
    report = evaluate(data, target, alpha=0.001)
    for e in (report.ips, report.snips, report.dr):
        assert e.lo <= truth <= e.hi, (e, truth)
        assert abs(e.value - truth) < 0.06, (e, truth)
    assert report.support == pytest.approx(np.mean([s.plan.name == "single:fuzzy"
                                                    for s in data]))
    assert report.dr.se < report.ips.se
    assert report.mean_weight == pytest.approx(1.0, abs=0.1)
    table = format_report(report, "single:fuzzy", "uniform")
    assert "| single:fuzzy | DR |" in table
    assert f"{report.dr.value:.4f}" in table


def test_evaluate_a_learnt_policy_against_its_exact_value() -> None:
    """A LinUCB trained on another log is deterministic: its value on the logged contexts is
    the mean closed-form recall of the plan it picks for each."""
    train, _ = logged(1500, seed=2)
    target = LinUCB(SPACE, alpha=0.0, menu=MENU, seed=0)
    for s, reward in zip(train.data, train.rewards, strict=True):
        target.update(s.context, s.plan, reward)
    log, env = logged(4000, seed=3)
    data = log.data
    picks = [target.sample(s.context, np.random.default_rng(0)) for s in data]
    truth = true_value(picks, log.classes, env)
    uniform = float(np.mean([s.reward for s in data]))
    assert truth > uniform + 0.15  # the target is worth evaluating
    report = evaluate(data, target, alpha=0.001, draws=1)
    for e in (report.ips, report.snips, report.dr):
        assert e.lo <= truth <= e.hi, (e, truth)


def test_a_candidate_the_log_never_covers_shows_it() -> None:
    data = logged(600, seed=6)[0].data  # the logging menu has no RRF plan
    report = evaluate(data, Fixed.rrf(SPACE))
    assert report.mean_weight == 0.0
    assert report.support == 0.0
    assert report.ips.value == 0.0


def test_bootstrap_interval_agrees_with_the_normal_one() -> None:
    data = logged(1500, seed=4)[0].data
    target = Fixed.single(SPACE, "text")
    normal = evaluate(data, target)
    boot = evaluate(data, target, ci="bootstrap", resamples=400, seed=1)
    for a, b in ((normal.ips, boot.ips), (normal.dr, boot.dr), (normal.observed, boot.observed)):
        assert a.value == b.value
        half = (a.hi - a.lo) / 2
        assert abs(a.lo - b.lo) < 0.25 * half
        assert abs(a.hi - b.hi) < 0.25 * half


def test_evaluate_needs_data() -> None:
    with pytest.raises(ValueError, match="too few"):
        evaluate([Sample(Context(query_chars=1), SPACE.plan({"fuzzy": 20}), 1.0)],
                 Fixed.single(SPACE, "fuzzy"))
