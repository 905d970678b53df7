"""`tunegraph evaluate-policy` on a small real decision log in the test session's Neo4j, with a
known structure: a logging policy that chose between two plans with probability 1/2 each, one
always rewarded and one never. A candidate that always takes the good plan is worth 1 (IPS and
SNIPS exactly), one that takes the bad plan 0, and the logging policy observed 1/2."""

from __future__ import annotations

import json
import random
import re

import pytest

from api.cli import main
from api.eventlog import EventLog
from bandit import ActionSpace, Context, Outcome, SourceFeatures, create, credit, encode
from bandit.reward import Feedback
from bench.sim_ope import evaluate_log, logged_space, read_outcomes, split
from graph import server
from graph.neo4j_store import Neo4jStore

pytestmark = pytest.mark.neo4j
SPACE = ActionSpace.of(["fuzzy", "fulltext"], ["related"], budget=20, step=10)
N = 40


# Half the searches went to the good plan, in a seeded order: a strictly alternating log
# would put every good search in one of DR's two cross-fitting folds (they are index % 2) and
# fit each fold's reward model on the other plan alone.
GOOD = frozenset(random.Random(3).sample(range(N), N // 2))


def _outcome(i: int) -> Outcome:
    good = i in GOOD
    plan = SPACE.plan({"fuzzy" if good else "fulltext": 20}, propensity=0.5,
                      policy="epsilon_greedy")
    found = {"fuzzy": ("ar:1", "ar:2")} if good else {"fulltext": ("ar:3",)}
    taken = [Feedback(f"s{i}", "ar:1", "play", 0, 10.0 * i + 1)] if good else []
    ctx = Context(query_chars=6 + i % 5, tokens=("q", str(i % 3)),
                  sources=(SourceFeatures("fuzzy", n_results=2, top_score=0.9),))
    return Outcome(f"s{i}", 10.0 * i + 5, ctx, plan, credit(plan, found, taken))


@pytest.fixture
def log(neo4j_store: Neo4jStore, neo4j_server: server.ServerInfo) -> str:
    events = EventLog(neo4j_store)
    events.apply_schema()
    for i in range(N):
        assert events.add_outcome(f"s{i}", encode(_outcome(i))) == i + 1
    state = {"policy": create("fixed:rrf", SPACE).state()}
    events.save_policy("epsilon_greedy/test", N, json.dumps(state).encode(), 0)
    return neo4j_server.uri


def _value(text: str, policy: str, method: str) -> float:
    m = re.search(rf"^\| {re.escape(policy)} \| {method} \| ([-0-9.]+) \|", text, re.M)
    assert m is not None, text
    return float(m.group(1))


def test_estimates_on_a_log_of_known_structure(log: str, neo4j_store: Neo4jStore) -> None:
    rows = read_outcomes(neo4j_store)
    assert [s for s, _ in rows] == list(range(1, N + 1))
    assert logged_space(neo4j_store, [o for _, o in rows]) == SPACE
    good = evaluate_log(neo4j_store, "fixed:single:fuzzy")
    assert _value(good, "logging policy", "observed") == pytest.approx(0.5)
    assert _value(good, "fixed:single:fuzzy", "IPS") == pytest.approx(1.0)
    assert _value(good, "fixed:single:fuzzy", "SNIPS") == pytest.approx(1.0)
    assert 0.8 < _value(good, "fixed:single:fuzzy", "DR") < 1.2
    assert "logged by: epsilon_greedy 40" in good
    bad = evaluate_log(neo4j_store, "fixed:single:fulltext", metric="hit")
    assert _value(bad, "fixed:single:fulltext", "IPS") == pytest.approx(0.0)
    assert _value(bad, "logging policy", "observed") == pytest.approx(0.5)


def test_since_trains_on_the_head_and_evaluates_on_the_tail(log: str,
                                                            neo4j_store: Neo4jStore) -> None:
    parts = split(read_outcomes(neo4j_store), "30")
    assert (len(parts.train), len(parts.test)) == (30, 10)
    text = evaluate_log(neo4j_store, "epsilon_greedy", since="30")
    assert "learnt from 30, evaluated on 10" in text


def test_the_command_prints_the_report(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate-policy", "--uri", log, "--candidate", "fixed:single:fuzzy"]) == 0
    out = capsys.readouterr().out
    assert _value(out, "fixed:single:fuzzy", "IPS") == pytest.approx(1.0)
    assert "effective sample size" in out
    assert main(["evaluate-policy", "--uri", log, "--since", str(N)]) == 1  # nothing after it
