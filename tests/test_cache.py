"""The expiring LRU behind the cache of repeated queries (api.cache)."""

from __future__ import annotations

from api.cache import TtlLru


def test_least_recently_used_goes_first() -> None:
    cache: TtlLru[str] = TtlLru(2, 60.0)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # "b" is now the least recently used
    cache.put("c", "C")
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c"), len(cache)) == ("A", "C", 2)
    assert cache.values() == ["A", "C"]  # oldest first
    assert (cache.hits, cache.misses) == (3, 1)


def test_entries_expire_after_ttl() -> None:
    now = [0.0]
    cache: TtlLru[int] = TtlLru(10, 5.0, lambda: now[0])
    cache.put("k", 1)
    now[0] = 4.9
    assert cache.get("k") == 1
    now[0] = 5.0
    assert cache.get("k") is None
    assert len(cache) == 0  # an expired entry is dropped when found
    cache.put("k", 2)  # a put restarts its time
    now[0] = 9.9
    assert cache.get("k") == 2


def test_capacity_zero_turns_it_off() -> None:
    cache: TtlLru[int] = TtlLru(0, 60.0)
    cache.put("k", 1)
    assert cache.get("k") is None
    assert len(cache) == 0
