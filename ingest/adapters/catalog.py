"""One catalog feed from the public data sets: run the converters, merge, check, order, write."""

from __future__ import annotations

import argparse
import gzip
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Final

import msgspec

from ingest.adapters.chinook import convert_chinook
from ingest.adapters.common import MAX_ALIASES, AdapterResult, Record, artist_id, unique
from ingest.adapters.lastfm import convert_lastfm
from ingest.adapters.podcasts import convert_podcasts
from ingest.adapters.spotify import convert_spotify

SETS: Final = ("spotify", "lastfm", "podcasts", "chinook")
CONVERTERS: Final[Mapping[str, Callable[[Path], AdapterResult]]] = {
    "spotify": convert_spotify, "lastfm": convert_lastfm, "podcasts": convert_podcasts,
    "chinook": convert_chinook}
# Whose spelling names a merged artist or genre: Spotify's names are the current, curated ones;
# Last.fm's the most played user spelling; Chinook's come from 2008 iTunes metadata.
PRECEDENCE: Final = ("spotify", "lastfm", "chinook", "podcasts")
KIND_ORDER: Final = ("genre", "artist", "album", "song", "playlist", "podcast", "episode")
FIELD_ORDER: Final = (
    "kind", "id", "name", "aliases", "description", "publisher", "language", "artists", "album",
    "podcast", "parent", "genres", "duration_ms", "release_date", "popularity", "related", "songs")
# The kind each reference field must point at.
REF_FIELDS: Final = {"genres": "genre", "artists": "artist", "album": "album", "songs": "song",
                     "podcast": "podcast", "parent": "genre", "related": "artist"}


@dataclass(slots=True)
class ConvertReport:
    sets: tuple[str, ...]
    records: dict[str, int] = field(default_factory=dict)  # per kind, in KIND_ORDER
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)  # set -> reason -> rows
    merged: Counter[str] = field(default_factory=Counter)  # kind -> ids given by several sets
    dropped_references: int = 0  # references to nothing; 0 unless a converter is wrong
    seconds: dict[str, float] = field(default_factory=dict)  # per set, then "merge"

    @property
    def total(self) -> int:
        return sum(self.records.values())

    def __str__(self) -> str:
        lines = [f"converted {', '.join(self.sets)} in {sum(self.seconds.values()):.1f} s ("
                 + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()) + ")",
                 f"records: {self.total:,} = "
                 + ", ".join(f"{n:,} {k}s" for k, n in self.records.items()),
                 "merged from several sets: "
                 + ", ".join(f"{n:,} {k}s" for k, n in sorted(self.merged.items())),
                 f"references dropped: {self.dropped_references}"]
        for name, reasons in self.skipped.items():
            for reason, n in reasons.items():
                lines.append(f"skipped in {name}: {n:,} x {reason}")
        return "\n".join(lines)


def _merge_related(a: object, b: object) -> list[object]:
    best: dict[str, object] = {}
    for item in [*(a if isinstance(a, list) else []), *(b if isinstance(b, list) else [])]:
        key = item if isinstance(item, str) else str(item["id"])
        old = best.get(key)
        if old is None or _weight(item) > _weight(old):
            best[key] = item
    return list(best.values())


def _weight(item: object) -> float:
    return float(item["weight"]) if isinstance(item, dict) else 1.0


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _list(rec: Record, key: str) -> list[str]:
    value = rec.get(key, [])
    return [str(v) for v in value] if isinstance(value, list) else []


def _merge_into(into: Record, other: Record) -> None:
    """Fold `other` (same id, lower precedence) into `into`."""
    if into["kind"] == "artist":
        names = [str(other["name"]), *_list(other, "aliases")]
        aliases = [a for a in unique([*_list(into, "aliases"), *names]) if a != into["name"]]
        into["aliases"] = aliases[:MAX_ALIASES]
        into["genres"] = unique([*_list(into, "genres"), *_list(other, "genres")])
        into["related"] = _merge_related(into.get("related"), other.get("related"))
        popularity = max(_number(into.get("popularity")), _number(other.get("popularity")))
        if popularity > 0:
            into["popularity"] = popularity
    elif into["kind"] == "genre" and "parent" not in into and "parent" in other:
        into["parent"] = other["parent"]


def _break_genre_cycles(by_id: dict[str, Record]) -> None:
    """Parents from different sets could form a loop (a under b here, b under a there)."""
    for gid in sorted(g for g, r in by_id.items() if r["kind"] == "genre"):
        seen, cur = {gid}, by_id[gid].get("parent")
        while isinstance(cur, str) and cur in by_id:
            if cur in seen:
                del by_id[gid]["parent"]
                break
            seen.add(cur)
            cur = by_id[cur].get("parent")


def prune_references(records: Sequence[Record]) -> int:
    """Remove references to ids that are absent, of the wrong kind or the record itself."""
    kinds = {str(r["id"]): str(r["kind"]) for r in records}
    dropped = 0
    for rec in records:
        rid = rec["id"]
        for key, kind in REF_FIELDS.items():
            value = rec.get(key)
            if isinstance(value, list):
                kept = [v for v in value
                        if kinds.get(d := _ref_id(v)) == kind and d != rid]
                if len(kept) != len(value):
                    dropped += len(value) - len(kept)
                    rec[key] = kept
            elif value is not None and (kinds.get(str(value)) != kind or value == rid):
                dropped += 1
                rec[key] = None
    return dropped


_RANK: Final = {k: i for i, k in enumerate(FIELD_ORDER)}


@cache
def _field_order(keys: tuple[str, ...]) -> tuple[str, ...]:
    extra = set(keys) - _RANK.keys()
    if extra:
        raise ValueError(f"fields outside the feed format: {sorted(extra)}")
    return tuple(sorted(keys, key=_RANK.__getitem__))


def _canonical(rec: Record) -> Record:
    """Fields in one fixed order, empty optional ones left out."""
    return {k: v for k in _field_order(tuple(rec))
            if (v := rec[k]) is not None and v != [] and v != ""}


def merge(results: Mapping[str, AdapterResult], report: ConvertReport) -> list[Record]:
    """One record per id, in feed order: kind (parents first), then id."""
    by_id: dict[str, Record] = {}
    given_by: dict[str, set[str]] = {}
    for name in (s for s in PRECEDENCE if s in results):
        for rec in results[name].records:
            rid = str(rec["id"])
            if rid not in by_id:
                by_id[rid], given_by[rid] = dict(rec), {name}
            elif by_id[rid]["kind"] == rec["kind"] and rec["kind"] in ("artist", "genre"):
                _merge_into(by_id[rid], rec)
                given_by[rid].add(name)
            else:
                raise ValueError(f"{rid} comes twice from the converters ({name})")
    report.merged = Counter(str(by_id[i]["kind"]) for i, s in given_by.items() if len(s) > 1)
    _break_genre_cycles(by_id)
    order = {k: i for i, k in enumerate(KIND_ORDER)}
    records = sorted(by_id.values(), key=lambda r: (order[str(r["kind"])], str(r["id"])))
    for rec in records:
        related = rec.get("related")
        if isinstance(related, list):
            rec["related"] = sorted(related, key=lambda r: (-_weight(r), _ref_id(r)))
    report.dropped_references = prune_references(records)
    return [_canonical(r) for r in records]


def _ref_id(item: object) -> str:
    if isinstance(item, str):
        return item
    return str(item["id"]) if isinstance(item, dict) else str(item)


def build_catalog(data_dir: Path, *, sets: Collection[str] = SETS
                  ) -> tuple[list[Record], ConvertReport]:
    """Convert the chosen data sets under `data_dir` into one merged, ordered catalog feed."""
    unknown = set(sets) - set(CONVERTERS)
    if unknown:
        raise ValueError(f"unknown data sets {sorted(unknown)}; choose from {', '.join(SETS)}")
    report = ConvertReport(tuple(s for s in SETS if s in sets))
    results = {}
    for name in report.sets:
        started = time.perf_counter()
        results[name] = CONVERTERS[name](data_dir)
        report.seconds[name] = time.perf_counter() - started
        report.skipped[name] = dict(sorted(results[name].skips.items()))
    started = time.perf_counter()
    records = merge(results, report)
    report.seconds["merge"] = time.perf_counter() - started
    counts = Counter(str(r["kind"]) for r in records)
    report.records = {k: counts[k] for k in KIND_ORDER}
    return records, report


def encode_feed(records: Sequence[Record]) -> bytes:
    return msgspec.json.Encoder().encode_lines(records)


def write_feed(records: Sequence[Record], path: Path) -> int:
    """Write JSON Lines (gzip when the name ends in .gz) atomically; returns the record count.

    The file appears only when complete, because `make run` skips conversion when it exists.
    """
    data = encode_feed(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as f:
        if path.name.endswith(".gz"):
            # No name and no time in the header: the same records give the same bytes.
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0,
                               compresslevel=6) as gz:
                gz.write(data)
        else:
            f.write(data)
    os.replace(tmp, path)
    return len(records)


# Well-known artists found in Spotify and Last.fm (AC/DC also in Chinook): the fixture's core.
FIXTURE_ARTISTS: Final = ("Taylor Swift", "Ed Sheeran", "Beyonc\u00e9", "AC/DC", "Bj\u00f6rk",
                          "The Beatles", "U2", "Sia")
_CRIME: Final = re.compile(r"true crime|murder", re.IGNORECASE)


def _by_kind(records: Iterable[Record], kind: str) -> list[Record]:
    return [r for r in records if r["kind"] == kind]


def _fixture_songs(songs: list[Record], stars: list[str], per_artist: int) -> list[Record]:
    """Each star's most popular songs with distinct titles, plus two Chinook tracks if any."""
    picked = []
    for star in stars:
        mine = sorted((s for s in songs if star in _list(s, "artists")),
                      key=lambda s: (-_number(s.get("popularity")), str(s["id"])))
        titles: set[str] = set()
        for source, limit in (("so:chinook-", 2), ("so:", per_artist)):
            taken = 0
            for song in mine:
                title = str(song["name"]).casefold()
                if str(song["id"]).startswith(source) and title not in titles and taken < limit:
                    titles.add(title)
                    picked.append(song)
                    taken += 1
    return _unique_records(picked)


def _unique_records(records: Iterable[Record]) -> list[Record]:
    return list({str(r["id"]): r for r in records}.values())


def _fixture_playlists(playlists: list[Record], songs: set[str], n: int) -> list[Record]:
    """The `n` Spotify playlists and the one Chinook playlist holding most of `songs`."""
    def hits(p: Record) -> tuple[int, str]:
        return -len(songs.intersection(_list(p, "songs"))), str(p["id"])
    chinook = sorted((p for p in playlists if str(p["id"]).startswith("pl:chinook-")), key=hits)
    spotify = sorted((p for p in playlists if not str(p["id"]).startswith("pl:chinook-")),
                     key=hits)
    return spotify[:n] + chinook[:1]


def _fixture_podcasts(podcasts: list[Record], episodes: list[Record]) -> list[Record]:
    """Crime podcasts, plus the English music and comedy podcasts with most described episodes."""
    count = Counter(str(e["podcast"]) for e in episodes if "description" in e)
    picked = [p for p in podcasts if _CRIME.search(str(p["name"]))]
    for genre in ("g:music", "g:comedy"):
        ranked = sorted((p for p in podcasts
                         if genre in _list(p, "genres") and p.get("language") == "en"),
                        key=lambda p: (-count[str(p["id"])], str(p["id"])))
        picked += ranked[:1]
    return _unique_records(picked)


def build_fixture(catalog: Sequence[Record], *, songs_per_artist: int = 6, neighbours: int = 3,
                  playlists: int = 3, episodes: int = 4) -> list[Record]:
    """A small catalog slice with every kind and relationship type; its references resolve."""
    by_id = {str(r["id"]): r for r in catalog}
    stars = [a for a in (artist_id(n) for n in FIXTURE_ARTISTS) if a in by_id]
    chosen = set(stars)
    for star in stars:
        chosen.update(_ref_id(r) for r in _list_any(by_id[star], "related")[:neighbours])
    songs = _fixture_songs(_by_kind(catalog, "song"), stars, songs_per_artist)
    chosen.update(str(s["id"]) for s in songs)
    chosen.update(str(s["album"]) for s in songs if "album" in s)
    song_ids = {str(s["id"]) for s in songs}
    chosen.update(str(p["id"]) for p in _fixture_playlists(_by_kind(catalog, "playlist"),
                                                            song_ids, playlists))
    all_episodes = _by_kind(catalog, "episode")
    for podcast in _fixture_podcasts(_by_kind(catalog, "podcast"), all_episodes):
        chosen.add(str(podcast["id"]))
        mine = [e for e in all_episodes if e["podcast"] == podcast["id"]]
        mine.sort(key=lambda e: (str(e.get("release_date", "")), str(e["id"])), reverse=True)
        chosen.update(str(e["id"]) for e in mine[:episodes])
    for rid in list(chosen):
        chosen.update(_list(by_id[rid], "genres"))
    for gid in [g for g in chosen if g.startswith("g:")]:
        while isinstance(parent := by_id[gid].get("parent"), str):
            chosen.add(gid := parent)
    out = [dict(r) for r in catalog if r["id"] in chosen]
    prune_references(out)
    return [_canonical(r) for r in out]


def _list_any(rec: Record, key: str) -> list[object]:
    value = rec.get(key, [])
    return list(value) if isinstance(value, list) else []


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ingest.adapters.catalog {feed,fixture}`: write the catalog or the fixture."""
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["feed", "fixture"])
    parser.add_argument("--data-dir", type=Path, default=repo.parent / "shared" / "data")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    records, report = build_catalog(args.data_dir)
    print(report)
    if args.what == "fixture":
        records = build_fixture(records)
    out = args.out or (repo / "fixtures" / "catalog.jsonl" if args.what == "fixture"
                       else repo / ".tunegraph" / "catalog.jsonl.gz")
    print(f"wrote {write_feed(records, out):,} records to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
