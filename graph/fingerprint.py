"""Canonical content hashes: of one record (to skip unchanged writes) and of a whole graph."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import msgspec

from graph.model import Entity, EntityRecord, Relation

_encoder = msgspec.json.Encoder(order="sorted")


def record_hash(entity: Entity, relations: Iterable[Relation]) -> str:
    """Hash of an entity and its outgoing edges; edge order within a type matters (positions)."""
    doc = (entity, tuple(relations))  # msgspec encodes the frozen dataclasses directly
    return hashlib.blake2b(_encoder.encode(doc), digest_size=16).hexdigest()


def graph_hash(entities: Iterable[Entity], relations: Iterable[Relation]) -> str:
    """Hash of a whole graph. Callers pass entities in id order and relations sorted by
    (src, type, dst, props), so two stores holding the same graph give the same hash."""
    h = hashlib.blake2b(digest_size=16)
    for e in entities:
        h.update(_encoder.encode(e))
        h.update(b"\n")
    h.update(b"--\n")
    for r in relations:
        h.update(_encoder.encode(r))
        h.update(b"\n")
    return h.hexdigest()


def make_record(entity: Entity, relations: Iterable[Relation] = ()) -> EntityRecord:
    """An `EntityRecord` with its content hash filled in."""
    rels = tuple(relations)
    return EntityRecord(entity=entity, relations=rels, content_hash=record_hash(entity, rels))
