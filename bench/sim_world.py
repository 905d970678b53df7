"""The simulator's world: a read-only view of the catalog feed and the users' tastes.

The catalog view (`Catalog`) is read from the same feed the store was loaded from, so the
simulated users want things that exist. Tastes come from the real Last.fm users in
../shared/data (`lastfm_users`: play counts per artist, and the tags each user gave), mapped onto
catalog artists by the id the converter gives every Last.fm artist (`ar:` + slug of its name).
For tests, `synthetic_users` draws seeded tastes over a small catalog instead.

Nothing here reads the store or any retriever: what users want must not depend on what the
sources can find.
"""

from __future__ import annotations

import gzip
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

from bench.devset_variants import core_title, fold
from ingest.adapters.common import artist_id, clean_name, read_tsv

LASTFM: Final = Path("lastfm_hetrec2011")
MIN_TASTE: Final = 5  # users who play fewer catalog artists than this are left out


@dataclass(frozen=True, slots=True)
class Item:
    """One catalog entity as the simulator sees it."""

    id: str
    kind: str
    name: str
    aliases: tuple[str, ...] = ()
    popularity: float = 0.0
    artists: tuple[str, ...] = ()  # songs and albums
    genres: tuple[str, ...] = ()


@dataclass(slots=True)
class Catalog:
    items: dict[str, Item] = field(default_factory=dict)
    songs_of: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    albums_of: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    related: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    members: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # genre ->
    by_fold: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    def of_kind(self, kind: str) -> list[str]:
        return sorted(i for i, it in self.items.items() if it.kind == kind)

    def same_name(self, eid: str) -> frozenset[str]:
        """`eid` and the entities of its kind named alike (folded): the catalog holds some
        names twice ("Shape of You" on two albums, Last.fm "Killers" and Spotify "The
        Killers"); a user who wants one is served by either. Songs and albums must also share
        an artist."""
        it = self.items[eid]
        title = core_title(it.name) if it.kind in ("song", "album") else it.name
        out = {eid}
        for other in self.by_fold.get((it.kind, fold(title)), ()):
            o = self.items[other]
            if it.kind not in ("song", "album") or set(o.artists) & set(it.artists):
                out.add(other)
        return frozenset(out)

    def genre_named(self, text: str) -> str | None:
        found = sorted(self.by_fold.get(("genre", fold(text)), ()))
        return found[0] if found else None


def _records(path: Path) -> Iterator[dict[str, Any]]:
    dec = msgspec.json.Decoder()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for line in f:
            if line.strip():
                yield dec.decode(line)


def load_catalog(path: Path) -> Catalog:
    """The catalog view of a feed (.jsonl or .jsonl.gz); deletes in the feed are applied."""
    cat = Catalog()
    raw: dict[str, dict[str, Any]] = {}
    for r in _records(path):
        if r.get("op") == "delete":
            raw.pop(r["id"], None)
        else:
            raw[r["id"]] = r
    for eid, r in raw.items():
        it = Item(eid, r["kind"], r["name"], tuple(r.get("aliases", ())),
                  float(r.get("popularity", 0.0)), tuple(r.get("artists", ())),
                  tuple(r.get("genres", ())))
        cat.items[eid] = it
        title = core_title(it.name) if it.kind in ("song", "album") else it.name
        for text in (title, *it.aliases):
            cat.by_fold[(it.kind, fold(text))].add(eid)
        for g in it.genres:
            cat.members[g].append(eid)
        for a in it.artists:
            (cat.songs_of if it.kind == "song" else cat.albums_of)[a].append(eid)
        for rel in r.get("related", ()):
            other, w = (rel, 1.0) if isinstance(rel, str) else (rel["id"], rel.get("weight", 1))
            cat.related[eid].append((other, float(w)))
            cat.related[other].append((eid, float(w)))  # RELATED_TO is read both ways
    for table in (cat.songs_of, cat.albums_of, cat.members):
        for ids in table.values():
            ids.sort(key=lambda i: (-cat.items[i].popularity, i))
    for key, pairs in cat.related.items():
        best: dict[str, float] = {}
        for other, w in pairs:
            best[other] = max(best.get(other, 0.0), w)
        cat.related[key] = sorted(best.items(), key=lambda p: (-p[1], p[0]))
    return cat


@dataclass(frozen=True, slots=True)
class User:
    """A simulated user: catalog artists with play counts (best first), the name they know
    each by, and the tags they gave (tag text -> the artists they gave it to)."""

    id: str
    taste: tuple[tuple[str, float], ...]
    spelling: dict[str, str] = field(default_factory=dict)
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)


def lastfm_users(data_dir: Path, cat: Catalog) -> list[User]:
    """The real Last.fm users, with the artists of theirs the catalog holds."""
    folder = data_dir / LASTFM
    names = {row[0]: clean_name(row[1]) for row in read_tsv(folder / "artists.dat")
             if len(row) > 1}
    ids = {lfm: artist_id(n) for lfm, n in names.items() if n}
    plays: dict[str, dict[str, float]] = defaultdict(dict)
    for user, lfm, weight in read_tsv(folder / "user_artists.dat"):
        aid = ids.get(lfm)
        if aid in cat.items:
            plays[user][lfm] = float(weight)
    tag_names = {row[0]: clean_name(row[1]).lower() for row in read_tsv(
        folder / "tags.dat", encoding="latin-1")}
    tagged: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for user, lfm, tag, *_ in read_tsv(folder / "user_taggedartists.dat"):
        aid, text = ids.get(lfm), tag_names.get(tag)
        if aid in cat.items and text and lfm in plays.get(user, {}):
            tagged[user][text].add(ids[lfm])
    users = []
    for user in sorted(plays, key=int):
        ranked = sorted(plays[user].items(), key=lambda p: (-p[1], p[0]))
        if len(ranked) < MIN_TASTE:
            continue
        users.append(User(f"lfm{user}", tuple((ids[lfm], w) for lfm, w in ranked),
                          {ids[lfm]: names[lfm] for lfm, _ in ranked},
                          {t: tuple(sorted(a)) for t, a in sorted(tagged[user].items())}))
    return users


def synthetic_users(cat: Catalog, n: int, seed: int, *, size: int = 8) -> list[User]:
    """Seeded users over a small catalog (tests): each plays `size` artists, Zipf-like counts,
    and tags some of them with their catalog genres' names."""
    rng = random.Random(seed)
    artists = cat.of_kind("artist")
    users = []
    for u in range(n):
        picked = rng.sample(artists, min(size, len(artists)))
        taste = tuple((a, round(1000.0 / (1 + r), 1)) for r, a in enumerate(picked))
        tags: dict[str, set[str]] = defaultdict(set)
        for a in picked[:3]:
            for g in cat.items[a].genres[:2]:
                if g in cat.items:
                    tags[cat.items[g].name.lower()].add(a)
        users.append(User(f"syn{u}", taste, {a: cat.items[a].name for a in picked},
                          {t: tuple(sorted(v)) for t, v in sorted(tags.items())}))
    return users


def weighted_pick(rng: random.Random, ids: Sequence[str], weights: Sequence[float]) -> str:
    return rng.choices(list(ids), weights=list(weights))[0]
