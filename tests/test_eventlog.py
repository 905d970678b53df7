"""The search log's reads see a record whether it is still queued or already written, whatever
the writer does between a read's two halves."""

from __future__ import annotations

from typing import Any

import pytest

from api.eventlog import EventLog, SearchRecord
from graph.neo4j_store import Neo4jStore

pytestmark = pytest.mark.neo4j


def test_recent_searches_sees_a_record_the_writer_commits_between_its_reads(
        neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record is queued (not written) when the read starts; the writer commits it and drops
    it from the queue right after the read's store query. It must still be found: the
    reformulation credit depends on it."""
    events = EventLog(neo4j_store)
    events.apply_schema()
    record = SearchRecord(search_id="race-1", at=100.0, query="mis kai i", user="u-race",
                          kinds=[], limit=10, policy="fixed:rrf", plan={}, propensity=1.0,
                          candidates={})
    with events._lock:  # queued, as add_search leaves it for the writer thread
        events._pending[record.search_id] = record
    real = neo4j_store.driver.execute_query

    def store_read_then_writer(query: str, *args: Any, **kwargs: Any) -> Any:
        result = real(query, *args, **kwargs)
        if "s.user = $user" in query:  # recent_searches' store read: the writer runs now
            events._write([record])
        return result

    monkeypatch.setattr(neo4j_store.driver, "execute_query", store_read_then_writer)
    found = events.recent_searches("u-race", 0.0)
    assert [r.search_id for r in found] == ["race-1"]
    assert not events._pending  # the writer did run in between
    assert [r.search_id for r in events.recent_searches("u-race", 0.0)] == ["race-1"]
