"""Query understanding on the fixture catalog: kinds, artists, artist + song, genres, decades."""

from __future__ import annotations

from graph.memory_store import MemoryStore
from graph.model import Kind
from retrievers.base import Query
from retrievers.understand import QueryUnderstanding, _decade


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
