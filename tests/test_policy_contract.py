"""Contract over every policy: valid plans within budget, exact propensities in (0, 1], seeded
reproducibility, a lossless JSON state; plus the action space's budget rules and the features."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import msgspec
import numpy as np
import pytest

from bandit.context import Context, Featurizer, Interpretation, SourceFeatures
from bandit.plan import ActionSpace, Plan, SourceSpec, default_menu, restrict
from bandit.policies import EpsilonGreedy, Fixed, LinTS, LinUCB, Policy, SemiBandit, create, load
from bandit.policies.base import rng_state
from bandit.policies.vw import VWPolicy
from bandit.synthetic import RiggedEnv, Search, default_classes, default_space, simulate

SPACE = default_space()
Factory = Callable[[ActionSpace, int], Policy]
FACTORIES: dict[str, Factory] = {
    "fixed-single": lambda s, seed: Fixed.single(s, "fuzzy"),
    "fixed-equal": lambda s, seed: Fixed.equal(s),
    "fixed-rrf": lambda s, seed: Fixed.rrf(s),
    "epsilon-greedy": lambda s, seed: EpsilonGreedy(s, epsilon=0.2, seed=seed),
    "linucb": lambda s, seed: LinUCB(s, floor=0.05, seed=seed),
    "lints": lambda s, seed: LinTS(s, floor=0.02, seed=seed),
    "semibandit": lambda s, seed: SemiBandit(s, seed=seed),
    "vw": lambda s, seed: VWPolicy(s, seed=seed),
}


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest) -> Factory:
    return FACTORIES[request.param]


def trained(make: Factory, seed: int = 0, n: int = 150) -> tuple[Policy, RiggedEnv]:
    env = RiggedEnv(SPACE, default_classes(), seed=seed, outage=0.05)
    policy = make(SPACE, seed)
    simulate(env, policy, n)
    return policy, env


def with_down(search: Search, down: set[str]) -> Context:
    sources = tuple(msgspec.structs.replace(f, available=f.name not in down)
                    for f in search.context.sources)
    return msgspec.structs.replace(search.context, sources=sources)


OUTAGES = [set(), {"fuzzy"}, {"text", "related"}, {"fuzzy", "fulltext", "understand"},
           {"fuzzy", "fulltext", "understand", "text", "memory"}]


def test_plans_valid_with_exact_propensity(make: Factory) -> None:
    policy, env = trained(make)
    for i in range(100):
        down = OUTAGES[i % len(OUTAGES)]
        ctx = with_down(env.draw(), down)
        plan = policy.choose(ctx)
        assert SPACE.check(plan) == [], plan
        assert 0.0 < plan.propensity <= 1.0
        assert not down & set(plan.sources)
        assert plan.policy == policy.kind
        assert policy.probability(ctx, plan) == pytest.approx(plan.propensity, rel=1e-9)


def test_propensity_is_the_choice_frequency(make: Factory) -> None:
    """Draw many plans for one context with a separate RNG: each plan's share of draws matches
    its stated probability (within 4.5 binomial standard deviations)."""
    policy, env = trained(make, n=300)
    ctx = env.draw().context
    rng = np.random.default_rng(7)
    n = 3000
    plans = [policy.sample(ctx, rng) for _ in range(n)]
    counts = Counter(p.key for p in plans)
    first = {p.key: p for p in reversed(plans)}
    for key, count in counts.most_common(3):
        p = policy.probability(ctx, first[key])
        assert first[key].propensity == pytest.approx(p, rel=1e-9)
        assert abs(count / n - p) <= 4.5 * np.sqrt(p * (1 - p) / n) + 0.01, (key, count, p)
    total = sum(policy.probability(ctx, first[k]) for k in counts)
    assert total <= 1.0 + 1e-4  # LinTS: quadrature error


def test_probability_and_sample_leave_the_rng_alone(make: Factory) -> None:
    policy, env = trained(make)
    ctx = env.draw().context
    before = rng_state(policy.rng)  # type: ignore[attr-defined]
    plan = policy.sample(ctx, np.random.default_rng(1))
    policy.probability(ctx, plan)
    assert rng_state(policy.rng) == before  # type: ignore[attr-defined]


def test_seeded_reproducibility(make: Factory) -> None:
    runs = []
    for _ in range(2):
        env = RiggedEnv(SPACE, default_classes(), seed=11, outage=0.05)
        policy = make(SPACE, 3)
        trace = simulate(env, policy, 150, keep=True)
        runs.append([encode_plan(d.plan) for d in trace.decisions])
    assert runs[0] == runs[1]


def encode_plan(plan: Plan) -> bytes:
    return msgspec.json.encode(plan)


def test_state_round_trip(make: Factory) -> None:
    policy, env = trained(make)
    state = json.loads(json.dumps(policy.state()))
    twin = load(state)
    assert type(twin) is type(policy)
    assert fingerprint(twin) == fingerprint(policy)
    searches = [env.draw() for _ in range(40)]
    a = [encode_plan(policy.choose(s.context)) for s in searches]
    b = [encode_plan(twin.choose(s.context)) for s in searches]
    assert a == b


def fingerprint(policy: Policy) -> str:
    """The whole state as JSON; for VW its weights stand for the model bytes, which also hold
    example counters that a reload resets."""
    state = policy.state()
    if isinstance(policy, VWPolicy):
        state["params"]["model"] = policy.weights()
    return json.dumps(state, sort_keys=True)


def test_state_is_plain_json(make: Factory) -> None:
    policy, _ = trained(make, n=20)
    state = policy.state()
    assert json.loads(json.dumps(state)) == state
    assert state["policy"] == policy.kind


def test_all_sources_down_falls_back(make: Factory) -> None:
    policy, env = trained(make, n=20)
    ctx = with_down(env.draw(), {s.name for s in SPACE.sources})
    plan = policy.choose(ctx)
    assert plan.ks == ()
    assert plan.propensity == 1.0
    assert SPACE.check(plan) == []


# ---- the action space and its budget rules ----------------------------------------------

def test_menu_plans_are_valid_and_distinct() -> None:
    menu = default_menu(SPACE)
    assert all(SPACE.check(p) == [] for p in menu)
    assert len({p.key for p in menu}) == len(menu)
    names = {p.name for p in menu}
    assert {"single:fuzzy", "equal:all", "rrf:all"} <= names
    assert not any(n.startswith("single:related") for n in names)  # an expander needs seeds


def test_check_names_each_broken_rule() -> None:
    good = SPACE.plan({"fuzzy": 30, "related": 30})
    assert SPACE.check(good) == []
    broken = {
        "exceeds": SPACE.plan({"fuzzy": 40, "text": 30}),
        "without any first-stage": SPACE.plan({"related": 20}),
        "outside": SPACE.plan({"memory": 30}),  # memory's k_max is 20
        "propensity": SPACE.plan({"fuzzy": 10}, propensity=0.0),
        "unknown": Plan((("nosuch", 10),), SPACE.budget),
        "budget": Plan((("fuzzy", 10),), 50),
    }
    for words, plan in broken.items():
        assert any(words in p for p in SPACE.check(plan)), (words, SPACE.check(plan))


def test_full_allocations_use_the_budget_and_respect_outages() -> None:
    full = SPACE.full_allocations(frozenset())
    assert (full.sum(axis=1) == SPACE.units).all()
    assert (full <= np.array(SPACE.unit_caps())).all()
    down = SPACE.full_allocations(frozenset({"fuzzy", "fulltext", "text"}))
    i = [SPACE.names.index(n) for n in ("fuzzy", "fulltext", "text")]
    assert (down[:, i] == 0).all()
    assert (down.sum(axis=1) == SPACE.units).all()  # understand 3 + memory 2 + expanders
    assert all(SPACE.feasible(row.tolist(), frozenset()) for row in full)


def test_restrict_moves_the_share_of_a_down_source() -> None:
    plan = SPACE.plan({"fuzzy": 20, "text": 20, "related": 20}, name="x")
    moved = restrict(SPACE, plan, frozenset({"text"}))
    assert moved.k("text") == 0
    assert moved.total == 60
    assert moved.k("fuzzy") == 30
    assert moved.k("related") == 30
    orphan = restrict(SPACE, SPACE.plan({"fuzzy": 40, "kge": 20}), frozenset({"fuzzy"}))
    assert "kge" not in orphan.sources
    assert SPACE.check(orphan) == []


def test_latency_cost_keeps_costly_sources_off() -> None:
    specs = tuple(msgspec.structs.replace(s, cost=0.5 if s.name == "text" else 0.0)
                  for s in SPACE.sources)
    space = msgspec.structs.replace(SPACE, sources=specs, latency_weight=1.0)
    policy = SemiBandit(space, seed=0)
    env = RiggedEnv(space, default_classes(), seed=2)
    trace = simulate(env, policy, 300, keep=True)
    runs_text = np.mean([d.plan.k("text") > 0 for d in trace.decisions[-100:]])
    free = SemiBandit(SPACE, seed=0)
    free_trace = simulate(RiggedEnv(SPACE, default_classes(), seed=2), free, 300, keep=True)
    runs_text_free = np.mean([d.plan.k("text") > 0 for d in free_trace.decisions[-100:]])
    assert runs_text < runs_text_free - 0.3


def test_space_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="unique"):
        ActionSpace((SourceSpec("a"), SourceSpec("a")))
    with pytest.raises(ValueError, match="first-stage"):
        ActionSpace((SourceSpec("a", "second"),))
    with pytest.raises(ValueError, match="step"):
        ActionSpace((SourceSpec("a"),), budget=5, step=10)


# ---- features ---------------------------------------------------------------------------

CTX = Context(query_chars=11, tokens=("tayler", "love"), script="latin", has_digits=False,
              exact_name=True, interpretations=(Interpretation("artist+song", 0.7),),
              memory_hits=3, user_history=40, user_genres=("g:pop",), hour=21, weekday=4,
              sources=(SourceFeatures("fuzzy", 0.6, 12, 0.8, 0.1),))


def test_features_fixed_length_and_informative() -> None:
    f = Featurizer(hash_dim=16)
    x = f.shared(CTX)
    assert x.shape == (f.shared_dim,)
    assert np.isfinite(x).all()
    other = f.shared(msgspec.structs.replace(CTX, tokens=("sad", "trap"), exact_name=False))
    assert not np.array_equal(x, other)
    per = f.sources(CTX, ["fuzzy", "text"])
    assert per.shape == (2, 5)
    assert per[0, 0] == pytest.approx(0.6)
    assert (per[1] == 0).all()


def test_hashing_is_stable_across_processes() -> None:
    code = ("from tests.test_policy_contract import CTX; from bandit.context import Featurizer;"
            "print(Featurizer().shared(CTX).tolist())")
    outs = set()
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={"PYTHONHASHSEED": seed, "PATH": ""})
        outs.add(out.stdout)
    assert len(outs) == 1
    assert json.loads(outs.pop()) == Featurizer().shared(CTX).tolist()


def test_create_from_a_settings_string() -> None:
    kinds = {"semibandit": "semibandit", "linucb": "linucb", "lints": "lints",
             "epsilon_greedy": "epsilon_greedy", "vw": "vw", "fixed:equal": "fixed",
             "fixed:rrf": "fixed", "fixed:single:text": "fixed"}
    for spec, kind in kinds.items():
        assert create(spec, SPACE, seed=1).kind == kind
    assert create("fixed:single:text", SPACE).choose(CTX).sources == ("text",)
    with pytest.raises(ValueError, match="unknown"):
        create("ucb2", SPACE)
    with pytest.raises(ValueError, match="no source"):
        create("fixed:single:nosuch", SPACE)


def test_semibandit_counts_its_neighbours_exactly() -> None:
    policy = SemiBandit(SPACE)
    rng = np.random.default_rng(0)
    for _ in range(300):
        blocked = [bool(b) for b in rng.random(len(SPACE.sources)) < 0.2]
        down = frozenset(n for n, b in zip(SPACE.names, blocked, strict=True) if b)
        table = SPACE.full_allocations(down)
        units = tuple(int(u) for u in table[int(rng.integers(len(table)))])
        near = policy.neighbours(units, blocked)
        assert policy._count_moves(units, blocked) == len(near) == len(set(near))
        assert all(SPACE.feasible(a, down) for a in near)
