"""Query understanding on the fixture catalog: kinds, artists (exact and fuzzy links), artist +
song, genres, decades."""

from __future__ import annotations

import pytest

from graph.memory_store import MemoryStore
from graph.model import Entity, Kind
from retrievers.base import Query
from retrievers.fuzzy import FuzzyIndex
from retrievers.intent_words import decade as _decade
from retrievers.understand import QueryUnderstanding, allowed_edits, fuzzy_linker


def test_decades_and_years() -> None:
    assert _decade("90s") == (1990, 1999)
    assert _decade("1980s") == (1980, 1989)
    assert _decade("00s") == (2000, 2009)
    assert _decade("1994") == (1994, 1994)
    assert _decade("1990x") is None


def test_songs_by_an_artist(memory_catalog: MemoryStore) -> None:
    u = QueryUnderstanding(memory_catalog)
    [best, *_] = u.interpret("songs by Taylor Swift")
    assert best.kinds == {Kind.SONG}
    assert best.artist == "ar:taylor-swift"
    songs = u.retrieve(Query("songs by taylor swift"), 5)
    assert songs
    performers = {r.dst for c in songs for r in memory_catalog.relations(c.entity_id)
                  if r.type.value == "PERFORMED_BY"}
    assert "ar:taylor-swift" in performers
    assert {e.kind for e in memory_catalog.get([c.entity_id for c in songs])} == {Kind.SONG}


def test_artist_plus_song_is_checked_on_the_edge(memory_catalog: MemoryStore) -> None:
    u = QueryUnderstanding(memory_catalog)
    [best, *_] = u.interpret("taylor swift lover")
    assert best.entity is not None
    [song] = memory_catalog.get([best.entity])
    assert "Lover" in song.name
    assert any(r.dst == "ar:taylor-swift" for r in memory_catalog.relations(song.id))
    assert u.interpret("taylor swift zzzzzz") == []  # no such song: no reading


def test_kind_words_and_genres(memory_catalog: MemoryStore) -> None:
    u = QueryUnderstanding(memory_catalog)
    [crime, *_] = u.interpret("true crime podcast")
    assert crime.kinds == {Kind.PODCAST}
    assert crime.text == "true crime"
    names = [e.name for e in memory_catalog.get(
        [c.entity_id for c in u.retrieve(Query("true crime podcast"), 5)])]
    assert any("True Crime" in n for n in names)
    [rock, *_] = u.interpret("rock playlist")
    assert rock.kinds == {Kind.PLAYLIST}
    assert rock.genres == ("g:rock",)
    assert u.interpret("zzzz qqqq") == []


def _linked(store: MemoryStore) -> QueryUnderstanding:
    artists = FuzzyIndex.from_entities(e for e in store.iter_entities() if e.kind is Kind.ARTIST)
    return QueryUnderstanding(store, linker=fuzzy_linker(artists))


def test_allowed_edits_grow_with_the_span() -> None:
    assert [allowed_edits(n) for n in (3, 4, 7, 8, 14, 15)] == [0, 1, 1, 2, 2, 3]


def test_fuzzy_linker_links_misspelled_artists(memory_catalog: MemoryStore) -> None:
    exact, linked = QueryUnderstanding(memory_catalog), _linked(memory_catalog)
    assert not any(r.artist for r in exact.interpret("songs by tayler swift"))
    [best, *_] = linked.interpret("songs by tayler swift")
    assert best.kinds == {Kind.SONG}
    assert best.artist == "ar:taylor-swift"
    [artist, *_] = linked.interpret("ed sheeren")
    assert (artist.artist, artist.entity, artist.text) == ("ar:ed-sheeran", None, "")
    assert linked.interpret("zzzz qqqq") == []


def test_fuzzy_linker_accepts_few_edits_for_short_spans() -> None:
    index = FuzzyIndex.from_entities([Entity("ar:s", Kind.ARTIST, "Stormzy"),
                                      Entity("ar:t", Kind.ARTIST, "Taylor Swift")])
    link = fuzzy_linker(index)
    # "story" is two edits from "stormzy": a five-letter span may take one at most
    [story, stormzi, swfit, tayler] = link(["story", "stormzi", "tayler swfit", "tayler"], False)
    assert (story, tayler) == ([], [])
    assert [a for a, _ in stormzi] == ["ar:s"]
    assert stormzi[0][1] == pytest.approx(0.857, abs=0.01)
    assert [a for a, _ in swfit] == ["ar:t"]  # a swap of neighbours is one edit
    assert [a for a, _ in link(["tayler"], True)[0]] == ["ar:t"]


def test_artist_plus_song_with_typos_and_a_partial_name(memory_catalog: MemoryStore) -> None:
    u = _linked(memory_catalog)
    for text in ("tayler swift lover", "lover tayler swift", "tayler lover"):
        [best, *_] = u.interpret(text)
        assert best.artist == "ar:taylor-swift", text
        assert best.entity is not None
        [song] = memory_catalog.get([best.entity])
        assert "Lover" in song.name
        assert any(r.dst == "ar:taylor-swift" for r in memory_catalog.relations(song.id))
    whole = u.interpret("tayler swift lover")[0].confidence
    assert u.interpret("tayler lover")[0].confidence < whole  # a partial name counts less
    assert u.interpret("tayler zzzzzz") == []  # a partial name needs a song to stand on


def test_readings_feed_the_structured_search(memory_catalog: MemoryStore) -> None:
    u = _linked(memory_catalog)
    q = Query("songs by tayler swift")
    assert u.from_readings(u.interpret(q.text), q, 5) == u.retrieve(q, 5)
    assert u.kind_of("ar:taylor-swift") is Kind.ARTIST
    assert u.kind_of("ar:nobody") is None
    songs = u.retrieve(q, 5)
    assert songs
    assert {u.kind_of(c.entity_id) for c in songs} == {Kind.SONG}


def test_artists_like_x_are_its_related_artists(memory_catalog: MemoryStore) -> None:
    """"artists like X" / "sounds like X" / "bands like X" read as artists RELATED_TO X (either
    direction), strongest first, ahead of X itself (which a weaker reading may add); a title
    with "like" in it
    ("smells like teen spirit") is no similarity reading."""
    u = _linked(memory_catalog)
    related = {r.dst for r in memory_catalog.relations("ar:u2") if r.type.value == "RELATED_TO"}
    related |= {r.src for r in memory_catalog.iter_relations()
                if r.type.value == "RELATED_TO" and r.dst == "ar:u2"}
    assert related
    for q in ("artists like u2", "sounds like U2", "bands like u2", "music like u2"):
        [best, *_] = u.interpret(q)
        assert best.similar, q
        assert best.artist == "ar:u2"
        assert best.kinds == {Kind.ARTIST}
        found = [c.entity_id for c in u.retrieve(Query(q), 10)]
        assert found, q
        top = found[:min(5, len(related))]
        assert set(top) <= related, (q, found)
    assert not any(r.similar for r in u.interpret("smells like teen spirit"))
    assert not any(r.similar for r in u.interpret("like a prayer"))


def test_songs_like_x_are_songs_of_its_related_artists(memory_catalog: MemoryStore) -> None:
    u = _linked(memory_catalog)
    [best, *_] = u.interpret("songs like the beatles")
    assert best.similar
    assert best.kinds == {Kind.SONG}
    songs = u.retrieve(Query("songs like the beatles"), 10)
    assert songs
    assert {e.kind for e in memory_catalog.get([c.entity_id for c in songs])} == {Kind.SONG}
    performers = {r.dst for c in songs for r in memory_catalog.relations(c.entity_id)
                  if r.type.value == "PERFORMED_BY"}
    assert "ar:the-beatles" not in performers


@pytest.mark.parametrize("text", ["songs by taylor swift", "taylor swift's songs",
                                  "Taylor Swift tracks", "taylor swift music",
                                  "taylor swift hits"])
def test_phrasings_of_an_artists_songs(memory_catalog: MemoryStore, text: str) -> None:
    [best, *_] = _linked(memory_catalog).interpret(text)
    assert (best.kinds, best.artist, best.asked) == (
        frozenset({Kind.SONG}), "ar:taylor-swift", True)


def test_best_of_x_reads_as_x_songs(memory_catalog: MemoryStore) -> None:
    """"best of X" / "play X" ask for X's songs, a little less surely than "X songs" (the words
    may be a title's); the plain artist reading stays beside it."""
    u = _linked(memory_catalog)
    for text in ("best of u2", "play u2"):
        [best, *rest] = u.interpret(text)
        assert (best.kinds, best.artist, best.asked) == (frozenset({Kind.SONG}), "ar:u2", True)
        assert best.confidence < u.interpret("u2 songs")[0].confidence
        assert any(r.artist == "ar:u2" and not r.kinds for r in rest)


@pytest.mark.parametrize("text", ["u2 radio", "u2 similar artists", "similar to u2",
                                  "bands like U2"])
def test_similarity_phrasings(memory_catalog: MemoryStore, text: str) -> None:
    [best, *_] = _linked(memory_catalog).interpret(text)
    assert (best.similar, best.artist, best.kinds, best.asked) == (
        True, "ar:u2", frozenset({Kind.ARTIST}), True)


def test_songs_like_a_title_are_other_songs_in_its_genres(memory_catalog: MemoryStore) -> None:
    """"songs like <title>" links the title to a song and answers with songs sharing its
    playlists or artists, in its genres, never the song itself."""
    u = _linked(memory_catalog)
    [best, *_] = u.interpret("songs like back in black")
    assert best.similar
    assert best.entity == "so:08mG3Y1vljYA6bvDt4Wqkj"
    songs = [c.entity_id for c in u.from_readings([best], Query("songs like back in black"), 10)]
    assert songs
    assert best.entity not in songs
    rels = list(memory_catalog.iter_relations())
    lists = {r.src for r in rels if r.type.value == "CONTAINS" and r.dst == best.entity}
    near = {"ar:ac-dc"} | {r.dst for r in rels if r.type.value == "RELATED_TO"
                           and r.src == "ar:ac-dc"}
    for song in songs:  # shares a playlist with it, or is by its artist or a related one
        assert any((r.type.value == "CONTAINS" and r.src in lists and r.dst == song)
                   or (r.type.value == "PERFORMED_BY" and r.src == song and r.dst in near)
                   for r in rels), song
    genres = u.t.song_genres(best.entity)
    assert all(u.t.song_genres(s) & genres for s in songs)


def test_album_and_song_of_one_name_are_both_read(memory_catalog: MemoryStore) -> None:
    """"lover taylor swift": the album "Lover" and the song "Lover (Remix)" both stay."""
    readings = _linked(memory_catalog).interpret("lover taylor swift")
    kinds = {next(iter(r.kinds)) for r in readings if r.entity}
    assert kinds == {Kind.SONG, Kind.ALBUM}
    [album] = [r for r in readings if Kind.ALBUM in r.kinds and r.entity]
    assert album.entity == "al:1NAmidJlEaVgA3MpcPFYGq"


def test_genre_and_category_readings_follow_subgenres(memory_catalog: MemoryStore) -> None:
    u = _linked(memory_catalog)
    [rock, *_] = u.interpret("rock playlists")
    assert (rock.kinds, rock.genres, rock.asked) == (frozenset({Kind.PLAYLIST}), ("g:rock",), True)
    found = {c.entity_id for c in u.retrieve(Query("rock playlists"), 10)}
    assert found == {"pl:1bMYfBHYBCRHY5LGkjlpSy", "pl:37i9dQZF1DWXRqgorJj26U"}
    [arts, *_] = u.interpret("podcasts about arts")
    assert (arts.kinds, arts.genres) == (frozenset({Kind.PODCAST}), ("g:arts",))
    assert {c.entity_id for c in u.retrieve(Query("podcasts about arts"), 10)} >= {
        "po:261", "po:404"}
    [decade, *_] = u.interpret("rock songs from the 80s")
    assert (decade.genres, decade.years) == (("g:rock",), (1980, 1989))


def test_intent_words_alone_and_readings_nothing_satisfies(memory_catalog: MemoryStore) -> None:
    """Queries of intent words only, a subject that does not exist, or a genre no entity of the
    asked kind is in: the asked kind's entities, never nothing."""
    u = _linked(memory_catalog)
    for text, kind in (("songs", Kind.SONG), ("podcasts", Kind.PODCAST),
                       ("songs by nobodyatall", Kind.SONG), ("britpop podcasts", Kind.PODCAST)):
        found = u.retrieve(Query(text), 5)
        assert found, text
        assert {u.kind_of(c.entity_id) for c in found} == {kind}, text
    assert u.interpret("like") == [] or not u.interpret("like")[0].similar


def test_satisfies_checks_a_readings_constraints_on_the_graph(memory_catalog: MemoryStore
                                                              ) -> None:
    u = _linked(memory_catalog)
    [songs_by, *_] = u.interpret("songs by taylor swift")
    assert u.satisfies(songs_by, "so:0VwNdo84DaVYLIkbVO86ND")  # one of her songs
    assert not u.satisfies(songs_by, "so:08mG3Y1vljYA6bvDt4Wqkj")  # AC/DC's
    assert not u.satisfies(songs_by, "al:1NAmidJlEaVgA3MpcPFYGq")  # hers, but an album
    [rock, *_] = u.interpret("rock playlists")
    assert u.satisfies(rock, "pl:37i9dQZF1DWXRqgorJj26U")  # in classic rock, a rock subgenre
    [like, *_] = u.interpret("artists like u2")
    related = {c.entity_id for c in u.retrieve(Query("artists like u2"), 20)}
    assert related
    assert all(u.satisfies(like, a) for a in related)
    assert not u.satisfies(like, "ar:u2")
    [song_like, *_] = u.interpret("songs like back in black")
    assert u.satisfies(song_like, "so:0VwNdo84DaVYLIkbVO86ND") is None  # its answer decides


def test_kind_and_lead_words_inside_names_stay_names(memory_catalog: MemoryStore) -> None:
    """"album rock" is a genre, not the kind album; "best rock songs" asks for rock songs with
    no leftover text to match."""
    u = _linked(memory_catalog)
    [album_rock, *_] = u.interpret("album rock hits")
    assert (album_rock.genres, album_rock.kinds) == (("g:album-rock",), frozenset({Kind.SONG}))
    [best_rock, *_] = u.interpret("best rock songs")
    assert (best_rock.genres, best_rock.text) == (("g:rock",), "")


def test_title_by_artist_and_whole_titles(memory_catalog: MemoryStore) -> None:
    """"<title> by <artist>" splits at "by"; the reading holds the whole title ("whole"), a word
    of a title does not."""
    u = _linked(memory_catalog)
    [best, album] = u.interpret("Highway to Hell by AC/DC")  # a song and its album, one name
    assert (best.entity, best.whole) == ("so:2zYzyRzz6pRmhPzyfMEC8s", True)
    assert (album.entity, album.whole) == ("al:10v912xgTZbjAtYfyKWJCS", True)
    assert album.confidence < best.confidence
    part = [r for r in u.interpret("ac/dc highway") if r.entity]
    assert part
    assert not any(r.whole for r in part)
