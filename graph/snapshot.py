"""`Snapshot`: the catalog read once into memory, so that every serving index builds from one pass.

Serving indexes (fuzzy names, query understanding, memory, text vectors, result cards) each need
every entity and some relationships. Read from Neo4j separately, each would page through the whole
catalog again; a snapshot reads it once (version first, so a write landing meanwhile makes the
next refresh rebuild) and hands the same lists to every builder. It offers the read side of
`GraphStore` that builders use; it never writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from graph.model import Entity, Relation, RelType


class CatalogReader(Protocol):
    """What index builders read: every entity, every relationship, the catalog version."""

    def iter_entities(self) -> Iterator[Entity]: ...

    def iter_relations(self) -> Iterator[Relation]: ...

    def catalog_version(self) -> int: ...


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """Entities (id order) and relationships ((src, type, dst) order) at one catalog version."""

    entities: tuple[Entity, ...]
    relations: tuple[Relation, ...]
    version: int

    @classmethod
    def read(cls, store: CatalogReader) -> Snapshot:
        version = store.catalog_version()
        return cls(tuple(store.iter_entities()), tuple(store.iter_relations()), version)

    def iter_entities(self) -> Iterator[Entity]:
        return iter(self.entities)

    def iter_relations(self) -> Iterator[Relation]:
        return iter(self.relations)

    def catalog_version(self) -> int:
        return self.version

    def get(self, ids: Sequence[str]) -> list[Entity]:
        by_id = {e.id: e for e in self.entities}
        return [by_id[i] for i in ids if i in by_id]

    def of_type(self, *types: RelType) -> Iterable[Relation]:
        wanted = set(types)
        return (r for r in self.relations if r.type in wanted)
