"""Graph exports: labelled triples, a PyKEEN TriplesFactory, networkx and PyG HeteroData."""

from __future__ import annotations

import pytest
import torch

from graph.export import to_hetero_data, to_networkx, to_triples, to_triples_factory
from graph.fingerprint import make_record
from graph.memory_store import MemoryStore
from graph.model import REL_ENDPOINTS, Entity, Kind, Relation, RelType

K, R = Kind, RelType

ENTITIES = [
    Entity("g:rock", K.GENRE, "rock", popularity=0.8),
    Entity("g:indie", K.GENRE, "indie"),
    Entity("ar:a", K.ARTIST, "Björk", popularity=0.9),
    Entity("ar:b", K.ARTIST, "Sugarcubes", popularity=0.4),
    Entity("al:1", K.ALBUM, "Debut", popularity=0.6),
    Entity("so:1", K.SONG, "Human Behaviour", popularity=0.7),
    Entity("so:2", K.SONG, "Birthday", popularity=0.5),
    Entity("pl:1", K.PLAYLIST, "Mix", popularity=0.1),
    Entity("po:1", K.PODCAST, "Talk", popularity=0.2),
    Entity("ep:1", K.EPISODE, "One", popularity=0.3),
]
RELATIONS = [
    Relation("g:indie", R.SUBGENRE_OF, "g:rock"),
    Relation("ar:a", R.RELATED_TO, "ar:b", {"weight": 0.5, "source": "lastfm"}),
    Relation("ar:a", R.IN_GENRE, "g:indie"),
    Relation("al:1", R.BY, "ar:a"),
    Relation("al:1", R.IN_GENRE, "g:rock"),
    Relation("so:1", R.PERFORMED_BY, "ar:a"),
    Relation("so:1", R.ON_ALBUM, "al:1"),
    Relation("so:1", R.IN_GENRE, "g:indie"),
    Relation("so:2", R.PERFORMED_BY, "ar:b"),
    Relation("pl:1", R.CONTAINS, "so:2", {"position": 0}),
    Relation("pl:1", R.CONTAINS, "so:1", {"position": 1}),
    Relation("po:1", R.IN_GENRE, "g:rock"),
    Relation("ep:1", R.EPISODE_OF, "po:1"),
    Relation("ep:1", R.IN_GENRE, "g:indie"),
]


@pytest.fixture
def store() -> MemoryStore:
    records = [make_record(e, [r for r in RELATIONS if r.src == e.id]) for e in ENTITIES]
    s = MemoryStore()
    s.write_nodes(records)
    s.write_relations(records)
    return s


def test_the_sample_covers_every_kind_and_type() -> None:
    assert {e.kind for e in ENTITIES} == set(Kind)
    assert {r.type for r in RELATIONS} == set(REL_ENDPOINTS)


def test_triples(store: MemoryStore) -> None:
    triples = to_triples(store)
    assert len(triples) == len(RELATIONS)
    assert triples == sorted((r.src, r.type.value, r.dst) for r in RELATIONS)
    assert ("pl:1", "CONTAINS", "so:2") in triples


def test_triples_factory(store: MemoryStore) -> None:
    tf = to_triples_factory(store)
    assert tf.num_triples == len(RELATIONS)
    assert tf.num_entities == len(ENTITIES)  # every sample entity has an edge
    assert tf.num_relations == len(RelType)
    assert set(tf.relation_to_id) == {t.value for t in RelType}
    labelled = {tuple(t) for t in tf.triples.tolist()}
    assert labelled == {(r.src, r.type.value, r.dst) for r in RELATIONS}


def test_triples_factory_with_inverse_triples(store: MemoryStore) -> None:
    tf = to_triples_factory(store, create_inverse_triples=True)
    assert tf.create_inverse_triples
    assert tf.num_relations == 2 * len(RelType)


def test_triples_factory_needs_triples() -> None:
    empty = MemoryStore()
    with pytest.raises(ValueError, match="no relationships"):
        to_triples_factory(empty)


def test_networkx(store: MemoryStore) -> None:
    g = to_networkx(store)
    assert g.number_of_nodes() == len(ENTITIES)
    assert g.number_of_edges() == len(RELATIONS)
    assert g.nodes["ar:a"] == {"kind": "artist", "name": "Björk", "popularity": 0.9}
    [related] = g.get_edge_data("ar:a", "ar:b").values()
    assert related == {"type": "RELATED_TO", "weight": 0.5, "source": "lastfm"}
    positions = {v: d["position"] for _, v, d in g.out_edges("pl:1", data=True)}
    assert positions == {"so:2": 0, "so:1": 1}
    assert g is not store.graph  # a copy: changing it leaves the store alone
    g.remove_node("ar:a")
    assert store.get(["ar:a"])


def test_hetero_data_nodes(store: MemoryStore) -> None:
    export = to_hetero_data(store)
    data = export.data
    assert set(data.node_types) == {k.value for k in Kind}
    for kind in Kind:
        expected = sorted(e.id for e in ENTITIES if e.kind is kind)
        assert export.node_ids[kind.value] == expected
        assert data[kind.value].num_nodes == len(expected)
        x = data[kind.value].x
        assert x.dtype == torch.float32
        assert x.shape == (len(expected), 1)
    by_id = {e.id: e for e in ENTITIES}
    artists = data["artist"].x.squeeze(1).tolist()
    assert artists == pytest.approx([by_id[i].popularity for i in export.node_ids["artist"]])


def test_hetero_data_edges_map_back_to_ids(store: MemoryStore) -> None:
    export = to_hetero_data(store)
    data = export.data
    kind_of = {e.id: e.kind.value for e in ENTITIES}
    expected: dict[tuple[str, str, str], set[tuple[str, str]]] = {}
    for r in RELATIONS:
        key = (kind_of[r.src], r.type.value, kind_of[r.dst])
        expected.setdefault(key, set()).add((r.src, r.dst))
    assert set(data.edge_types) == set(expected)
    # IN_GENRE starts at five kinds here, so it is five edge types.
    assert sum(1 for t in data.edge_types if t[1] == "IN_GENRE") == 5
    for (src, rel, dst), pairs in expected.items():
        edge_index = data[src, rel, dst].edge_index
        assert edge_index.dtype == torch.long
        assert edge_index.shape == (2, len(pairs))
        got = {(export.node_ids[src][i], export.node_ids[dst][j])
               for i, j in edge_index.t().tolist()}
        assert got == pairs


def test_hetero_data_validates(store: MemoryStore) -> None:
    export = to_hetero_data(store)
    assert export.data.validate()
    assert export.data.num_nodes == len(ENTITIES)
    assert export.data.num_edges == len(RELATIONS)


def test_hetero_data_leaves_out_empty_kinds() -> None:
    s = MemoryStore()
    records = [make_record(Entity("g:a", K.GENRE, "a")),
               make_record(Entity("g:b", K.GENRE, "b"), [Relation("g:b", R.SUBGENRE_OF, "g:a")])]
    s.write_nodes(records)
    s.write_relations(records)
    export = to_hetero_data(s)
    assert export.data.node_types == ["genre"]
    assert export.data.edge_types == [("genre", "SUBGENRE_OF", "genre")]
    assert export.data["genre", "SUBGENRE_OF", "genre"].edge_index.tolist() == [[1], [0]]
