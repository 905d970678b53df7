"""Seeded learning test on a rigged environment: fuzzy is right for exact names, text for topics.

The budget (20 candidates) lets a plan give both units to one source or split them. The right
source holds the target for 95% of its class, always below rank 10 (rank 10 + an exponential
of mean 3): in its top 20 for about 92%, never in its top 10. So splitting the budget finds
almost nothing, the best context-blind plan (one source for all) about 0.48, and a policy that
tells the classes apart about 0.9. Every learning policy must end well above uniform choice
and clearly above the best context-blind fixed plan; the margins are several times the spread
across seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from bandit.plan import ActionSpace, SourceSpec
from bandit.policies import EpsilonGreedy, Fixed, LinTS, LinUCB, Policy, SemiBandit
from bandit.policies.vw import VWPolicy
from bandit.synthetic import QueryClass, RiggedEnv, Truth, simulate

DEEP = Truth(0.95, 3, offset=10)
RARE = Truth(0.05, 3, offset=10)
SPACE = ActionSpace((SourceSpec("fuzzy"), SourceSpec("fulltext"), SourceSpec("text"),
                     SourceSpec("memory"), SourceSpec("related", "second")), budget=20, step=10)
CLASSES = (
    QueryClass("name", 0.5, ("shape", "you", "hello", "yellow"),
               {"fuzzy": DEEP, "text": RARE, "fulltext": RARE},
               exact_name=0.9),
    QueryClass("topic", 0.5, ("sad", "chill", "podcast", "crime"),
               {"text": DEEP, "fuzzy": RARE, "memory": Truth(0.05, 2)},
               interpretation="genre"),
)
SEARCHES = 1200
TAIL = 400

LEARNERS: dict[str, Callable[[int], Policy]] = {
    "epsilon-greedy": lambda seed: EpsilonGreedy(SPACE, epsilon=0.1, seed=seed),
    "linucb": lambda seed: LinUCB(SPACE, seed=seed),
    "lints": lambda seed: LinTS(SPACE, seed=seed),
    "semibandit": lambda seed: SemiBandit(SPACE, seed=seed),
    "vw": lambda seed: VWPolicy(SPACE, seed=seed),
}


def tail_recall(policy: Policy, seed: int) -> float:
    env = RiggedEnv(SPACE, CLASSES, seed=seed, rho=0.0, outage=0.02)
    return float(np.mean(simulate(env, policy, SEARCHES).hits[-TAIL:]))


@pytest.fixture(scope="module")
def baselines() -> dict[str, float]:
    return {
        "uniform": tail_recall(EpsilonGreedy(SPACE, epsilon=1.0, seed=0), 0),
        "split": tail_recall(Fixed.equal(SPACE, ["fuzzy", "text"]), 0),
        "fuzzy": tail_recall(Fixed.single(SPACE, "fuzzy"), 0),
    }


def test_rigged_baselines_are_what_the_design_says(baselines: dict[str, float]) -> None:
    assert baselines["split"] < 0.1
    assert 0.4 < baselines["fuzzy"] < 0.55
    assert baselines["uniform"] < 0.4


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_policy_learns_which_source_fits_which_query(name: str,
                                                     baselines: dict[str, float]) -> None:
    recall = [tail_recall(LEARNERS[name](seed), seed) for seed in (1, 2)]
    assert min(recall) > baselines["uniform"] + 0.4, recall
    assert min(recall) > baselines["fuzzy"] + 0.15, recall
