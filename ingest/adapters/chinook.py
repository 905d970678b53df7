"""Chinook sample store: artists, albums, tracks as songs, genres and playlists."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ingest.adapters.common import (
    AdapterResult,
    Record,
    artist_id,
    clean_name,
    genre_id,
    read_csv,
    record,
    top,
)

SOURCE: Final = Path("chinook")
MAX_GENRES: Final = 3  # per artist and album: the genres most of its tracks carry


def _table(data_dir: Path, name: str) -> list[dict[str, str]]:
    return list(read_csv(data_dir / SOURCE / f"{name}.csv"))


def _artists(data_dir: Path, skips: Counter[str]) -> dict[str, str]:
    """Chinook ArtistId -> cleaned name."""
    names = {}
    for row in _table(data_dir, "Artist"):
        name = clean_name(row["Name"])
        if name:
            names[row["ArtistId"]] = name
        else:
            skips["artist without a name"] += 1
    return names


@dataclass(frozen=True, slots=True)
class _Track:
    song: str  # "so:chinook-<TrackId>"
    name: str
    album: str  # "al:chinook-<AlbumId>"
    artist: str
    genre: str | None
    duration_ms: int | None

    def record(self) -> Record:
        return record("song", self.song, self.name, artists=[self.artist], album=self.album,
                      genres=[self.genre] if self.genre else None, duration_ms=self.duration_ms)


def _tracks(data_dir: Path, album_artist: dict[str, str], genres: dict[str, str],
            skips: Counter[str]) -> list[_Track]:
    tracks = []
    for row in _table(data_dir, "Track"):
        name, album = clean_name(row["Name"]), row["AlbumId"].strip()
        if not name or album not in album_artist:
            skips["track without a name or a known album"] += 1
            continue
        ms = row["Milliseconds"].strip()
        tracks.append(_Track(f"so:chinook-{row['TrackId'].strip()}", name, f"al:chinook-{album}",
                             album_artist[album], genres.get(row["GenreId"].strip()),
                             int(ms) if ms.isdigit() else None))
    return tracks


def _playlists(data_dir: Path, songs: set[str], skips: Counter[str]) -> list[Record]:
    tracks: dict[str, dict[str, None]] = defaultdict(dict)  # ordered sets, file order = position
    for row in _table(data_dir, "PlaylistTrack"):
        so = f"so:chinook-{row['TrackId'].strip()}"
        if so in songs:
            tracks[row["PlaylistId"].strip()][so] = None
        else:
            skips["playlist entry for an unknown track"] += 1
    out = []
    for row in _table(data_dir, "Playlist"):
        pid, name = row["PlaylistId"].strip(), clean_name(row["Name"])
        if not tracks.get(pid) or not name:
            # Chinook keeps four empty playlists ("Movies", "Audiobooks"): nothing to search for.
            skips["playlist without tracks or name"] += 1
            continue
        out.append(record("playlist", f"pl:chinook-{pid}", name, songs=list(tracks[pid])))
    return out


def _albums(data_dir: Path, names: dict[str, str],
            skips: Counter[str]) -> dict[str, tuple[str, str]]:
    """Chinook AlbumId -> (title, artist id), for albums whose artist is known."""
    albums = {}
    for row in _table(data_dir, "Album"):
        artist = row["ArtistId"].strip()
        if artist not in names:
            skips["album of an unknown artist"] += 1
            continue
        album = row["AlbumId"].strip()
        albums[album] = (clean_name(row["Title"]) or f"Album {album}", artist_id(names[artist]))
    return albums


def convert_chinook(data_dir: Path) -> AdapterResult:
    """Chinook records; its artists carry the same slug ids as the other data sets'."""
    result = AdapterResult()
    names = _artists(data_dir, result.skips)
    genre_names = {row["GenreId"].strip(): clean_name(row["Name"])
                   for row in _table(data_dir, "Genre")}
    genres = {gid: genre_id(name) for gid, name in genre_names.items() if name}
    albums = _albums(data_dir, names, result.skips)
    tracks = _tracks(data_dir, {a: artist for a, (_, artist) in albums.items()}, genres,
                     result.skips)
    album_genres: dict[str, Counter[str]] = defaultdict(Counter)
    artist_genres: dict[str, Counter[str]] = defaultdict(Counter)
    for t in tracks:
        if t.genre:
            album_genres[t.album][t.genre] += 1
            artist_genres[t.artist][t.genre] += 1
    result.records = [record("genre", genres[g], genre_names[g]) for g in sorted(genres)]
    result.records += [record("artist", artist_id(n), n,
                              genres=top(artist_genres[artist_id(n)], MAX_GENRES))
                       for n in names.values()]
    result.records += [record("album", f"al:chinook-{a}", title, artists=[artist],
                              genres=top(album_genres[f"al:chinook-{a}"], MAX_GENRES))
                       for a, (title, artist) in albums.items()]
    result.records += [t.record() for t in tracks]
    result.records += _playlists(data_dir, {t.song for t in tracks}, result.skips)
    return result
