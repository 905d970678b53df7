"""Exports of the catalog graph for PyKEEN (triples), networkx and PyTorch Geometric."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx

from graph.model import Kind
from graph.store import GraphStore

# torch, PyG and PyKEEN take seconds to import: they load only when their export is called.
if TYPE_CHECKING:
    from pykeen.triples import TriplesFactory
    from torch_geometric.data import HeteroData

Triple = tuple[str, str, str]
EdgeType = tuple[str, str, str]


def to_triples(store: GraphStore) -> list[Triple]:
    """Every relationship as (head id, relation type, tail id), ordered by (head, type, tail).

    Parallel edges (a song twice in one playlist) give repeated triples; props are dropped.
    """
    return [(r.src, r.type.value, r.dst) for r in store.iter_relations()]


def to_triples_factory(store: GraphStore, *,
                       create_inverse_triples: bool = False) -> TriplesFactory:
    """A `pykeen.triples.TriplesFactory` over the labelled triples of `to_triples`.

    Entities without any relationship are not in it: PyKEEN labels only what triples mention.
    Raises ValueError for a graph without relationships, which PyKEEN cannot represent.
    """
    import numpy as np
    from pykeen.triples import TriplesFactory

    triples = to_triples(store)
    if not triples:
        raise ValueError("the graph has no relationships, so there are no triples to export")
    array = np.array(triples, dtype=str)
    return TriplesFactory.from_labeled_triples(array,
                                               create_inverse_triples=create_inverse_triples)


def to_networkx(store: GraphStore) -> Any:
    """A fresh MultiDiGraph: nodes keyed by id with kind/name/popularity, edges with `type`
    and each of their props as its own attribute (`position`, `weight`, `source`).

    Props are flattened so that networkx algorithms find `weight` where they look for it;
    `kind` and `type` are plain strings, so the graph serialises (GraphML, JSON) as it is.
    Edge keys are networkx's default integers (parallel CONTAINS edges are possible).
    """
    g = nx.MultiDiGraph()
    for e in store.iter_entities():
        g.add_node(e.id, kind=e.kind.value, name=e.name, popularity=e.popularity)
    for r in store.iter_relations():
        if r.src not in g or r.dst not in g:
            raise AssertionError(f"{r.type.value} {r.src!r} -> {r.dst!r} has a missing endpoint")
        if "type" in r.props:
            raise ValueError(f"{r.type.value} {r.src!r} -> {r.dst!r}: a prop named 'type'")
        g.add_edge(r.src, r.dst, type=r.type.value, **r.props)
    return g


@dataclass(frozen=True)
class HeteroExport:
    """A PyG `HeteroData` and, per node type (a kind value), the entity id at each index."""

    data: HeteroData
    node_ids: dict[str, list[str]]


def to_hetero_data(store: GraphStore) -> HeteroExport:
    """The graph as PyG `HeteroData`.

    Node types are kind values ("song"); each has `num_nodes` and `x`, its popularity as a
    float tensor [N, 1], indexed in id order. Edge types are (start kind, REL_TYPE, end kind);
    IN_GENRE starts at many kinds, so it gives one edge type per start kind. Each edge type has
    `edge_index`, a long tensor [2, E], in `iter_relations` order. Kinds with no entities and
    edge types with no edges are left out. Props (positions, weights) are not exported.
    """
    import torch
    from torch_geometric.data import HeteroData

    node_ids, popularity, where = _index_nodes(store)
    edges = _edge_lists(store, where)
    data = HeteroData()
    # Kind order, not first-seen order, so the metadata is the same for equal graphs.
    for kind in (k.value for k in Kind if k.value in node_ids):
        data[kind].num_nodes = len(node_ids[kind])
        data[kind].x = torch.tensor(popularity[kind], dtype=torch.float).view(-1, 1)
    for edge_type in sorted(edges):
        data[edge_type].edge_index = torch.tensor(edges[edge_type], dtype=torch.long)
    return HeteroExport(data=data, node_ids=node_ids)


NodeIndex = tuple[dict[str, list[str]], dict[str, list[float]], dict[str, tuple[str, int]]]


def _index_nodes(store: GraphStore) -> NodeIndex:
    """Per node type its ids and popularities in id order, and for each id (unique across
    kinds) its node type and index."""
    node_ids: dict[str, list[str]] = defaultdict(list)
    popularity: dict[str, list[float]] = defaultdict(list)
    where: dict[str, tuple[str, int]] = {}
    for e in store.iter_entities():
        ids = node_ids[e.kind.value]
        where[e.id] = (e.kind.value, len(ids))
        ids.append(e.id)
        popularity[e.kind.value].append(e.popularity)
    return dict(node_ids), dict(popularity), where


def _edge_lists(store: GraphStore,
                where: dict[str, tuple[str, int]]) -> dict[EdgeType, list[list[int]]]:
    """Per edge type, [head indexes, tail indexes] in `iter_relations` order."""
    edges: dict[EdgeType, list[list[int]]] = defaultdict(lambda: [[], []])
    for r in store.iter_relations():
        if r.src not in where or r.dst not in where:
            raise AssertionError(f"{r.type.value} {r.src!r} -> {r.dst!r} has a missing endpoint")
        (src_type, i), (dst_type, j) = where[r.src], where[r.dst]
        heads, tails = edges[(src_type, r.type.value, dst_type)]
        heads.append(i)
        tails.append(j)
    return edges
