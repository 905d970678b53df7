"""The intent development set: structured queries ("songs by X", "artists like X") from the graph.

    .venv/bin/python -m bench.intent_devset [--out bench/data/intent_devset.jsonl] [--seed 0]
                                            [--per-class 80]

Each query names a subject (an artist, a song, an album or a genre) in a phrasing people use and
takes its relevant set from the catalog's edges, not from any retriever:

- `songs_of_artist`: "songs by X", "X songs", "play X"...; an artist with >= 5 songs; relevant:
  the songs PERFORMED_BY it; a one-letter slip in ~20% of names over 6 characters.
- `artists_like`: "artists like X"...; an artist with >= 3 RELATED_TO neighbours (either way).
- `songs_like`: "songs like T"; a popular song S; relevant: other songs (not S's same-title
  versions) sharing a genre with S and by S's artist, an artist related to it, or in a playlist
  with S; skipped under 10 relevant or when another artist has a song of that title.
- `genre_songs`, `genre_playlists`, `podcast_category`: a genre (podcast categories are genres)
  with >= 20 songs, >= 3 playlists, >= 3 podcasts in it or in its subgenres (transitively); some
  song queries ask for a decade ("rock songs from the 90s") by the songs' release dates.
- `title_artist`, `album_artist`: "T by A", "A T"...; relevant: A's songs (albums) whose title
  folds (bench.devset_variants.fold of core_title) like the subject's. Judged by rank, not p@10.

Queries use the core of a title ("Song - 2011 Remaster" -> "Song"); names are lower-cased half
the time. `anchor` is the entity a query is about (it may lead the page and is not judged);
`kind` the kind asked for (None when the query does not say). Split by a hash of the subject's
key (the artist, a song's or album's first artist by id, or the genre), so tune and test share no
subject; one query per key and class. Seeded: the same catalog and seed give the same set.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from api.warmstart import subject_half
from bench.devset_variants import core_title, fold, typo
from graph.model import Entity, Kind, Relation, RelType

REPO: Final = Path(__file__).resolve().parents[1]
DEFAULT_OUT: Final = REPO / "bench" / "data" / "intent_devset.jsonl"
PER_CLASS: Final = 80
CLASSES: Final = ("songs_of_artist", "artists_like", "songs_like", "genre_songs",
                  "genre_playlists", "podcast_category", "title_artist", "album_artist")
RANKED: Final = frozenset({"title_artist", "album_artist"})  # judged by hit@1 / MRR
MIN_SONGS_OF_ARTIST: Final = 5
MIN_RELATED: Final = 3
MIN_SONGS_LIKE: Final = 10
MIN_GENRE_SONGS: Final = 20
MIN_GENRE_ITEMS: Final = 3  # playlists, podcasts
POPULAR_SHARE: Final = 0.25  # "a popular song": the top quarter of songs by popularity
TYPO_SHARE: Final = 0.2
DECADE_SHARE: Final = 0.25

TEMPLATES: Final[dict[str, tuple[str, ...]]] = {
    "songs_of_artist": ("songs by {a}", "{a} songs", "{a}'s songs", "best of {a}", "{a} tracks",
                        "top {a} songs", "play {a}", "{a} greatest hits"),
    "artists_like": ("artists like {a}", "similar to {a}", "bands like {a}", "music like {a}",
                     "{a} similar artists", "sounds like {a}", "{a} radio"),
    "songs_like": ("songs like {t}", "songs similar to {t}", "more songs like {t}",
                   "tracks like {t}"),
    "genre_songs": ("{g} songs", "{g} music", "best {g} tracks", "{g} hits", "top {g} songs"),
    "genre_playlists": ("{g} playlists", "{g} playlist", "playlists {g}", "{g} mixes"),
    "podcast_category": ("{g} podcasts", "podcasts about {g}", "{g} podcast", "best {g} shows"),
    "title_artist": ("{t} {a}", "{a} {t}", "{t} by {a}"),
    "album_artist": ("{t} {a}", "{a} {t}", "{t} by {a}"),
}
DECADE_TEMPLATE: Final = "{g} songs from the {d}"


class IntentQuery(msgspec.Struct, frozen=True, kw_only=True):
    cls: str
    query: str
    subject: str
    split: str  # "tune" | "test"
    relevant: list[str]
    anchor: str | None
    kind: str | None
    phrasing: str  # the template, "+typo" / "+lower" when applied


@dataclass(frozen=True, slots=True)
class Made:
    """What a class maker returns for one subject: the query and its judgement."""

    query: str
    relevant: list[str]
    phrasing: str


@dataclass(slots=True)
class Graph:
    """The catalog's entities and edges, indexed both ways, with what the makers ask of them."""

    ent: dict[str, Entity]
    out: dict[RelType, dict[str, list[str]]] = field(default_factory=dict)
    inn: dict[RelType, dict[str, list[str]]] = field(default_factory=dict)
    by_core: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, entities: Iterable[Entity], relations: Iterable[Relation]) -> Graph:
        g = cls({e.id: e for e in entities})
        g.out = {t: defaultdict(list) for t in RelType}
        g.inn = {t: defaultdict(list) for t in RelType}
        for r in relations:
            if r.src in g.ent and r.dst in g.ent:
                g.out[r.type][r.src].append(r.dst)
                g.inn[r.type][r.dst].append(r.src)
        for e in g.ent.values():
            if e.kind in (Kind.SONG, Kind.ALBUM):
                g.by_core[g.core(e.id)].append(e.id)
        return g

    def fwd(self, t: RelType, src: str) -> list[str]:
        return self.out[t].get(src, [])

    def back(self, t: RelType, dst: str) -> list[str]:
        return self.inn[t].get(dst, [])

    def of_kind(self, kind: Kind) -> list[str]:
        return sorted(i for i, e in self.ent.items() if e.kind == kind)

    def core(self, eid: str) -> str:
        return fold(core_title(self.ent[eid].name))

    def related(self, artist: str) -> set[str]:
        t = RelType.RELATED_TO
        return (set(self.fwd(t, artist)) | set(self.back(t, artist))) - {artist}

    def first(self, t: RelType, src: str) -> str | None:
        """The first (by id) target of `src`'s `t` edges: a song's or album's key artist."""
        return min(self.fwd(t, src), default=None)

    def subgenres(self, genre: str) -> set[str]:
        """`genre` and every genre under it, however deep."""
        seen, todo = {genre}, [genre]
        while todo:
            for child in self.back(RelType.SUBGENRE_OF, todo.pop()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return seen

    def members(self, genre: str, kind: Kind) -> set[str]:
        """Entities of `kind` IN_GENRE the genre or one of its subgenres."""
        return {m for g in self.subgenres(genre) for m in self.back(RelType.IN_GENRE, g)
                if self.ent[m].kind == kind}


def split_of(key: str) -> str:
    """The half of a subject key: the warm start (api.warmstart) teaches only the "tune" half."""
    return subject_half(key)


def _name(text: str, rng: random.Random, *, slip: bool = False) -> tuple[str, list[str]]:
    """`text` with a one-letter slip (~20% of names over 6 characters, when `slip`)."""
    if slip and len(text) > 6 and rng.random() < TYPO_SHARE:
        got = typo(1, 1)(text, rng)
        if got is not None:
            return got[0], ["typo"]
    return text, []


def _phrase(template: str, rng: random.Random, notes: list[str], **names: str) -> Made | None:
    """The query for a template, lower-cased half the time (relevant filled in by the caller)."""
    query = template.format(**names)
    if rng.random() < 0.5 and query != query.lower():
        query, notes = query.lower(), [*notes, "lower"]
    return Made(query, [], "+".join([template, *notes]))


def _with(made: Made | None, relevant: Iterable[str]) -> Made | None:
    return None if made is None else Made(made.query, sorted(relevant), made.phrasing)


# -- one maker per class: (graph, subject, rng) -> the query, or None to skip the subject ---------

def songs_of_artist(g: Graph, artist: str, rng: random.Random) -> Made | None:
    name, notes = _name(g.ent[artist].name, rng, slip=True)
    made = _phrase(rng.choice(TEMPLATES["songs_of_artist"]), rng, notes, a=name)
    return _with(made, g.back(RelType.PERFORMED_BY, artist))


def artists_like(g: Graph, artist: str, rng: random.Random) -> Made | None:
    made = _phrase(rng.choice(TEMPLATES["artists_like"]), rng, [], a=g.ent[artist].name)
    return _with(made, g.related(artist))


def _title_is_shared(g: Graph, song: str) -> bool:
    """Another artist has a song of this title (folded core)."""
    mine = set(g.fwd(RelType.PERFORMED_BY, song))
    return any(g.ent[o].kind == Kind.SONG and not mine & set(g.fwd(RelType.PERFORMED_BY, o))
               for o in g.by_core[g.core(song)] if o != song)


def like_songs(g: Graph, song: str) -> set[str]:
    """Songs sharing a genre with `song` and an artist, a related artist or a playlist with it;
    not `song` nor its same-title versions."""
    genres = set(g.fwd(RelType.IN_GENRE, song))
    artists = set(g.fwd(RelType.PERFORMED_BY, song))
    artists |= {r for a in list(artists) for r in g.related(a)}
    near = {s for a in artists for s in g.back(RelType.PERFORMED_BY, a)}
    near |= {s for p in g.back(RelType.CONTAINS, song) for s in g.fwd(RelType.CONTAINS, p)}
    core = g.core(song)
    return {s for s in near if s != song and g.core(s) != core
            and not genres.isdisjoint(g.fwd(RelType.IN_GENRE, s))}


def songs_like(g: Graph, song: str, rng: random.Random) -> Made | None:
    if _title_is_shared(g, song):
        return None
    relevant = like_songs(g, song)
    if len(relevant) < MIN_SONGS_LIKE:
        return None
    made = _phrase(rng.choice(TEMPLATES["songs_like"]), rng, [],
                   t=core_title(g.ent[song].name))
    return _with(made, relevant)


def _decade(entity: Entity) -> str | None:
    date = str(entity.extra.get("release_date", ""))
    if len(date) < 4 or not date[:4].isdigit():
        return None
    year = int(date[:4]) // 10 * 10
    return f"{year % 100:02d}s" if 1900 <= year < 2000 else f"{year}s"


def genre_songs(g: Graph, genre: str, rng: random.Random) -> Made | None:
    songs = g.members(genre, Kind.SONG)
    by_decade: dict[str, set[str]] = defaultdict(set)
    for s in songs:
        if (d := _decade(g.ent[s])) is not None:
            by_decade[d].add(s)
    decades = sorted(d for d, members in by_decade.items() if len(members) >= MIN_GENRE_SONGS)
    name = g.ent[genre].name
    if decades and rng.random() < DECADE_SHARE:
        d = rng.choice(decades)
        return _with(_phrase(DECADE_TEMPLATE, rng, [], g=name, d=d), by_decade[d])
    return _with(_phrase(rng.choice(TEMPLATES["genre_songs"]), rng, [], g=name), songs)


def _genre_maker(cls: str, kind: Kind) -> Callable[[Graph, str, random.Random], Made | None]:
    def make(g: Graph, genre: str, rng: random.Random) -> Made | None:
        made = _phrase(rng.choice(TEMPLATES[cls]), rng, [], g=g.ent[genre].name)
        return _with(made, g.members(genre, kind))
    return make


def _same_title_maker(cls: str, by: RelType) -> Callable[[Graph, str, random.Random],
                                                          Made | None]:
    """title_artist (songs PERFORMED_BY) and album_artist (albums BY)."""
    def make(g: Graph, item: str, rng: random.Random) -> Made | None:
        artist = g.first(by, item)
        core = g.core(item)
        if artist is None or not core:
            return None
        versions = [o for o in g.by_core[core]
                    if g.ent[o].kind == g.ent[item].kind and artist in g.fwd(by, o)]
        made = _phrase(rng.choice(TEMPLATES[cls]), rng, [], t=core_title(g.ent[item].name),
                       a=g.ent[artist].name)
        return _with(made, versions)
    return make


Maker = Callable[[Graph, str, random.Random], Made | None]
MAKERS: Final[dict[str, Maker]] = {
    "songs_of_artist": songs_of_artist, "artists_like": artists_like, "songs_like": songs_like,
    "genre_songs": genre_songs,
    "genre_playlists": _genre_maker("genre_playlists", Kind.PLAYLIST),
    "podcast_category": _genre_maker("podcast_category", Kind.PODCAST),
    "title_artist": _same_title_maker("title_artist", RelType.PERFORMED_BY),
    "album_artist": _same_title_maker("album_artist", RelType.BY),
}


# -- subjects: (id, split key, weight) per class ---------------------------------------------------

Subject = tuple[str, str, float]
ANCHORED: Final = frozenset({"songs_of_artist", "artists_like", "songs_like"})
KIND: Final[dict[str, Kind | None]] = {
    "songs_of_artist": Kind.SONG, "artists_like": Kind.ARTIST, "songs_like": Kind.SONG,
    "genre_songs": Kind.SONG, "genre_playlists": Kind.PLAYLIST,
    "podcast_category": Kind.PODCAST, "title_artist": None, "album_artist": None}
GENRE_NEEDS: Final[dict[str, tuple[Kind, int]]] = {
    "genre_songs": (Kind.SONG, MIN_GENRE_SONGS),
    "genre_playlists": (Kind.PLAYLIST, MIN_GENRE_ITEMS),
    "podcast_category": (Kind.PODCAST, MIN_GENRE_ITEMS)}


def _weight(e: Entity) -> float:
    return max(e.popularity, 0.01)


def _popular(g: Graph, kind: Kind, by: RelType) -> list[Subject]:
    """The most popular quarter of `kind` (with a key artist), keyed by that artist."""
    ids = sorted(g.of_kind(kind), key=lambda i: (-g.ent[i].popularity, i))
    top = ids[:math.ceil(len(ids) * POPULAR_SHARE)]
    return [(i, a, _weight(g.ent[i])) for i in top if (a := g.first(by, i)) is not None]


def subjects(g: Graph, cls: str) -> list[Subject]:
    if cls in GENRE_NEEDS:
        kind, least = GENRE_NEEDS[cls]
        sizes = {genre: len(g.members(genre, kind)) for genre in g.of_kind(Kind.GENRE)}
        return [(genre, genre, math.log1p(n)) for genre, n in sizes.items() if n >= least]
    if cls == "songs_of_artist":
        return [(a, a, _weight(g.ent[a])) for a in g.of_kind(Kind.ARTIST)
                if len(g.back(RelType.PERFORMED_BY, a)) >= MIN_SONGS_OF_ARTIST]
    if cls == "artists_like":
        return [(a, a, _weight(g.ent[a])) for a in g.of_kind(Kind.ARTIST)
                if len(g.related(a)) >= MIN_RELATED]
    if cls == "album_artist":
        return _popular(g, Kind.ALBUM, RelType.BY)
    return _popular(g, Kind.SONG, RelType.PERFORMED_BY)  # songs_like, title_artist


def weighted_order(pool: Sequence[Subject], rng: random.Random) -> list[Subject]:
    """A weighted sample without replacement of the whole pool (Efraimidis-Spirakis keys)."""
    keyed = [(rng.random() ** (1.0 / s[2]), s) for s in pool]
    return [s for _, s in sorted(keyed, key=lambda k: (-k[0], k[1][0]))]


def generate_class(g: Graph, cls: str, seed: int, per_class: int) -> list[IntentQuery]:
    """Up to `per_class` queries of `cls` in each split, one per subject key."""
    rng = random.Random(f"{seed}:{cls}")
    out: list[IntentQuery] = []
    keys: set[str] = set()
    made_in: Counter[str] = Counter()
    kind = KIND[cls]
    for sid, key, _ in weighted_order(subjects(g, cls), rng):
        split = split_of(key)
        if key in keys or made_in[split] >= per_class:
            continue
        made = MAKERS[cls](g, sid, rng)
        anchor = sid if cls in ANCHORED else None
        relevant = [r for r in made.relevant if r != anchor] if made is not None else []
        if made is None or not relevant:
            continue
        keys.add(key)
        made_in[split] += 1
        out.append(IntentQuery(cls=cls, query=made.query, subject=sid, split=split,
                               relevant=relevant, anchor=anchor,
                               kind=None if kind is None else kind.value,
                               phrasing=made.phrasing))
        if made_in["tune"] >= per_class and made_in["test"] >= per_class:
            break
    return out


def generate(entities: Iterable[Entity], relations: Iterable[Relation], seed: int = 0,
             per_class: int = PER_CLASS) -> list[IntentQuery]:
    """Every class's queries over one catalog, class by class."""
    g = Graph.build(entities, relations)
    return [q for cls in CLASSES for q in generate_class(g, cls, seed, per_class)]


def write(queries: Sequence[IntentQuery], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = msgspec.json.Encoder()
    path.write_bytes(b"".join(enc.encode(q) + b"\n" for q in queries))


def read(path: Path) -> list[IntentQuery]:
    dec = msgspec.json.Decoder(IntentQuery)
    return [dec.decode(line) for line in path.read_bytes().splitlines() if line.strip()]


def summary(queries: Sequence[IntentQuery]) -> str:
    counts = Counter((q.cls, q.split) for q in queries)
    return "\n".join(f"{cls:18} tune {counts[cls, 'tune']:4}  test {counts[cls, 'test']:4}"
                     for cls in CLASSES)


def main(argv: Sequence[str] | None = None) -> None:
    from graph.connect import open_store
    from graph.snapshot import Snapshot

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-class", type=int, default=PER_CLASS)
    args = ap.parse_args(argv)
    store = open_store()
    try:
        snap = Snapshot.read(store)
    finally:
        store.close()
    queries = generate(snap.entities, snap.relations, args.seed, args.per_class)
    write(queries, args.out)
    print(summary(queries))
    print(f"{len(queries)} queries -> {args.out}")


if __name__ == "__main__":
    main()
