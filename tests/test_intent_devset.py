"""The intent dev set on the fixture catalog, and the intent bench's metrics on hand-made lists.

The fixture catalog is small: it has artists with five songs, related artists, songs with ten
"like" songs, genres with twenty songs, titles and albums, but no genre with three playlists or
three podcasts; those two classes are checked by their makers on a genre directly.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from bench.intent_bench import (
    Facts,
    examined_click,
    hit_at,
    judged,
    kind_at_10,
    mrr_at_10,
    precision_at_10,
    scores,
    work_keys,
)
from bench.intent_devset import (
    CLASSES,
    MAKERS,
    Graph,
    IntentQuery,
    generate,
    like_songs,
    split_of,
)
from bench.intent_peers import entity_texts, rrf
from graph.memory_store import MemoryStore
from graph.model import Entity, Kind, Relation, RelType
from graph.snapshot import Snapshot
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def snap(memory_catalog: MemoryStore) -> Snapshot:
    return Snapshot.read(memory_catalog)


@pytest.fixture(scope="module")
def queries(snap: Snapshot) -> list[IntentQuery]:
    return generate(snap.entities, snap.relations, seed=0, per_class=80)


def _raw_genre_counts(kind: str) -> Counter[str]:
    """Entities of `kind` per genre, straight from the fixture file (direct edges only)."""
    counts: Counter[str] = Counter()
    for line in (FIXTURES / "catalog.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["kind"] == kind:
            counts.update(rec.get("genres", []))
    return counts


def test_every_supported_class_yields_queries(queries: list[IntentQuery]) -> None:
    made = {q.cls for q in queries}
    assert made == set(CLASSES) - {"genre_playlists", "podcast_category"}
    # The two missing classes are missing because no fixture genre has three of its kind.
    assert max(_raw_genre_counts("playlist").values()) < 3
    assert max(_raw_genre_counts("podcast").values()) < 3


def test_queries_are_well_formed(queries: list[IntentQuery], snap: Snapshot) -> None:
    kind = {e.id: e.kind.value for e in snap.entities}
    for q in queries:
        assert q.split in ("tune", "test")
        assert q.relevant, q
        assert q.anchor is None or q.anchor not in q.relevant
        assert len(set(q.relevant)) == len(q.relevant)
        if q.kind is not None:
            assert {kind[r] for r in q.relevant} == {q.kind}, q
    by_artist = [q for q in queries if q.cls == "songs_of_artist"]
    assert all(q.anchor == q.subject and len(q.relevant) >= 5 for q in by_artist)


def test_tune_and_test_share_no_subject(queries: list[IntentQuery], snap: Snapshot) -> None:
    g = Graph.build(snap.entities, snap.relations)
    keys: dict[str, set[str]] = {"tune": set(), "test": set()}
    for q in queries:
        key = q.subject
        if q.cls in ("songs_like", "title_artist"):
            key = min(r.dst for r in snap.relations
                      if r.src == q.subject and r.type == RelType.PERFORMED_BY)
        elif q.cls == "album_artist":
            key = g.first(RelType.BY, q.subject) or ""
        assert split_of(key) == q.split
        keys[q.split].add(key)
    assert keys["tune"]
    assert keys["test"]
    assert not keys["tune"] & keys["test"]
    assert not {q.subject for q in queries if q.split == "tune"} & {
        q.subject for q in queries if q.split == "test"}


def test_same_seed_same_set_other_seed_other_set(snap: Snapshot,
                                                queries: list[IntentQuery]) -> None:
    assert generate(snap.entities, snap.relations, seed=0, per_class=80) == queries
    assert generate(snap.entities, snap.relations, seed=1, per_class=80) != queries


def test_songs_like_excludes_the_song_and_its_versions(snap: Snapshot) -> None:
    g = Graph.build(snap.entities, snap.relations)
    for song in g.of_kind(Kind.SONG):
        like = like_songs(g, song)
        assert song not in like
        assert all(g.core(s) != g.core(song) for s in like)


def test_genre_classes_include_subgenres(snap: Snapshot) -> None:
    g = Graph.build(snap.entities, snap.relations)
    children = {r.src for r in snap.relations
                if r.type == RelType.SUBGENRE_OF and r.dst == "g:pop"}
    pop_songs = {r.src for r in snap.relations if r.type == RelType.IN_GENRE
                 and r.dst in children | {"g:pop"} and r.src.startswith("so:")}
    made = MAKERS["genre_songs"](g, "g:pop", random.Random(0))
    assert made is not None
    assert "from the" not in made.query  # this seed asks for no decade
    assert set(made.relevant) == pop_songs
    assert len(pop_songs) >= 20  # every one of them through a subgenre ("dance pop", ...)
    podcasts = MAKERS["podcast_category"](g, "g:arts", random.Random(0))
    assert podcasts is not None
    assert len(podcasts.relevant) >= 2
    assert "arts" in podcasts.query.lower()


# -- metrics ---------------------------------------------------------------------------------------

RANKING = ["ar:x", "s1", "a9", "s2", "s3", "p1", "s4", "s5", "s6", "s7", "s8", "s9"]
KINDS = {"ar:x": "artist", "a9": "artist", "p1": "playlist",
         **{f"s{i}": "song" for i in range(1, 10)}}
FACTS = Facts(KINDS, {})


def test_precision_removes_the_anchor_first() -> None:
    rel = frozenset({"s1", "s2", "s8"})
    assert judged(RANKING, "ar:x") == RANKING[1:11]
    # Anchor out, "s8" moves into the top 10: 3 of min(10, 3).
    assert precision_at_10(RANKING, rel, "ar:x") == pytest.approx(1.0)
    assert precision_at_10(RANKING, rel, None) == pytest.approx(2 / 3)
    many = frozenset(f"s{i}" for i in range(1, 10)) | {"z1", "z2", "z3"}
    assert precision_at_10(RANKING, many, "ar:x") == pytest.approx(8 / 10)
    assert precision_at_10([], many, None) == 0.0


def test_precision_counts_versions_of_a_work_once() -> None:
    """s1, s2 and s3 are one song in three versions: on the page and in the relevant set they
    are one work, so a page of two works of two relevant ones is full, and so is one that shows
    the three versions instead of the other work."""
    work_of = {"s1": "w", "s2": "w", "s3": "w"}
    rel = frozenset({"s1", "s2", "s3", "s4"})
    assert precision_at_10(RANKING, rel, "ar:x", work_of) == pytest.approx(1.0)
    assert precision_at_10(["s1", "s2", "s3"], rel, None, work_of) == pytest.approx(1 / 2)
    assert precision_at_10(["s1", "s2", "s3"], rel, None) == pytest.approx(3 / 4)


def test_work_keys_fold_versions_by_title_and_first_artist() -> None:
    ents = [Entity("so:1", Kind.SONG, "Moondance - 2013 Remaster"),
            Entity("so:2", Kind.SONG, "Moondance (Live)"),
            Entity("so:3", Kind.SONG, "Moondance"), Entity("ar:a", Kind.ARTIST, "A")]
    rels = [Relation("so:1", RelType.PERFORMED_BY, "ar:a"),
            Relation("so:2", RelType.PERFORMED_BY, "ar:a"),
            Relation("so:3", RelType.PERFORMED_BY, "ar:b")]
    keys = work_keys(ents, rels)
    assert keys["so:1"] == keys["so:2"] != keys["so:3"]
    assert "ar:a" not in keys


def test_kind_share_and_rank_metrics() -> None:
    assert kind_at_10(RANKING, KINDS, "song", "ar:x") == pytest.approx(8 / 10)
    assert kind_at_10(RANKING, KINDS, "song", None) == pytest.approx(7 / 10)
    assert kind_at_10(["p1", "s1"], KINDS, "playlist", None) == pytest.approx(1 / 2)
    assert mrr_at_10(RANKING, frozenset({"s2"})) == pytest.approx(1 / 4)
    assert mrr_at_10(RANKING, frozenset({"s2"}), "ar:x") == pytest.approx(1 / 3)
    assert mrr_at_10(RANKING, frozenset({"s9"})) == 0.0  # 12th: past the cutoff
    assert hit_at(RANKING, frozenset({"s1"}), 1) == 0.0
    assert hit_at(RANKING, frozenset({"s1"}), 1, "ar:x") == 1.0
    assert hit_at(RANKING, frozenset({"s8"}), 10) == 0.0
    assert hit_at(RANKING, frozenset({"s8"}), 10, "ar:x") == 1.0


def test_scores_pick_metrics_by_class() -> None:
    q = IntentQuery(cls="title_artist", query="t a", subject="s2", split="test",
                    relevant=["s2"], anchor=None, kind=None, phrasing="{t} {a}")
    assert scores(q, RANKING, FACTS) == {"hit@1": 0.0, "hit@3": 0.0, "hit@10": 1.0, "mrr": 0.25}
    q = IntentQuery(cls="songs_of_artist", query="x songs", subject="ar:x", split="test",
                    relevant=["s1", "s2"], anchor="ar:x", kind="song", phrasing="{a} songs")
    assert scores(q, RANKING, FACTS) == {"p@10": 1.0, "kind@10": pytest.approx(0.8)}


def test_click_model_and_fusion() -> None:
    page = ["a", "b", "c"]
    assert examined_click(page, frozenset({"a", "c"}), random.Random(0)) == 0  # top: examined
    assert examined_click(page, frozenset(), random.Random(0)) is None
    far = [examined_click(["x"] * 9 + ["r"], frozenset({"r"}), random.Random(i))
           for i in range(2000)]
    assert sum(p == 9 for p in far) / len(far) == pytest.approx(0.1 ** 0.7, abs=0.03)
    assert rrf([["a", "b"], ["b", "c"]]) == ["b", "a", "c"]


def test_entity_texts(snap: Snapshot) -> None:
    texts = dict(zip([e.id for e in snap.entities],
                     entity_texts(snap.entities, snap.relations), strict=True))
    assert texts["so:08mG3Y1vljYA6bvDt4Wqkj"].startswith("Back In Black. song. by AC/DC. ")
    assert "hard rock" in texts["so:08mG3Y1vljYA6bvDt4Wqkj"]
