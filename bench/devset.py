"""The development query set: seeded queries from ../shared/data with relevant catalog ids.

    .venv/bin/python -m bench.devset [--data-dir ../shared/data] [--out bench/data/devset.jsonl]

Classes (`cls`), each query with its generator and what it did (`how`):

- `artist_variant`, the held-out lexical set. Targets: the 3,000 Last.fm artists with most
  listeners, by their Last.fm spelling. Generators (bench/devset_variants.py, quota each): one
  or two keyboard slips, sound-alike respellings, run-together or split words, "X, The",
  band forms ("X and His Orchestra" added, "X & the Y" -> "X"), accents dropped or spelled out
  and other scripts romanized. Fair because: (1) a query that equals, case aside, any name or
  alias of any entity is dropped, so no exact alias hit counts (the catalog merges Last.fm and
  Spotify spellings into aliases); (2) a query that folds to the name of an entity outside its
  relevant set is dropped as ambiguous; (3) relevant = the target plus the artists that are the
  same name twice in the catalog (Last.fm "Killers" and Spotify "The Killers" are two nodes),
  by `fold`, which is not the retrievers' normalizer; (4) generators model users, not our
  index, and read no retriever; (5) tuning and held-out parts have disjoint targets. Queries
  that are exact after simple folding ("Dead Milkmen, The", "Bjork") are flagged
  `folded_exact`, so figures can be read with and without them.
- `known_item`: a song or album name (popularity weighted) with one or two slips.
- `partial`: the first words of a long name, or the name without one of its later words.
- `artist_song`: "{artist} {song}" or "{song} {artist}", a slip in the artist part sometimes.
- `songs_by`: "songs by X", "X songs"; relevant = X's songs.
- `playlist`: playlist names, sometimes with a slip.
- `mood_tag`: a Last.fm tag; relevant = the 20 artists most users gave it.
- `podcast_topic`: a podcast category ("true crime podcast"); relevant = its podcasts.

Split: `tune` (30%, by a hash of the target, for calibration and weights) and `test` (the
reported figures). Same data and seed, same file.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from bench.devset_variants import (
    ARTIST_GENERATORS,
    ARTIST_QUOTAS,
    Generator,
    casing,
    core_title,
    fold,
    partial,
    typo,
)
from ingest.adapters.catalog import build_catalog, write_feed
from ingest.adapters.common import artist_id, clean_name, read_tsv

REPO: Final = Path(__file__).resolve().parents[1]
DEFAULT_OUT: Final = REPO / "bench" / "data" / "devset.jsonl"
DEFAULT_CATALOG: Final = REPO / ".tunegraph" / "catalog.jsonl.gz"
SEED: Final = 2026
TUNE_SHARE: Final = 0.3
TOP_LASTFM: Final = 3_000
MOOD_RELEVANT: Final = 20
CLASSES: Final = ("artist_variant", "known_item", "partial", "artist_song", "songs_by",
                  "playlist", "mood_tag", "podcast_topic")


class DevQuery(msgspec.Struct, frozen=True, kw_only=True):
    qid: str
    query: str
    cls: str
    generator: str
    how: str
    base: str  # the text the query was made from
    target: str  # one relevant id (for mood and topic queries: the tag or category)
    relevant: list[str]
    split: str
    folded_exact: bool = False


@dataclass(slots=True)
class Catalog:
    """What the generators need of the catalog feed: names, kinds, songs, folded names."""

    kind: dict[str, str] = field(default_factory=dict)
    name: dict[str, str] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)  # name, then aliases
    popularity: dict[str, float] = field(default_factory=dict)
    songs_of: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    first_artist: dict[str, str] = field(default_factory=dict)
    exact: set[str] = field(default_factory=set)  # every name and alias, case folded
    by_fold: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_core: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # titles

    def same_name(self, eid: str, extra: Iterable[str] = ()) -> set[str]:
        """`eid` and the entities of its kind whose name or an alias folds like one of its own."""
        out = {eid}
        for text in [*self.names[eid], *extra]:
            out |= {i for i in self.by_fold.get(fold(text), ()) if self.kind[i] == self.kind[eid]}
        return out

    def same_title(self, eid: str) -> set[str]:
        """`eid` and the songs or albums whose title, decorations aside, folds like its own."""
        core = fold(core_title(self.name[eid]))
        return {eid} | {i for i in self.by_core.get(core, ()) if self.kind[i] == self.kind[eid]}


def _exact(text: str) -> str:
    return " ".join(text.casefold().split())


def load_catalog(path: Path, data_dir: Path) -> Catalog:
    if not path.exists():
        write_feed(build_catalog(data_dir)[0], path)
    cat = Catalog()
    dec = msgspec.json.Decoder()
    with gzip.open(path, "rb") as f:
        for line in f:
            r = dec.decode(line)
            if r.get("op") == "delete":
                continue
            eid, names = r["id"], [r["name"], *r.get("aliases", [])]
            cat.kind[eid], cat.name[eid], cat.names[eid] = r["kind"], r["name"], names
            cat.popularity[eid] = float(r.get("popularity", 0.0))
            for n in names:
                cat.exact.add(_exact(n))
                cat.by_fold[fold(n)].add(eid)
            if r["kind"] in ("song", "album"):
                cat.by_core[fold(core_title(r["name"]))].add(eid)
            if r["kind"] == "song":
                for a in r.get("artists", []):
                    cat.songs_of[a].append(eid)
                if r.get("artists"):
                    cat.first_artist[eid] = r["artists"][0]
    return cat


def split_of(key: str, seed: int) -> str:
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 2**32
    return "tune" if h < TUNE_SHARE else "test"


def _ok(cat: Catalog, query: str, relevant: set[str]) -> bool:
    """Drop exact (case aside) hits on any name or alias, names of other entities after folding,
    and queries with under three letters or digits."""
    f = fold(query)
    return (len(f) >= 3 and _exact(query) not in cat.exact
            and cat.by_fold.get(f, set()) <= relevant)


@dataclass(slots=True)
class Builder:
    cat: Catalog
    seed: int
    out: list[DevQuery] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)

    def add(self, cls: str, gen: str, query: str, how: str, base: str, target: str,
            relevant: set[str], *, strict: bool = True, folded: bool = False) -> bool:
        if strict and not _ok(self.cat, query, relevant):
            self.dropped[f"{cls}/{gen}"] += 1
            return False
        self.out.append(DevQuery(
            qid=f"{cls}-{len(self.out):05d}", query=query, cls=cls, generator=gen, how=how,
            base=base, target=target, relevant=sorted(relevant),
            split=split_of(f"{cls}:{target}", self.seed), folded_exact=folded))
        return True

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")


def lastfm_top(data_dir: Path, n: int) -> list[str]:
    """Last.fm spellings of the `n` artists with most listeners (ties by name)."""
    folder = data_dir / "lastfm_hetrec2011"
    names = {row[0]: clean_name(row[1]) for row in read_tsv(folder / "artists.dat")
             if len(row) > 1}
    listeners = Counter(row[1] for row in read_tsv(folder / "user_artists.dat"))
    ranked = sorted((a for a in listeners if names.get(a)), key=lambda a: (-listeners[a],
                                                                           names[a]))
    return [names[a] for a in ranked[:n]]


def artist_variants(b: Builder, top: Sequence[str]) -> None:
    for gen, quota in ARTIST_QUOTAS.items():
        rng = b.rng(f"artist:{gen}")
        made = 0
        for base in rng.sample(list(top), len(top)):
            eid = artist_id(base)
            if made >= quota or eid not in b.cat.kind:
                continue
            got = ARTIST_GENERATORS[gen](base, rng)
            if got is None:
                continue
            query, how = got
            query = casing(query, rng)
            relevant = b.cat.same_name(eid, [base])
            if how == "band dropped":
                relevant |= {i for i in b.cat.by_fold.get(fold(query), ())
                             if b.cat.kind[i] == "artist"}
            spaced = fold(query, compact=False)
            folded = spaced in {fold(n, compact=False) for r in relevant for n in b.cat.names[r]}
            made += b.add("artist_variant", gen, query, how, base, eid, relevant, folded=folded)


def _weighted(rng: random.Random, ids: Sequence[str], weights: Sequence[float],
              n: int) -> list[str]:
    """n distinct ids, drawn with probability ~ weight (Efraimidis-Spirakis keys)."""
    keys = sorted(((rng.random() ** (1.0 / w), i) for i, w in zip(ids, weights, strict=True)),
                  reverse=True)
    return [i for _, i in keys[:n]]


def _slip(text: str, rng: random.Random) -> tuple[str, str]:
    gen: Generator = typo(2, 10) if rng.random() < 0.3 else typo(1, 3)
    got = gen(text, rng) or typo(1, 3)(text, rng)
    return got if got is not None else (text, "none")


def known_items(b: Builder, n_songs: int = 250, n_albums: int = 120) -> None:
    for kind, n in (("song", n_songs), ("album", n_albums)):
        rng = b.rng(f"known:{kind}")
        ids = sorted(i for i, k in b.cat.kind.items() if k == kind and len(b.cat.name[i]) >= 4)
        picked = _weighted(rng, ids, [0.05 + b.cat.popularity[i] for i in ids], 3 * n)
        made = 0
        for eid in picked:
            if made < n:
                query, how = _slip(core_title(b.cat.name[eid]), rng)
                made += b.add("known_item", f"{kind}_typo", casing(query, rng), how,
                              b.cat.name[eid], eid, b.cat.same_title(eid))


def partials(b: Builder, n: int = 250) -> None:
    rng = b.rng("partial")
    ids = sorted(i for i, k in b.cat.kind.items()
                 if k in ("song", "album", "artist", "playlist", "podcast")
                 and len(b.cat.name[i].split()) >= 3)
    made = 0
    for eid in _weighted(rng, ids, [0.05 + b.cat.popularity[i] for i in ids], 4 * n):
        got = partial(b.cat.name[eid], rng)
        if made < n and got is not None:
            made += b.add("partial", b.cat.kind[eid], casing(got[0], rng), got[1],
                          b.cat.name[eid], eid, b.cat.same_name(eid))


def artist_songs(b: Builder, top: Sequence[str], n: int = 250, n_by: int = 120) -> None:
    rng = b.rng("artist_song")
    known = {artist_id(a): a for a in top}
    songs = sorted(s for s, a in b.cat.first_artist.items() if a in known)
    made = 0
    for sid in _weighted(rng, songs, [0.05 + b.cat.popularity[s] for s in songs], 3 * n):
        aid = b.cat.first_artist[sid]
        artist, how = known[aid], "exact"
        if rng.random() < 0.4:
            artist, how = _slip(artist, rng)
        title = core_title(b.cat.name[sid])
        query = f"{artist} {title}" if rng.random() < 0.7 else f"{title} {artist}"
        relevant = {s for s in b.cat.same_title(sid) if s in b.cat.songs_of[aid]}
        if made < n:
            made += b.add("artist_song", "artist+song", casing(query, rng), how, title, sid,
                          relevant, strict=False)
    forms: list[Callable[[str], str]] = [lambda a: f"songs by {a}", lambda a: f"{a} songs",
                                         lambda a: f"{a} tracks"]
    with_songs = [a for a in top if len(b.cat.songs_of.get(artist_id(a), ())) >= 3]
    for a in rng.sample(with_songs, min(n_by, len(with_songs))):
        aid = artist_id(a)
        relevant = {s for d in b.cat.same_name(aid, [a]) for s in b.cat.songs_of.get(d, ())}
        b.add("songs_by", "kind+artist", casing(rng.choice(forms)(a), rng), "", a, aid,
              relevant, strict=False)


def playlists(b: Builder, n: int = 200) -> None:
    rng = b.rng("playlist")
    ids = sorted(i for i, k in b.cat.kind.items() if k == "playlist")
    for eid in rng.sample(ids, min(n, len(ids))):
        name, how, gen = b.cat.name[eid], "exact", "name"
        query = name
        if rng.random() < 0.3:
            (query, how), gen = _slip(name, rng), "name_typo"
        b.add("playlist", gen, casing(query, rng), how, name, eid, b.cat.same_name(eid),
              strict=gen == "name_typo")


def mood_tags(b: Builder, data_dir: Path, n: int = 150) -> None:
    """Tags that at least 20 users gave to at least 20 artists; relevant = its top artists."""
    folder = data_dir / "lastfm_hetrec2011"
    tags = {row[0]: clean_name(row[1]) for row in read_tsv(folder / "tags.dat",
                                                            encoding="latin-1")}
    artists = {row[0]: clean_name(row[1]) for row in read_tsv(folder / "artists.dat")
               if len(row) > 1}
    users: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for user, lfm, tag, *_ in read_tsv(folder / "user_taggedartists.dat"):
        if tags.get(tag) and artists.get(lfm):
            users[tags[tag].lower()][artist_id(artists[lfm])].add(user)
    eligible = sorted(t for t, per in users.items() if len(per) >= 20
                      and len(set().union(*per.values())) >= 20 and len(fold(t)) >= 3)
    rng = b.rng("mood")
    for tag in rng.sample(eligible, min(n, len(eligible))):
        per = users[tag]
        best = sorted(per, key=lambda a: (-len(per[a]), a))[:MOOD_RELEVANT]
        b.add("mood_tag", "lastfm_tag", tag, f"top {len(best)} tagged artists", tag,
              f"tag:{tag}", {a for a in best if a in b.cat.kind}, strict=False)


def podcast_topics(b: Builder, data_dir: Path, n: int = 150) -> None:
    by_cat: dict[str, set[str]] = defaultdict(set)
    with (data_dir / "podcasts" / "podcasts.csv").open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            for part in row["categories"].split("|"):
                if (cat := clean_name(part)) and "po:" + row["id"].strip() in b.cat.kind:
                    by_cat[cat].add("po:" + row["id"].strip())
    rng = b.rng("podcast")
    cats = sorted(c for c, ids in by_cat.items() if len(ids) >= 3)
    for cat in rng.sample(cats, min(n, len(cats))):
        query = rng.choice((cat, f"{cat} podcast", f"{cat} podcasts")).replace("&", "and")
        b.add("podcast_topic", "category", casing(query, rng), "", cat, f"category:{cat}",
              by_cat[cat], strict=False)


def build(data_dir: Path, catalog: Path, seed: int = SEED) -> tuple[list[DevQuery], Builder]:
    b = Builder(load_catalog(catalog, data_dir), seed)
    top = lastfm_top(data_dir, TOP_LASTFM)
    artist_variants(b, top)
    known_items(b)
    partials(b)
    artist_songs(b, top)
    playlists(b)
    mood_tags(b, data_dir)
    podcast_topics(b, data_dir)
    return b.out, b


def read(path: Path = DEFAULT_OUT) -> list[DevQuery]:
    dec = msgspec.json.Decoder(DevQuery)
    return [dec.decode(line) for line in path.read_bytes().splitlines() if line.strip()]


def summary(queries: Sequence[DevQuery], dropped: Counter[str]) -> str:
    rows = Counter((q.cls, q.generator, q.split) for q in queries)
    exact = Counter((q.cls, q.generator) for q in queries if q.folded_exact)
    lines = ["| class | generator | tune | test | folded exact | dropped |",
             "|---|---|---:|---:|---:|---:|"]
    for cls, gen in sorted({(c, g) for c, g, _ in rows}, key=lambda k: (CLASSES.index(k[0]),
                                                                         k[1])):
        lines.append(f"| {cls} | {gen} | {rows[cls, gen, 'tune']} | {rows[cls, gen, 'test']} "
                     f"| {exact[cls, gen]} | {dropped[f'{cls}/{gen}']} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    queries, b = build(args.data_dir, args.catalog, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(msgspec.json.Encoder().encode_lines(queries))
    print(summary(queries, b.dropped))
    print(f"\nwrote {len(queries):,} queries to {args.out}")


if __name__ == "__main__":
    main()
