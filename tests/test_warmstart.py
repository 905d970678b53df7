"""The warm start on the real Neo4j: lessons from the catalog's "tune" half only, learned before
the service is ready on a log with no learning state, by one process, once."""

from __future__ import annotations

from dataclasses import replace

import pytest

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
def test_a_fresh_log_is_warmed_once_before_ready(neo4j_server: server.ServerInfo,
                                                 shared_neo4j: Neo4jStore) -> None:
    load_fixture_catalog(shared_neo4j)
    for query in ("MATCH (n) WHERE n:Search OR n:Feedback OR n:Outcome OR n:PolicyState "
                  "OR n:Query DETACH DELETE n", "MATCH (m:Meta) WHERE m.key IN "
                  "['outcomes', 'warm-start'] DETACH DELETE m"):
        shared_neo4j.driver.execute_query(query)
    with running_service(neo4j_server.uri, WARM) as svc:
        learner = svc.learner
        assert learner is not None
        assert learner.ranker is not None
        warmed = learner.seq
        assert warmed > 0  # outcomes applied before ready
        assert learner.ranker.updates > 0  # takes taught the ranker
        users = {r.user for r in svc.events.searches()}
        assert users == {WARM_USER}  # every warm-start search is marked synthetic
    with running_service(neo4j_server.uri, WARM) as again:  # a restart does not warm again
        assert again.learner is not None
        assert again.learner.seq == warmed
