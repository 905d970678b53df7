"""Query understanding: typed interpretations of a query, checked against the graph.

"songs by adele" / "adele's songs" / "best of adele" -> kind song, artist Adele. "tayler love" ->
artist Taylor Swift plus one of her songs matching "love" ("Love Story"), checked on the
PERFORMED_BY edge; "<album> <artist>" reads as that album (BY) as well when one matches, so a
name shared by a song and an album keeps both readings. "true crime podcast" / "podcasts about
true crime" -> kind podcast, the category true crime when there is one (else text). "sad trap
playlist" -> kind playlist, genre trap, text "sad". "90s rock" / "rock songs from the 90s" ->
genre rock, years 1990-1999. "artists like adele" / "similar to adele" / "adele radio" ->
artists related to Adele (RELATED_TO, strongest first); "songs like adele" -> their top songs;
"songs like <title>" -> songs sharing the song's playlists, of its artist and related artists,
in its genres. The intent words themselves are read by `retrievers.intent_words`.

Each interpretation has a confidence; the best ones become a structured search (this module is
also a Retriever) and features for the bandit and the ranker. `asked` marks a reading whose
kind the query's words ask for ("songs", "podcasts", "like"), which the page then follows.

Artist names are linked by a `Linker`: for every prefix and suffix of the query at once, the
artists named like it. `fuzzy_linker` links through a fuzzy name index (typos, sound-alikes,
spacing), accepting a link within a few edits for the span's length; with nothing injected,
names must match exactly. A plain per-text `ArtistMatcher` is accepted too. A song title
after "like" links by its core title ("Hotel California - 2013 Remaster": "hotel california"),
exactly or, failing that, within a small edit distance. Everything else is read once from
the store into small in-process tables (`retrievers.understand_tables`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from itertools import chain, islice
from typing import Final

from rapidfuzz import fuzz, process

from graph.model import Entity, Kind
from graph.store import GraphStore
from retrievers.base import Candidate, Query
from retrievers.fuzzy import FuzzyIndex
from retrievers.intent_words import (
    KIND_WORDS,
    LEAD,
    Intent,
    decade,
    query_words,
    similar_kinds,
    similar_spans,
    split_intent,
)
from retrievers.memory import query_key
from retrievers.understand_tables import Tables, build_tables, songs_like

ArtistMatcher = Callable[[str], list[tuple[str, float]]]
# (spans, partial) -> per span [(entity id, link score 0..1)], accepted links only. `partial`
# links a span to the first words of a name ("tayler" -> "Taylor Swift").
Linker = Callable[[Sequence[str], bool], list[list[tuple[str, float]]]]

MIN_LINK: Final = 0.8  # matcher links below this score are not trusted
MIN_SONG: Final = 75  # WRatio of the rest of the query against one of the artist's songs
MAX_SPAN_WORDS: Final = 6  # artist names longer than this are left to the name retrievers
PARTIAL_LINKS: Final = 5  # artists tried per partial span ("tayler" -> every Taylor)
MAX_PARTIAL_WORDS: Final = 5  # "first name + song title" queries are short
PARTIAL_FACTOR: Final = 0.85  # a partial name is weaker evidence than a whole one
MAX_SCAN: Final = 3_000  # entities checked per reading for its kind and years
MAX_TEXT_CHECKS: Final = 300  # of those, matched against the reading's leftover text
SIMILAR_FACTOR: Final = 0.95  # a similarity reading is about as sure as its artist link
NEAR_TITLE: Final = 88  # Indel ratio a misspelled title after "like" needs
TITLE_FACTOR: Final = 0.9  # "like <title>": a title is weaker evidence than an artist's name
NAMED_KIND_FACTOR: Final = 1.125  # "<name with a kind word> songs": as sure as "X songs" (0.9)
LEAD_FACTOR: Final = 0.9  # "best of X" read as X's songs: the words may be a title's
# "<title> <artist>" where the artist has an album and a song of that name (a single): the
# more popular one first (the song on a tie, what is most often wanted), the other beside it.
RUNNER_UP_FACTOR: Final = 0.95
WHOLE_TITLE: Final = 90  # Indel ratio of the rest and a core title for a whole-title match
MIN_TITLE_CHARS: Final = 3  # the rest of a query beside an artist, to name a title
# Words left over beside an artist name that name no song: "Count Basie and His Orchestra",
# "Offspring, The". They are explained by the artist reading rather than matched to a title.
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
    entity: str | None = None  # a single entity the query points at (a song or an album)
    similar: bool = False  # entities like `artist` (or like `entity`, a song), not it
    confidence: float = 0.0
    explanation: str = ""
    asked: bool = False  # the query's own words ask for `kinds` ("songs", "like")
    whole: bool = False  # `entity` is named by its whole title (a slip at most), not a part


def _year(entity: Entity) -> int | None:
    date = entity.extra.get("release_date")
    return int(str(date)[:4]) if date else None


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
        self.t: Tables = build_tables(store)
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
        self._title_list: list[str] | None = None  # core title keys, made at first use
        self._related_sets: dict[str, frozenset[str]] = {}

    def _exact_links(self, spans: Sequence[str], partial: bool) -> list[list[tuple[str, float]]]:
        if partial:
            return [[] for _ in spans]
        return [[(i, 1.0) for i in self.t.artist_keys.get(query_key(s), [])[:3]] for s in spans]

    def _link_title(self, text: str) -> tuple[str, float] | None:
        """The most popular song of a core title ("hotel california"), exactly or, misspelled
        ("hotel califonia"), the closest title within NEAR_TITLE; with its link score."""
        exact = self.t.title_keys.get(query_key(text))
        if exact:
            return exact[0], 1.0
        if self._title_list is None:
            self._title_list = list(self.t.title_keys)
        best = process.extractOne(query_key(text), self._title_list, scorer=fuzz.ratio,
                                  score_cutoff=NEAR_TITLE)
        return None if best is None else (self.t.title_keys[best[0]][0], best[1] / 100)

    def kind_of(self, entity_id: str) -> Kind | None:
        e = self.t.entities.get(entity_id)
        return None if e is None else e.kind

    def interpret(self, text: str) -> list[Interpretation]:
        """Interpretations, most confident first (empty when no structure was found)."""
        words = self._kind_words_in_genres(query_words(text))
        intent = split_intent(words)
        found = (self._similar(words) or self._named(words) or self._by(words, intent)
                 or self._structured(intent))
        if intent.led:  # "best of X", "play X", "top X songs": X's songs, probably
            songs = Intent(intent.led, intent.kinds or frozenset({Kind.SONG}), intent.years)
            found += [replace(r, confidence=r.confidence * LEAD_FACTOR)
                      for r in self._structured(songs) if r.artist and not r.entity]
        return sorted(found, key=lambda i: -i.confidence)

    def _kind_words_in_genres(self, words: list[str]) -> list[str]:
        """"album rock hits": a genre whose name holds a kind word is one word here, so that
        the kind word is not read as a kind."""
        return ["_".join(span) if genre else span[0]
                for span, genre in self._genre_spans(words, "_", (4, 3, 2))]

    def _by(self, words: list[str], intent: Intent) -> list[Interpretation]:
        """"<title> by <artist>": the words after the last "by" are the artist's name, the
        words before it a title of theirs (or only kind words: "songs by X")."""
        if "by" not in words[1:-1]:
            return []
        cut = len(words) - 1 - words[::-1].index("by")
        title, name = words[:cut], words[cut + 1:]
        if len(name) > MAX_SPAN_WORDS or all(w in KIND_WORDS or w in LEAD for w in title):
            return []
        title = [w for w in title if w not in KIND_WORDS] if intent.kinds else title
        return [r for artist, score in self.link([" ".join(name)], False)[0][:2]
                for r in self._with_artist(artist, score, title, intent.kinds, (), intent.years)]

    def _named(self, words: list[str]) -> list[Interpretation]:
        """A kind or year word that is part of an artist's name ("Roxy Music", "The Album
        Leaf", "The 1975"): the artist read with it, asking for the kinds the other kind words
        name ("the marshall tucker band's songs": songs, by The Marshall Tucker Band)."""
        intent_words = {w for w in words if w in KIND_WORDS or decade(w) is not None}
        if not intent_words:
            return []
        out = []
        while len(words) > 1 and words[0] in LEAD:  # "top The 1975 songs"
            words = words[1:]
        for r in self._artist_readings(words, frozenset(), (), None, intent_words):
            if r.artist is None or r.entity is not None:
                continue
            in_name = intent_words & set(query_key(self.t.entities[r.artist].name).split())
            if not in_name:
                continue
            kinds = frozenset(KIND_WORDS[w] for w in intent_words - in_name if w in KIND_WORDS)
            out.append(replace(r, kinds=kinds, asked=bool(kinds),
                               confidence=r.confidence * (NAMED_KIND_FACTOR if kinds else 1),
                               explanation=self._explain(kinds, r.artist, (), None)))
        return out

    def _structured(self, intent: Intent) -> list[Interpretation]:
        kinds, years, rest = intent.kinds, intent.years, list(intent.words)
        asked = bool(kinds)
        genres, without = self._genres(rest)
        # An artist name may hold genre words ("Hot Hot Heat"): try it whole first, unless the
        # genres are all there is ("chillout", "hip hop": a genre, even if some artist is so
        # named).
        if genres:  # "best rock tracks": "best" is no text to match
            without = [w for w in without if w not in LEAD]
        # (A tag named exactly as an artist, "u2", stays a genre: so do "electronic", "emo",
        # "history", "love", which are artists' names too.)
        whole = genres and without and len(rest) <= MAX_SPAN_WORDS
        found = self._artist_readings(rest, kinds, (), years) if whole else []
        if not found:
            found = self._artist_readings(without, kinds, genres, years)
            if kinds or genres or years:
                structure = sum((bool(kinds), bool(genres), bool(years)))
                found.append(Interpretation(
                    kinds, None, genres, years, " ".join(without),
                    confidence=0.3 + 0.2 * structure - 0.05 * len(without),
                    explanation=self._explain(kinds, None, genres, years), asked=asked))
        return [replace(r, asked=asked) for r in found]

    def _similar(self, words: list[str]) -> list[Interpretation]:
        """"artists like X", "similar to X", "X radio", "songs like X": X linked as a whole
        artist name, or as a song title ("songs like <title>")."""
        spans = similar_spans(words)
        if spans is None or not spans[1] or len(spans[1]) > MAX_SPAN_WORDS:
            return []
        head, name = spans
        kinds = similar_kinds(head)
        text = " ".join(name)
        out = [Interpretation(kinds, artist, confidence=score * SIMILAR_FACTOR, similar=True,
                              explanation=f"like {self.t.entities[artist].name} (RELATED_TO)",
                              asked=True)
               for artist, score in self.link([text], False)[0][:2] if self.t.related.get(artist)]
        if out or Kind.SONG not in kinds:  # a linked artist's name wins over a song's title
            return out
        title = self._link_title(text)
        if title is not None:
            song, score = title
            artists = self.t.artists_of.get(song, [])
            out.append(Interpretation(
                kinds, artists[0] if artists else None, entity=song,
                confidence=score * TITLE_FACTOR, similar=True, asked=True,
                explanation=f"like {self.t.entities[song].name!r} (shared playlists, artists)"))
        return out

    def _genres(self, words: list[str]) -> tuple[tuple[str, ...], list[str]]:
        """Longest genre names first ("dance pop" before "pop"); returns the rest of the words.
        A lead word beside others is no genre ("best rock tracks": not the tag "best")."""
        spans = self._genre_spans(words, " ", (4, 3, 2, 1), lambda span: not (
            len(span) == 1 and span[0] in LEAD and len(words) > 1))
        return (tuple(genre for _, genre in spans if genre),
                [span[0] for span, genre in spans if not genre])

    def _genre_spans(self, words: list[str], sep: str, sizes: Sequence[int],
                     accept: Callable[[list[str]], bool] = lambda _: True
                     ) -> list[tuple[list[str], str | None]]:
        """The words cut, left to right, into genre names (the longest of `sizes` words,
        joined by `sep`, that `accept` takes) and single other words."""
        out: list[tuple[list[str], str | None]] = []
        i = 0
        while i < len(words):
            for n in sizes:
                span = words[i:i + n]
                genre = self.t.genre_keys.get(sep.join(span)) if len(span) == n else None
                if genre and accept(span):
                    out.append((span, genre))
                    i += n
                    break
            else:
                out.append(([words[i]], None))
                i += 1
        return out

    def _artist_readings(self, words: list[str], kinds: frozenset[Kind],
                         genres: tuple[str, ...], years: tuple[int, int] | None,
                         also_filler: Collection[str] = ()) -> list[Interpretation]:
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
                   for r in self._with_artist(artist, score, rest, kinds, genres, years,
                                              also_filler)]
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
                     genres: tuple[str, ...], years: tuple[int, int] | None,
                     also_filler: Collection[str] = ()) -> list[Interpretation]:
        titled = self._titled(artist, score, rest, kinds, genres, years) if rest else []
        if any(r.whole for r in titled):  # "Justin Bieber Friends": a title, though a filler
            return titled
        if all(w in FILLER or w in LEAD or w in also_filler for w in rest):  # "best of X"
            conf = score * (0.9 if kinds else 0.8) * (0.95 if rest else 1.0)
            return [Interpretation(kinds, artist, genres, years, "", confidence=conf,
                                   explanation=self._explain(kinds, artist, genres, years))]
        return titled

    def _titled(self, artist: str, score: float, rest: list[str], kinds: frozenset[Kind],
                genres: tuple[str, ...], years: tuple[int, int] | None
                ) -> list[Interpretation]:
        """The artist's song (and album) that the rest of the query names, as readings."""
        name = self.t.entities[artist].name
        title = " ".join(rest)
        if len(title.replace(" ", "")) < MIN_TITLE_CHARS:
            return []  # "t.i. tracks": "i" names no song
        found: list[tuple[Kind, str, float, str, bool]] = []
        for kind, keys, ids, edge in (
                (Kind.SONG, self.t.song_keys, self.t.songs_by_artist, "PERFORMED_BY"),
                (Kind.ALBUM, self.t.album_keys, self.t.albums_by_artist, "BY")):
            if kinds and kind not in kinds:
                continue
            best = process.extractOne(title, keys.get(artist, []), scorer=fuzz.WRatio,
                                      score_cutoff=MIN_SONG)
            if best is None:
                continue
            found.append((kind, ids[artist][best[2]], best[1] / 100, edge, fuzz.ratio(
                title, best[0], score_cutoff=WHOLE_TITLE) > 0))
        # A song and an album that match alike (a single and its song): the more popular first,
        # the song on a tie.
        pop = {f[1]: self.t.entities[f[1]].popularity for f in found}
        first = max(found, key=lambda f: (f[2], pop[f[1]], f[0] is Kind.SONG), default=None)
        return [Interpretation(
            frozenset({kind}), artist, genres, years, "", entity=entity,
            confidence=score * match * (1.0 if (kind, entity) == first[:2] else RUNNER_UP_FACTOR),
            explanation=f"{self.t.entities[entity].name!r} by {name} ({edge})", whole=whole)
            for kind, entity, match, edge, whole in found if first is not None]

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
        each entity scored by its reading's confidence, decaying with its place. When the best
        reading asks for a kind and nothing satisfies it ("jazz podcasts" with no podcast in
        jazz), its kind's entities that mention the rest of it, or its most popular ones."""
        out: dict[str, Candidate] = {}
        for reading in readings[:2]:
            for rank, eid in enumerate(self._entities_for(reading, query.kinds, k)):
                score = reading.confidence / (1 + 0.1 * rank)
                if eid not in out or out[eid].score < score:
                    out[eid] = Candidate(eid, score, self.name, reading.explanation)
        if not out and readings and readings[0].asked and readings[0].kinds and \
                not readings[0].similar:
            best = readings[0]
            words = [self.t.entities[g].name for g in best.genres] + [best.text]
            for text in (query_key(" ".join(words)), ""):
                looser = Interpretation(best.kinds, text=text, confidence=best.confidence / 2,
                                        explanation=f"{best.explanation} (nothing matched all)")
                found = self._entities_for(looser, query.kinds, k)
                if found:
                    return [Candidate(e, looser.confidence / (1 + 0.1 * r), self.name,
                                      looser.explanation) for r, e in enumerate(found)]
        return sorted(out.values(), key=lambda c: (-c.score, c.entity_id))[:k]

    def _pool(self, r: Interpretation) -> Sequence[str]:
        if r.similar and r.entity is not None and Kind.SONG in r.kinds:
            return songs_like(self.t, r.entity)
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
            pool = [r.artist] if not r.kinds or Kind.ARTIST in r.kinds else []
            if not r.kinds or Kind.SONG in r.kinds:
                pool += self.t.songs_by_artist.get(r.artist, [])[:MAX_SCAN]
            if Kind.ALBUM in r.kinds:
                pool += self.t.albums_by_artist.get(r.artist, [])
            return pool
        # At most MAX_SCAN are read: a kind's list holds every entity of that kind (copying it
        # cost ~4 ms for "songs"); kinds in name order, so the pool is the same in every process.
        if r.genres:
            lists = [self.t.by_genre_kind.get((g, kind), []) for g in r.genres
                     for kind in sorted(r.kinds)] if r.kinds else [
                self.t.by_genre.get(g, []) for g in r.genres]
        else:
            lists = [self.t.by_kind[kind] for kind in sorted(r.kinds)]
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
            if not self._in_years(r, e):
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

    def satisfies(self, r: Interpretation, entity_id: str) -> bool | None:
        """Whether an entity meets a reading's constraints (kind, artist, related artist,
        genre, years), read from the graph; None where only the reading's own answer can say
        ("songs like <title>") or its leftover text is all it asks."""
        e = self.t.entities.get(entity_id)
        if e is None:
            return False
        if r.similar and r.entity is not None and Kind.SONG in r.kinds:
            return None
        if (r.kinds and e.kind not in r.kinds) or not self._in_years(r, e):
            return False
        if r.similar and r.artist is not None:
            return entity_id in self._related_set(r.artist)
        if r.entity is not None:
            return entity_id == r.entity
        if r.artist is not None:
            return entity_id == r.artist or r.artist in self.t.artists_of.get(entity_id, [])
        if r.genres:
            return bool(self.t.genres_with_parents(entity_id) & set(r.genres))
        return None if r.text else True

    def _related_set(self, artist: str) -> frozenset[str]:
        found = self._related_sets.get(artist)
        if found is None:
            found = self._related_sets[artist] = frozenset(self.t.related.get(artist, []))
        return found

    @staticmethod
    def _in_years(r: Interpretation, e: Entity) -> bool:
        if r.years is None:
            return True
        year = _year(e)
        return year is not None and r.years[0] <= year <= r.years[1]

    def _text_key(self, e: Entity) -> str:
        key = self.t.text_keys.get(e.id)
        if key is None:
            key = self.t.text_keys[e.id] = query_key(f"{e.name} {e.description[:200]}")
        return key
