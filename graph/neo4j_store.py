"""`Neo4jStore`: the catalog graph in a real Neo4j server, over Bolt."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import groupby
from typing import Any, Final, LiteralString

from neo4j import Driver, GraphDatabase, ManagedTransaction, RoutingControl

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
from graph.schema import SCHEMA_STATEMENTS, owned_types
from graph.store import Counts, Existing

# Only labels and types from the `Kind`/`RelType` allow-lists are ever formatted into Cypher
# text; every user value travels as a parameter.
READ = RoutingControl.READ
# What a read returns of a node: the entity's own properties, never the serving data other parts
# keep on the node (text vectors are 256 floats each; `_hash`), so catalog reads stay small.
# The kind-specific keys are EXTRA_PROPS (a test checks the two agree).
ENTITY_PROJECTION: Final = ("{.id, .kind, .name, .aliases, .description, .popularity, "
                            ".duration_ms, .release_date, .language, .publisher}")
PAGE = 10_000
WRITE = RoutingControl.WRITE


def entity_props(entity: Entity) -> dict[str, Any]:
    """The node properties for an entity (without `_hash`, so writing them marks it pending)."""
    props: dict[str, Any] = {
        "id": entity.id,
        "kind": entity.kind.value,
        "name": entity.name,
        "popularity": entity.popularity,
    }
    if entity.aliases:
        props["aliases"] = list(entity.aliases)
    if entity.description:
        props["description"] = entity.description
    props.update({k: v for k, v in entity.extra.items() if k in EXTRA_PROPS})
    return props


def entity_from_props(props: Mapping[str, Any]) -> Entity:
    return Entity(
        id=props["id"],
        kind=Kind(props["kind"]),
        name=props["name"],
        aliases=tuple(props.get("aliases") or ()),
        description=props.get("description") or "",
        popularity=float(props.get("popularity") or 0.0),
        extra={k: props[k] for k in EXTRA_PROPS if props.get(k) is not None},
    )


def _rel_sort_key(rel: Relation) -> tuple[str, str, str, tuple[tuple[str, PropValue], ...]]:
    return (rel.src, rel.type.value, rel.dst, tuple(sorted(rel.props.items())))


class Neo4jStore:
    """GraphStore over the Neo4j driver. Every write is an idempotent managed transaction."""

    def __init__(self, driver: Driver, database: str = "neo4j") -> None:
        self.driver = driver
        self.database = database

    @classmethod
    def connect(
        cls, uri: str, user: str | None = None, password: str | None = None,
        database: str = "neo4j", *, retry_s: float = 30.0, connect_timeout_s: float = 30.0,
    ) -> Neo4jStore:
        """`retry_s` bounds the driver's retries of a managed transaction (30 s suits batch
        work like ingest; a service that must answer in milliseconds passes about 1 s)."""
        auth = (user, password or "") if user else None
        # Notifications off: the server warns about property keys an empty catalog lacks.
        driver = GraphDatabase.driver(uri, auth=auth, max_connection_pool_size=32,
                                      connection_acquisition_timeout=min(10.0, connect_timeout_s),
                                      connection_timeout=connect_timeout_s,
                                      max_transaction_retry_time=retry_s,
                                      notifications_min_severity="OFF")
        return cls(driver, database)

    def _run(self, query: LiteralString, routing: RoutingControl = WRITE,
             **params: Any) -> list[Any]:
        records, _, _ = self.driver.execute_query(
            query, params, database_=self.database, routing_=routing)
        return list(records)

    # -- schema ---------------------------------------------------------------------------

    def apply_schema(self) -> None:
        for statement in SCHEMA_STATEMENTS:
            self._run(statement)
        self._run("CALL db.awaitIndexes(300)")

    # -- writes ---------------------------------------------------------------------------

    def existing(self, ids: Sequence[str]) -> dict[str, Existing]:
        # One record holding a list: the driver's cost is per record, not per value.
        rows = self._run(
            "UNWIND $ids AS id MATCH (n:Entity {id: id}) "
            "RETURN collect([n.id, n.kind, n._hash]) AS found", READ, ids=list(ids))
        return {i: Existing(Kind(k), h) for i, k, h in rows[0]["found"]}

    def write_nodes(self, records: Sequence[EntityRecord], *, fresh: bool = False) -> None:
        by_kind = sorted(records, key=lambda r: r.entity.kind.value)
        for kind_value, group in groupby(by_kind, key=lambda r: r.entity.kind.value):
            label = Kind(kind_value).label
            rows = [entity_props(r.entity) for r in group]
            # CREATE skips MERGE's lookup-and-lock; the unique constraint still guards ids.
            verb = f"CREATE (n:Entity:{label})" if fresh else (
                f"MERGE (n:Entity {{id: row.id}}) SET n:{label}")
            self._run(f"UNWIND $rows AS row {verb} SET n = row", rows=rows)

    def write_relations(self, records: Sequence[EntityRecord], *, fresh: bool = False) -> int:
        by_type: dict[RelType, list[dict[str, Any]]] = {}
        for rec in records:
            for rel in rec.relations:
                by_type.setdefault(rel.type, []).append(
                    {"s": rel.src, "d": rel.dst, "p": dict(rel.props)})
        seals = [{"id": r.entity.id, "hash": r.content_hash} for r in records]
        owners: dict[str, list[str]] = {}
        if not fresh:
            for rec in records:
                for t in owned_types(rec.entity.kind):
                    owners.setdefault(t.value, []).append(rec.entity.id)

        def work(tx: ManagedTransaction) -> None:
            # One transaction: old edges out, new edges in, hashes sealed; all or nothing.
            for type_value, ids in owners.items():
                tx.run(f"UNWIND $ids AS id MATCH (:Entity {{id: id}})-[old:{type_value}]->() "
                       "DELETE old", ids=ids).consume()
            for rel_type, rows in by_type.items():
                # Most types carry no properties: they skip the SET.
                props = " SET e = r.p" if any(r["p"] for r in rows) else ""
                tx.run("UNWIND $rows AS r MATCH (a:Entity {id: r.s}) MATCH (b:Entity {id: r.d}) "
                       f"CREATE (a)-[e:{rel_type.value}]->(b){props}", rows=rows).consume()
            tx.run("UNWIND $rows AS r MATCH (n:Entity {id: r.id}) SET n._hash = r.hash",
                   rows=seals).consume()

        with self.driver.session(database=self.database) as session:
            session.execute_write(work)
        return sum(len(rows) for rows in by_type.values())

    def delete(self, ids: Sequence[str]) -> int:
        _, summary, _ = self.driver.execute_query(
            # Nodes whose edges pointed here lose those edges: clear their hash so that their
            # record counts as changed (and restores the edge) when it is ingested again.
            "UNWIND $ids AS id MATCH (n:Entity {id: id}) "
            "CALL (n) { MATCH (src:Entity)-->(n) WHERE src <> n SET src._hash = null } "
            "DETACH DELETE n",
            {"ids": list(ids)}, database_=self.database, routing_=WRITE)
        return summary.counters.nodes_deleted

    # -- reads ----------------------------------------------------------------------------

    def get(self, ids: Sequence[str]) -> list[Entity]:
        rows = self._run(
            "UNWIND range(0, size($ids) - 1) AS i MATCH (n:Entity {id: $ids[i]}) "
            f"RETURN n {ENTITY_PROJECTION} AS p ORDER BY i", READ, ids=list(ids))
        return [entity_from_props(r["p"]) for r in rows]

    def relations(self, entity_id: str, types: Iterable[RelType] | None = None) -> list[Relation]:
        wanted = [t.value for t in (types if types is not None else RelType)]
        rows = self._run(
            "MATCH (n:Entity {id: $id})-[r]-() WHERE type(r) IN $types "
            "RETURN startNode(r).id AS src, type(r) AS type, endNode(r).id AS dst, "
            "properties(r) AS props", READ, id=entity_id, types=wanted)
        rels = [Relation(r["src"], RelType(r["type"]), r["dst"], r["props"]) for r in rows]
        return sorted(rels, key=_rel_sort_key)

    def iter_entities(self) -> Iterator[Entity]:
        after = ""
        while True:  # keyset pages over the id index, each page one record
            rows = self._run(
                "MATCH (n:Entity) WHERE n.id > $after WITH n ORDER BY n.id LIMIT $page "
                f"RETURN collect(n {ENTITY_PROJECTION}) AS page", READ, after=after, page=PAGE)
            page = rows[0]["page"]
            yield from (entity_from_props(p) for p in page)
            if len(page) < PAGE:
                return
            after = page[-1]["id"]

    def iter_relations(self) -> Iterator[Relation]:
        after = ""
        while True:  # pages of source nodes, each page's outgoing edges in one record
            rows = self._run(
                "MATCH (a:Entity) WHERE a.id > $after WITH a ORDER BY a.id LIMIT $page "
                "OPTIONAL MATCH (a)-[r]->(b:Entity) RETURN max(a.id) AS last, "
                "collect(CASE WHEN r IS NULL THEN null "
                "ELSE [a.id, type(r), b.id, properties(r)] END) AS rels",
                READ, after=after, page=PAGE)
            if rows[0]["last"] is None:
                return
            rels = sorted((Relation(s, RelType(t), d, p) for s, t, d, p in rows[0]["rels"]),
                          key=_rel_sort_key)
            yield from rels
            after = rows[0]["last"]

    def counts(self) -> Counts:
        nodes: dict[Kind, int] = {}
        for kind in Kind:
            n = self._run(f"MATCH (n:{kind.label}) RETURN count(n) AS c", READ)[0]["c"]
            if n:
                nodes[kind] = n
        rels: dict[RelType, int] = {}
        for rel_type in REL_ENDPOINTS:
            n = self._run(f"MATCH ()-[r:{rel_type.value}]->() RETURN count(r) AS c", READ)[0]["c"]
            if n:
                rels[rel_type] = n
        return Counts(nodes, rels)

    def content_hash(self) -> str:
        return graph_hash(self.iter_entities(), self.iter_relations())

    def catalog_version(self) -> int:
        rows = self._run("MATCH (m:Meta {key: 'catalog'}) RETURN m.version AS v", READ)
        return int(rows[0]["v"]) if rows else 0

    def bump_catalog_version(self) -> int:
        rows = self._run(
            "MERGE (m:Meta {key: 'catalog'}) SET m.version = coalesce(m.version, 0) + 1 "
            "RETURN m.version AS v")
        return int(rows[0]["v"])

    def clear(self) -> None:
        with self.driver.session(database=self.database) as s:
            s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()

    def ping(self) -> None:
        """Raise if the server does not answer."""
        self._run("RETURN 1", READ)

    def close(self) -> None:
        self.driver.close()
