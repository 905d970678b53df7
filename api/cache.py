"""A bounded, expiring LRU of source answers, kept per catalog snapshot.

Every source but the click memory answers a query from the catalog alone, so within one catalog
version the same (source, query, k) gets the same candidates. Search traffic repeats its
head queries, and a repeat need not pay the Lucene query, the graph traversal or the
fuzzy rerank again. The cache lives on the `Indexes` of one catalog version, so a new version
starts empty; entries also expire after `ttl_s`, which bounds how long an answer can outlive
anything the version does not capture (Neo4j's full-text index refreshes asynchronously after an
ingest). A hit for a store-backed source costs no store round trip (once the store is known to
be down, plans leave the store-backed sources out, cached or not). `functools.lru_cache` has
neither expiry nor a way to look without computing, which the search path needs (it decides per
source whether to call the store at all).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlLru(Generic[V]):
    """At most `capacity` entries, least recently used evicted first, each valid `ttl_s`.
    `capacity` 0 turns it off. Thread-safe; values should be immutable (tuples)."""

    def __init__(self, capacity: int, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        if self.capacity <= 0:
            return None
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= now:
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, value: V) -> None:
        if self.capacity <= 0:
            return
        expires = self._clock() + self.ttl_s
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def values(self) -> list[V]:
        """The values held now (expired ones too, until looked up), oldest first."""
        with self._lock:
            return [value for _, value in self._entries.values()]

    def __len__(self) -> int:
        return len(self._entries)
