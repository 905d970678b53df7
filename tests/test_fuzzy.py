"""Fuzzy names: normalization, typo and sound-alike lookup, short names, type-ahead, refresh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph.memory_store import MemoryStore
from graph.model import Entity, Kind
from ingest.pipeline import ingest
from retrievers.base import Query, Retriever
from retrievers.fuzzy import FuzzyIndex, FuzzyRetriever
from retrievers.normalize import article_first, normalize, phonetic_keys, trigrams

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "catalog.jsonl"


@pytest.fixture(scope="module")
def fuzzy(memory_catalog: MemoryStore) -> FuzzyRetriever:
    return FuzzyRetriever.build(memory_catalog)


def tiny(*entities: Entity) -> FuzzyIndex:
    return FuzzyIndex.from_entities(entities)


def artist(id_: str, name: str, *aliases: str, popularity: float = 0.5) -> Entity:
    return Entity(id_, Kind.ARTIST, name, aliases, popularity=popularity)


def ids(retriever: FuzzyRetriever, text: str, k: int = 10) -> list[str]:
    return [c.entity_id for c in retriever.retrieve(Query(text), k)]


@pytest.mark.parametrize(("name", "full", "key", "compact"), [
    ("Björk", "bjork", "bjork", "bjork"),
    ("AC/DC", "ac dc", "ac dc", "acdc"),
    ("The Beatles", "the beatles", "beatles", "beatles"),
    ("Beatles, The", "the beatles", "beatles", "beatles"),
    ("Simon & Garfunkel", "simon and garfunkel", "simon and garfunkel", "simonandgarfunkel"),
    ("Guns N' Roses", "guns and roses", "guns and roses", "gunsandroses"),
    ("R.E.M.", "rem", "rem", "rem"),
    ("Ke$ha", "kesha", "kesha", "kesha"),
    ("MØ", "mo", "mo", "mo"),
    ("The The", "the the", "the", "the"),
    ("Pop 💙 Música", "pop musica", "pop musica", "popmusica"),
    ("!!!", "", "", ""),
])
def test_normalize(name: str, full: str, key: str, compact: str) -> None:
    forms = normalize(name)
    assert (forms.full, forms.key, forms.compact) == (full, key, compact)
    assert forms.full[forms.key_offset:] == forms.key


def test_sound_keys_and_trigrams() -> None:
    assert phonetic_keys("tayler") == phonetic_keys("taylor")
    assert phonetic_keys("beyonse") == phonetic_keys("beyonce")
    assert phonetic_keys("the sia") == []  # stopwords and short tokens have none
    codes, owners = trigrams([" ab ", " c "])
    assert len(codes) == 3  # " ab", "ab ", " c "
    assert owners.tolist() == [0, 0, 1]


@pytest.mark.parametrize(("text", "expected", "within"), [
    ("Bjork", "ar:bjork", 1), ("Beyonce", "ar:beyonce", 1), ("ACDC", "ar:ac-dc", 1),
    ("AC DC", "ar:ac-dc", 1), ("Beatles, The", "ar:the-beatles", 1),
    ("the beatles", "ar:the-beatles", 1), ("tayler swift", "ar:taylor-swift", 1),
    ("tayler", "ar:taylor-swift", 3), ("U2", "ar:u2", 1), ("sia", "ar:sia", 1),
    ("crawlspace true crime and mysteries", "po:23", 1), ("ed sheeren", "ar:ed-sheeran", 1),
])
def test_finds_on_the_fixture(fuzzy: FuzzyRetriever, text: str, expected: str,
                              within: int) -> None:
    assert expected in ids(fuzzy, text)[:within]


def test_reason_score_and_protocol(fuzzy: FuzzyRetriever) -> None:
    assert isinstance(fuzzy, Retriever)
    [top] = fuzzy.retrieve(Query("ACDC"), 1)
    assert top.reason == 'name "AC/DC"'
    assert top.source == "fuzzy"
    cands = fuzzy.retrieve(Query("taylor swift love"), 20)
    assert all(0.0 <= c.score <= 1.0 for c in cands)
    assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)


def test_exact_names_rank_first_and_short_names() -> None:
    index = tiny(artist("ar:mo", "MØ", popularity=0.1), artist("ar:moby", "Moby", popularity=0.9),
                 artist("ar:mob", "Mo Bamba", popularity=0.9),
                 artist("ar:u2", "U2", popularity=0.1),
                 artist("ar:u21", "U2 Tribute", popularity=1))
    assert index.search("MØ", 3)[0].entity_id == "ar:mo"
    assert index.search("mo", 3)[0].entity_id == "ar:mo"
    assert [m.entity_id for m in index.search("u2", 2)] == ["ar:u2", "ar:u21"]


def test_and_ampersand_articles_and_aliases() -> None:
    index = tiny(artist("ar:sg", "Simon & Garfunkel"), artist("ar:ps", "Paul Simon"),
                 artist("ar:dm", "The Dead Milkmen"), artist("ar:ga", "Art Garfunkel"),
                 artist("ar:ed", "Ed Sheeran", "Edward Sheeran"))
    assert index.search("simon and garfunkel", 1)[0].entity_id == "ar:sg"
    assert index.search("Simon + Garfunkel", 1)[0].entity_id == "ar:sg"
    assert index.search("Dead Milkmen, The", 1)[0].entity_id == "ar:dm"
    [alias] = index.search("edward sheeran", 1)
    assert (alias.entity_id, alias.reason) == ("ar:ed", 'alias "Edward Sheeran"')
    [name] = index.search("ed sheeran", 1)
    assert name.reason == 'name "Ed Sheeran"'


def test_suggest(fuzzy: FuzzyRetriever) -> None:
    index = fuzzy.index
    assert index.suggest("tay", 5)[0].entity_id == "ar:taylor-swift"
    assert index.suggest("the b", 5)[0].entity_id == "ar:the-beatles"
    assert "ar:the-beatles" in [m.entity_id for m in index.suggest("beat", 5)]  # word start
    assert "ar:taylor-swift" in [m.entity_id for m in index.suggest("swi", 5)]
    songs = index.suggest("s", 4, frozenset({Kind.SONG}))
    assert len(songs) == 4
    assert {m.kind for m in songs} == {Kind.SONG}
    pops = [m.extra["popularity"] for m in songs]
    assert pops == sorted(pops, reverse=True)
    assert index.suggest("tay", 0) == []
    assert index.suggest("", 5) == []
    assert index.suggest("qqqqzz", 5) == []


def test_suggest_prefix_longer_than_sort_key() -> None:
    index = tiny(artist("ar:a", "Abcdefghij Klmnopqrst One"),
                 artist("ar:b", "Abcdefghij Klmnopqrst Two"))
    assert [m.entity_id for m in index.suggest("abcdefghij klmnopqrst t", 5)] == ["ar:b"]


def test_kinds_filter(fuzzy: FuzzyRetriever) -> None:
    for kind in (Kind.ARTIST, Kind.SONG, Kind.ALBUM):
        cands = fuzzy.index.search("taylor swift love", 10, frozenset({kind}))
        assert cands
        assert {m.kind for m in cands} == {kind}
    podcasts = fuzzy.retrieve(Query("taylor swift", frozenset({Kind.PODCAST})), 5)
    assert {c.entity_id[:3] for c in podcasts} <= {"po:"}


@pytest.mark.parametrize("text", ["taylor swift", "tayler", "love", "sia", "!(\"weird:[input]",
                                  "zzzzqqq", ""])
def test_at_most_k_one_per_entity_deterministic(fuzzy: FuzzyRetriever, text: str) -> None:
    assert fuzzy.retrieve(Query(text), 0) == []
    for k in (1, 5, 20):
        cands = fuzzy.retrieve(Query(text), k)
        assert len(cands) <= k
        assert len({c.entity_id for c in cands}) == len(cands)
        assert cands == fuzzy.retrieve(Query(text), k)


def test_ties_break_by_entity_id() -> None:
    index = tiny(*(artist(f"ar:{i}", "Same Name", popularity=0.5) for i in "dbca"))
    assert [m.entity_id for m in index.search("same name", 4)] == ["ar:a", "ar:b", "ar:c", "ar:d"]
    assert [m.entity_id for m in index.suggest("same", 4)] == ["ar:a", "ar:b", "ar:c", "ar:d"]


def test_refresh_only_when_the_catalog_changed(tmp_path: Path) -> None:
    store = MemoryStore()
    ingest(store, [str(FIXTURE)])
    retriever = FuzzyRetriever.build(store)
    assert retriever.refresh(store) is False
    feed = tmp_path / "new.jsonl"
    feed.write_text(json.dumps({"kind": "artist", "id": "ar:zyx", "name": "Zyxwv Quartet",
                                "popularity": 0.5}) + "\n")
    ingest(store, [str(feed)])
    assert "ar:zyx" not in ids(retriever, "zyxwv quartet")
    assert retriever.refresh(store) is True
    assert retriever.index.catalog_version == store.catalog_version()
    assert ids(retriever, "zyxwv quartet")[0] == "ar:zyx"
    assert ids(retriever, "zyxvw quartet")[0] == "ar:zyx"  # typo
    assert retriever.refresh(store) is False


def test_serving_never_touches_the_store() -> None:
    store = MemoryStore()
    ingest(store, [str(FIXTURE)])
    retriever = FuzzyRetriever.build(store)
    queries = ["Bjork", "ACDC", "tayler", "sia", "love"]
    before = [retriever.retrieve(Query(q), 10) for q in queries]
    suggested = retriever.index.suggest("ta", 5)
    store.clear()
    store.close()
    assert [retriever.retrieve(Query(q), 10) for q in queries] == before
    assert retriever.index.suggest("ta", 5) == suggested


def test_link_many_spans_in_one_pass() -> None:
    index = tiny(artist("ar:t", "Taylor Swift", popularity=0.9),
                 artist("ar:j", "James Taylor", popularity=0.5),
                 artist("ar:e", "Ed Sheeran"), artist("ar:b", "The Beatles"))
    spans = ["tayler swift love", "tayler swift", "love", "beatles", "ed sheeren", ""]
    found = index.link(spans, 2)
    assert len(found) == len(spans)
    assert [m.entity_id for m in found[1]][:1] == ["ar:t"]
    assert found[1][0].extra["edits"] == 1
    assert (found[3][0].entity_id, found[3][0].score) == ("ar:b", 1.0)  # equal keys score 1
    assert found[4][0].entity_id == "ar:e"
    assert found[5] == []
    assert all(len(f) <= 2 for f in found)
    assert found[0][0].score < found[1][0].score  # whole names: extra words cost
    [first, second] = index.link(["tayler"], 2, partial=True)[0]
    assert (first.entity_id, first.extra["edits"]) == ("ar:t", 1)  # "tayler" ~ "taylor swift"
    assert second.extra["edits"] > 1  # "james": not a start of a name like "tayler"
    assert index.link(["tayler swift"], 0) == [[]]
    assert index.link(["taylor swift"], 5, frozenset({Kind.SONG})) == [[]]


@pytest.mark.parametrize(("text", "expected"), [
    ("Beatles, The", "The Beatles"), ("offspring, the", "the offspring"),
    ("Day To Remember, A", "A Day To Remember"), ("Crosby, Stills & Nash", "Crosby, Stills & Nash"),
    ("The Beatles", "The Beatles")])
def test_article_first(text: str, expected: str) -> None:
    assert article_first(text) == expected
