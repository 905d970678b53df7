"""Simulated searches: what a user wants and types (the query model), and what they do with the
page (the click model). Both are seeded and deterministic.

Query model (`Traffic.draw`): a user (a real Last.fm user), a query class from `MIX`, a target
from their taste (their artists by play count, those artists' songs and albums) or from the
catalog at large (playlists, podcasts), and the text they type:

- `exact`: the name as they know it (the Last.fm spelling of an artist, a title without
  "(feat. X)" or " - Remastered"); `typo`: a misspelling of it (keyboard slips, sound-alike
  respellings, spacing; bench/devset_variants.py); `partial`: the first words of a long name, or
  the name without a later word. Misspellings recur as they do in real logs: each target has a
  few variants, and users draw among them with Zipf weights, so the same variant reaches the
  service from several users.
- `artist_song`: "{artist} {song}" or "{song} {artist}", sometimes with a slip in the artist.
- `genre_mood`: a tag the user gave on Last.fm that is a catalog genre ("chillout", "female
  vocalists"), alone or with "music"; relevant: the genre itself and the user's artists they
  gave that tag to.
- `podcast_topic`: a podcast's most specific category ("true crime podcast"); relevant: the
  podcasts of that category.
- `like`: "artists like X" for an artist X of theirs; relevant: X's related artists that they
  also play (else X's three closest), the target one of them.

Which text finds what is left to the service: nothing here reads a retriever or the store.

Click model (`Clicks.session`): position-based. Position p of the page (from 0) is examined with
probability `EXAMINE_TOP / (1 + p) ** EXAMINE_DECAY`; an examined relevant item is clicked with
probability `ATTRACT`, then played with `PLAY`, and the user stops; an examined other item gets a
noise click with probability `NOISE`, and the user reads on. A user who took nothing retries
with a better spelling (`retry`, the exact name) with probability `RETRY`, a few seconds later,
which exercises the reformulation memory.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from bench.devset_variants import (
    Generator,
    casing,
    core_title,
    partial,
    soundalike,
    spacing,
    typo,
)
from bench.sim_world import Catalog, User

# Query classes and their share of the traffic: known items dominate music search; the rest
# are the kinds of query no single source answers well.
MIX: Final = {"exact": 0.22, "typo": 0.20, "partial": 0.10, "artist_song": 0.12,
              "genre_mood": 0.10, "podcast_topic": 0.08, "like": 0.18}
CLASSES: Final = tuple(MIX)
# What a known-item search is for (artist, song and album from the user's taste; playlists and
# podcasts from the catalog at large).
KNOWN_KINDS: Final = {"artist": 0.45, "song": 0.33, "album": 0.10, "playlist": 0.06,
                      "podcast": 0.06}
VARIANTS: Final = 3  # misspellings per target, drawn with weights 1, 1/2, 1/3
MISSPELL: Final[tuple[tuple[Generator, float], ...]] = (
    (typo(1, 3), 0.5), (typo(2, 8), 0.15), (soundalike, 0.2), (spacing, 0.15))
LIKE_FORMS: Final = ("artists like {}", "like {}", "similar to {}", "bands like {}",
                     "music like {}")
TOPIC_FORMS: Final = ("{} podcast", "{} podcasts", "podcast about {}", "{}")
MAX_TOPIC: Final = 40  # a category with more podcasts than this is no topic
GAP_S: Final = 25.0  # mean seconds between searches (exponential)
MAX_TRIES: Final = 50  # users tried for a class before another class is drawn

EXAMINE_TOP: Final = 0.95
EXAMINE_DECAY: Final = 0.8
ATTRACT: Final = 0.9
PLAY: Final = 0.7
NOISE: Final = 0.02
RETRY: Final = 0.7
PAGE: Final = 10


@dataclass(frozen=True, slots=True)
class Intent:
    """One search as the user means it. `retry`: what they type next if they find nothing."""

    index: int
    user: str
    cls: str
    query: str
    target: str
    relevant: frozenset[str]
    retry: str | None = None
    gap_s: float = 0.0


class Traffic:
    """Seeded intents over a catalog and its users."""

    def __init__(self, cat: Catalog, users: Sequence[User], seed: int,
                 mix: dict[str, float] | None = None) -> None:
        self.cat = cat
        self.users = list(users)
        self.seed = seed
        self.mix = mix or MIX
        self.playlists = cat.of_kind("playlist")
        self.podcasts = cat.of_kind("podcast")
        self._makers: dict[str, Callable[[random.Random, User], tuple[str, str, frozenset[str],
                                                                          str | None] | None]]
        self._makers = {"exact": self._exact, "typo": self._typo, "partial": self._partial,
                        "artist_song": self._artist_song, "genre_mood": self._genre,
                        "podcast_topic": self._topic, "like": self._like}

    def intents(self, n: int) -> list[Intent]:
        rng = random.Random(f"traffic:{self.seed}")
        return [self.draw(rng, i) for i in range(n)]

    def draw(self, rng: random.Random, index: int) -> Intent:
        """One intent: the class first (so the traffic keeps `mix`), then users until one can
        make it (some have no songs in the catalog, no tags, no related artists)."""
        classes, weights = list(self.mix), list(self.mix.values())
        while True:
            cls = rng.choices(classes, weights)[0]
            for _ in range(MAX_TRIES):
                user = rng.choice(self.users)
                got = self._makers[cls](rng, user)
                if got is not None:
                    query, target, relevant, retry = got
                    return Intent(index, user.id, cls, query, target, relevant, retry,
                                  round(rng.expovariate(1.0 / GAP_S), 3))

    # -- targets ----------------------------------------------------------------------------------

    def _artist(self, rng: random.Random, user: User) -> str:
        ids = [a for a, _ in user.taste]
        return rng.choices(ids, [w ** 0.75 for _, w in user.taste])[0]

    def _by_popularity(self, rng: random.Random, ids: Sequence[str]) -> str:
        return rng.choices(list(ids), [0.05 + self.cat.items[i].popularity for i in ids])[0]

    def _known(self, rng: random.Random, user: User) -> tuple[str, str] | None:
        """(target, the name the user knows it by)."""
        kind = rng.choices(list(KNOWN_KINDS), list(KNOWN_KINDS.values()))[0]
        if kind in ("playlist", "podcast"):
            pool = self.playlists if kind == "playlist" else self.podcasts
            if not pool:
                return None
            eid = rng.choice(pool)
            return eid, self.cat.items[eid].name
        artist = self._artist(rng, user)
        if kind == "artist":
            return artist, user.spelling.get(artist, self.cat.items[artist].name)
        works = (self.cat.songs_of if kind == "song" else self.cat.albums_of).get(artist)
        if not works:
            return None
        eid = self._by_popularity(rng, works)
        return eid, core_title(self.cat.items[eid].name)

    # -- query classes ---------------------------------------------------------------------------

    def _exact(self, rng: random.Random, user: User
               ) -> tuple[str, str, frozenset[str], str | None] | None:
        got = self._known(rng, user)
        if got is None:
            return None
        eid, name = got
        return casing(name, rng), eid, self.cat.same_name(eid), None

    def misspelling(self, eid: str, name: str, rng: random.Random) -> str | None:
        """One of the target's few recurring misspellings (fixed per target and seed)."""
        which = rng.choices(range(VARIANTS), [1.0 / (1 + v) for v in range(VARIANTS)])[0]
        own = random.Random(f"variant:{self.seed}:{eid}:{which}")
        gens = [g for g, _ in MISSPELL]
        weights = [w for _, w in MISSPELL]
        for _ in range(4):
            got = own.choices(gens, weights)[0](name, own)
            if got is not None and got[0].strip().lower() != name.lower():
                return str(got[0])
        return None

    def _typo(self, rng: random.Random, user: User
              ) -> tuple[str, str, frozenset[str], str | None] | None:
        got = self._known(rng, user)
        if got is None:
            return None
        eid, name = got
        query = self.misspelling(eid, name, rng)
        if query is None:
            return None
        return casing(query, rng), eid, self.cat.same_name(eid), name.lower()

    def _partial(self, rng: random.Random, user: User
                 ) -> tuple[str, str, frozenset[str], str | None] | None:
        for _ in range(4):
            got = self._known(rng, user)
            if got is None or len(got[1].split()) < 3:
                continue
            eid, name = got
            cut = partial(name, rng)
            if cut is not None:
                return casing(cut[0], rng), eid, self.cat.same_name(eid), name.lower()
        return None

    def _artist_song(self, rng: random.Random, user: User
                     ) -> tuple[str, str, frozenset[str], str | None] | None:
        artist = self._artist(rng, user)
        songs = self.cat.songs_of.get(artist)
        if not songs:
            return None
        song = self._by_popularity(rng, songs)
        name = user.spelling.get(artist, self.cat.items[artist].name)
        title = core_title(self.cat.items[song].name)
        said, retry = name, None
        if rng.random() < 0.3 and (slip := self.misspelling(artist, name, rng)) is not None:
            said = slip
        first = rng.random() < 0.7
        query = f"{said} {title}" if first else f"{title} {said}"
        if said != name:
            retry = (f"{name} {title}" if first else f"{title} {name}").lower()
        return casing(query, rng), song, self.cat.same_name(song), retry

    def _genre(self, rng: random.Random, user: User
               ) -> tuple[str, str, frozenset[str], str | None] | None:
        # Only tags that became catalog genres (many artists, several users): a private tag
        # ("songs to download later") is nothing anyone searches for.
        tags = sorted(t for t in user.tags if self.cat.genre_named(t) is not None)
        if not tags:
            return None
        tag = rng.choices(tags, [len(user.tags[t]) for t in tags])[0]
        genre = self.cat.genre_named(tag)
        assert genre is not None
        query = tag if rng.random() < 0.7 else f"{tag} music"
        return casing(query, rng), genre, frozenset({genre, *user.tags[tag]}), None

    def _topic(self, rng: random.Random, user: User
               ) -> tuple[str, str, frozenset[str], str | None] | None:
        if not self.podcasts:
            return None
        pod = rng.choice(self.podcasts)
        cats = [g for g in self.cat.items[pod].genres
                if g in self.cat.items and 2 <= len(self.cat.members[g]) <= MAX_TOPIC]
        if not cats:
            return None
        genre = min(cats, key=lambda g: (len(self.cat.members[g]), g))  # the most specific
        relevant = frozenset(p for p in self.cat.members[genre]
                             if self.cat.items[p].kind == "podcast")
        topic = self.cat.items[genre].name.replace("&", "and")
        return casing(rng.choice(TOPIC_FORMS).format(topic), rng), pod, relevant, None

    def _like(self, rng: random.Random, user: User
              ) -> tuple[str, str, frozenset[str], str | None] | None:
        seed_artist = self._artist(rng, user)
        related = [a for a, _ in self.cat.related.get(seed_artist, ()) if a in self.cat.items]
        if not related:
            return None
        mine = {a for a, _ in user.taste}
        relevant = [a for a in related if a in mine] or related[:3]
        name = user.spelling.get(seed_artist, self.cat.items[seed_artist].name)
        query = rng.choice(LIKE_FORMS).format(name)
        return casing(query, rng), rng.choice(relevant), frozenset(relevant), None


@dataclass(frozen=True, slots=True)
class Event:
    entity_id: str
    action: str  # "click" | "play"
    position: int
    after_s: float  # seconds after the page was shown


@dataclass(frozen=True, slots=True)
class Session:
    events: tuple[Event, ...]
    satisfied: bool
    retry: bool  # the user searches again (with `Intent.retry`)


class Clicks:
    """The position-based click model with noise; draws are seeded by (seed, intent, attempt),
    so the same page for the same intent gets the same clicks under every policy."""

    def __init__(self, seed: int, *, examine_top: float = EXAMINE_TOP,
                 decay: float = EXAMINE_DECAY, attract: float = ATTRACT, play: float = PLAY,
                 noise: float = NOISE, retry: float = RETRY) -> None:
        self.seed = seed
        self.examine_top, self.decay, self.attract = examine_top, decay, attract
        self.play, self.noise, self.retry = play, noise, retry

    def examine(self, position: int) -> float:
        return float(self.examine_top / (1.0 + position) ** self.decay)

    def session(self, intent: Intent, page: Sequence[str], attempt: int = 0) -> Session:
        rng = random.Random(f"clicks:{self.seed}:{intent.index}:{attempt}")
        events: list[Event] = []
        t = 0.0
        for pos, eid in enumerate(page[:PAGE]):
            t += rng.uniform(0.5, 2.0)
            if rng.random() >= self.examine(pos):
                continue
            if eid in intent.relevant:
                if rng.random() < self.attract:
                    events.append(Event(eid, "click", pos, round(t, 3)))
                    if rng.random() < self.play:
                        events.append(Event(eid, "play", pos, round(t + 1.0, 3)))
                    return Session(tuple(events), True, False)
            elif rng.random() < self.noise:
                events.append(Event(eid, "click", pos, round(t, 3)))
        again = attempt == 0 and intent.retry is not None and rng.random() < self.retry
        return Session(tuple(events), False, again)
