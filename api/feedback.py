"""Feedback: check an event against the page it is about, store it durably, then learn from it."""

from __future__ import annotations

import time
from typing import Final

from api.eventlog import FeedbackEvent, SearchRecord
from api.health import is_outage
from api.schemas import FeedbackIn
from api.service import Service

# A search logged by another process may still be in its writer's queue (it flushes every
# 50 ms): look again for this long before calling the search id unknown.
UNKNOWN_GRACE_S: Final = 0.3


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
                          action=data.action, position=data.position, at=time.time(),
                          user=record.user, query=record.query)
    try:
        created = service.events.add_feedback(event)
    except Exception as exc:
        if is_outage(exc):
            service.health.failed(exc)
            raise FeedbackError("the feedback store is unreachable; retry later", 503) from None
        raise
    if created and service.ready:
        service.indexes.memory.refresh()  # this process sees its own take at once
    return created
