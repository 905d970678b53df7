"""The catalog's nouns: entity kinds, relationship types, and the records that carry them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class Kind(StrEnum):
    SONG = "song"
    ARTIST = "artist"
    ALBUM = "album"
    PLAYLIST = "playlist"
    PODCAST = "podcast"
    EPISODE = "episode"
    GENRE = "genre"

    @property
    def label(self) -> str:
        """The Neo4j label for this kind ("Song"); every node also carries :Entity."""
        return self.value.capitalize()


class RelType(StrEnum):
    PERFORMED_BY = "PERFORMED_BY"  # Song -> Artist
    ON_ALBUM = "ON_ALBUM"  # Song -> Album
    BY = "BY"  # Album -> Artist
    CONTAINS = "CONTAINS"  # Playlist -> Song {position}
    EPISODE_OF = "EPISODE_OF"  # Episode -> Podcast
    RELATED_TO = "RELATED_TO"  # Artist -> Artist {weight, source}
    IN_GENRE = "IN_GENRE"  # any non-genre -> Genre
    SUBGENRE_OF = "SUBGENRE_OF"  # Genre -> Genre


# The kind at each end of a relationship type. IN_GENRE starts from any kind but genre.
REL_ENDPOINTS: Final[Mapping[RelType, tuple[frozenset[Kind], Kind]]] = {
    RelType.PERFORMED_BY: (frozenset({Kind.SONG}), Kind.ARTIST),
    RelType.ON_ALBUM: (frozenset({Kind.SONG}), Kind.ALBUM),
    RelType.BY: (frozenset({Kind.ALBUM}), Kind.ARTIST),
    RelType.CONTAINS: (frozenset({Kind.PLAYLIST}), Kind.SONG),
    RelType.EPISODE_OF: (frozenset({Kind.EPISODE}), Kind.PODCAST),
    RelType.RELATED_TO: (frozenset({Kind.ARTIST}), Kind.ARTIST),
    RelType.IN_GENRE: (frozenset(Kind) - {Kind.GENRE}, Kind.GENRE),
    RelType.SUBGENRE_OF: (frozenset({Kind.GENRE}), Kind.GENRE),
}

# Kind-specific properties an entity may carry, with their Python types.
EXTRA_PROPS: Final[Mapping[str, type]] = {
    "duration_ms": int,
    "release_date": str,
    "language": str,
    "publisher": str,
}

PropValue = str | int | float


@dataclass(frozen=True, slots=True)
class Entity:
    id: str
    kind: Kind
    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    popularity: float = 0.0
    extra: Mapping[str, PropValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Relation:
    src: str
    type: RelType
    dst: str
    props: Mapping[str, PropValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EntityRecord:
    """One entity with the relationships it owns (its outgoing edges), as ingest writes it.

    A record is the whole truth about its node and its outgoing edges: writing it replaces the
    node's properties and every outgoing edge, so writing the same record twice changes nothing.
    `content_hash` fingerprints both, letting a store skip records it already holds.
    """

    entity: Entity
    relations: tuple[Relation, ...]
    content_hash: str
