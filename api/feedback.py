"""Feedback: check an event against the page it is about, store it durably, then learn from it."""

from __future__ import annotations

import time
from typing import Final

from api.eventlog import TAKE_WEIGHT, FeedbackEvent, SearchRecord
from api.health import is_outage
from api.schemas import FeedbackIn
from api.service import Service
from retrievers.memory import query_key

# A search logged by another process may still be in its writer's queue (it flushes every
# api.eventlog.FLUSH_S, 250 ms): look again for this long before calling the search id unknown.
UNKNOWN_GRACE_S: Final = 0.8


class FeedbackError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _find_search(service: Service, search_id: str) -> SearchRecord | None:
    end = time.monotonic() + UNKNOWN_GRACE_S
    while True:
        record = service.events.get_search(search_id)
        if record is not None or time.monotonic() >= end:
            return record
        time.sleep(0.05)


def handle_feedback(service: Service, data: FeedbackIn) -> bool:
    """Store the event (True) or recognise a retry of a stored one (False); raise FeedbackError
    for events about no page (404), not about that page (422), or when the store is down (503):
    an event is acknowledged only once it is stored."""
    try:
        record = _find_search(service, data.search_id)
    except Exception as exc:
        if is_outage(exc):
            service.health.failed(exc)
            raise FeedbackError("the feedback store is unreachable; retry later", 503) from None
        raise
    if record is None:
        raise FeedbackError(f"unknown search_id {data.search_id!r}", 404)
    if data.entity_id not in record.page:
        raise FeedbackError(f"entity {data.entity_id!r} was not on the page of search "
                            f"{data.search_id!r}", 422)
    shown_at = record.page.index(data.entity_id)
    if data.position != shown_at:
        raise FeedbackError(f"entity {data.entity_id!r} was at position {shown_at} of that "
                            f"page, not {data.position}", 422)
    event = FeedbackEvent(search_id=data.search_id, entity_id=data.entity_id,
                          action=data.action, position=data.position, at=service.clock(),
                          user=record.user, query=record.query)
    take = TAKE_WEIGHT[event.action] > 0
    try:
        earlier = _given_up(service, record) if take else []
        created = service.events.add_feedback(event, earlier)
        if created and take and service.learner is not None:
            feedback = service.events.feedback_for([record.search_id]).get(record.search_id, [])
            service.learner.settle_take(record, feedback)  # once: later takes find it settled
    except Exception as exc:
        if is_outage(exc):
            service.health.failed(exc)
            raise FeedbackError("the feedback store is unreachable; retry later", 503) from None
        raise
    if created and service.ready:
        service.indexes.memory.refresh()  # this process sees its own take at once
        service.users.forget(record.user)
    return created


def _given_up(service: Service, record: SearchRecord) -> list[tuple[str, float]]:
    """Reformulations: the same user's searches just before this one, with other words and no
    take. Each earlier query is credited with the take at a lower weight."""
    window, weight = (service.settings.reformulation_window_s,
                      service.settings.reformulation_weight)
    if not record.user or window <= 0 or weight <= 0:
        return []
    before = [r for r in service.events.recent_searches(record.user, record.at - window)
              if r.at < record.at and r.search_id != record.search_id
              and query_key(r.query) != query_key(record.query)]
    if not before:
        return []
    taken = service.events.feedback_for([r.search_id for r in before])
    return [(r.query, weight) for r in before
            if not any(TAKE_WEIGHT[e.action] > 0 for e in taken.get(r.search_id, []))]
