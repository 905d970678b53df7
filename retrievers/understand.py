"""Query understanding: typed interpretations of a query, checked against the graph.

"songs by adele" -> kind song, artist Adele. "tayler love" -> artist Taylor Swift plus one of her
songs matching "love" ("Love Story"), checked on the PERFORMED_BY edge. "true crime podcast" ->
kind podcast, text "true crime". "sad trap playlist" -> kind playlist, genre trap, text "sad".
"90s rock" -> genre rock, years 1990-1999. "artists like adele" / "similar to adele" -> artists
related to Adele (RELATED_TO, strongest first); "songs like adele" -> their top songs. Each
interpretation has a confidence; the best ones
become a structured search (this module is also a Retriever) and features for the bandit.

Artist names are linked by a `Linker`: for every prefix and suffix of the query at once, the
artists named like it. `fuzzy_linker` links through a fuzzy name index (typos, sound-alikes,
spacing), accepting a link within a few edits for the span's length; with nothing injected,
names must match exactly. A plain per-text `ArtistMatcher` is accepted too. Everything else is
read once from the store into small in-process tables.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Final

from rapidfuzz import fuzz, process

from graph.model import Entity, Kind, RelType
from graph.store import GraphStore
from retrievers.base import Candidate, Query
from retrievers.fuzzy import FuzzyIndex
from retrievers.memory import query_key
from retrievers.normalize import article_first

ArtistMatcher = Callable[[str], list[tuple[str, float]]]
# (spans, partial) -> per span [(artist id, link score 0..1)], accepted links only. `partial`
# links a span to the first words of a name ("tayler" -> "Taylor Swift").
Linker = Callable[[Sequence[str], bool], list[list[tuple[str, float]]]]

KIND_WORDS: Final = {
    "song": Kind.SONG, "songs": Kind.SONG, "track": Kind.SONG, "tracks": Kind.SONG,
    "artist": Kind.ARTIST, "artists": Kind.ARTIST, "band": Kind.ARTIST, "singer": Kind.ARTIST,
    "album": Kind.ALBUM, "albums": Kind.ALBUM, "lp": Kind.ALBUM,
    "playlist": Kind.PLAYLIST, "playlists": Kind.PLAYLIST, "mix": Kind.PLAYLIST,
    "podcast": Kind.PODCAST, "podcasts": Kind.PODCAST, "show": Kind.PODCAST,
    "episode": Kind.EPISODE, "episodes": Kind.EPISODE, "genre": Kind.GENRE,
}
_DECADE = re.compile(r"^(?:(19|20)?(\d)0s|(19|20)(\d{2}))$")
MIN_LINK: Final = 0.8  # matcher links below this score are not trusted
MIN_SONG: Final = 75  # WRatio of the rest of the query against one of the artist's songs
MAX_SPAN_WORDS: Final = 6  # artist names longer than this are left to the name retrievers
PARTIAL_LINKS: Final = 5  # artists tried per partial span ("tayler" -> every Taylor)
MAX_PARTIAL_WORDS: Final = 5  # "first name + song title" queries are short
PARTIAL_FACTOR: Final = 0.85  # a partial name is weaker evidence than a whole one
MAX_SCAN: Final = 3_000  # entities checked per reading for its kind and years
MAX_TEXT_CHECKS: Final = 300  # of those, matched against the reading's leftover text
# Words left over beside an artist name that name no song: "Count Basie and His Orchestra",
# "Offspring, The". They are explained by the artist reading rather than matched to a title.
# "like X", "similar to X", "sounds like X", after words that only say what is wanted.
SIMILAR_LEAD: Final = frozenset({"music", "more", "stuff", "something", "bands", "singers",
                                 "groups", "other", "some", "me", "give", "play", "find"})
SIMILAR_FACTOR: Final = 0.95  # a similarity reading is about as sure as its artist link
FILLER: Final = frozenset({"the", "a", "an", "and", "his", "her", "their", "with", "feat", "ft",
                           "featuring", "orchestra", "band", "group", "trio", "quartet",
                           "ensemble", "friends", "crew"})


def allowed_edits(n: int) -> int:
    """Edits a link may need for a span of n characters (Lucene's AUTO, one more when long)."""
    return 0 if n <= 3 else 1 if n <= 7 else 2 if n <= 14 else 3


def fuzzy_linker(index: FuzzyIndex) -> Linker:
    """A Linker over a fuzzy name index (best an artist-only one): links within
    `allowed_edits` of the span, scored by similarity but never below MIN_LINK."""
    artists = frozenset({Kind.ARTIST})

    def link(spans: Sequence[str], partial: bool) -> list[list[tuple[str, float]]]:
        found = index.link(spans, PARTIAL_LINKS if partial else 2, artists, partial=partial)
        return [[(m.entity_id, max(m.score, MIN_LINK)) for m in matches
                 if m.extra["edits"] <= allowed_edits(len(query_key(span)))]
                for span, matches in zip(spans, found, strict=True)]
    return link


@dataclass(frozen=True, slots=True)
class Interpretation:
    kinds: frozenset[Kind] = frozenset()
    artist: str | None = None  # entity id
    genres: tuple[str, ...] = ()
    years: tuple[int, int] | None = None
    text: str = ""  # the words no structure explained
    entity: str | None = None  # a single entity the whole query points at (artist + song)
    similar: bool = False  # entities like `artist` (related artists, their songs), not it
    confidence: float = 0.0
    explanation: str = ""


@dataclass(slots=True)
class _Tables:
    entities: dict[str, Entity] = field(default_factory=dict)
    songs_by_artist: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    song_keys: dict[str, list[str]] = field(default_factory=dict)  # artist -> its songs' keys
    by_genre: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    genre_keys: dict[str, str] = field(default_factory=dict)  # normalized name -> genre id
    by_kind: dict[Kind, list[str]] = field(default_factory=lambda: defaultdict(list))
    artist_keys: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    related: dict[str, list[str]] = field(default_factory=dict)  # artist -> related, strongest
    text_keys: dict[str, str] = field(default_factory=dict)  # filled as readings need them


def _tables(store: GraphStore) -> _Tables:
    t = _Tables(entities={e.id: e for e in store.iter_entities()})
    for e in t.entities.values():
        t.by_kind[e.kind].append(e.id)
        if e.kind is Kind.GENRE:
            t.genre_keys.setdefault(query_key(e.name), e.id)
        elif e.kind is Kind.ARTIST:
            for name in dict.fromkeys(query_key(n) for n in (e.name, *e.aliases)):
                t.artist_keys[name].append(e.id)
    weights: dict[str, dict[str, float]] = defaultdict(dict)
    for rel in store.iter_relations():
        if rel.type is RelType.RELATED_TO and rel.src != rel.dst:
            w = rel.props.get("weight")
            weight = float(w) if isinstance(w, int | float) else 0.5
            for a, b in ((rel.src, rel.dst), (rel.dst, rel.src)):  # either direction
                weights[a][b] = max(weights[a].get(b, 0.0), weight)
        elif rel.type is RelType.PERFORMED_BY:
            t.songs_by_artist[rel.dst].append(rel.src)
        elif rel.type is RelType.IN_GENRE:
            t.by_genre[rel.dst].append(rel.src)
    for lists in (t.songs_by_artist, t.by_genre, t.by_kind):
        for ids in lists.values():
            ids.sort(key=lambda i: (-t.entities[i].popularity, i))
    t.related = {a: sorted(w, key=lambda b: (-w[b], -t.entities[b].popularity, b))
                 for a, w in weights.items()}
    t.song_keys = {a: [query_key(t.entities[s].name) for s in songs]
                   for a, songs in t.songs_by_artist.items()}
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


def _splits(words: list[str]) -> list[tuple[list[str], list[str]]]:
    """(span, rest) with the span a prefix or a suffix, longest spans first."""
    out = []
    for cut in range(min(len(words), MAX_SPAN_WORDS), 0, -1):
        out.append((words[:cut], words[cut:]))
        if cut < len(words):
            out.append((words[-cut:], words[:-cut]))
    return out


class QueryUnderstanding:
    """Parses queries into interpretations and serves them as a structured Retriever."""

    name = "understand"

    def __init__(self, store: GraphStore, artist_matcher: ArtistMatcher | None = None, *,
                 linker: Linker | None = None) -> None:
        self.t = _tables(store)
        if linker is not None:
            self.link: Linker = linker
        elif artist_matcher is not None:
            matcher = artist_matcher

            def per_span(spans: Sequence[str], partial: bool) -> list[list[tuple[str, float]]]:
                return [[] if partial else [(a, s) for a, s in matcher(x) if s >= MIN_LINK]
                        for x in spans]
            self.link = per_span
        else:
            self.link = self._exact_links

    def _exact_links(self, spans: Sequence[str], partial: bool) -> list[list[tuple[str, float]]]:
        if partial:
            return [[] for _ in spans]
        return [[(i, 1.0) for i in self.t.artist_keys.get(query_key(s), [])[:3]] for s in spans]

    def kind_of(self, entity_id: str) -> Kind | None:
        e = self.t.entities.get(entity_id)
        return None if e is None else e.kind

    def interpret(self, text: str) -> list[Interpretation]:
        """Interpretations, most confident first (empty when no structure was found)."""
        words = query_key(article_first(text)).split()
        similar = self._similar(words)
        kinds = frozenset(KIND_WORDS[w] for w in words if w in KIND_WORDS)
        years = next((d for w in words if (d := _decade(w)) is not None), None)
        rest = [w for w in words if w not in KIND_WORDS and _decade(w) is None and w != "by"]
        genres, without = self._genres(rest)
        # An artist name may hold genre words ("Hot Hot Heat"): try it whole first, unless the
        # genres are all there is ("chillout", "hip hop": a genre, even if some artist is so
        # named).
        whole = genres and without and len(rest) <= MAX_SPAN_WORDS
        found = self._artist_readings(rest, kinds, (), years) if whole else []
        if not found:
            found = self._artist_readings(without, kinds, genres, years)
            if kinds or genres or years:
                structure = sum((bool(kinds), bool(genres), bool(years)))
                found.append(Interpretation(
                    kinds, None, genres, years, " ".join(without),
                    confidence=0.3 + 0.2 * structure - 0.05 * len(without),
                    explanation=self._explain(kinds, None, genres, years)))
        return sorted(similar + found, key=lambda i: -i.confidence)

    def _similar(self, words: list[str]) -> list[Interpretation]:
        """"artists like X", "similar to X", "songs like X": X linked as a whole artist name
        after the similarity words, with only kind and lead words before them."""
        for i, w in enumerate(words[:4]):
            if w not in ("like", "similar", "sounds", "sound"):
                continue
            cut = i + 1 + (w in ("sounds", "sound") or (w == "similar" and words[i + 1:i + 2]
                                                         == ["to"]))
            head, name = words[:i], words[cut:]
            if w in ("sounds", "sound") and words[i + 1:i + 2] != ["like"]:
                return []
            if not name or len(name) > MAX_SPAN_WORDS or any(
                    h not in KIND_WORDS and h not in SIMILAR_LEAD for h in head):
                return []
            kinds = frozenset(KIND_WORDS[h] for h in head if h in KIND_WORDS) or frozenset(
                {Kind.ARTIST})
            links = self.link([" ".join(name)], False)[0]
            return [Interpretation(kinds, artist, confidence=score * SIMILAR_FACTOR,
                                   similar=True,
                                   explanation=f"like {self.t.entities[artist].name} "
                                   "(RELATED_TO)")
                    for artist, score in links[:2] if self.t.related.get(artist)]
        return []

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
        """Split the words into an artist name (a prefix or a suffix) and the rest; the longest
        span that links (and whose rest names one of the artist's songs) wins. Failing that, a
        span may be the start of a name when the rest names a song of that artist."""
        if not words:
            return []
        splits = _splits(words)
        links = self.link([" ".join(span) for span, _ in splits], False)
        for n_words in range(len(splits[0][0]), 0, -1):
            out = [r for (span, rest), found in zip(splits, links, strict=True)
                   if len(span) == n_words for artist, score in found[:2]
                   for r in self._with_artist(artist, score, rest, kinds, genres, years)]
            if out:
                return out
        partial = [(span, rest) for span, rest in splits
                   if rest and len(span) <= 2 and len(words) <= MAX_PARTIAL_WORDS]
        if not partial:
            return []
        found_partial = self.link([" ".join(span) for span, _ in partial], True)
        out = [r for (_, rest), found in zip(partial, found_partial, strict=True)
               for artist, score in found
               for r in self._with_artist(artist, score * PARTIAL_FACTOR, rest, kinds, genres,
                                          years)]
        return sorted(out, key=lambda r: -r.confidence)[:2]

    def _with_artist(self, artist: str, score: float, rest: list[str], kinds: frozenset[Kind],
                     genres: tuple[str, ...], years: tuple[int, int] | None
                     ) -> list[Interpretation]:
        name = self.t.entities[artist].name
        if all(w in FILLER for w in rest):
            conf = score * (0.9 if kinds else 0.8) * (0.95 if rest else 1.0)
            return [Interpretation(kinds, artist, genres, years, "", confidence=conf,
                                   explanation=self._explain(kinds, artist, genres, years))]
        keys = self.t.song_keys.get(artist, [])
        title = " ".join(rest)
        best = process.extractOne(title, keys, scorer=fuzz.WRatio, score_cutoff=MIN_SONG)
        if best is None:
            return []
        song = self.t.songs_by_artist[artist][best[2]]
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
        return self.from_readings(self.interpret(query.text), query, k)

    def from_readings(self, readings: Sequence[Interpretation], query: Query,
                      k: int) -> list[Candidate]:
        """The structured search for readings already made (see `interpret`): the best two,
        each entity scored by its reading's confidence, decaying with its place."""
        out: dict[str, Candidate] = {}
        for reading in readings[:2]:
            for rank, eid in enumerate(self._entities_for(reading, query.kinds, k)):
                score = reading.confidence / (1 + 0.1 * rank)
                if eid not in out or out[eid].score < score:
                    out[eid] = Candidate(eid, score, self.name, reading.explanation)
        return sorted(out.values(), key=lambda c: (-c.score, c.entity_id))[:k]

    def _pool(self, r: Interpretation) -> Sequence[str]:
        if r.similar and r.artist is not None:
            related = self.t.related.get(r.artist, [])
            if Kind.SONG in r.kinds:  # "songs like X": the related artists' top songs, mixed
                tops = [self.t.songs_by_artist.get(a, [])[:5] for a in related[:20]]
                return [s for n in range(5) for songs in tops if n < len(songs)
                        for s in songs[n:n + 1]]
            return related
        if r.entity is not None:
            return [r.entity]
        if r.artist is not None:
            songs = self.t.songs_by_artist.get(r.artist, [])[:MAX_SCAN] if (
                Kind.SONG in r.kinds or not r.kinds) else []
            return [r.artist, *songs] if not r.kinds or Kind.ARTIST in r.kinds else songs
        # At most MAX_SCAN are read: a kind's list holds every entity of that kind (copying it
        # cost ~4 ms for "songs"); kinds in name order, so the pool is the same in every process.
        lists = ([self.t.by_genre.get(g, []) for g in r.genres] if r.genres else
                 [self.t.by_kind[kind] for kind in sorted(r.kinds)])
        return list(islice(chain.from_iterable(lists), MAX_SCAN))

    def _entities_for(self, r: Interpretation, wanted: frozenset[Kind], k: int) -> list[str]:
        kinds = (wanted & r.kinds if wanted and r.kinds else wanted or r.kinds)
        if wanted and r.kinds and not kinds:
            return []  # the reading asks for other kinds than the caller wants
        out: list[str] = []
        checks = 0
        for eid in self._pool(r)[:MAX_SCAN]:
            e = self.t.entities[eid]
            if kinds and e.kind not in kinds:
                continue
            year = _year(e)
            if r.years and (year is None or not r.years[0] <= year <= r.years[1]):
                continue
            if r.text and r.artist is None:
                checks += 1
                if checks > MAX_TEXT_CHECKS:
                    break
                if fuzz.partial_ratio(r.text, self._text_key(e)) < 80:
                    continue
            out.append(eid)
            if len(out) >= k:
                break
        return out

    def _text_key(self, e: Entity) -> str:
        key = self.t.text_keys.get(e.id)
        if key is None:
            key = self.t.text_keys[e.id] = query_key(f"{e.name} {e.description[:200]}")
        return key
