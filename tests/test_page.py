"""Page shaping: the page follows an asked reading, and versions of one work collapse."""

from __future__ import annotations

from api.cards import Card, Cards, version_group
from api.page import collapse_versions, follow_reading
from graph.model import Entity, Kind
from retrievers.fusion import Fused
from retrievers.understand import Interpretation


def _card(id_: str, kind: Kind, name: str, pop: float = 0.5, artist: str = "ar:a") -> Card:
    group = version_group(Entity(id_, kind, name), [artist])
    return Card(id_, kind, name, "", pop, (), "", (), group)


CARDS = Cards({c.id: c for c in (
    _card("ar:a", Kind.ARTIST, "Van Morrison"),
    _card("s1", Kind.SONG, "Moondance - 2013 Remaster", 0.9),
    _card("s2", Kind.SONG, "Moondance (Live)", 0.4),
    _card("s3", Kind.SONG, "Moondance", 0.6),
    _card("s4", Kind.SONG, "Brown Eyed Girl", 0.8),
    _card("s5", Kind.SONG, "Moondance", 0.7, artist="ar:other"),
    _card("al", Kind.ALBUM, "Songs About Jane"),
    _card("pl", Kind.PLAYLIST, "Songs By Van Morrison"),
)}, 1)


def _fused(*ids: str) -> list[Fused]:
    return [Fused(i, 1.0 / (1 + n)) for n, i in enumerate(ids)]


SONGS_BY = Interpretation(frozenset({Kind.SONG}), "ar:a", confidence=0.9, asked=True)


def test_an_asked_reading_puts_its_kind_first_after_its_subject() -> None:
    fused = _fused("al", "s5", "ar:a", "s4", "s1")
    page = follow_reading(fused, [SONGS_BY], CARDS, "songs by van morrison",
                          {"s4", "s1"}.__contains__)
    # the artist leads, then the songs that satisfy the reading, then other songs, then the rest
    assert [f.entity_id for f in page] == ["ar:a", "s4", "s1", "s5", "al"]


def test_a_weak_or_unasked_reading_leaves_the_order_alone() -> None:
    fused = _fused("al", "s4", "ar:a")
    for reading in (Interpretation(frozenset({Kind.SONG}), "ar:a", confidence=0.9),
                    Interpretation(frozenset({Kind.SONG}), "ar:a", confidence=0.3, asked=True)):
        assert follow_reading(fused, [reading], CARDS, "q", {"s4"}.__contains__) == fused
    assert follow_reading(fused, [], CARDS, "q", set().__contains__) == fused


def test_an_entity_named_like_the_whole_query_keeps_the_lead() -> None:
    fused = _fused("pl", "s4", "al")
    page = follow_reading(fused, [SONGS_BY], CARDS, "Songs by Van Morrison", {"s4"}.__contains__)
    assert [f.entity_id for f in page][:2] == ["pl", "s4"]


def test_versions_collapse_to_the_most_popular_at_the_best_place() -> None:
    page = collapse_versions(_fused("s3", "s4", "s1", "s2", "s5"), CARDS, "moondance", 10)
    assert [(p.fused.entity_id, p.versions) for p in page] == [("s1", 3), ("s4", 1), ("s5", 1)]
    assert page[0].fused.score == 1.0  # the place (and score) of the best-ranked version


def test_a_page_holds_limit_works() -> None:
    page = collapse_versions(_fused("s3", "s4", "s1", "s5"), CARDS, "moondance", 2)
    assert [(p.fused.entity_id, p.versions) for p in page] == [("s1", 3), ("s4", 1)]


def test_a_query_that_names_a_version_keeps_it() -> None:
    page = collapse_versions(_fused("s3", "s2", "s1"), CARDS, "moondance live", 10)
    assert [p.fused.entity_id for p in page] == ["s1", "s2"]


def test_a_title_and_artist_reading_puts_its_song_then_its_album_first() -> None:
    song = Interpretation(frozenset({Kind.SONG}), "ar:a", entity="s3", confidence=1.0,
                          whole=True)
    album = Interpretation(frozenset({Kind.ALBUM}), "ar:a", entity="al", confidence=0.95,
                           whole=True)
    fused = _fused("ar:a", "al", "s4", "s3")
    page = follow_reading(fused, [song, album], CARDS, "moondance van morrison",
                          {"s3", "al"}.__contains__)
    assert [f.entity_id for f in page] == ["s3", "al", "ar:a", "s4"]
    for unsure in (Interpretation(frozenset({Kind.SONG}), "ar:a", entity="s3", confidence=0.7,
                                  whole=True),
                   Interpretation(frozenset({Kind.SONG}), "ar:a", entity="s3", confidence=1.0)):
        assert follow_reading(fused, [unsure], CARDS, "q", {"s3"}.__contains__) == fused
