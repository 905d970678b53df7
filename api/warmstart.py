"""Warm start: the learning state a catalog implies, learned before the first user searches.

A new deployment (or a new class of query) would otherwise start from an untrained policy and
ranker, and its first users would see its worst pages. `lessons` generates queries from the
graph with the entities that answer them (an artist's songs, an artist's related artists, a
genre's songs and playlists, a category's podcasts, songs like a song, a song or an album by
title and artist, and plain names so that name search is learned too), and `warm_start` runs
each through the real search path and takes the first relevant entity on its page, the way a
user who examines the whole page would. The outcomes go to the shared log like any other, so
every process learns the same state and replay rebuilds it; the searches carry the user id
WARM_USER, which marks them as synthetic. Real feedback then moves the same parameters.

Only subjects in the "tune" half (`subject_half`) are used: the other half is what
bench/intent_bench.py judges, so no subject of a reported query was learned from.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from api.eventlog import FeedbackEvent
from api.learning import Learner
from api.search import Searcher
from graph.model import Kind
from retrievers.normalize import core_title
from retrievers.understand_tables import Tables, songs_like

log = logging.getLogger(__name__)
WARM_USER: Final = "synthetic:warm-start"
PAGE: Final = 10
MIN_MEMBERS: Final = 5  # a subject needs this many relevant entities (an artist's songs, ...)
POPULAR: Final = 400  # subjects drawn from this many most popular of each kind


def subject_half(key: str) -> str:
    """"tune" or "test": the half a subject (an artist, a genre) falls in, the same for the
    warm start and the benchmark that judges it."""
    return "tune" if hashlib.sha1(key.encode()).digest()[0] % 2 == 0 else "test"


@dataclass(frozen=True, slots=True)
class Lesson:
    cls: str
    text: str
    relevant: frozenset[str]
    subject: str


def _core(t: Tables, entity: str) -> str:
    return core_title(t.entities[entity].name)


def _artist_lessons(t: Tables, artist: str, rng: random.Random) -> Iterator[Lesson]:
    name = t.entities[artist].name
    songs = frozenset(t.songs_by_artist.get(artist, []))
    if len(songs) >= MIN_MEMBERS:
        form = rng.choice(("songs by {}", "{} songs", "{} tracks"))
        yield Lesson("songs_of_artist", form.format(name), songs, artist)
    related = frozenset(t.related.get(artist, []))
    if len(related) >= 3:
        form = rng.choice(("artists like {}", "similar to {}", "bands like {}"))
        yield Lesson("artists_like", form.format(name), related, artist)
    yield Lesson("name", name, frozenset({artist}), artist)
    own = [s for s in t.songs_by_artist.get(artist, []) if t.artists_of.get(s, [])[:1] == [artist]]
    for song in own[:1]:  # a song whose first artist is this one (the subject of its half)
        versions = frozenset(s for s in songs if _core(t, s) == _core(t, song))
        yield Lesson("title_artist", f"{_core(t, song)} {name}", versions, artist)
        yield Lesson("name", _core(t, song), versions, artist)
        like = frozenset(songs_like(t, song)[:50])
        if len(like) >= MIN_MEMBERS:
            yield Lesson("songs_like", f"songs like {_core(t, song)}", like, artist)
    for album in [a for a in t.albums_by_artist.get(artist, [])
                  if t.artists_of.get(a, [])[:1] == [artist]][:1]:
        albums = frozenset(a for a in t.albums_by_artist[artist] if _core(t, a) == _core(t, album))
        yield Lesson("album_artist", f"{_core(t, album)} {name}", albums, artist)


def _genre_lessons(t: Tables, genre: str, rng: random.Random) -> Iterator[Lesson]:
    name = t.entities[genre].name
    for kind, cls, forms in (
            (Kind.SONG, "genre_songs", ("{} songs", "{} music")),
            (Kind.PLAYLIST, "genre_playlists", ("{} playlists", "{} playlist")),
            (Kind.PODCAST, "podcast_category", ("{} podcasts", "podcasts about {}"))):
        members = frozenset(t.by_genre_kind.get((genre, kind), []))
        if len(members) >= (MIN_MEMBERS if kind is Kind.SONG else 3):
            yield Lesson(cls, rng.choice(forms).format(name), members, genre)


def lessons(t: Tables, *, per_class: int = 80, seed: int = 0) -> list[Lesson]:
    """Up to `per_class` lessons of each class, from "tune"-half subjects only, in a seeded
    shuffled order (so that learning sees the classes mixed)."""
    rng = random.Random(seed)
    artists = [a for a in t.by_kind[Kind.ARTIST][:POPULAR * 4] if subject_half(a) == "tune"]
    genres = [g for g in t.by_kind[Kind.GENRE] if subject_half(g) == "tune"]
    out: dict[str, list[Lesson]] = {}
    for subject in [*artists[:POPULAR], *genres]:
        made = (_artist_lessons(t, subject, rng) if t.entities[subject].kind is Kind.ARTIST
                else _genre_lessons(t, subject, rng))
        for lesson in made:
            group = out.setdefault(lesson.cls, [])
            if len(group) < per_class * (2 if lesson.cls == "name" else 1):
                group.append(lesson)
    flat = [lesson for group in out.values() for lesson in group]
    rng.shuffle(flat)
    return flat


@dataclass(frozen=True, slots=True)
class WarmStartReport:
    lessons: int
    taken: int  # lessons whose page held a relevant entity (the others teach reward 0)
    seconds: float


def warm_start(searcher: Searcher, learner: Learner, taught: Sequence[Lesson],
               clock: Callable[[], float]) -> WarmStartReport:
    """Run each lesson through the search path, take its first relevant entity (none: a search
    with no take), settle it at once, and let the learner apply the outcomes."""
    started = time.perf_counter()
    taken = 0
    for lesson in taught:
        result = searcher.search(lesson.text, user=WARM_USER, limit=PAGE, kinds=frozenset())
        record = result.record
        pos = next((i for i, e in enumerate(record.page) if e in lesson.relevant), None)
        events = [] if pos is None else [FeedbackEvent(
            search_id=record.search_id, entity_id=record.page[pos], action="click",
            position=pos, at=clock(), user=WARM_USER, query=lesson.text)]
        taken += pos is not None
        learner.settle_take(record, events)
    learner.sync()
    report = WarmStartReport(len(taught), taken, time.perf_counter() - started)
    log.info("warm start: %d lessons, %d with a relevant entity on the page, %.1f s",
             report.lessons, report.taken, report.seconds)
    return report
