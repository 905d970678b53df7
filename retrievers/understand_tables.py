"""The catalog tables query understanding reads: entities by kind, genre, artist and playlist.

Read once from the store (or a snapshot) into plain dicts of id lists, each list most popular
first, so that a reading's structured answer is a walk over a list, never a store query.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from graph.model import Entity, Kind, RelType
from graph.store import GraphStore
from retrievers.intent_words import KIND_WORDS
from retrievers.memory import query_key
from retrievers.normalize import core_title

LIKE_OWN_SONGS: Final = 10  # "songs like S": songs of S's own artist taken into the pool
LIKE_RELATED_ARTISTS: Final = 20  # ... of this many of its related artists
LIKE_RELATED_SONGS: Final = 5  # ... this many each
LIKE_PER_ARTIST: Final = 2  # songs of one artist before the other artists' next ones


def _lists() -> defaultdict[str, list[str]]:
    return defaultdict(list)


@dataclass(slots=True)
class Tables:
    entities: dict[str, Entity] = field(default_factory=dict)
    songs_by_artist: dict[str, list[str]] = field(default_factory=_lists)
    albums_by_artist: dict[str, list[str]] = field(default_factory=_lists)
    artists_of: dict[str, list[str]] = field(default_factory=_lists)  # song or album -> artists
    # artist -> its songs' (albums') core title keys, in the order of songs_by_artist
    song_keys: dict[str, list[str]] = field(default_factory=dict)
    album_keys: dict[str, list[str]] = field(default_factory=dict)
    by_genre: dict[str, list[str]] = field(default_factory=_lists)  # with its subgenres' members
    by_genre_kind: dict[tuple[str, Kind], list[str]] = field(default_factory=dict)
    genres_of: dict[str, list[str]] = field(default_factory=_lists)
    genre_keys: dict[str, str] = field(default_factory=dict)  # normalized name -> genre id
    by_kind: dict[Kind, list[str]] = field(default_factory=lambda: defaultdict(list))
    artist_keys: dict[str, list[str]] = field(default_factory=_lists)
    title_keys: dict[str, list[str]] = field(default_factory=_lists)  # core song title -> songs
    related: dict[str, list[str]] = field(default_factory=dict)  # artist -> related, strongest
    parents: dict[str, list[str]] = field(default_factory=dict)  # genre -> its parent genres
    playlists_of: dict[str, list[str]] = field(default_factory=_lists)  # song -> playlists
    playlist_songs: dict[str, list[str]] = field(default_factory=_lists)
    text_keys: dict[str, str] = field(default_factory=dict)  # filled as readings need them

    def popular_first(self, ids: Iterable[str]) -> list[str]:
        return sorted(dict.fromkeys(ids), key=lambda i: (-self.entities[i].popularity, i))

    def genres_with_parents(self, entity: str) -> set[str]:
        genres = self.genres_of.get(entity, [])
        return {*genres, *(p for g in genres for p in self.parents.get(g, []))}

    def song_genres(self, song: str) -> set[str]:
        """A song's genres, or its artists' when it has none of its own."""
        own = self.genres_of.get(song)
        if own:
            return set(own)
        return {g for a in self.artists_of.get(song, []) for g in self.genres_of.get(a, [])}


def build_tables(store: GraphStore) -> Tables:
    t = Tables(entities={e.id: e for e in store.iter_entities()})
    for e in t.entities.values():
        t.by_kind[e.kind].append(e.id)
        if e.kind is Kind.GENRE:
            # "Society & Culture" is "society culture" and, as queries read "&", "society and
            # culture"
            for key in dict.fromkeys((query_key(e.name), query_key(e.name.replace("&", " and ")))):
                t.genre_keys.setdefault(key, e.id)
                if set(key.split()) & KIND_WORDS.keys():  # "album rock": one word to a query
                    t.genre_keys.setdefault(key.replace(" ", "_"), e.id)
        elif e.kind is Kind.ARTIST:
            for name in dict.fromkeys(query_key(n) for n in (e.name, *e.aliases)):
                t.artist_keys[name].append(e.id)
        elif e.kind is Kind.SONG:
            t.title_keys[query_key(core_title(e.name))].append(e.id)
    weights: dict[str, dict[str, float]] = defaultdict(dict)
    parents: dict[str, list[str]] = defaultdict(list)
    for rel in store.iter_relations():
        if rel.type is RelType.RELATED_TO and rel.src != rel.dst:
            w = rel.props.get("weight")
            weight = float(w) if isinstance(w, int | float) else 0.5
            for a, b in ((rel.src, rel.dst), (rel.dst, rel.src)):  # either direction
                weights[a][b] = max(weights[a].get(b, 0.0), weight)
        elif rel.type is RelType.PERFORMED_BY:
            t.songs_by_artist[rel.dst].append(rel.src)
            t.artists_of[rel.src].append(rel.dst)
        elif rel.type is RelType.BY:
            t.albums_by_artist[rel.dst].append(rel.src)
            t.artists_of[rel.src].append(rel.dst)
        elif rel.type is RelType.IN_GENRE:
            t.genres_of[rel.src].append(rel.dst)
        elif rel.type is RelType.SUBGENRE_OF:
            parents[rel.src].append(rel.dst)
        elif rel.type is RelType.CONTAINS:
            t.playlist_songs[rel.src].append(rel.dst)
            t.playlists_of[rel.dst].append(rel.src)
    t.parents = dict(parents)
    for member in t.genres_of:  # a member of "dance pop" is one of "pop" too
        for genre in t.genres_with_parents(member):
            t.by_genre[genre].append(member)
    for lists in (t.songs_by_artist, t.albums_by_artist, t.by_genre, t.by_kind, t.title_keys):
        for ids in lists.values():
            ids.sort(key=lambda i: (-t.entities[i].popularity, i))
    for g, members in t.by_genre.items():
        for m in members:
            t.by_genre_kind.setdefault((g, t.entities[m].kind), []).append(m)
    t.related = {a: sorted(w, key=lambda b: (-w[b], -t.entities[b].popularity, b))
                 for a, w in weights.items()}
    t.song_keys = {a: [query_key(core_title(t.entities[s].name)) for s in songs]
                   for a, songs in t.songs_by_artist.items()}
    t.album_keys = {a: [query_key(core_title(t.entities[s].name)) for s in albums]
                    for a, albums in t.albums_by_artist.items()}
    return t


def songs_like(t: Tables, song: str) -> list[str]:
    """Songs like `song`: those sharing its playlists (the more playlists, the closer), its
    artists' other songs and its related artists' top songs, kept to the song's genres (when it
    has any), best first; the song and other versions of its title are left out."""
    artists = t.artists_of.get(song, [])
    score: Counter[str] = Counter()
    for playlist in t.playlists_of.get(song, []):
        score.update(t.playlist_songs.get(playlist, []))
    for artist in artists:
        score.update({s: 1.0 for s in t.songs_by_artist.get(artist, [])[:LIKE_OWN_SONGS]})
        for other in t.related.get(artist, [])[:LIKE_RELATED_ARTISTS]:
            score.update({s: 0.5 for s in t.songs_by_artist.get(other, [])[:LIKE_RELATED_SONGS]})
    title = query_key(core_title(t.entities[song].name))
    same = set(t.title_keys.get(title, []))
    genres = t.song_genres(song)
    keep = [s for s in score if s not in same and s in t.entities
            and t.entities[s].kind is Kind.SONG
            and query_key(core_title(t.entities[s].name)) != title
            and (not genres or genres & t.song_genres(s))]
    ordered = sorted(keep, key=lambda s: (-score[s], -t.entities[s].popularity, s))
    return _spread(t, ordered)


def _spread(t: Tables, songs: list[str]) -> list[str]:
    """At most LIKE_PER_ARTIST songs of one artist before every other artist's next ones: a
    list of songs like S is not S's album."""
    seen: Counter[str] = Counter()
    head: list[str] = []
    tail: list[str] = []
    for s in songs:
        artist = next(iter(t.artists_of.get(s, [])), s)
        seen[artist] += 1
        (head if seen[artist] <= LIKE_PER_ARTIST else tail).append(s)
    return head + tail
