"""The feed schema of `feed.py` without its regex patterns: the first, fast pass of `records.parse`.

msgspec checks every constraint here as `feed.py` does, except the patterns on ids, names,
dates and language tags, which cost about half of its decode time; `records` checks what those
patterns test more cheaply. A test keeps these types equal to feed.py's, patterns aside.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from ingest import feed
from ingest.feed import MAX_REFS

LaxId = Annotated[str, Meta(min_length=1, max_length=200)]
LaxName = Annotated[str, Meta(min_length=1, max_length=500)]
LaxShortText = Annotated[str, Meta(min_length=1, max_length=500)]
LaxDate = str
LaxLanguage = Annotated[str, Meta(min_length=2, max_length=35)]
LaxRefs = Annotated[list[LaxId], Meta(max_length=MAX_REFS)]


class LaxRelatedRef(Struct, forbid_unknown_fields=True):
    id: LaxId
    weight: Annotated[float, Meta(ge=0.0, le=1.0)] = 1.0
    source: LaxShortText = "feed"


class LaxBase(Struct, forbid_unknown_fields=True, tag_field="kind"):
    id: LaxId
    name: LaxName
    aliases: Annotated[list[LaxName], Meta(max_length=50)] = []
    description: feed.Description = ""
    popularity: feed.Popularity = 0.0
    op: Literal["upsert"] = "upsert"


class LaxTagged(LaxBase):
    genres: LaxRefs = []


class LaxArtist(LaxTagged, tag="artist"):
    related: Annotated[list[LaxId | LaxRelatedRef], Meta(max_length=MAX_REFS)] = []


class LaxAlbum(LaxTagged, tag="album"):
    artists: LaxRefs = []
    release_date: LaxDate | None = None


class LaxSong(LaxTagged, tag="song"):
    artists: LaxRefs = []
    album: LaxId | None = None
    duration_ms: feed.Duration | None = None
    release_date: LaxDate | None = None


class LaxPlaylist(LaxTagged, tag="playlist"):
    songs: LaxRefs = []


class LaxPodcast(LaxTagged, tag="podcast"):
    publisher: LaxShortText | None = None
    language: LaxLanguage | None = None


class LaxEpisode(LaxTagged, tag="episode"):
    podcast: LaxId | None = None
    duration_ms: feed.Duration | None = None
    release_date: LaxDate | None = None


class LaxGenre(LaxBase, tag="genre"):
    parent: LaxId | None = None


LaxRec = LaxArtist | LaxAlbum | LaxSong | LaxPlaylist | LaxPodcast | LaxEpisode | LaxGenre
# Pairs of (lax, strict) record types, for the test that keeps the two schemas equal.
SCHEMA_PAIRS: Final = ((LaxArtist, feed.ArtistRec), (LaxAlbum, feed.AlbumRec),
                       (LaxSong, feed.SongRec), (LaxPlaylist, feed.PlaylistRec),
                       (LaxPodcast, feed.PodcastRec), (LaxEpisode, feed.EpisodeRec),
                       (LaxGenre, feed.GenreRec), (LaxRelatedRef, feed.RelatedRef))
