"""Bandit policies: choose + update latency, and candidate recall at equal budget on rigged traffic.

Prints two markdown tables. Usage:

    .venv/bin/python -m bench.bandit_bench [--searches 3000] [--seeds 3] [--timing 2000]

Latency: each policy first learns from 500 searches of the rigged environment
(`bandit.synthetic`, seven sources, budget 60 in steps of 10, 8 hash buckets: a 27-float
context for each of the 35 per-source-and-k models, 57 floats for each of the 28 menu models),
then
`--timing` fresh searches are timed one by one with `perf_counter_ns`: `choose(context)`, and
`update(context, plan, reward)` with the reward of that search (computed outside the timing;
update gets the same Context object, as in the API, so it reuses the features choose made).
Median and p95 of wall time in microseconds, and the median CPU time of this process (less
sensitive to other work on a shared machine).

Recall: every policy runs `--searches` searches on its own copy of the same seeded traffic
(identical contexts and truths per seed; what each source returns depends on the plan),
learning as it goes; candidate recall is the share of searches whose candidate set (at most 60
candidates) holds the entity the user wants. Reported over all searches, the first 500 and the
last 1,000, as the mean over `--seeds` seeds (with the spread across seeds).

Off-policy evaluation (`--ope N`, 0 to skip): N searches logged by the uniform policy over the
menu; candidate-recall estimates (IPS, SNIPS, DR, normal 95% intervals) for a few candidates,
next to each candidate's recall measured on-policy on N fresh searches.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from bandit.ope import evaluate, samples
from bandit.plan import ActionSpace
from bandit.policies import EpsilonGreedy, Fixed, LinTS, LinUCB, Policy, SemiBandit
from bandit.policies.vw import VWPolicy
from bandit.reward import credit
from bandit.synthetic import RiggedEnv, default_classes, default_space, simulate

Factory = Callable[[ActionSpace, int], Policy]


def single(source: str) -> Factory:
    return lambda s, seed: Fixed.single(s, source)


def policies(space: ActionSpace) -> dict[str, Factory]:
    out: dict[str, Factory] = {
        f"fixed single:{x.name}": single(x.name) for x in space.sources if x.stage == "first"
    }
    out["fixed equal:all"] = lambda s, seed: Fixed.equal(s)
    out["fixed rrf:all"] = lambda s, seed: Fixed.rrf(s)
    out["uniform over menu"] = lambda s, seed: EpsilonGreedy(s, epsilon=1.0, seed=seed)
    out["epsilon-greedy"] = lambda s, seed: EpsilonGreedy(s, epsilon=0.1, seed=seed)
    out["LinUCB"] = lambda s, seed: LinUCB(s, seed=seed)
    out["LinTS"] = lambda s, seed: LinTS(s, seed=seed)
    out["VW cb_explore_adf"] = lambda s, seed: VWPolicy(s, seed=seed)
    out["semi-bandit"] = lambda s, seed: SemiBandit(s, seed=seed)
    return out


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q))


def latency(space: ActionSpace, make: Factory, n: int) -> list[float]:
    """Median and p95 (wall) of choose, update and both, then the median CPU time of both."""
    env = RiggedEnv(space, default_classes(), seed=99, outage=0.02)
    policy = make(space, 0)
    simulate(env, policy, 500)
    choose: list[float] = []
    update: list[float] = []
    total: list[float] = []
    cpu: list[float] = []
    for _ in range(n):
        search = env.draw()
        c0, t0 = time.process_time_ns(), time.perf_counter_ns()
        plan = policy.choose(search.context)
        t1, c1 = time.perf_counter_ns(), time.process_time_ns()
        ran, lists = env.run(search, plan)
        reward = credit(ran, lists, env.feedback(search, env.candidate_set(ran, lists)))
        c2, t2 = time.process_time_ns(), time.perf_counter_ns()
        policy.update(search.context, ran, reward)
        t3, c3 = time.perf_counter_ns(), time.process_time_ns()
        choose.append((t1 - t0) / 1e3)
        update.append((t3 - t2) / 1e3)
        total.append((t1 - t0 + t3 - t2) / 1e3)
        cpu.append((c1 - c0 + c3 - c2) / 1e3)
    return [statistics.median(choose), pct(choose, 95), statistics.median(update),
            pct(update, 95), statistics.median(total), pct(total, 95), statistics.median(cpu)]


def recall(space: ActionSpace, make: Factory, searches: int, seeds: int) -> list[list[float]]:
    rows = []
    for seed in range(seeds):
        env = RiggedEnv(space, default_classes(), seed=1000 + seed, outage=0.02)
        hits = np.array(simulate(env, make(space, seed), searches).hits, dtype=float)
        rows.append([hits.mean(), hits[:500].mean(), hits[-1000:].mean()])
    return rows


def ope_table(space: ActionSpace, n: int) -> None:
    log_env = RiggedEnv(space, default_classes(), seed=77)
    logger = EpsilonGreedy(space, epsilon=1.0, seed=0)
    data = samples(simulate(log_env, logger, n, learn=False, keep=True).outcomes, "hit")
    logged = float(np.mean([s.reward for s in data]))
    linucb = LinUCB(space, seed=0)
    simulate(RiggedEnv(space, default_classes(), seed=78), linucb, 3000)
    semi = SemiBandit(space, seed=0)
    simulate(RiggedEnv(space, default_classes(), seed=78), semi, 3000)
    candidates: dict[str, Policy] = {
        "fixed single:fuzzy": Fixed.single(space, "fuzzy"), "fixed equal:all": Fixed.equal(space),
        "fixed rrf:all": Fixed.rrf(space), "LinUCB (frozen after 3,000)": linucb,
        "semi-bandit (frozen after 3,000)": semi,
    }
    print(f"\nLogged by the uniform policy over the menu: {n} searches, observed recall "
          f"{logged:.3f}.\n")
    print("| candidate | IPS | SNIPS | DR | on-policy recall | ESS | mean weight |")
    print("|---|---|---|---|---|---:|---:|")
    for name, policy in candidates.items():
        r = evaluate(data, policy, draws=2)
        hits = np.array(simulate(RiggedEnv(space, default_classes(), seed=79), policy, n,
                                 learn=False).hits, dtype=float)
        half = 1.96 * hits.std() / np.sqrt(n)
        cells = [f"{e.value:.3f} [{e.lo:.3f}, {e.hi:.3f}]" for e in (r.ips, r.snips, r.dr)]
        print(f"| {name} | {' | '.join(cells)} | {hits.mean():.3f} ± {half:.3f} "
              f"| {r.ess:.0f} | {r.mean_weight:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--timing", type=int, default=2000)
    parser.add_argument("--only", default="", help="comma-separated substrings of policy names")
    parser.add_argument("--ope", type=int, default=4000)
    args = parser.parse_args()
    space = default_space()
    chosen = {k: v for k, v in policies(space).items()
              if not args.only or any(s in k for s in args.only.split(","))}

    print("| policy | choose median µs | choose p95 µs | update median µs | update p95 µs "
          "| choose+update median µs | choose+update p95 µs | choose+update median CPU µs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, make in chosen.items():
        if name.startswith("fixed single:") and not name.endswith("fuzzy"):
            continue
        cells = " | ".join(f"{v:.0f}" for v in latency(space, make, args.timing))
        print(f"| {name} | {cells} |", flush=True)

    print()
    print(f"| policy | recall, all {args.searches} | first 500 | last 1,000 "
          f"| last 1,000: min-max over {args.seeds} seeds |")
    print("|---|---:|---:|---:|---|")
    for name, make in chosen.items():
        rows = np.array(recall(space, make, args.searches, args.seeds))
        mean = rows.mean(axis=0)
        print(f"| {name} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} "
              f"| {rows[:, 2].min():.3f}-{rows[:, 2].max():.3f} |", flush=True)
    if args.ope:
        ope_table(space, args.ope)


if __name__ == "__main__":
    main()
