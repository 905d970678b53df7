"""Spotify songs (TidyTuesday 2020-01-21): songs, albums, artists, playlists and their genres."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ingest.adapters.common import (
    AdapterResult,
    Record,
    aliases_for,
    artist_id,
    clean_name,
    genre_id,
    record,
    top,
    unique,
    valid_date,
)

SOURCE: Final = Path("spotify_songs") / "spotify_songs.csv.zip"
MEMBER: Final = "spotify_songs.csv"
# The data set was written from R, which spells a missing value as the literal string NA.
_MISSING: Final = frozenset({"", "NA"})
MAX_GENRES: Final = 5  # per album and per artist: their most frequent playlist subgenres


@dataclass(slots=True)
class _Album:
    name: str
    release_date: str | None
    artists: list[str] = field(default_factory=list)
    popularity: float = 0.0
    genres: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Artist:
    spellings: Counter[str] = field(default_factory=Counter)
    popularity: float = 0.0
    genres: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Playlist:
    name: str
    songs: dict[str, None] = field(default_factory=dict)  # ordered set: position = first row
    genres: list[str] = field(default_factory=list)


_EMPTY: Final = _Playlist("")


@dataclass(slots=True)
class _Builder:
    skips: Counter[str] = field(default_factory=Counter)
    genres: dict[str, Record] = field(default_factory=dict)
    songs: dict[str, Record] = field(default_factory=dict)
    song_genres: dict[str, list[str]] = field(default_factory=dict)
    albums: dict[str, _Album] = field(default_factory=dict)
    artists: dict[str, _Artist] = field(default_factory=dict)
    playlists: dict[str, _Playlist] = field(default_factory=dict)

    def genre(self, raw: str, parent: str | None) -> str | None:
        name = clean_name(raw)
        if not name:
            return None
        gid = genre_id(name)
        self.genres.setdefault(gid, record("genre", gid, name, parent=parent))
        return gid

    def add(self, row: dict[str, str]) -> None:
        if any(row[c].strip() in _MISSING for c in ("track_name", "track_artist",
                                                    "track_album_name", "track_id")):
            self.skips["missing track name, artist, album or id"] += 1
            return
        names = [clean_name(row[c]) for c in ("track_name", "track_artist", "track_album_name")]
        if not all(names):
            self.skips["name with nothing printable"] += 1
            return
        so, pl = "so:" + row["track_id"].strip(), "pl:" + row["playlist_id"].strip()
        if so in self.playlists.get(pl, _EMPTY).songs:
            # The same (track, playlist) row again: counting it twice would skew the genres.
            self.skips["track listed twice in one playlist"] += 1
            return
        track, artist, album = names
        parent = self.genre(row["playlist_genre"], None)
        sub = self.genre(row["playlist_subgenre"], parent)
        tags = [sub] if sub else []
        popularity = min(max(_int(row["track_popularity"]), 0), 100) / 100
        ar, al = artist_id(artist), "al:" + row["track_album_id"].strip()
        self._song(so, track, ar, al, row, popularity, tags)
        self._album(al, album, ar, row, popularity, tags)
        self._artist(ar, artist, popularity, tags)
        self._playlist(row, pl, so, parent, sub)

    def _song(self, so: str, name: str, ar: str, al: str, row: dict[str, str],
              popularity: float, tags: list[str]) -> None:
        if so not in self.songs:
            duration = _int(row["duration_ms"], -1)
            self.songs[so] = record(
                "song", so, name, artists=[ar], album=al,
                duration_ms=duration if duration >= 0 else None, popularity=popularity,
                release_date=valid_date(row["track_album_release_date"]))
            self.song_genres[so] = []
        self.song_genres[so] = unique([*self.song_genres[so], *tags])

    def _album(self, al: str, name: str, ar: str, row: dict[str, str], popularity: float,
               tags: list[str]) -> None:
        album = self.albums.get(al)
        if album is None:
            album = self.albums[al] = _Album(name, valid_date(row["track_album_release_date"]))
        if ar not in album.artists:
            album.artists.append(ar)
        album.popularity = max(album.popularity, popularity)
        album.genres.update(tags)

    def _artist(self, ar: str, name: str, popularity: float, tags: list[str]) -> None:
        artist = self.artists.setdefault(ar, _Artist())
        artist.spellings[name] += 1
        artist.popularity = max(artist.popularity, popularity)
        artist.genres.update(tags)

    def _playlist(self, row: dict[str, str], pl: str, so: str, *genres: str | None) -> None:
        playlist = self.playlists.get(pl)
        if playlist is None:
            playlist = self.playlists[pl] = _Playlist(clean_name(row["playlist_name"]) or pl)
        playlist.songs[so] = None
        playlist.genres = unique([*playlist.genres, *(g for g in genres if g)])

    def records(self) -> list[Record]:
        out = list(self.genres.values())
        for ar, a in self.artists.items():
            name = top(a.spellings, 1)[0]
            out.append(record("artist", ar, name, aliases=aliases_for(name, sorted(a.spellings)),
                              genres=top(a.genres, MAX_GENRES), popularity=a.popularity))
        for al, b in self.albums.items():
            out.append(record("album", al, b.name, artists=b.artists,
                              genres=top(b.genres, MAX_GENRES), popularity=b.popularity,
                              release_date=b.release_date))
        for so, song in self.songs.items():
            genres = sorted(self.song_genres[so])
            out.append({**song, "genres": genres} if genres else song)
        for pl, p in self.playlists.items():
            out.append(record("playlist", pl, p.name, songs=list(p.songs), genres=p.genres))
        return out


def _int(text: str, default: int = 0) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return default


def read_rows(data_dir: Path) -> Iterator[dict[str, str]]:
    with zipfile.ZipFile(data_dir / SOURCE) as z, z.open(MEMBER) as raw:
        yield from csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))


def convert_spotify(data_dir: Path) -> AdapterResult:
    """Records from the Spotify songs CSV; one row per (track, playlist)."""
    builder = _Builder()
    for row in read_rows(data_dir):
        builder.add(row)
    return AdapterResult(builder.records(), builder.skips)
