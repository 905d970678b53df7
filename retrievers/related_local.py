"""Related entities from an in-process adjacency: the Cypher traversals of `retrievers.related`,
answered from a catalog snapshot with no store round trip.

The same branches, weights, caps and scores as the Cypher expander (its module docstring says
what they are), with the same tie-breaks, so both give the same candidates in the same order
(tests/test_related_local.py checks that on the fixture catalog in a real Neo4j). Built from the
snapshot that every serving index is built from and swapped with them when the catalog version
moves; a search reads only these arrays, so related content keeps working while the store is
down.

Each relationship type is held as compressed rows (CSR) per direction, each row already in its
branch's order (popularity desc, then id; episodes by release date desc), so a capped branch is
a slice. The one branch that is not a slice, "shares playlists with", counts co-members over the
seed's playlists; its top rows are cached per song.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from graph.model import Entity, Kind, RelType
from graph.snapshot import Snapshot
from retrievers.base import Candidate
from retrievers.related import PER_BRANCH

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
KINDS: Final = tuple(Kind)
SHARED_CACHE: Final = 50_000  # songs whose "shares playlists" top rows are kept


@dataclass(frozen=True, slots=True)
class _Rows:
    """CSR: the neighbours of node i are `dst[off[i]:off[i + 1]]`, in branch order; `w` holds
    their edge weights where the branch uses them (RELATED_TO)."""

    off: I64
    dst: I64
    w: F64 | None = None

    def span(self, i: int, cap: int | None = None) -> slice:
        lo, hi = int(self.off[i]), int(self.off[i + 1])
        return slice(lo, hi if cap is None else min(hi, lo + cap))

    def of(self, i: int, cap: int | None = None) -> I64:
        return self.dst[self.span(i, cap)]


def _rows(n: int, src: I64, dst: I64, key: I64 | F64, w: F64 | None = None) -> _Rows:
    """Rows of `src` -> `dst`, each row ordered by `key` (one per edge) ascending, then dst
    (id) order."""
    order = np.lexsort((dst, key, src))
    off = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=off[1:])
    return _Rows(off, dst[order], None if w is None else w[order])


class LocalRelatedExpander:
    """`RelatedExpander`'s traversals over a snapshot held in memory; seeds count less the lower
    they ranked (1 / (1 + rank))."""

    name = "related"

    def __init__(self, snapshot: Snapshot, *, per_branch: int = PER_BRANCH) -> None:
        ents: Sequence[Entity] = snapshot.entities  # id order: index order is id order
        self.per_branch = per_branch
        self._ents = ents
        self._index = {e.id: i for i, e in enumerate(ents)}
        n = len(ents)
        self._kind = np.array([KINDS.index(e.kind) for e in ents], np.int8)
        self._pop = np.array([e.popularity for e in ents], np.float64)
        dates = [str(e.extra.get("release_date") or "") for e in ents]
        rank = {d: r for r, d in enumerate(sorted(set(dates)))}  # "" (no date) ranks lowest
        newest_first = -np.array([rank[d] for d in dates], np.int64)
        by_pop: Callable[[I64], F64] = lambda d: -self._pop[d]  # noqa: E731
        # typed arrays, not lists: no int object per endpoint while a large catalog is read
        edges = {t: (array("q"), array("q")) for t in RelType}
        weights = array("d")  # RELATED_TO's, the one branch that scores by edge weight
        index = self._index
        for rel in snapshot.relations:
            s, d = index.get(rel.src), index.get(rel.dst)
            if s is None or d is None:
                continue
            srcs, dsts = edges[rel.type]
            srcs.append(s)
            dsts.append(d)
            if rel.type is RelType.RELATED_TO:
                weight = rel.props.get("weight")
                weights.append(float(weight) if isinstance(weight, int | float) else 0.5)

        def arrays(t: RelType) -> tuple[I64, I64]:
            s, d = edges[t]
            return np.frombuffer(s, np.int64), np.frombuffer(d, np.int64)

        def out(t: RelType, key: Callable[[I64], I64 | F64] = by_pop) -> _Rows:
            s, d = arrays(t)
            return _rows(n, s, d, key(d))

        def into(t: RelType, key: Callable[[I64], I64 | F64] = by_pop) -> _Rows:
            s, d = arrays(t)
            return _rows(n, d, s, key(s))

        self._related = self._related_artists(n, *arrays(RelType.RELATED_TO),
                                              np.frombuffer(weights, np.float64))
        self._songs_of_artist = into(RelType.PERFORMED_BY)
        self._artists_of_song = out(RelType.PERFORMED_BY)
        self._albums_of_song = out(RelType.ON_ALBUM)
        self._songs_of_album = into(RelType.ON_ALBUM)
        self._artists_of_album = out(RelType.BY)
        self._songs_of_playlist = out(RelType.CONTAINS)
        self._playlists_of_song = into(RelType.CONTAINS)
        self._episodes = into(RelType.EPISODE_OF, lambda d: newest_first[d])
        self._podcast_of = out(RelType.EPISODE_OF)
        self._genre_members = into(RelType.IN_GENRE)
        self._subgenres = into(RelType.SUBGENRE_OF)
        self._shared = lru_cache(maxsize=SHARED_CACHE)(self._shares_playlists)

    def clear_cache(self) -> None:
        """Forget the cached "shares playlists" rows (benchmarks time their misses)."""
        self._shared.cache_clear()

    def _related_artists(self, n: int, src: I64, dst: I64, w: F64) -> _Rows:
        """RELATED_TO either way, one weight per pair (the larger), strongest first."""
        keep = src != dst
        a, b = np.concatenate([src[keep], dst[keep]]), np.concatenate([dst[keep], src[keep]])
        ww = np.concatenate([w[keep], w[keep]])
        order = np.lexsort((-ww, b, a))  # per pair, the largest weight first
        a, b, ww = a[order], b[order], ww[order]
        first = np.ones(len(a), np.bool_)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        return _rows(n, a[first], b[first], -ww[first], ww[first])

    def _same_artist(self, song: int) -> I64:
        """Other songs by the song's artists, most popular first, each once."""
        cap = self.per_branch
        artists = self._artists_of_song.of(song)
        if not len(artists):
            return np.zeros(0, np.int64)
        # Each artist's row is in branch order, so its first cap + 1 hold its share of the top.
        pool = np.unique(np.concatenate([self._songs_of_artist.of(int(a), cap + 1)
                                         for a in artists.tolist()]))
        pool = pool[pool != song]
        top: I64 = pool[np.lexsort((pool, -self._pop[pool]))][:cap]
        return top

    def _shares_playlists(self, song: int) -> tuple[int, ...]:
        """Songs sharing the most playlists with the song (paths counted), then by popularity."""
        lists = self._playlists_of_song.of(song)
        if not len(lists):
            return ()
        every = np.concatenate([self._songs_of_playlist.of(int(p)) for p in lists.tolist()])
        others, shared = np.unique(every[every != song], return_counts=True)
        top = np.lexsort((others, -self._pop[others], -shared))[:self.per_branch]
        return tuple(others[top].tolist())

    def _branches(self, node: int) -> list[tuple[Sequence[int], Sequence[float], str]]:
        """(neighbours, step weights, via) of every branch that starts at the node's kind."""
        cap = self.per_branch
        kind = KINDS[self._kind[node]]
        out: list[tuple[Sequence[int], Sequence[float], str]] = []

        def add(rows: _Rows, weight: float, via: str, capped: bool = True) -> None:
            m = rows.of(node, cap if capped else None)
            out.append((m.tolist(), [weight] * len(m), via))

        if kind is Kind.ARTIST:
            related, span = self._related, self._related.span(node, cap)
            assert related.w is not None
            out.append((related.dst[span].tolist(), related.w[span].tolist(), "related artist"))
            add(self._songs_of_artist, 0.8, "song by")
        elif kind is Kind.SONG:
            add(self._albums_of_song, 0.7, "album of", capped=False)
            same = self._same_artist(node).tolist()
            out.append((same, [0.6] * len(same), "same artist"))
            shared = self._shared(node)
            out.append((shared, [0.4] * len(shared), "shares playlists with"))
        elif kind is Kind.ALBUM:
            add(self._songs_of_album, 0.8, "song on")
            add(self._artists_of_album, 0.8, "artist of", capped=False)
        elif kind is Kind.PLAYLIST:
            add(self._songs_of_playlist, 0.6, "song in")
        elif kind is Kind.PODCAST:
            add(self._episodes, 0.8, "episode of")
        elif kind is Kind.EPISODE:
            add(self._podcast_of, 0.8, "podcast of", capped=False)
        elif kind is Kind.GENRE:
            add(self._genre_members, 0.5, "top of genre")
            add(self._subgenres, 0.4, "subgenre of", capped=False)
        return out

    def expand(self, seeds: Sequence[Candidate], k: int, *,
               kinds: Sequence[str] = ()) -> list[Candidate]:
        if k <= 0 or not seeds:
            return []
        nodes = [self._index.get(c.entity_id) for c in seeds]  # None: not in the catalog
        seed_nodes = {i for i in nodes if i is not None}
        wanted = {KINDS.index(Kind(v)) for v in kinds}
        # Node order is id order. entity -> (-score, via, seed): its best path, the smallest
        # such tuple, so ties go to the via, then the seed, first in that order.
        best: dict[int, tuple[float, str, int]] = {}
        for rank, node in enumerate(nodes):
            if node is None:
                continue
            weight = 1.0 / (1 + rank)
            for ms, ws, via in self._branches(node):
                for m, w in zip(ms, ws, strict=True):
                    if m in seed_nodes or (wanted and self._kind[m] not in wanted):
                        continue
                    path = (-(weight * w * (0.5 + 0.5 * float(self._pop[m]))), via, node)
                    old = best.get(m)
                    if old is None or path < old:
                        best[m] = path
        ranked = sorted(best.items(), key=lambda mp: (mp[1][0], mp[0]))[:k]
        return [Candidate(self._ents[m].id, -neg, self.name, f"{via} {self._ents[seed].name}")
                for m, (neg, via, seed) in ranked]
