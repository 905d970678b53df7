"""The warm start on the real Neo4j: lessons from the catalog's "tune" half only, learned before
the service is ready on a log with no learning state, by one process, once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from api.service import Service
from api.warmstart import WARM_USER, lessons, subject_half
from graph import server
from graph.memory_store import MemoryStore
from graph.model import Kind
from graph.neo4j_store import Neo4jStore
from retrievers.understand_tables import build_tables
from tests.api_support import TEST_SETTINGS, running_service
from tests.conftest import load_fixture_catalog

WARM = replace(TEST_SETTINGS, policy="semibandit", warm_start=20)


def test_lessons_come_from_the_tune_half_only(memory_catalog: MemoryStore) -> None:
    t = build_tables(memory_catalog)
    taught = lessons(t, per_class=20, seed=0)
    assert taught
    assert all(subject_half(lesson.subject) == "tune" for lesson in taught)
    assert {"songs_of_artist", "name", "title_artist"} <= {lesson.cls for lesson in taught}
    for lesson in taught:
        assert lesson.relevant <= set(t.entities), lesson
    assert lessons(t, per_class=20, seed=0) == taught  # seeded
    # both halves hold subjects, so the benchmark's test half is not empty
    halves = {subject_half(a) for a in t.by_kind[Kind.ARTIST]}
    assert halves == {"tune", "test"}


@pytest.mark.neo4j
def test_a_fresh_log_is_warmed_once_before_any_worker_is_ready(neo4j_server: server.ServerInfo,
                                                 shared_neo4j: Neo4jStore) -> None:
    load_fixture_catalog(shared_neo4j)
    for query in ("MATCH (n) WHERE n:Search OR n:Feedback OR n:Outcome OR n:PolicyState "
                  "OR n:Query DETACH DELETE n", "MATCH (m:Meta) WHERE m.key IN "
                  "['outcomes', 'warm-start'] DETACH DELETE m"):
        shared_neo4j.driver.execute_query(query)
    two = [Service.connect(WARM, neo4j_server.uri) for _ in range(2)]  # two workers at once
    try:
        for svc in two:
            svc.start()
        assert all(svc.wait_ready(180) for svc in two)
        learners = [svc.learner for svc in two]
        assert learners[0] is not None
        assert learners[1] is not None
        assert learners[0].ranker is not None
        warmed = learners[0].seq
        assert warmed > 0  # outcomes applied before ready
        assert learners[1].seq == warmed  # the other waited for the warm start, then learned it
        assert learners[0].ranker.updates > 0  # takes taught the ranker
        users = {r.user for r in two[0].events.searches()}
        assert users == {WARM_USER}  # every warm-start search is marked synthetic
    finally:
        for svc in two:
            svc.close()
    with running_service(neo4j_server.uri, WARM) as again:  # a restart does not warm again
        assert again.learner is not None
        assert again.learner.seq == warmed
