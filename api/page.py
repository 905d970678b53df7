"""Shaping the ranked list into a page: follow the query's reading, collapse versions of a work.

- **The page follows the reading.** When the best reading asks for a kind ("songs by X",
  "artists like X", "trap playlists") with confidence at least FOLLOW_CONFIDENCE, entities of
  that kind come first, in the ranker's order: first those the reading's structured answer
  holds (they satisfy its constraints: his songs, the genre's playlists), then the others.
  Two kinds of item may still lead: the entity the reading is about ("Van Morrison" before his
  songs; not for "like X", where X is what the user does *not* ask for) and an entity whose
  name is the whole query ("Love Songs", a playlist) or within a slip of it. A reading that
  names one entity by its title and artist ("tusa karol g") puts that song first, and an album
  of the same name by the same artist (a single's) right after it, when the query holds the
  whole title (within a slip), not only a word of it.
- **Versions collapse.** One song title by one artist (remasters, live takes, the same song on
  six albums), one album name by one artist and one playlist name appear once: the most popular
  version among the candidates, at the place of the best-ranked one, with the number of versions
  the catalog holds. A query that names a version ("live", "2011 remaster") keeps the versions
  it names apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from rapidfuzz import fuzz

from api.cards import Cards
from retrievers.fusion import Fused
from retrievers.memory import query_key
from retrievers.normalize import core_title
from retrievers.understand import Interpretation

FOLLOW_CONFIDENCE: Final = 0.45  # a reading this sure decides the kind at the top of the page
EXACT_LEADERS: Final = 2  # entities named like the query that keep their place on top
NAMED_SCAN: Final = 20  # of the ranked list, how far to look for them
NAMED_RATIO: Final = 85  # Indel similarity of name and query: within a slip...
NAMED_SLIP: Final = 2  # ...of at most this many characters more or less ("matchbox twenty 3am"
# is no slip of "Matchbox Twenty")
ENTITY_LEAD: Final = 0.8  # a title + artist reading this sure puts its song (album) first


@dataclass(frozen=True, slots=True)
class PageItem:
    fused: Fused
    versions: int = 1  # entities in the catalog that are versions of this one (itself included)


def followed(readings: Sequence[Interpretation]) -> Interpretation | None:
    """The reading the page follows, if any: one that asks for a kind, or one that names a
    single entity (a song or an album by its title and artist), sure enough."""
    best = readings[0] if readings else None
    if best is None or best.confidence < FOLLOW_CONFIDENCE:
        return None
    if best.asked and best.kinds:
        return best
    if best.entity is not None and not best.similar and best.whole and \
            best.confidence >= ENTITY_LEAD:
        return best
    return None


def follow_reading(fused: list[Fused], readings: Sequence[Interpretation], cards: Cards,
                   query: str, satisfies: Callable[[str], bool]) -> list[Fused]:
    """Leaders, then the entities that satisfy the reading (its constraints checked against
    the graph), then the rest of the asked kind, then everything else; each tier in the
    ranker's order."""
    best = followed(readings)
    if best is None:
        return fused
    lead = named_like(query, fused[:NAMED_SCAN], cards)
    if best.entity is not None and not best.similar:  # the song, and an album of that name
        lead[:0] = [r.entity for r in readings[:2] if r.entity is not None and not r.similar
                    and r.whole and r.confidence >= ENTITY_LEAD]
    elif not best.similar and best.artist is not None:
        lead.append(best.artist)
    present = {f.entity_id: f for f in fused}
    leaders = [present[e] for e in dict.fromkeys(lead) if e in present]
    tiers: list[list[Fused]] = [leaders, [], [], []]
    for f in fused:
        if f.entity_id in lead:
            continue
        card = cards.get(f.entity_id)
        wanted = best.asked and card is not None and card.kind in best.kinds
        tiers[1 if wanted and satisfies(f.entity_id) else 2 if wanted else 3].append(f)
    return [f for tier in tiers for f in tier]


def named_like(query: str, fused: Sequence[Fused], cards: Cards) -> list[str]:
    """Entities whose name (or its core title) is the query, or within a slip of it ("loge
    song": "Love Song"): whoever typed it most likely named them, kind words and all."""
    key = query_key(query)
    out = []
    for f in fused:
        card = cards.get(f.entity_id)
        if card is None:
            continue
        if any(abs(len(n) - len(key)) <= NAMED_SLIP and
               fuzz.ratio(key, n, score_cutoff=NAMED_RATIO) for n in _name_keys(card.name)):
            out.append(f.entity_id)
            if len(out) == EXACT_LEADERS:
                break
    return out


def collapse_versions(fused: Sequence[Fused], cards: Cards, query: str,
                      limit: int) -> list[PageItem]:
    """The first `limit` works of the ranked list, each as its most popular version there."""
    words = set(query_key(query).split())
    groups: dict[str, list[Fused]] = {}
    for f in fused:
        card = cards.get(f.entity_id)
        if card is None:
            continue
        group = card.group or card.id
        if group != card.id and words & _version_words(card.name):
            group = card.id  # the query names this version: it stands alone
        if group not in groups and len(groups) == limit:
            continue  # a page is full; later members of its works may still join them
        groups.setdefault(group, []).append(f)
    out = []
    for group, members in groups.items():  # in the order of each group's best-ranked member
        best = max(members, key=lambda f: (_popularity(cards, f), -members.index(f)))
        card = cards.get(best.entity_id)
        versions = cards.versions(card) if card is not None and group != card.id else 1
        out.append(PageItem(Fused(best.entity_id, members[0].score, best.sources), versions))
    return out


def _popularity(cards: Cards, f: Fused) -> float:
    card = cards.get(f.entity_id)
    return card.popularity if card is not None else 0.0


@lru_cache(maxsize=1 << 16)
def _name_keys(name: str) -> tuple[str, str]:
    """A name's key and its core title's ("moondance 2013 remaster", "moondance")."""
    return query_key(name), query_key(core_title(name))


def _version_words(name: str) -> set[str]:
    """The words of a name beyond its core title: "remaster", "2011", "live", "acoustic"."""
    whole, core = _name_keys(name)
    return set(whole.split()) - set(core.split())
