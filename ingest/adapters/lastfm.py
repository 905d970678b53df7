"""Last.fm HetRec 2011: artists with play-count popularity, tag genres and co-listening links."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from ingest.adapters.common import (
    AdapterResult,
    Record,
    aliases_for,
    artist_id,
    clean_name,
    genre_id,
    read_tsv,
    record,
    top,
)

SOURCE: Final = Path("lastfm_hetrec2011")
RELATED_SOURCE: Final = "lastfm"


@dataclass(frozen=True, slots=True)
class LastfmOptions:
    # A genre needs many artists *and* several users: one user's private tag ("songs to
    # download later") can cover hundreds of artists and is no genre.
    min_tag_artists: int = 20
    min_tag_users: int = 5
    max_tags: int = 5  # per artist, the tags most users applied to it
    min_listeners: int = 5  # both ends of a RELATED_TO link need this many listeners
    neighbours: int = 10
    # One shared fan among 1,892 users is chance, not taste: ask for two.
    min_shared: int = 2


@dataclass(slots=True)
class _Tags:
    names: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    # (artist id, genre id) -> the users who applied a tag of that genre to that artist
    taggers: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))


def _read_artists(folder: Path, skips: Counter[str]) -> dict[str, str]:
    """Last.fm artist id -> cleaned name."""
    names = {}
    for row in read_tsv(folder / "artists.dat"):
        name = clean_name(row[1]) if len(row) > 1 else ""
        if not name:
            skips["artist name with nothing printable"] += 1
            continue
        names[row[0]] = name
    return names


def _read_tags(folder: Path, ids: dict[str, str], skips: Counter[str]) -> _Tags:
    # tags.dat is Latin-1, unlike the other files (UTF-8).
    tag_names = {row[0]: clean_name(row[1]) for row in read_tsv(folder / "tags.dat",
                                                                 encoding="latin-1")}
    tag_genres = {tag: genre_id(text) for tag, text in tag_names.items() if text}
    uses: Counter[str] = Counter()
    tags = _Tags()
    for user, lfm, tag, *_ in read_tsv(folder / "user_taggedartists.dat"):
        ar, gid = ids.get(lfm), tag_genres.get(tag)
        if ar is None:
            skips["tag assignment for an artist missing from artists.dat"] += 1
        elif gid is None:
            skips["tag assignment with an empty or unknown tag"] += 1
        else:
            uses[tag] += 1
            tags.taggers[ar, gid].add(user)
    for tag, n in uses.items():  # "Hip-Hop" and "hip hop" are one genre: name it the usual way
        tags.names[tag_genres[tag]][tag_names[tag]] += n
    return tags


def _artist_genres(tags: _Tags, opts: LastfmOptions) -> dict[str, list[str]]:
    artists: Counter[str] = Counter()
    users: dict[str, set[str]] = defaultdict(set)
    for (_, gid), who in tags.taggers.items():
        artists[gid] += 1
        users[gid] |= who
    eligible = {g for g, n in artists.items()
                if n >= opts.min_tag_artists and len(users[g]) >= opts.min_tag_users}
    per_artist: dict[str, Counter[str]] = defaultdict(Counter)
    for (ar, gid), who in tags.taggers.items():
        if gid in eligible:
            per_artist[ar][gid] = len(who)
    return {ar: top(counts, opts.max_tags) for ar, counts in per_artist.items()}


def related_artists(listeners: dict[str, set[str]], opts: LastfmOptions
                    ) -> dict[str, list[dict[str, object]]]:
    """Each artist's nearest artists by cosine similarity of their listener sets.

    A dense user x artist matrix over the artists with enough listeners (about 2,800) makes the
    co-listening counts one matrix product; the counts are small integers, exact in float32, so
    the result does not depend on the BLAS summation order.
    """
    ids = sorted(a for a, users in listeners.items() if len(users) >= opts.min_listeners)
    if len(ids) < 2:
        return {}
    users = sorted({u for a in ids for u in listeners[a]})
    row_of = {u: i for i, u in enumerate(users)}
    m = np.zeros((len(users), len(ids)), dtype=np.float32)
    for j, a in enumerate(ids):
        m[[row_of[u] for u in listeners[a]], j] = 1.0
    shared = (m.T @ m).astype(np.float64)
    sizes = np.sqrt(np.diag(shared))
    sim = shared / np.outer(sizes, sizes)
    sim[shared < opts.min_shared] = 0.0
    np.fill_diagonal(sim, 0.0)
    related: dict[str, list[dict[str, object]]] = {}
    for i, a in enumerate(ids):
        cols = np.flatnonzero(sim[i])
        # Highest similarity first; equal ones in column (= id) order, whatever the platform.
        best = cols[np.lexsort((cols, -sim[i, cols]))[:opts.neighbours]]
        if len(best):
            related[a] = [{"id": ids[j], "weight": round(float(sim[i, j]), 4),
                           "source": RELATED_SOURCE} for j in best]
    return related


def convert_lastfm(data_dir: Path, opts: LastfmOptions | None = None) -> AdapterResult:
    """Artist and genre records from Last.fm; artists whose names slug alike become one."""
    opts = opts or LastfmOptions()
    folder = data_dir / SOURCE
    result = AdapterResult()
    names = _read_artists(folder, result.skips)
    ids = {lfm: artist_id(name) for lfm, name in names.items()}
    plays: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    listeners: dict[str, set[str]] = defaultdict(set)
    for lfm, name in names.items():
        spellings[ids[lfm]][name] += 0  # an artist nobody played still keeps its spelling
    for user, lfm, weight in read_tsv(folder / "user_artists.dat"):
        if lfm not in ids:
            result.skips["play count for an artist missing from artists.dat"] += 1
            continue
        plays[ids[lfm]] += int(weight)
        spellings[ids[lfm]][names[lfm]] += int(weight)
        listeners[ids[lfm]].add(user)
    tags = _read_tags(folder, ids, result.skips)
    genres = _artist_genres(tags, opts)
    related = related_artists(listeners, opts)
    log_max = math.log1p(max(plays.values(), default=0)) or 1.0
    used = sorted({g for gs in genres.values() for g in gs})
    result.records = [record("genre", g, top(tags.names[g], 1)[0]) for g in used]
    result.records += [_artist(ar, spelled, genres.get(ar, []), related.get(ar, []),
                               round(math.log1p(plays[ar]) / log_max, 4))
                       for ar, spelled in spellings.items()]
    return result


def _artist(ar: str, spellings: Counter[str], genres: list[str],
            related: list[dict[str, object]], popularity: float) -> Record:
    ranked = top(spellings, len(spellings))  # most played spelling first
    return record("artist", ar, ranked[0], aliases=aliases_for(ranked[0], ranked),
                  genres=genres, popularity=popularity, related=related)
