"""The GraphStore contract, run over every implementation through the `any_store` fixture."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import networkx as nx
import pytest

from graph.fingerprint import graph_hash, make_record
from graph.memory_store import MemoryStore
from graph.model import Entity, EntityRecord, Kind, PropValue, Relation, RelType
from graph.store import Counts, Existing, GraphStore

K, R = Kind, RelType


def ent(id_: str, kind: Kind, name: str = "", *, aliases: tuple[str, ...] = (),
        description: str = "", popularity: float = 0.0,
        extra: dict[str, PropValue] | None = None) -> Entity:
    return Entity(id=id_, kind=kind, name=name or id_.upper(), aliases=aliases,
                  description=description, popularity=popularity, extra=extra or {})


def rel(src: str, type_: RelType, dst: str, **props: PropValue) -> Relation:
    return Relation(src, type_, dst, props)


def catalog() -> list[EntityRecord]:
    """Every kind and relationship type, a self-loop, and one song twice in a playlist."""
    return [
        make_record(ent("g:rock", K.GENRE)),
        make_record(ent("g:indie", K.GENRE), [rel("g:indie", R.SUBGENRE_OF, "g:rock")]),
        make_record(ent("ar:a", K.ARTIST, "Björk", aliases=("Bjork", "Björk Guðmundsdóttir"),
                        popularity=0.9), [
            rel("ar:a", R.IN_GENRE, "g:indie"),
            rel("ar:a", R.RELATED_TO, "ar:b", weight=0.5, source="lastfm"),
            rel("ar:a", R.RELATED_TO, "ar:a", weight=1.0, source="self"),
        ]),
        make_record(ent("ar:b", K.ARTIST)),
        make_record(ent("al:1", K.ALBUM, extra={"release_date": "1993-07-05"}), [
            rel("al:1", R.BY, "ar:a"), rel("al:1", R.IN_GENRE, "g:rock")]),
        make_record(ent("so:1", K.SONG, "Human Behaviour", popularity=0.7,
                        extra={"duration_ms": 252000}), [
            rel("so:1", R.PERFORMED_BY, "ar:a"), rel("so:1", R.ON_ALBUM, "al:1"),
            rel("so:1", R.IN_GENRE, "g:indie")]),
        make_record(ent("so:2", K.SONG), [rel("so:2", R.PERFORMED_BY, "ar:b")]),
        make_record(ent("pl:1", K.PLAYLIST, description="mix"), [
            rel("pl:1", R.CONTAINS, "so:2", position=0),
            rel("pl:1", R.CONTAINS, "so:1", position=1),
            rel("pl:1", R.CONTAINS, "so:2", position=2)]),
        make_record(ent("po:1", K.PODCAST, extra={"publisher": "BBC", "language": "en"}),
                    [rel("po:1", R.IN_GENRE, "g:rock")]),
        make_record(ent("ep:1", K.EPISODE, extra={"duration_ms": 1_800_000}),
                    [rel("ep:1", R.EPISODE_OF, "po:1")]),
    ]


def load(store: GraphStore, records: Sequence[EntityRecord]) -> int:
    store.write_nodes(records)
    return store.write_relations(records)


def record_of(records: Sequence[EntityRecord], id_: str) -> EntityRecord:
    return next(r for r in records if r.entity.id == id_)


def all_relations(records: Sequence[EntityRecord]) -> list[Relation]:
    return [r for rec in records for r in rec.relations]


def sort_key(r: Relation) -> tuple[str, str, str, tuple[tuple[str, PropValue], ...]]:
    return (r.src, r.type.value, r.dst, tuple(sorted(r.props.items())))


# -- writes ---------------------------------------------------------------------------------


def test_empty_store(any_store: GraphStore) -> None:
    assert any_store.counts() == Counts()
    assert list(any_store.iter_entities()) == []
    assert list(any_store.iter_relations()) == []
    assert any_store.existing(["ar:a"]) == {}
    assert any_store.content_hash() == graph_hash([], [])
    assert any_store.catalog_version() == 0


def test_write_nodes_marks_half_written(any_store: GraphStore) -> None:
    records = catalog()
    any_store.write_nodes(records)
    held = any_store.existing(["ar:a", "so:1", "nope"])
    assert held == {"ar:a": Existing(K.ARTIST, None), "so:1": Existing(K.SONG, None)}
    assert list(any_store.iter_relations()) == []
    assert [e.id for e in any_store.iter_entities()] == sorted(r.entity.id for r in records)


def test_write_relations_seals_each_record(any_store: GraphStore) -> None:
    records = catalog()
    written = load(any_store, records)
    assert written == len(all_relations(records)) == 15
    held = any_store.existing([r.entity.id for r in records])
    assert held == {r.entity.id: Existing(r.entity.kind, r.content_hash) for r in records}


def test_fresh_writes_give_the_same_graph(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    expected = (any_store.content_hash(), any_store.counts())
    any_store.clear()
    any_store.write_nodes(records, fresh=True)
    assert any_store.write_relations(records, fresh=True) == 15
    assert (any_store.content_hash(), any_store.counts()) == expected
    held = any_store.existing(["pl:1"])
    assert held == {"pl:1": Existing(K.PLAYLIST, record_of(records, "pl:1").content_hash)}


def test_fresh_write_nodes_refuses_an_existing_id(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    before = any_store.content_hash()
    again = [make_record(ent("g:new", K.GENRE)), make_record(ent("g:rock", K.GENRE, "Other"))]
    # ValueError here, ConstraintError from Neo4j: the message is what they share.
    with pytest.raises(Exception, match="already exists"):
        any_store.write_nodes(again, fresh=True)
    assert any_store.content_hash() == before  # the batch failed whole
    assert any_store.existing(["g:rock"])["g:rock"].content_hash is not None


def test_write_nodes_again_unseals_but_keeps_edges(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    before = list(any_store.iter_relations())
    renamed = make_record(ent("so:1", K.SONG, "Renamed"), record_of(records, "so:1").relations)
    any_store.write_nodes([renamed])
    assert any_store.existing(["so:1"]) == {"so:1": Existing(K.SONG, None)}
    assert any_store.existing(["so:2"])["so:2"].content_hash is not None
    assert any_store.get(["so:1"])[0].name == "Renamed"
    assert list(any_store.iter_relations()) == before


def test_writing_the_same_records_twice_changes_nothing(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    before = (any_store.content_hash(), any_store.counts())
    load(any_store, records)
    assert (any_store.content_hash(), any_store.counts()) == before
    assert any_store.counts().total_relationships == 15  # no duplicated edges


def test_rewrite_replaces_only_owned_outgoing_edges(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    # so:1 moves from ar:a to ar:b and loses its album and genre.
    changed = make_record(record_of(records, "so:1").entity,
                          [rel("so:1", R.PERFORMED_BY, "ar:b")])
    assert load(any_store, [changed]) == 1
    assert [r for r in any_store.iter_relations() if r.src == "so:1"] == [
        rel("so:1", R.PERFORMED_BY, "ar:b")]
    # Incoming edges of so:1 (the playlist's) and edges owned by others are untouched.
    expected = [r for r in all_relations(records) if r.src != "so:1"]
    expected.append(rel("so:1", R.PERFORMED_BY, "ar:b"))
    assert list(any_store.iter_relations()) == sorted(expected, key=sort_key)
    assert any_store.existing(["so:1"])["so:1"].content_hash == changed.content_hash


def test_rewrite_with_no_relations_drops_every_owned_edge(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    assert load(any_store, [make_record(record_of(records, "ar:a").entity)]) == 0
    left = any_store.relations("ar:a")
    # What still touches ar:a is owned by others: so:1's PERFORMED_BY and al:1's BY.
    assert [(r.src, r.type) for r in left] == [("al:1", R.BY), ("so:1", R.PERFORMED_BY)]


def test_playlist_contains_keep_positions(any_store: GraphStore) -> None:
    load(any_store, catalog())
    contains = any_store.relations("pl:1", [R.CONTAINS])
    assert [(r.dst, r.props) for r in contains] == [
        ("so:1", {"position": 1}), ("so:2", {"position": 0}), ("so:2", {"position": 2})]
    assert all(type(r.props["position"]) is int for r in contains)


def test_relation_props_keep_their_types(any_store: GraphStore) -> None:
    load(any_store, catalog())
    [to_b] = any_store.relations("ar:b", [R.RELATED_TO])
    assert to_b == rel("ar:a", R.RELATED_TO, "ar:b", weight=0.5, source="lastfm")
    assert type(to_b.props["weight"]) is float


# -- reads ----------------------------------------------------------------------------------


def test_get_in_order_asked_skipping_missing(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    got = any_store.get(["so:1", "nope", "ar:a", "ep:1"])
    assert got == [record_of(records, i).entity for i in ("so:1", "ar:a", "ep:1")]
    assert got[1].aliases == ("Bjork", "Björk Guðmundsdóttir")
    assert got[0].extra == {"duration_ms": 252000}
    assert any_store.get([]) == []


def test_relations_in_both_directions_sorted(any_store: GraphStore) -> None:
    load(any_store, catalog())
    assert any_store.relations("ar:a") == [
        rel("al:1", R.BY, "ar:a"),
        rel("ar:a", R.IN_GENRE, "g:indie"),
        rel("ar:a", R.RELATED_TO, "ar:a", weight=1.0, source="self"),  # a self-loop, once
        rel("ar:a", R.RELATED_TO, "ar:b", weight=0.5, source="lastfm"),
        rel("so:1", R.PERFORMED_BY, "ar:a"),
    ]


def test_relations_filtered_by_type(any_store: GraphStore) -> None:
    load(any_store, catalog())
    genre = any_store.relations("g:rock", [R.IN_GENRE])
    assert [r.src for r in genre] == ["al:1", "po:1"]
    sub = any_store.relations("g:rock", iter([R.SUBGENRE_OF, R.BY]))  # any iterable
    assert sub == [rel("g:indie", R.SUBGENRE_OF, "g:rock")]
    assert any_store.relations("g:rock", []) == []
    assert any_store.relations("nope") == []


def test_iter_entities_in_id_order(any_store: GraphStore) -> None:
    records = catalog()
    # Written in reverse so that insertion order cannot pass for id order.
    load(any_store, records[::-1])
    entities = list(any_store.iter_entities())
    assert entities == sorted((r.entity for r in records), key=lambda e: e.id)


def test_iter_relations_sorted_with_props_last(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records[::-1])
    got = list(any_store.iter_relations())
    assert got == sorted(all_relations(records), key=sort_key)
    # The parallel CONTAINS edges to so:2 are ordered by their props.
    assert [r.props["position"] for r in got if r.dst == "so:2" and r.type is R.CONTAINS] == [0, 2]


def test_counts(any_store: GraphStore) -> None:
    load(any_store, catalog())
    assert any_store.counts() == Counts(
        nodes={K.GENRE: 2, K.ARTIST: 2, K.ALBUM: 1, K.SONG: 2, K.PLAYLIST: 1, K.PODCAST: 1,
               K.EPISODE: 1},
        relationships={R.PERFORMED_BY: 2, R.ON_ALBUM: 1, R.BY: 1, R.CONTAINS: 3,
                       R.EPISODE_OF: 1, R.RELATED_TO: 2, R.IN_GENRE: 4, R.SUBGENRE_OF: 1})


def test_counts_leave_out_zeros(any_store: GraphStore) -> None:
    load(any_store, catalog()[:2])
    assert any_store.counts() == Counts({K.GENRE: 2}, {R.SUBGENRE_OF: 1})


# -- delete ---------------------------------------------------------------------------------


def test_delete_removes_nodes_and_their_edges(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    assert any_store.delete(["ar:b", "nope", "ep:1"]) == 2
    assert any_store.existing(["ar:b", "ep:1"]) == {}
    assert any_store.get(["ar:b"]) == []
    gone = {"ar:b", "ep:1"}
    expected = [r for r in all_relations(records) if not {r.src, r.dst} & gone]
    assert list(any_store.iter_relations()) == sorted(expected, key=sort_key)
    assert any_store.counts().nodes[K.ARTIST] == 1
    assert K.EPISODE not in any_store.counts().nodes
    assert any_store.delete(["ar:b"]) == 0


def test_delete_unseals_nodes_that_pointed_in(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    any_store.delete(["ar:b"])
    held = any_store.existing([r.entity.id for r in records])
    # ar:a (RELATED_TO) and so:2 (PERFORMED_BY) lost an edge: their records must be redone.
    assert {i for i, h in held.items() if h.content_hash is None} == {"ar:a", "so:2"}
    assert held["so:1"].content_hash == record_of(records, "so:1").content_hash


def test_delete_of_a_self_looped_node_unseals_nobody_else(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    assert any_store.delete(["so:1", "al:1", "ar:a"]) == 3
    held = any_store.existing([r.entity.id for r in records])
    assert {i for i, h in held.items() if h.content_hash is None} == {"pl:1"}


# -- whole-graph hash, version, clear -------------------------------------------------------


def test_content_hash_ignores_write_order(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    first = any_store.content_hash()
    assert first == graph_hash(any_store.iter_entities(), any_store.iter_relations())
    any_store.clear()
    # Reverse order, one record per call, relations listed backwards within each record.
    reordered = [make_record(r.entity, r.relations[::-1]) for r in records[::-1]]
    any_store.write_nodes(reordered)
    for rec in reordered:
        any_store.write_relations([rec])
    assert any_store.content_hash() == first


def test_content_hash_changes_with_any_change(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    seen = {any_store.content_hash()}
    so1 = record_of(records, "so:1")
    pl1 = record_of(records, "pl:1")
    changes: list[list[EntityRecord]] = [
        [make_record(ent("so:1", K.SONG, "Human Behaviour", popularity=0.71,
                         extra={"duration_ms": 252000}), so1.relations)],
        [make_record(pl1.entity, [rel("pl:1", R.CONTAINS, "so:2", position=0),
                                  rel("pl:1", R.CONTAINS, "so:1", position=2),
                                  rel("pl:1", R.CONTAINS, "so:2", position=1)])],
        [make_record(ent("ar:b", K.ARTIST), [rel("ar:b", R.IN_GENRE, "g:rock")])],
        [make_record(ent("g:jazz", K.GENRE))],
    ]
    for change in changes:
        load(any_store, change)
        seen.add(any_store.content_hash())
    any_store.delete(["g:jazz"])
    seen.add(any_store.content_hash())
    assert len(seen) == len(changes) + 1  # back to the graph before g:jazz was added
    any_store.write_nodes([make_record(ent("g:jazz", K.GENRE))])
    assert any_store.content_hash() in seen  # the hash does not see the half-written mark


def test_catalog_version_grows_and_clear_resets(any_store: GraphStore) -> None:
    assert any_store.catalog_version() == 0
    assert any_store.bump_catalog_version() == 1
    assert any_store.bump_catalog_version() == 2
    assert any_store.catalog_version() == 2
    load(any_store, catalog())
    assert any_store.catalog_version() == 2  # writes alone do not bump it
    any_store.clear()
    assert any_store.catalog_version() == 0
    assert any_store.bump_catalog_version() == 1


def test_clear_removes_everything(any_store: GraphStore) -> None:
    records = catalog()
    load(any_store, records)
    any_store.clear()
    assert any_store.counts() == Counts()
    assert list(any_store.iter_entities()) == []
    assert list(any_store.iter_relations()) == []
    assert any_store.existing([r.entity.id for r in records]) == {}
    assert any_store.content_hash() == graph_hash([], [])
    any_store.apply_schema()  # still usable after a clear, and apply_schema is repeatable
    assert load(any_store, records) == 15


def test_is_a_graph_store(any_store: GraphStore) -> None:
    assert isinstance(any_store, GraphStore)


# -- MemoryStore only: checks and guarantees that Neo4jStore leaves to its caller ------------


def test_memory_write_relations_rejects_a_bad_batch_whole() -> None:
    store = MemoryStore()
    records = catalog()
    store.write_nodes(records[:-1])  # ep:1 never written
    before = store.content_hash()
    with pytest.raises(KeyError, match="ep:1"):
        store.write_relations(records)
    assert store.content_hash() == before  # checked before anything was applied
    assert all(h.content_hash is None for h in store.existing(["g:rock", "so:1"]).values())


@pytest.mark.parametrize(("relation", "error", "message"), [
    (rel("so:1", R.PERFORMED_BY, "ar:missing"), KeyError, "does not exist"),
    (rel("so:2", R.PERFORMED_BY, "ar:a"), ValueError, "owns only its own"),
    (rel("so:1", R.BY, "ar:a"), ValueError, "cannot own a BY"),
    (rel("so:1", R.PERFORMED_BY, "al:1"), ValueError, "expected a artist"),
])
def test_memory_write_relations_names_the_bad_edge(relation: Relation, error: type[Exception],
                                                   message: str) -> None:
    store = MemoryStore()
    load(store, catalog())
    bad = make_record(ent("so:1", K.SONG), [relation])
    with pytest.raises(error, match=message):
        store.write_relations([bad])


def test_memory_fresh_write_relations_refuses_a_node_with_edges() -> None:
    store = MemoryStore()
    records = catalog()
    load(store, records)
    with pytest.raises(ValueError, match="already has outgoing edges"):
        store.write_relations([record_of(records, "so:1")], fresh=True)
    assert store.counts().total_relationships == 15


def test_memory_store_keeps_what_neo4j_keeps() -> None:
    store = MemoryStore()
    extra: dict[str, PropValue] = {"duration_ms": 1, "mood": "sad"}
    record = make_record(Entity("so:x", K.SONG, "x", popularity=1, extra=extra))
    store.write_nodes([record])
    extra["duration_ms"] = 2  # the caller's dict is not the store's
    [got] = store.get(["so:x"])
    assert got.extra == {"duration_ms": 1}  # unknown extras are not read back from Neo4j
    assert type(got.popularity) is float


def test_memory_graph_view_is_read_only_and_live() -> None:
    store = MemoryStore()
    view = store.graph
    load(store, catalog())
    assert view.number_of_nodes() == 10
    assert view.number_of_edges() == 15
    with pytest.raises(nx.NetworkXError, match="Frozen"):
        view.add_node("x")


def test_memory_reads_while_writing() -> None:
    store = MemoryStore()
    records = catalog()
    load(store, records)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                rels = list(store.iter_relations())
                assert len(rels) in (14, 15)  # before or after a whole write, never between
                store.counts()
                store.relations("ar:a")
        except BaseException as exc:  # collected for the main thread to report
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    small = make_record(record_of(records, "so:1").entity, [rel("so:1", R.PERFORMED_BY, "ar:a"),
                                                             rel("so:1", R.ON_ALBUM, "al:1")])
    for i in range(300):
        load(store, [records[5] if i % 2 else small])
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
