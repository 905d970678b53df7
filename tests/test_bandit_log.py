"""The decision log: stable JSON for every record, replay reproducing parameters exactly, and
settling outcomes from raw decisions and feedback."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from bandit.log import (
    Decision,
    Outcome,
    Record,
    decode,
    decode_lines,
    encode,
    encode_lines,
    replay,
    settle_log,
)
from bandit.plan import ActionSpace
from bandit.policies import EpsilonGreedy, LinTS, LinUCB, Policy, SemiBandit
from bandit.policies.vw import VWPolicy
from bandit.reward import Feedback, RewardConfig
from bandit.synthetic import RiggedEnv, default_classes, default_space, simulate

SPACE = default_space()
LEARNERS: dict[str, Callable[[ActionSpace], Policy]] = {
    "epsilon-greedy": lambda s: EpsilonGreedy(s, epsilon=0.2, seed=5),
    "linucb": lambda s: LinUCB(s, seed=5),
    "lints": lambda s: LinTS(s, seed=5),
    "semibandit": lambda s: SemiBandit(s, seed=5),
    "vw": lambda s: VWPolicy(s, seed=5),
}


def params(policy: Policy) -> str:
    if isinstance(policy, VWPolicy):
        return policy.weights()
    return json.dumps(policy.state()["params"], sort_keys=True)


@pytest.fixture(scope="module")
def log() -> list[Record]:
    env = RiggedEnv(SPACE, default_classes(), seed=8, outage=0.05)
    trace = simulate(env, SemiBandit(SPACE, seed=1), 60, keep=True)
    records: list[Record] = []
    for d, o in zip(trace.decisions, trace.outcomes, strict=True):
        records.append(d)
        if o.reward.taken:
            records.append(Feedback(d.search_id, o.reward.taken[0], "play", 0, d.ts + 1))
        records.append(o)
    return records


def test_every_record_round_trips_to_the_same_bytes(log: list[Record]) -> None:
    kinds = {type(r) for r in log}
    assert kinds == {Decision, Feedback, Outcome}
    for r in log:
        line = encode(r)
        assert decode(line) == r
        assert encode(decode(line)) == line
    assert decode_lines(encode_lines(log)) == log


def test_json_is_tagged_with_a_fixed_key_order(log: list[Record]) -> None:
    for r in log[:6]:
        obj = json.loads(encode(r))
        assert obj["type"] in {"decision", "feedback", "outcome"}
        if obj["type"] == "decision":
            assert list(obj) == ["type", "search_id", "ts", "context", "plan", "candidates"]
            assert list(obj["candidates"]) == sorted(obj["candidates"])  # maps: sorted keys
            assert 0 < obj["plan"]["propensity"] <= 1


def test_decode_rejects_unknown_fields() -> None:
    with pytest.raises(Exception, match="unknown"):
        decode(b'{"type":"feedback","search_id":"s","entity_id":"e","action":"play",'
               b'"position":0,"ts":1.0,"extra":1}')


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_replay_reproduces_parameters_exactly(name: str) -> None:
    env = RiggedEnv(SPACE, default_classes(), seed=4, outage=0.05)
    live = LEARNERS[name](SPACE)
    trace = simulate(env, live, 250, keep=True)
    # the log as it would come back from storage: bytes, then records
    records = decode_lines(encode_lines(trace.outcomes))
    fresh = LEARNERS[name](SPACE)
    assert params(fresh) != params(live)
    assert replay(records, fresh) == 250
    assert params(fresh) == params(live)


def test_replay_from_a_snapshot_matches_a_full_replay() -> None:
    env = RiggedEnv(SPACE, default_classes(), seed=6)
    trace = simulate(env, SemiBandit(SPACE, seed=2), 200, keep=True)
    full = SemiBandit(SPACE, seed=2)
    replay(trace.outcomes, full)
    half = SemiBandit(SPACE, seed=2)
    replay(trace.outcomes[:120], half)
    resumed = SemiBandit.from_state(json.loads(json.dumps(half.state())))
    replay(trace.outcomes[120:], resumed)
    assert params(resumed) == params(full)


def test_settle_log_makes_outcomes_for_closed_windows_only(log: list[Record]) -> None:
    decisions = [r for r in log if isinstance(r, Decision)]
    feedback = [r for r in log if isinstance(r, Feedback)]
    cfg = RewardConfig(timeout_s=30)
    last = decisions[-1].ts
    out = settle_log([*decisions, *feedback], now=last + 29, config=cfg)
    assert [o.search_id for o in out] == [d.search_id for d in decisions if d.ts + 30 <= last + 29]
    with_taken = {f.search_id for f in feedback}
    for o in out:
        assert o.reward.expired == (o.search_id not in with_taken)
        assert o.reward.hit == (o.search_id in with_taken)
    already = settle_log([*decisions, *feedback, *[r for r in log if isinstance(r, Outcome)]],
                         now=last + 100, config=cfg)
    assert already == []


def test_outcomes_rebuilt_from_raw_logs_teach_the_same(log: list[Record]) -> None:
    """Outcomes settled from decisions + feedback give the policy what the live rewards gave,
    for searches whose take the log recorded."""
    decisions = [r for r in log if isinstance(r, Decision)]
    feedback = [r for r in log if isinstance(r, Feedback)]
    rebuilt = settle_log([*decisions, *feedback], now=1e9)
    live = [r for r in log if isinstance(r, Outcome)]
    a, b = SemiBandit(SPACE), SemiBandit(SPACE)
    replay(rebuilt, a)
    replay(live, b)
    np.testing.assert_allclose(a.bank.theta, b.bank.theta, atol=1e-12)
