"""A search's context for the policy: query, readings, probes of the cheap sources, user, time.

The in-process sources (fuzzy names, the click memory) are cheap enough to run before the plan
is chosen; their result counts, top scores and score gaps become per-source features, and their
lists are reused (cut to the plan's k) rather than run twice. Sources that read the store are
never probed. The user's history size and top genres come from their stored feedback, cached a
short while per user.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from api.cards import Cards
from api.eventlog import EventLog
from bandit import Context, Interpretation, SourceFeatures
from retrievers.base import Candidate
from retrievers.memory import query_key
from retrievers.understand import Interpretation as Reading

USER_TTL_S: Final = 30.0
USER_CACHE: Final = 10_000
TOP_GENRES: Final = 3


def script(text: str) -> str:
    """The script of the query's first letter: latin, cyrillic, greek, cjk, arabic, ... ."""
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            if name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")):
                return "cjk"
            return name.split(" ")[0].lower() or "other"
    return "none"


def reading_kind(r: Reading) -> str:
    if r.similar:
        return "similar"
    if r.entity is not None:
        return "artist+song"
    if r.artist is not None:
        return "artist"
    if r.genres:
        return "genre"
    if r.years is not None:
        return "decade"
    if r.kinds:
        return "kind:" + "+".join(sorted(k.value for k in r.kinds))
    return "text"


def source_features(name: str, found: Sequence[Candidate], hit_rate: float,
                    available: bool = True) -> SourceFeatures:
    top = found[0].score if found else 0.0
    gap = top - found[1].score if len(found) > 1 else top
    return SourceFeatures(name, hit_rate=hit_rate, n_results=float(len(found)),
                          top_score=max(0.0, min(1.0, top)), score_gap=max(0.0, min(1.0, gap)),
                          available=available)


class UserStats:
    """Per-user history size and top genres, from the stored feedback, cached USER_TTL_S."""

    def __init__(self, events: EventLog, cards: Callable[[], Cards]) -> None:
        self.events = events
        self.cards = cards
        self._cache: dict[str, tuple[float, int, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def get(self, user: str | None) -> tuple[int, tuple[str, ...]]:
        if not user:
            return 0, ()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(user)
        if hit is not None and now - hit[0] < USER_TTL_S:
            return hit[1], hit[2]
        try:
            count, taken = self.events.user_takes(user)
        except Exception:  # the store is down: no history rather than no search
            return (hit[1], hit[2]) if hit else (0, ())
        cards = self.cards()
        genres = Counter(g for e in taken if (c := cards.get(e)) for g in c.genres)
        top = tuple(g for g, _ in genres.most_common(TOP_GENRES))
        with self._lock:
            if len(self._cache) >= USER_CACHE:
                self._cache.clear()
            self._cache[user] = (now, count, top)
        return count, top

    def forget(self, user: str | None) -> None:
        """After this user's feedback: read their history afresh next time."""
        if user:
            with self._lock:
                self._cache.pop(user, None)


def build_context(text: str, readings: Sequence[Reading], probes: Mapping[str, list[Candidate]],
                  features: Mapping[str, SourceFeatures], user: tuple[int, tuple[str, ...]],
                  at: float) -> Context:
    tokens = tuple(query_key(text).split())
    fuzzy = probes.get("fuzzy", [])
    exact = bool(fuzzy) and fuzzy[0].extra.get("exact", 0.0) > 0
    when = datetime.fromtimestamp(at, UTC)
    return Context(
        query_chars=len(text), tokens=tokens[:12], script=script(text),
        has_digits=any(c.isdigit() for c in text), exact_name=exact,
        interpretations=tuple(Interpretation(reading_kind(r), max(0.0, min(1.0, r.confidence)))
                              for r in readings[:3]),
        memory_hits=len(probes.get("memory", [])), user_history=user[0], user_genres=user[1],
        hour=when.hour, weekday=when.weekday(), sources=tuple(features.values()))
