"""Result cards: what a page shows for each entity (name, subtitle, related content), in memory.

Cards are built from a catalog snapshot, so a page needs no store round trip and a search still
answers with names and related content while Neo4j is unreachable (a degraded page).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from graph.model import Entity, Kind, RelType
from graph.snapshot import Snapshot
from retrievers.memory import query_key
from retrievers.normalize import core_title

RELATED_PER_CARD: Final = 3
SUBTITLE_NAMES: Final = 2  # artists or genres named in a subtitle before "and N more"


@dataclass(frozen=True, slots=True)
class Card:
    id: str
    kind: Kind
    name: str
    subtitle: str
    popularity: float
    related: tuple[str, ...]  # ids: an artist's top songs, a podcast's latest episodes, ...
    related_label: str  # what `related` is: "top songs", "latest episodes", "album", ...
    genres: tuple[str, ...] = ()  # genre ids (a song's artists' genres when it has none)
    group: str = ""  # its version group: one title by one artist (see `version_group`)


def version_group(e: Entity, artists: Iterable[str]) -> str:
    """Versions of one work share a group: a song or an album by its core title ("Moondance -
    2013 Remaster", "Moondance (Live)": "moondance") and first artist, a playlist by its name.
    Every other entity is a group of one."""
    match e.kind:
        case Kind.SONG | Kind.ALBUM:
            first = next(iter(artists), "")
            return f"{e.kind.value}:{query_key(core_title(e.name))}:{first}"
        case Kind.PLAYLIST:
            return f"playlist:{query_key(e.name)}"
    return e.id


def _names(ids: Iterable[str], by_id: Mapping[str, Entity]) -> str:
    names = [by_id[i].name for i in ids if i in by_id]
    more = len(names) - SUBTITLE_NAMES
    return ", ".join(names[:SUBTITLE_NAMES]) + (f" and {more} more" if more > 0 else "")


def _year(e: Entity) -> str:
    date = e.extra.get("release_date")
    return str(date)[:4] if date else ""


def _top(ids: Iterable[str], by_id: Mapping[str, Entity], *, latest: bool = False) -> list[str]:
    """Most popular first, or latest release first; ties by id, so cards are deterministic."""
    known = [i for i in ids if i in by_id]
    if latest:
        return sorted(known, key=lambda i: (str(by_id[i].extra.get("release_date", "")), i),
                      reverse=True)
    return sorted(known, key=lambda i: (-by_id[i].popularity, i))


class Cards:
    """Every entity's card, by id."""

    def __init__(self, cards: Mapping[str, Card], version: int) -> None:
        self._cards = dict(cards)
        self.version = version
        self.group_sizes: dict[str, int] = defaultdict(int)
        for card in self._cards.values():
            self.group_sizes[card.group or card.id] += 1

    def versions(self, card: Card) -> int:
        """How many entities share the card's version group (itself included)."""
        return self.group_sizes.get(card.group or card.id, 1)

    def __len__(self) -> int:
        return len(self._cards)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._cards

    def get(self, entity_id: str) -> Card | None:
        return self._cards.get(entity_id)

    def values(self) -> Iterable[Card]:
        return self._cards.values()

    @classmethod
    def build(cls, snapshot: Snapshot) -> Cards:
        by_id = {e.id: e for e in snapshot.entities}
        out: dict[RelType, defaultdict[str, list[str]]] = {t: defaultdict(list) for t in RelType}
        into: dict[RelType, defaultdict[str, list[str]]] = {t: defaultdict(list) for t in RelType}
        for r in snapshot.relations:
            out[r.type][r.src].append(r.dst)
            into[r.type][r.dst].append(r.src)
        cards = {}
        genres_of = out[RelType.IN_GENRE]
        for e in snapshot.entities:
            subtitle, related, label = cls._describe(e, by_id, out, into)
            genres = genres_of.get(e.id) or [g for a in out[RelType.PERFORMED_BY].get(e.id, [])
                                             for g in genres_of.get(a, [])]
            artists = out[RelType.PERFORMED_BY].get(e.id) or out[RelType.BY].get(e.id, [])
            cards[e.id] = Card(e.id, e.kind, e.name, subtitle, e.popularity,
                               tuple(related[:RELATED_PER_CARD]), label,
                               tuple(dict.fromkeys(genres)), version_group(e, artists))
        return cls(cards, snapshot.version)

    @staticmethod
    def _describe(e: Entity, by_id: Mapping[str, Entity],
                  out: Mapping[RelType, Mapping[str, list[str]]],
                  into: Mapping[RelType, Mapping[str, list[str]]]) -> tuple[str, list[str], str]:
        """(subtitle, related ids, what the related ids are) for one entity."""
        genres = _names(out[RelType.IN_GENRE].get(e.id, []), by_id)
        match e.kind:
            case Kind.SONG:
                album = out[RelType.ON_ALBUM].get(e.id, [])
                artists = _names(out[RelType.PERFORMED_BY].get(e.id, []), by_id)
                parts = ["Song", artists, _names(album, by_id)]
                return " · ".join(p for p in parts if p), album, "album"
            case Kind.ARTIST:
                songs = _top(into[RelType.PERFORMED_BY].get(e.id, []), by_id)
                return " · ".join(p for p in ("Artist", genres) if p), songs, "top songs"
            case Kind.ALBUM:
                artists = _names(out[RelType.BY].get(e.id, []), by_id)
                songs = _top(into[RelType.ON_ALBUM].get(e.id, []), by_id)
                parts = ["Album", artists, _year(e)]
                return " · ".join(p for p in parts if p), songs, "songs"
            case Kind.PLAYLIST:
                songs = out[RelType.CONTAINS].get(e.id, [])
                return f"Playlist · {len(songs)} songs", list(songs), "first songs"
            case Kind.PODCAST:
                episodes = _top(into[RelType.EPISODE_OF].get(e.id, []), by_id, latest=True)
                publisher = str(e.extra.get("publisher", ""))
                parts = ["Podcast", publisher, genres]
                return " · ".join(p for p in parts if p), episodes, "latest episodes"
            case Kind.EPISODE:
                podcast = out[RelType.EPISODE_OF].get(e.id, [])
                parts = ["Episode", _names(podcast, by_id), str(e.extra.get("release_date", ""))]
                return " · ".join(p for p in parts if p), podcast, "podcast"
            case Kind.GENRE:
                parent = out[RelType.SUBGENRE_OF].get(e.id, [])
                top = _top((i for i in into[RelType.IN_GENRE].get(e.id, [])
                            if by_id[i].kind is Kind.ARTIST), by_id)
                parts = ["Genre", f"in {_names(parent, by_id)}" if parent else ""]
                return " · ".join(p for p in parts if p), top, "top artists"
        return e.kind.value.capitalize(), [], ""
