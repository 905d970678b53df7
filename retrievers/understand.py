"""Query understanding: typed interpretations of a query, checked against the graph.

"songs by adele" -> kind song, artist Adele. "tayler love" -> artist Taylor Swift plus one of her
songs matching "love" ("Love Story"), checked on the PERFORMED_BY edge. "true crime podcast" ->
kind podcast, text "true crime". "sad trap playlist" -> kind playlist, genre trap, text "sad".
"90s rock" -> genre rock, years 1990-1999. Each interpretation has a confidence; the best ones
become a structured search (this module is also a Retriever) and features for the bandit.

Artist names are linked by an injected matcher (text -> [(artist id, score 0..1)]): the fuzzy
name index in production, exact names by default. Everything else is read once from the store
into small in-process tables.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from rapidfuzz import fuzz, process

from graph.model import Entity, Kind, RelType
from graph.store import GraphStore
from retrievers.base import Candidate, Query
from retrievers.memory import query_key

ArtistMatcher = Callable[[str], list[tuple[str, float]]]

KIND_WORDS: Final = {
    "song": Kind.SONG, "songs": Kind.SONG, "track": Kind.SONG, "tracks": Kind.SONG,
    "artist": Kind.ARTIST, "artists": Kind.ARTIST, "band": Kind.ARTIST, "singer": Kind.ARTIST,
    "album": Kind.ALBUM, "albums": Kind.ALBUM, "lp": Kind.ALBUM,
    "playlist": Kind.PLAYLIST, "playlists": Kind.PLAYLIST, "mix": Kind.PLAYLIST,
    "podcast": Kind.PODCAST, "podcasts": Kind.PODCAST, "show": Kind.PODCAST,
    "episode": Kind.EPISODE, "episodes": Kind.EPISODE, "genre": Kind.GENRE,
}
_DECADE = re.compile(r"^(?:(19|20)?(\d)0s|(19|20)(\d{2}))$")
MIN_LINK: Final = 0.8  # artist links below this score are not trusted


@dataclass(frozen=True, slots=True)
class Interpretation:
    kinds: frozenset[Kind] = frozenset()
    artist: str | None = None  # entity id
    genres: tuple[str, ...] = ()
    years: tuple[int, int] | None = None
    text: str = ""  # the words no structure explained
    entity: str | None = None  # a single entity the whole query points at (artist + song)
    confidence: float = 0.0
    explanation: str = ""


@dataclass(slots=True)
class _Tables:
    entities: dict[str, Entity] = field(default_factory=dict)
    songs_by_artist: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    by_genre: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    genre_keys: dict[str, str] = field(default_factory=dict)  # normalized name -> genre id
    by_kind: dict[Kind, list[str]] = field(default_factory=lambda: defaultdict(list))


def _tables(store: GraphStore) -> _Tables:
    t = _Tables(entities={e.id: e for e in store.iter_entities()})
    for e in t.entities.values():
        t.by_kind[e.kind].append(e.id)
        if e.kind is Kind.GENRE:
            t.genre_keys.setdefault(query_key(e.name), e.id)
    for rel in store.iter_relations():
        if rel.type is RelType.PERFORMED_BY:
            t.songs_by_artist[rel.dst].append(rel.src)
        elif rel.type is RelType.IN_GENRE:
            t.by_genre[rel.dst].append(rel.src)
    for lists in (t.songs_by_artist, t.by_genre, t.by_kind):
        for ids in lists.values():
            ids.sort(key=lambda i: (-t.entities[i].popularity, i))
    return t


def _year(entity: Entity) -> int | None:
    date = entity.extra.get("release_date")
    return int(str(date)[:4]) if date else None


def _decade(word: str) -> tuple[int, int] | None:
    m = _DECADE.match(word)
    if m is None:
        return None
    if m[4] is not None:  # a year: 1994
        year = int(m[3] + m[4])
        return year, year
    century = m[1] or ("20" if m[2] in "012" else "19")
    start = int(century + m[2] + "0")
    return start, start + 9


class QueryUnderstanding:
    """Parses queries into interpretations and serves them as a structured Retriever."""

    name = "understand"

    def __init__(self, store: GraphStore, artist_matcher: ArtistMatcher | None = None) -> None:
        self.t = _tables(store)
        self.match_artist = artist_matcher or self._exact_artist

    def _exact_artist(self, text: str) -> list[tuple[str, float]]:
        key = query_key(text)
        return [(i, 1.0) for i in self.t.by_kind[Kind.ARTIST]
                if query_key(self.t.entities[i].name) == key][:3]

    def interpret(self, text: str) -> list[Interpretation]:
        """Interpretations, most confident first (empty when no structure was found)."""
        words = query_key(text).split()
        kinds = frozenset(KIND_WORDS[w] for w in words if w in KIND_WORDS)
        years = next((d for w in words if (d := _decade(w)) is not None), None)
        rest = [w for w in words if w not in KIND_WORDS and _decade(w) is None and w != "by"]
        genres, rest = self._genres(rest)
        found = [*self._artist_readings(rest, kinds, genres, years)]
        if kinds or genres or years:
            structure = sum((bool(kinds), bool(genres), bool(years)))
            found.append(Interpretation(kinds, None, genres, years, " ".join(rest),
                                        confidence=0.3 + 0.2 * structure - 0.05 * len(rest),
                                        explanation=self._explain(kinds, None, genres, years)))
        return sorted(found, key=lambda i: -i.confidence)

    def _genres(self, words: list[str]) -> tuple[tuple[str, ...], list[str]]:
        """Longest genre names first ("dance pop" before "pop"); returns the rest of the words."""
        found: list[str] = []
        i, rest = 0, []
        while i < len(words):
            for n in (3, 2, 1):
                gid = self.t.genre_keys.get(" ".join(words[i:i + n]))
                if gid and i + n <= len(words):
                    found.append(gid)
                    i += n
                    break
            else:
                rest.append(words[i])
                i += 1
        return tuple(found), rest

    def _artist_readings(self, words: list[str], kinds: frozenset[Kind],
                         genres: tuple[str, ...], years: tuple[int, int] | None
                         ) -> list[Interpretation]:
        """Split the words into an artist name (a prefix or a suffix) and the rest."""
        out = []
        for cut in range(len(words), 0, -1):
            splits = [(words[:cut], words[cut:])]
            if cut < len(words):
                splits.append((words[-cut:], words[:-cut]))
            for span, rest in splits:
                for artist, score in self.match_artist(" ".join(span))[:2]:
                    if score < MIN_LINK:
                        continue
                    out.extend(self._with_artist(artist, score, rest, kinds, genres, years))
            if out:
                break  # the longest span that links wins
        return out

    def _with_artist(self, artist: str, score: float, rest: list[str], kinds: frozenset[Kind],
                     genres: tuple[str, ...], years: tuple[int, int] | None
                     ) -> list[Interpretation]:
        name = self.t.entities[artist].name
        if not rest:
            conf = score * (0.9 if kinds else 0.8)
            return [Interpretation(kinds, artist, genres, years, "", confidence=conf,
                                   explanation=self._explain(kinds, artist, genres, years))]
        songs = self.t.songs_by_artist.get(artist, [])
        names = {s: query_key(self.t.entities[s].name) for s in songs}
        best = process.extractOne(" ".join(rest), names, scorer=fuzz.WRatio, score_cutoff=75)
        if best is None:
            return []
        song = best[2]
        return [Interpretation(frozenset({Kind.SONG}), artist, genres, years, "", entity=song,
                               confidence=score * best[1] / 100,
                               explanation=f"{self.t.entities[song].name!r} by {name} "
                               "(PERFORMED_BY)")]

    def _explain(self, kinds: frozenset[Kind], artist: str | None, genres: tuple[str, ...],
                 years: tuple[int, int] | None) -> str:
        parts = [f"kind {'/'.join(sorted(k.value for k in kinds))}"] if kinds else []
        if artist:
            parts.append(f"by {self.t.entities[artist].name}")
        parts += [f"genre {self.t.entities[g].name}" for g in genres]
        if years:
            parts.append(f"years {years[0]}-{years[1]}")
        return ", ".join(parts)

    def retrieve(self, query: Query, k: int) -> list[Candidate]:
        if k <= 0:
            return []
        out: dict[str, Candidate] = {}
        for reading in self.interpret(query.text)[:2]:
            for rank, eid in enumerate(self._entities_for(reading, query.kinds, k)):
                score = reading.confidence / (1 + 0.1 * rank)
                if eid not in out or out[eid].score < score:
                    out[eid] = Candidate(eid, score, self.name, reading.explanation)
        return sorted(out.values(), key=lambda c: (-c.score, c.entity_id))[:k]

    def _entities_for(self, r: Interpretation, wanted: frozenset[Kind], k: int) -> list[str]:
        if r.entity is not None:
            pool: Sequence[str] = [r.entity]
        elif r.artist is not None:
            pool = self.t.songs_by_artist.get(r.artist, []) if Kind.SONG in r.kinds or not (
                r.kinds) else []
            if not r.kinds or Kind.ARTIST in r.kinds:
                pool = [r.artist, *pool]
        elif r.genres:
            pool = [e for g in r.genres for e in self.t.by_genre.get(g, [])]
        else:
            pool = [e for kind in r.kinds for e in self.t.by_kind[kind]]
        kinds = (wanted & r.kinds if wanted and r.kinds else wanted or r.kinds)
        if wanted and r.kinds and not kinds:
            return []  # the reading asks for other kinds than the caller wants
        out = []
        for eid in pool:
            e = self.t.entities[eid]
            if kinds and e.kind not in kinds:
                continue
            year = _year(e)
            if r.years and (year is None or not r.years[0] <= year <= r.years[1]):
                continue
            if r.text and r.artist is None and fuzz.partial_ratio(
                    r.text, query_key(f"{e.name} {e.description[:200]}")) < 80:
                continue
            out.append(eid)
            if len(out) >= k:
                break
        return out
