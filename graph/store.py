"""The `GraphStore` protocol: what the rest of TuneGraph may ask of the catalog graph."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from graph.model import Entity, EntityRecord, Kind, Relation, RelType


@dataclass(frozen=True, slots=True)
class Existing:
    """What a store already holds for an id: its kind and the hash of the record last written.

    `content_hash` is None while a record is half written (node stored, edges not yet), so a
    resumed ingest redoes it.
    """

    kind: Kind
    content_hash: str | None


@dataclass(slots=True)
class WriteStats:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    relationships: int = 0

    def add(self, other: WriteStats) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        self.relationships += other.relationships


@dataclass(frozen=True, slots=True)
class Counts:
    nodes: dict[Kind, int] = field(default_factory=dict)
    relationships: dict[RelType, int] = field(default_factory=dict)

    @property
    def total_nodes(self) -> int:
        return sum(self.nodes.values())

    @property
    def total_relationships(self) -> int:
        return sum(self.relationships.values())


@runtime_checkable
class GraphStore(Protocol):
    """The catalog graph. `Neo4jStore` is the real one; `MemoryStore` is in-process (networkx)."""

    def apply_schema(self) -> None:
        """Create constraints and indexes if absent. Safe to call at every start."""
        ...

    def existing(self, ids: Sequence[str]) -> dict[str, Existing]:
        """The ids among `ids` that the store holds, with their kind and content hash."""
        ...

    def write_nodes(self, records: Sequence[EntityRecord], *, fresh: bool = False) -> None:
        """Phase 1 of a write: create or replace the nodes, marking them as half written.

        `fresh=True` promises that none of the ids exists yet, which lets a store create
        rather than look up (a uniqueness violation then fails the batch).
        """
        ...

    def write_relations(self, records: Sequence[EntityRecord], *, fresh: bool = False) -> int:
        """Phase 2: replace each record's outgoing edges and seal it with its content hash.

        `fresh=True` promises that the nodes have no outgoing edges yet (just created).

        Every edge endpoint must already exist (phase 1 of the same ingest, or earlier).
        Returns the number of relationships written.
        """
        ...

    def delete(self, ids: Sequence[str]) -> int:
        """Remove the nodes and all their relationships; returns how many existed.

        Nodes that had an edge into a removed node get their content hash cleared, so their
        record is rewritten (and the edge restored) when it is ingested again.
        """
        ...

    def get(self, ids: Sequence[str]) -> list[Entity]:
        """The entities for `ids` that exist, in the order asked."""
        ...

    def relations(self, entity_id: str, types: Iterable[RelType] | None = None) -> list[Relation]:
        """Relationships touching `entity_id` in either direction, optionally of some types."""
        ...

    def iter_entities(self) -> Iterator[Entity]:
        """Every entity, in id order (used to build serving indexes and exports)."""
        ...

    def iter_relations(self) -> Iterator[Relation]:
        """Every relationship, ordered by (src, type, dst)."""
        ...

    def counts(self) -> Counts: ...

    def content_hash(self) -> str:
        """A fingerprint of the whole graph: equal graphs give equal hashes."""
        ...

    def catalog_version(self) -> int:
        """A number that grows whenever an ingest changes the catalog."""
        ...

    def bump_catalog_version(self) -> int: ...

    def clear(self) -> None:
        """Remove everything (tests and `--replace` loads)."""
        ...

    def close(self) -> None: ...
