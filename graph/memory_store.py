"""`MemoryStore`: the catalog graph in process, on a networkx MultiDiGraph (demos, fast tests)."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import networkx as nx

from graph.fingerprint import graph_hash
from graph.model import (
    EXTRA_PROPS,
    REL_ENDPOINTS,
    Entity,
    EntityRecord,
    Kind,
    PropValue,
    Relation,
    RelType,
)
from graph.schema import owned_types
from graph.store import Counts, Existing

RelSortKey = tuple[str, str, str, tuple[tuple[str, PropValue], ...]]


def relation_sort_key(rel: Relation) -> RelSortKey:
    """The order of `iter_relations` and `relations`: (src, type, dst, then props)."""
    return (rel.src, rel.type.value, rel.dst, tuple(sorted(rel.props.items())))


def _stored(entity: Entity) -> Entity:
    """The entity as Neo4j gives it back, so that both stores read (and hash) the same.

    Neo4j reads back only the known `EXTRA_PROPS` and returns popularity as a float; copying
    `extra` also keeps a caller's later changes to its dict out of the store.
    """
    extra = {k: entity.extra[k] for k in EXTRA_PROPS if entity.extra.get(k) is not None}
    return dataclasses.replace(entity, aliases=tuple(entity.aliases),
                               popularity=float(entity.popularity), extra=extra)


class MemoryStore:
    """GraphStore over a networkx MultiDiGraph.

    Nodes are keyed by entity id with attributes `entity` (an `Entity`) and `content_hash`
    (None while half written). Edges carry `type` (a `RelType`) and `props` (a dict); their
    keys are networkx's default integers, because a playlist may hold the same song twice
    (two CONTAINS edges between the same pair, told apart only by `position`).

    One lock guards every mutation and every read's snapshot, so the API may read from many
    threads while an ingest writes; each call sees the graph before or after a whole write call.
    """

    def __init__(self) -> None:
        self._graph: Any = nx.MultiDiGraph()
        self._version = 0
        self._lock = threading.Lock()

    @property
    def graph(self) -> Any:
        """A read-only live view of the networkx graph, for small demos.

        Not guarded by the lock: do not walk it while another thread writes to the store.
        """
        return self._graph.copy(as_view=True)

    # -- schema ---------------------------------------------------------------------------

    def apply_schema(self) -> None:
        """Nothing to create: ids are dict keys, so they are unique by construction."""

    # -- writes ---------------------------------------------------------------------------

    def existing(self, ids: Sequence[str]) -> dict[str, Existing]:
        with self._lock:
            nodes = self._graph.nodes
            return {i: Existing(nodes[i]["entity"].kind, nodes[i]["content_hash"])
                    for i in ids if i in nodes}

    def write_nodes(self, records: Sequence[EntityRecord], *, fresh: bool = False) -> None:
        """Create or replace each node's entity and mark it half written; edges stay.

        With `fresh=True` an id that already exists (or repeats in the batch) raises
        ValueError and writes nothing, as the unique constraint fails Neo4j's CREATE.
        """
        with self._lock:
            if fresh:
                self._check_fresh_ids(records)
            for rec in records:
                self._graph.add_node(rec.entity.id, entity=_stored(rec.entity), content_hash=None)

    def _check_fresh_ids(self, records: Sequence[EntityRecord]) -> None:
        seen: set[str] = set()
        for rec in records:
            if rec.entity.id in self._graph or rec.entity.id in seen:
                raise ValueError(f"write_nodes(fresh=True): id {rec.entity.id!r} already exists")
            seen.add(rec.entity.id)

    def write_relations(self, records: Sequence[EntityRecord], *, fresh: bool = False) -> int:
        """Replace the records' owned outgoing edges and seal each with its content hash.

        The batch is checked first and applied whole, so a bad record raises and changes
        nothing: KeyError for a node that does not exist, ValueError for an edge its record
        may not own, or (with `fresh=True`) for a node that already has outgoing edges.
        Like Neo4j, the batch is applied in three steps (every record's owned edges out,
        every edge in, every hash sealed), so an id given twice ends with the edges of both
        records and the hash of the last.
        """
        with self._lock:
            for rec in records:
                self._check_record(rec, fresh=fresh)
            g = self._graph
            if not fresh:
                g.remove_edges_from([e for rec in records for e in self._owned_out_edges(rec)])
            for rec in records:
                for rel in rec.relations:
                    g.add_edge(rel.src, rel.dst, type=rel.type, props=dict(rel.props))
            for rec in records:
                g.nodes[rec.entity.id]["content_hash"] = rec.content_hash
            return sum(len(rec.relations) for rec in records)

    def _owned_out_edges(self, rec: EntityRecord) -> list[tuple[str, str, int]]:
        # Only the types this kind owns: edges of other types are not part of the record
        # (Neo4j deletes exactly the same set).
        owned = owned_types(rec.entity.kind)
        return [(u, v, k) for u, v, k, t in
                self._graph.out_edges(rec.entity.id, keys=True, data="type") if t in owned]

    def _check_record(self, rec: EntityRecord, *, fresh: bool) -> None:
        nodes = self._graph.nodes
        entity = rec.entity
        if entity.id not in nodes:
            raise KeyError(f"write_relations: node {entity.id!r} does not exist; "
                           "write_nodes must store it first")
        if fresh and self._graph.out_degree(entity.id):
            raise ValueError(f"write_relations(fresh=True): node {entity.id!r} already has "
                             "outgoing edges")
        allowed = owned_types(entity.kind)
        for rel in rec.relations:
            if rel.src != entity.id:
                raise ValueError(f"write_relations: record {entity.id!r} holds an edge from "
                                 f"{rel.src!r}; a record owns only its own outgoing edges")
            if rel.type not in allowed:
                raise ValueError(f"write_relations: {entity.kind.value} {entity.id!r} cannot "
                                 f"own a {rel.type.value} edge")
            if rel.dst not in nodes:
                raise KeyError(f"write_relations: {rel.type.value} edge {entity.id!r} -> "
                               f"{rel.dst!r} points at a node that does not exist")
            end_kind = REL_ENDPOINTS[rel.type][1]
            if nodes[rel.dst]["entity"].kind is not end_kind:
                raise ValueError(f"write_relations: {rel.type.value} edge {entity.id!r} -> "
                                 f"{rel.dst!r} ends at a {nodes[rel.dst]['entity'].kind.value}, "
                                 f"expected a {end_kind.value}")

    def delete(self, ids: Sequence[str]) -> int:
        """Remove nodes and their edges; clear the hash of every other node that pointed in."""
        with self._lock:
            g = self._graph
            doomed = {i for i in ids if i in g}
            for node in doomed:
                for src in g.predecessors(node):
                    if src not in doomed:
                        g.nodes[src]["content_hash"] = None
            g.remove_nodes_from(doomed)
            return len(doomed)

    # -- reads ----------------------------------------------------------------------------

    def get(self, ids: Sequence[str]) -> list[Entity]:
        """The entities for `ids` that exist, in the order asked (a repeated id repeats)."""
        with self._lock:
            nodes = self._graph.nodes
            return [nodes[i]["entity"] for i in ids if i in nodes]

    def relations(self, entity_id: str, types: Iterable[RelType] | None = None) -> list[Relation]:
        """Edges touching `entity_id` either way, sorted like `iter_relations`.

        A self-loop is listed once, as Neo4j lists it once for an undirected pattern.
        """
        wanted = frozenset(RelType if types is None else types)
        with self._lock:
            g = self._graph
            if entity_id not in g:
                return []
            edges = list(g.out_edges(entity_id, keys=True, data=True))
            edges += [e for e in g.in_edges(entity_id, keys=True, data=True) if e[0] != e[1]]
        rels = [_relation(u, v, d) for u, v, _, d in edges if d["type"] in wanted]
        return sorted(rels, key=relation_sort_key)

    def iter_entities(self) -> Iterator[Entity]:
        """Every entity in id order, from a snapshot taken when iteration starts."""
        with self._lock:
            entities = self._sorted_entities()
        yield from entities

    def iter_relations(self) -> Iterator[Relation]:
        """Every edge sorted by (src, type, dst, props), from a snapshot."""
        with self._lock:
            rels = self._sorted_relations()
        yield from rels

    def _sorted_entities(self) -> list[Entity]:
        return sorted((e for _, e in self._graph.nodes(data="entity")), key=lambda e: e.id)

    def _sorted_relations(self) -> list[Relation]:
        rels = [_relation(u, v, d) for u, v, d in self._graph.edges(data=True)]
        return sorted(rels, key=relation_sort_key)

    def counts(self) -> Counts:
        """Nodes per kind and edges per type; kinds and types with none are left out."""
        with self._lock:
            kinds = Counter(e.kind for _, e in self._graph.nodes(data="entity"))
            types = Counter(t for _, _, t in self._graph.edges(data="type"))
        return Counts(nodes={k: kinds[k] for k in Kind if kinds[k]},
                      relationships={t: types[t] for t in REL_ENDPOINTS if types[t]})

    def content_hash(self) -> str:
        # Both halves from one snapshot, so a concurrent write cannot split the fingerprint.
        with self._lock:
            entities, rels = self._sorted_entities(), self._sorted_relations()
        return graph_hash(entities, rels)

    def catalog_version(self) -> int:
        with self._lock:
            return self._version

    def bump_catalog_version(self) -> int:
        with self._lock:
            self._version += 1
            return self._version

    def clear(self) -> None:
        """Remove every node and edge and reset the catalog version to 0 (as Neo4j does)."""
        with self._lock:
            self._graph.clear()
            self._version = 0

    def close(self) -> None:
        """Nothing to release."""


def _relation(src: str, dst: str, data: dict[str, Any]) -> Relation:
    # A fresh props dict per call: callers may not reach into the stored edge.
    return Relation(src, data["type"], dst, dict(data["props"]))
