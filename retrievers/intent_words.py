"""The words of a query that say what is wanted rather than name it: kinds, decades, connectors.

"songs by X", "X's songs", "X tracks", "best of X", "<genre> music", "<genre> songs from the
90s", "podcasts about <topic>", "X radio", "X similar artists": `split_intent` takes such words
out of a query and returns what they ask for, leaving the words that name something (an artist,
a genre, a title, a topic) for linking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from graph.model import Kind
from retrievers.memory import query_key
from retrievers.normalize import article_first

KIND_WORDS: Final = {
    "song": Kind.SONG, "songs": Kind.SONG, "track": Kind.SONG, "tracks": Kind.SONG,
    "music": Kind.SONG, "hits": Kind.SONG, "tunes": Kind.SONG,
    "artist": Kind.ARTIST, "artists": Kind.ARTIST, "band": Kind.ARTIST, "bands": Kind.ARTIST,
    "singer": Kind.ARTIST, "singers": Kind.ARTIST,
    "album": Kind.ALBUM, "albums": Kind.ALBUM, "lp": Kind.ALBUM,
    "playlist": Kind.PLAYLIST, "playlists": Kind.PLAYLIST, "mix": Kind.PLAYLIST,
    "mixes": Kind.PLAYLIST,
    "podcast": Kind.PODCAST, "podcasts": Kind.PODCAST, "show": Kind.PODCAST,
    "shows": Kind.PODCAST,
    "episode": Kind.EPISODE, "episodes": Kind.EPISODE, "genre": Kind.GENRE,
}
# Before "like X", words that say only that more is wanted; "music like X" asks for artists.
SIMILAR_LEAD: Final = frozenset({"music", "more", "stuff", "something", "bands", "singers",
                                 "groups", "other", "some", "me", "give", "play", "find"})
SIMILAR_WORDS: Final = frozenset({"like", "similar", "sounds", "sound"})
# After a name: "X radio", "X similar artists", "X similar".
SIMILAR_TAIL: Final = (("similar", "artists"), ("similar", "bands"), ("similar",), ("radio",))
# At the start, words that ask for an artist's best songs: "best of X", "top X songs".
LEAD: Final = frozenset({"best", "of", "top", "play", "greatest", "listen", "to"})
# Words that join the parts of a request: "songs by X", "podcasts about history", "from the
# 90s". "about" and "on" only join a topic to podcasts or episodes ("on" names songs too).
CONNECTORS: Final = frozenset({"by", "from"})
TOPIC_CONNECTORS: Final = frozenset({"about", "on"})
TALK: Final = frozenset({Kind.PODCAST, Kind.EPISODE})
_POSSESSIVE: Final = re.compile(r"(?<=\w)['\u2019]s\b", re.IGNORECASE)
_AMPERSAND: Final = re.compile(r"\s*&\s*")
_DECADE: Final = re.compile(r"^(?:(19|20)?(\d)0s|(19|20)(\d{2}))$")


@dataclass(frozen=True, slots=True)
class Intent:
    """What the intent words of a query ask for, and the words left to link."""

    words: tuple[str, ...]  # the query's words with kind, decade and connector words taken out
    kinds: frozenset[Kind] = frozenset()
    years: tuple[int, int] | None = None
    # `words` without the lead words around them ("best of X", "top X songs", "X greatest
    # hits"), when there are any: then X's songs, probably; else empty
    led: tuple[str, ...] = ()


def decade(word: str) -> tuple[int, int] | None:
    m = _DECADE.match(word)
    if m is None:
        return None
    if m[4] is not None:  # a year: 1994
        year = int(m[3] + m[4])
        return year, year
    century = m[1] or ("20" if m[2] in "012" else "19")
    start = int(century + m[2] + "0")
    return start, start + 9


def query_words(text: str) -> list[str]:
    """The normalized words of a query, with "X's" read as "X", "&" as "and" (as names are
    indexed: "Above & Beyond") and "Beatles, The" turned."""
    return query_key(_AMPERSAND.sub(" and ", article_first(_POSSESSIVE.sub("", text)))).split()


def split_intent(words: list[str]) -> Intent:
    kinds = frozenset(KIND_WORDS[w] for w in words if w in KIND_WORDS)
    years = next((d for w in words if (d := decade(w)) is not None), None)
    # "by" joins a kind to an artist ("songs by X"); without a kind it may be a title's own
    # ("stand by me ben e king"): the title + "by" + artist form is read apart.
    connectors = (CONNECTORS if kinds else CONNECTORS - {"by"}) | (
        TOPIC_CONNECTORS if kinds & TALK else frozenset())
    rest = [w for i, w in enumerate(words)
            if w not in KIND_WORDS and decade(w) is None and w not in connectors
            and not (w == "the" and i + 1 < len(words) and decade(words[i + 1]) is not None)]
    n = 0
    while n < len(rest) - 1 and rest[n] in LEAD:
        n += 1
    end = len(rest)
    while kinds and end > n + 1 and rest[end - 1] in LEAD:  # "X greatest hits", "X top songs"
        end -= 1
    led = tuple(rest[n:end]) if (n, end) != (0, len(rest)) else ()
    return Intent(tuple(rest), kinds, years, led)


def similar_spans(words: list[str]) -> tuple[list[str], list[str]] | None:
    """(head, name) for "artists like X", "similar to X", "sounds like X" (the similarity words
    within the first four, after head words that only say what is wanted) or "X radio",
    "X similar artists"; None when the query asks for no similarity."""
    for tail in SIMILAR_TAIL:
        if len(words) > len(tail) and tuple(words[-len(tail):]) == tail:
            return [], words[:-len(tail)]
    for i, w in enumerate(words[:4]):
        if w not in SIMILAR_WORDS:
            continue
        if w in ("sounds", "sound") and words[i + 1:i + 2] != ["like"]:
            return None
        cut = i + 1 + (w in ("sounds", "sound") or (w == "similar" and words[i + 1:i + 2]
                                                     == ["to"]))
        head = words[:i]
        if any(h not in KIND_WORDS and h not in SIMILAR_LEAD for h in head):
            return None
        return head, words[cut:]
    return None


def similar_kinds(head: list[str]) -> frozenset[Kind]:
    """The kinds "<head> like X" asks for: artists unless the head names a kind ("music" and
    "more" say only that more is wanted)."""
    kinds = frozenset(KIND_WORDS[h] for h in head if h in KIND_WORDS and h != "music")
    return kinds or frozenset({Kind.ARTIST})
