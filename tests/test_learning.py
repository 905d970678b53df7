"""Learning in the service, on the real Neo4j: outcomes settled once and applied in log order by
every process, replay reproducing the parameters, expiry as reward 0, unavailable sources, and
reformulations teaching the memory. Two `Service`s over one Neo4j stand for two API processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from api.feedback import handle_feedback
from api.learning import Learner
from api.schemas import Action, FeedbackIn
from api.service import Service
from api.settings import Settings
from bandit import Outcome, create, decode
from graph import server
from graph.neo4j_store import Neo4jStore
from retrievers.base import Query
from tests.api_support import TEST_SETTINGS, wait_for
from tests.conftest import load_fixture_catalog

pytestmark = pytest.mark.neo4j
LEARNING = replace(TEST_SETTINGS, policy="semibandit", feedback_expiry_s=60.0)


class Clock:
    """A wall clock the test can move forward (feedback windows, reformulation windows)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def catalog(neo4j_server: server.ServerInfo, shared_neo4j: Neo4jStore) -> str:
    load_fixture_catalog(shared_neo4j)
    return neo4j_server.uri


@pytest.fixture
def clean_log(shared_neo4j: Neo4jStore, catalog: str) -> str:
    """The catalog with no searches, feedback, outcomes, policy states or memory."""
    shared_neo4j.driver.execute_query(
        "MATCH (n) WHERE n:Search OR n:Feedback OR n:Outcome OR n:PolicyState OR n:Query "
        "DETACH DELETE n")
    shared_neo4j.driver.execute_query("MATCH (m:Meta {key: 'outcomes'}) DETACH DELETE m")
    return catalog


@pytest.fixture
def two(clean_log: str) -> Iterator[tuple[Service, Service, Clock]]:
    clock = Clock()
    a = Service.connect(LEARNING, clean_log)
    b = Service.connect(LEARNING, clean_log)
    for s in (a, b):
        s.clock = clock
        s.start()
    try:
        assert a.wait_ready(120)
        assert b.wait_ready(120)
        yield a, b, clock
    finally:
        a.close()
        b.close()


def _search(service: Service, q: str, user: str | None = None) -> tuple[str, list[str]]:
    assert service.searcher is not None
    result = service.searcher.search(q, user=user, limit=10, kinds=frozenset())
    return result.page.search_id, [i.id for i in result.page.items]


def _take(service: Service, sid: str, ids: list[str], entity: str,
          action: Action = "play") -> bool:
    return handle_feedback(service, FeedbackIn(sid, entity, action, ids.index(entity)))


def _params(learner: Learner) -> dict[str, object]:
    state: dict[str, object] = learner.policy.state()["params"]
    return state


def test_feedback_to_one_process_reaches_the_others_policy_and_memory(
        two: tuple[Service, Service, Clock]) -> None:
    a, b, _ = two
    assert a.learner is not None
    assert b.learner is not None
    sid, ids = _search(a, "beyonce")
    assert "ar:beyonce" in ids
    assert _take(a, sid, ids, "ar:beyonce")
    a.learner.sync()  # or the service's own loop got there first: applied once either way
    assert a.learner.seq == 1
    assert wait_for(lambda: b.learner is not None and b.learner.seq == 1, timeout=20)
    assert json.dumps(_params(a.learner), sort_keys=True) == \
        json.dumps(_params(b.learner), sort_keys=True)
    assert _params(b.learner) != _fresh_params(b.learner)  # it learnt from a's feedback
    b.indexes.memory.refresh()
    memory = b.indexes.memory.retrieve(Query("beyonce"), 5)
    assert memory[0].entity_id == "ar:beyonce"
    assert memory[0].reason == "taken 1 time"


def _fresh_params(learner: Learner) -> dict[str, object]:
    params: dict[str, object] = create(learner.spec, learner.space, 0).state()["params"]
    return params


def test_outcomes_are_settled_once_and_replay_rebuilds_the_parameters(
        two: tuple[Service, Service, Clock]) -> None:
    a, b, clock = two
    assert a.learner is not None
    assert b.learner is not None
    queries = [("u2", "ar:u2"), ("bjork", "ar:bjork"), ("ac dc", "ar:ac-dc"),
               ("taylor swift", "ar:taylor-swift"), ("ed sheeran", "ar:ed-sheeran")] * 3
    for n, (q, target) in enumerate(queries):
        service = a if n % 2 else b
        sid, ids = _search(service, q)
        clock.now += 1
        if target in ids:
            _take(service, sid, ids, target, "click")
            _take(service, sid, ids, target, "play")  # a second take: no second outcome
    outcomes = a.events.outcomes_after(0)
    assert len(outcomes) == len({decode(d).search_id for _, d in outcomes})  # once each
    assert [s for s, _ in outcomes] == list(range(1, len(outcomes) + 1))
    a.learner.sync()
    b.learner.sync()
    fresh = a.learner.replica(seed=123)
    fresh.sync()  # replay from the start of the log
    assert fresh.seq == a.learner.seq == b.learner.seq == len(outcomes)
    for learner in (b.learner, fresh):
        assert json.dumps(_params(learner), sort_keys=True) == \
            json.dumps(_params(a.learner), sort_keys=True)
    assert fresh.hit_rates == a.learner.hit_rates
    assert a.learner.ranker is not None
    assert fresh.ranker is not None
    assert np.array_equal(fresh.ranker.weights, a.learner.ranker.weights)
    assert not np.array_equal(a.learner.ranker.weights, a.learner.ranker.baseline_weights())


def test_searches_without_feedback_expire_as_reward_zero(two: tuple[Service, Service, Clock]
                                                         ) -> None:
    a, _, clock = two
    assert a.learner is not None
    sid, _ = _search(a, "led zeppelin")
    assert a.learner.settle_expired() == 0  # its window is still open
    clock.now += LEARNING.feedback_expiry_s + 1
    assert wait_for(lambda: a.events.get_search(sid) is not None and not a.events._pending)
    assert a.learner.settle_expired() >= 1
    rows = a.events.outcomes_after(0)
    outcome = next(o for _, d in rows if isinstance(o := decode(d), Outcome)
                   and o.search_id == sid)
    assert outcome.reward.expired
    assert outcome.reward.value == 0.0
    assert not outcome.reward.hit
    assert a.learner.settle_expired() == 0  # settled once


def test_a_failing_source_is_unavailable_never_a_miss(two: tuple[Service, Service, Clock]
                                                      ) -> None:
    a, _, clock = two
    assert a.searcher is not None
    assert a.learner is not None
    idx = a.indexes
    broken = dict(idx.retrievers)

    class Broken:
        name = "memory"

        def retrieve(self, query: object, k: int) -> list[object]:
            raise RuntimeError("memory store on fire")

    broken["memory"] = Broken()  # type: ignore[assignment]
    a._indexes = replace(idx, retrievers=broken)
    try:
        result = a.searcher.search("sia", user=None, limit=10, kinds=frozenset())
    finally:
        a._indexes = idx
    if result.plan.k("memory"):
        assert "memory" in result.record.unavailable
        assert "memory" in result.plan.unavailable
    sid, ids = result.page.search_id, [i.id for i in result.page.items]
    assert "ar:sia" in ids
    _take(a, sid, ids, "ar:sia")
    outcome = next(o for _, d in a.events.outcomes_after(0)
                   if isinstance(o := decode(d), Outcome) and o.search_id == sid)
    assert outcome.reward.outcome("memory") is None or not result.plan.k("memory")
    assert all(np.isfinite(v).all() for v in _numbers(a.learner.policy.state()["params"]))
    clock.now += 1


def _numbers(params: object) -> list[np.ndarray]:
    if isinstance(params, dict):
        return [x for v in params.values() for x in _numbers(v)]
    if isinstance(params, list):
        try:
            return [np.asarray(params, dtype=float)]
        except (TypeError, ValueError):
            return [x for v in params for x in _numbers(v)]
    if isinstance(params, int | float):
        return [np.asarray([params], dtype=float)]
    return []


def test_a_reformulation_teaches_the_memory_for_other_users(
        two: tuple[Service, Service, Clock]) -> None:
    a, b, clock = two
    variant = "rihana"  # one letter short: users type it
    _, ids1 = _search(a, variant, user="u1")
    clock.now += 20
    sid2, ids2 = _search(a, "rihanna", user="u1")
    assert "ar:rihanna" in ids2
    _take(a, sid2, ids2, "ar:rihanna", "play")
    b.indexes.memory.refresh()
    weights = b.indexes.memory.weights(variant)
    assert "ar:rihanna" in weights
    assert weights["ar:rihanna"][0] == pytest.approx(LEARNING.reformulation_weight, rel=0.01)
    direct = b.indexes.memory.weights("rihanna")["ar:rihanna"][0]
    assert weights["ar:rihanna"][0] < direct  # weaker than a direct take
    _, ids3 = _search(b, variant, user="u2")
    assert "ar:rihanna" in ids3
    assert "ar:rihanna" not in ids1 or ids1.index("ar:rihanna") >= ids3.index("ar:rihanna")


def test_a_slow_reformulation_is_not_one(two: tuple[Service, Service, Clock]) -> None:
    a, _, clock = two
    _search(a, "florence machin", user="u3")
    clock.now += LEARNING.reformulation_window_s + 5
    sid, ids = _search(a, "florence the machine", user="u3")
    target = next(i for i in ids if i.startswith("ar:florence"))
    _take(a, sid, ids, target)
    a.indexes.memory.refresh()
    assert target not in a.indexes.memory.weights("florence machin") or \
        a.indexes.memory.weights("florence machin")[target][1] == "predicted query"


def test_admin_reset_reaches_every_process(two: tuple[Service, Service, Clock]) -> None:
    a, b, _ = two
    assert a.learner is not None
    assert b.learner is not None
    sid, ids = _search(a, "the beatles")
    _take(a, sid, ids, "ar:the-beatles")
    a.learner.sync()
    assert _params(a.learner) != _fresh_params(a.learner)
    a.learner.reset()
    assert _params(a.learner) == _fresh_params(a.learner)
    epoch = a.learner.epoch
    assert wait_for(lambda: b.learner is not None and b.learner.epoch == epoch, timeout=30)
    assert _params(b.learner) == _fresh_params(b.learner)


def test_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="TUNEGRAPH_BUDGET"):
        Settings.from_env({"TUNEGRAPH_BUDGET": "many"})
    assert Settings.from_env({"TUNEGRAPH_POLICY": "linucb"}).policy == "linucb"
