"""Text-embedding candidates: entity texts, their vectors kept in the graph, an in-process index.

Each entity is embedded from one short text (`entity_text`): its name and aliases, a kind word
("song by Ed Sheeran", "podcast"), genre names and the start of its description. Serving uses the
static model distilled from all-MiniLM-L6-v2 (retrievers/encoders.py); entities are embedded with
the same encoder that serves the queries.

Vectors live in the graph. In Neo4j they are node properties (`text_vec`, with `text_key`, a hash
of the encoder's name and the text it embedded), so a second process reads them instead of
encoding again, and Neo4j's own vector index (graph/schema.py) can use them. Ingest replaces a
changed node's properties wholesale (`SET n = row`), which drops its vector; a text changes too
when a related name does (an artist renamed renames nothing on its songs). Both show up as a
missing or different `text_key`, and only those entities are embedded again. A new encoder makes
every key different, so everything is embedded again. For a MemoryStore the vectors stay in
process. Queries never touch the store: they go to an in-process index
(retrievers/vector_index.py), rebuilt when the catalog version moves.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from neo4j import RoutingControl

from graph.model import Entity, Kind, RelType
from graph.neo4j_store import Neo4jStore
from graph.store import GraphStore
from retrievers.base import Candidate, Query
from retrievers.encoders import Encoder, default_static, load_static
from retrievers.vector_index import VectorIndex

F32 = npt.NDArray[np.float32]
KIND_WORDS: Final[Mapping[Kind, str]] = {
    Kind.SONG: "song", Kind.ARTIST: "artist", Kind.ALBUM: "album", Kind.PLAYLIST: "playlist",
    Kind.PODCAST: "podcast", Kind.EPISODE: "podcast episode", Kind.GENRE: "music genre"}
MAX_DESCRIPTION: Final = 200  # characters: past this a static model's mean only blurs
MAX_GENRES: Final = 6
# vector = normalize(e(text) + TITLE_WEIGHT * e(title)). A mean of token vectors lets genres and
# descriptions drown the name: on the real catalog with the static model, 300 popular artists'
# names found their artist in the top 10 13% of the time without it, 93-95% with 0.4-0.5;
# Last.fm tags -> tagged artists fell from 0.96 to 0.85 hit@10 at 0.5, hence a little less.
TITLE_WEIGHT: Final = 0.4
MAX_ARTISTS: Final = 4
SNIPPET: Final = 60  # characters of the entity text quoted in a candidate's reason
VECTOR_PROP: Final = "text_vec"
KEY_PROP: Final = "text_key"
META_KEY: Final = "text_vectors"  # (:Meta {key}) records which encoder made the vectors
PAGE: Final = 5_000
WRITE_BATCH: Final = 2_000
ENCODE_BATCH: Final = 4_096


def entity_title(entity: Entity) -> str:
    """The entity's name, with up to three aliases: "Rihanna (Rihannà)"."""
    if not entity.aliases:
        return entity.name
    return f"{entity.name} ({', '.join(entity.aliases[:3])})"


def entity_text(entity: Entity, *, artists: Sequence[str] = (), genres: Sequence[str] = (),
                podcast: str = "", max_description: int = MAX_DESCRIPTION) -> str:
    """The one text an entity is embedded from, written the way a topic query describes it.

    "<name> (<aliases>). <kind word> [by <artists> | of <podcast>]. <genres>. <description>"

    `artists` are the names of a song's performers or an album's artists, `genres` the names of
    its genres, `podcast` an episode's podcast; each list is cut short (MAX_ARTISTS, MAX_GENRES),
    and the description to `max_description` characters at a word boundary. For example
    "Shape of You. song by Ed Sheeran. dance pop, pop." or
    "MurderCast. podcast. True Crime, Society & Culture. Each week we ...".
    The vector adds the title's own vector to this text's (`TITLE_WEIGHT`).
    """
    what = KIND_WORDS[entity.kind]
    if artists:
        what += " by " + ", ".join(artists[:MAX_ARTISTS])
    elif podcast:
        what += " of " + podcast
    parts = [entity_title(entity), what]
    if genres:
        parts.append(", ".join(genres[:MAX_GENRES]))
    description = " ".join(entity.description.split())
    if len(description) > max_description:
        description = description[:max_description].rsplit(" ", 1)[0]
    if description:
        parts.append(description)
    return ". ".join(p.rstrip(".") for p in parts) + "."


@dataclass(frozen=True, slots=True)
class EntityText:
    """An entity's text, with what the store already holds for it (Neo4j only)."""

    id: str
    kind: Kind
    title: str
    text: str
    stored_key: str | None = None
    stored_vec: F32 | None = None


def text_key(encoder_name: str, row: EntityText) -> str:
    """What a stored vector was made from: equal keys mean the vector is still right."""
    made_from = f"{encoder_name}\n{TITLE_WEIGHT}\n{row.title}\n{row.text}"
    return hashlib.blake2b(made_from.encode(), digest_size=10).hexdigest()


def _memory_texts(store: GraphStore) -> Iterator[EntityText]:
    """Texts from any GraphStore, by one pass over its entities and one over its relations."""
    names: dict[str, str] = {}
    entities: list[Entity] = []
    for entity in store.iter_entities():
        names[entity.id] = entity.name
        entities.append(entity)
    artists: dict[str, list[str]] = defaultdict(list)
    genres: dict[str, list[str]] = defaultdict(list)
    podcast: dict[str, str] = {}
    for rel in store.iter_relations():  # ordered by (src, type, dst): lists come in dst order
        if rel.type in (RelType.PERFORMED_BY, RelType.BY):
            artists[rel.src].append(names[rel.dst])
        elif rel.type is RelType.IN_GENRE:
            genres[rel.src].append(names[rel.dst])
        elif rel.type is RelType.EPISODE_OF:
            podcast[rel.src] = names[rel.dst]
    for e in entities:
        yield EntityText(e.id, e.kind, entity_title(e), entity_text(
            e, artists=artists.get(e.id, ()), genres=genres.get(e.id, ()),
            podcast=podcast.get(e.id, "")))


# Related names ordered by the related node's id, as `_memory_texts` sees them, so that both
# stores give every entity the same text.
_NEO4J_TEXTS: Final = (
    "MATCH (n:Entity) WHERE n.id > $after WITH n ORDER BY n.id LIMIT $page "
    "WITH n, COLLECT { MATCH (n)-[:PERFORMED_BY|BY]->(a:Artist) WITH a ORDER BY a.id "
    "RETURN a.name } AS artists, "
    "COLLECT { MATCH (n)-[:IN_GENRE]->(g:Genre) WITH g ORDER BY g.id RETURN g.name } AS genres, "
    "COLLECT { MATCH (n)-[:EPISODE_OF]->(p:Podcast) RETURN p.name } AS podcast "
    "RETURN collect([n.id, n.kind, n.name, n.aliases, n.description, artists, genres, podcast, "
    "n.text_key, CASE WHEN $vectors THEN n.text_vec END]) AS page")


def _neo4j_texts(store: Neo4jStore, *, vectors: bool = True) -> Iterator[EntityText]:
    """Texts from Neo4j in keyset pages, with each node's stored key and (if asked) vector."""
    after = ""
    while True:
        records, _, _ = store.driver.execute_query(
            _NEO4J_TEXTS, {"after": after, "page": PAGE, "vectors": vectors},
            database_=store.database, routing_=RoutingControl.READ)
        page = records[0]["page"]
        for nid, kind, name, aliases, desc, arts, gens, pods, key, vec in page:
            entity = Entity(nid, Kind(kind), name, tuple(aliases or ()), desc or "")
            text = entity_text(entity, artists=arts, genres=gens, podcast=pods[0] if pods else "")
            # One small array a node: the driver's Python floats would take ~30 bytes each.
            stored = None if vec is None else np.asarray(vec, dtype=np.float32)
            yield EntityText(nid, entity.kind, entity_title(entity), text, key, stored)
        if len(page) < PAGE:
            return
        after = page[-1][0]


def catalog_texts(store: GraphStore, *, vectors: bool = True) -> Iterator[EntityText]:
    """Every entity's text in id order; from Neo4j with what each node already stores."""
    if isinstance(store, Neo4jStore):
        return _neo4j_texts(store, vectors=vectors)
    return _memory_texts(store)


def embed_rows(encoder: Encoder, rows: Sequence[EntityText]) -> F32:
    """Entity vectors: normalize(e(text) + TITLE_WEIGHT * e(title)), in batches."""
    out = np.zeros((len(rows), encoder.dim), np.float32)
    for start in range(0, len(rows), ENCODE_BATCH):
        batch = rows[start:start + ENCODE_BATCH]
        vec = encoder.encode([r.text for r in batch])
        vec += TITLE_WEIGHT * encoder.encode([r.title for r in batch])
        vec /= np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        out[start:start + len(batch)] = vec
    return out


def write_vectors(store: Neo4jStore, ids: Sequence[str], keys: Sequence[str],
                  vectors: F32) -> None:
    """Store vectors as node properties, in batched UNWIND writes (idempotent: SET only)."""
    for start in range(0, len(ids), WRITE_BATCH):
        end = start + WRITE_BATCH
        rows = [{"id": i, "k": k, "v": v} for i, k, v in
                zip(ids[start:end], keys[start:end], vectors[start:end].tolist(), strict=True)]
        store.driver.execute_query(
            "UNWIND $rows AS r MATCH (n:Entity {id: r.id}) "
            "SET n.text_vec = r.v, n.text_key = r.k", {"rows": rows},
            database_=store.database, routing_=RoutingControl.WRITE)


def _write_meta(store: Neo4jStore, encoder: Encoder, count: int, version: int) -> None:
    store.driver.execute_query(
        "MERGE (m:Meta {key: $key}) SET m.encoder = $encoder, m.dimensions = $dim, "
        "m.count = $count, m.catalog_version = $version",
        {"key": META_KEY, "encoder": encoder.name, "dim": encoder.dim, "count": count,
         "version": version}, database_=store.database, routing_=RoutingControl.WRITE)


def stored_encoder(store: Neo4jStore) -> str | None:
    """The name of the encoder that made the vectors in the graph (None before any)."""
    records, _, _ = store.driver.execute_query(
        "MATCH (m:Meta {key: $key}) RETURN m.encoder AS e", {"key": META_KEY},
        database_=store.database, routing_=RoutingControl.READ)
    return records[0]["e"] if records else None


@dataclass(frozen=True, slots=True)
class EmbedReport:
    """What one embedding pass did: how many entities, how many it encoded, and the seconds."""

    entities: int
    encoded: int
    reused: int
    read_s: float
    encode_s: float
    write_s: float
    catalog_version: int


@dataclass(frozen=True, slots=True, eq=False)
class EmbeddedCatalog:
    """Every entity's vector, in id order, with its kind and a snippet of its text."""

    ids: list[str]
    kinds: list[Kind]
    snippets: list[str]
    keys: list[str]
    vectors: F32
    report: EmbedReport


def embed_catalog(store: GraphStore, encoder: Encoder,
                  previous: Mapping[str, tuple[str, F32]] | None = None,
                  ) -> EmbeddedCatalog:
    """Vectors for the whole catalog, encoding only the entities whose text key changed.

    From Neo4j the vectors stored on the nodes are reused and the new ones written back;
    otherwise `previous` (id -> (key, vector), from the last pass in this process) is reused.
    The catalog version is read first, so a write that lands mid-pass is caught next refresh.
    """
    start = time.perf_counter()
    version = store.catalog_version()
    rows = list(catalog_texts(store))
    read_s = time.perf_counter() - start
    keys = [text_key(encoder.name, r) for r in rows]
    vectors = np.zeros((len(rows), encoder.dim), np.float32)
    todo: list[int] = []
    for i, (row, key) in enumerate(zip(rows, keys, strict=True)):
        old_key, old_vec = ((row.stored_key, row.stored_vec) if previous is None
                            else previous.get(row.id, (None, None)))
        if old_key == key and old_vec is not None and len(old_vec) == encoder.dim:
            vectors[i] = old_vec
        else:
            todo.append(i)
    t = time.perf_counter()
    if todo:
        vectors[todo] = embed_rows(encoder, [rows[i] for i in todo])
    encode_s = time.perf_counter() - t
    t = time.perf_counter()
    if isinstance(store, Neo4jStore):
        write_vectors(store, [rows[i].id for i in todo], [keys[i] for i in todo],
                      vectors[todo])
        _write_meta(store, encoder, len(rows), version)
    write_s = time.perf_counter() - t
    report = EmbedReport(len(rows), len(todo), len(rows) - len(todo), read_s, encode_s,
                         write_s, version)
    return EmbeddedCatalog([r.id for r in rows], [r.kind for r in rows],
                           [r.text[:SNIPPET] for r in rows], keys, vectors, report)


def train_text(store: GraphStore) -> list[str]:
    """`tunegraph train text`: distil (unless cached), embed what is missing, say what it did."""
    store.apply_schema()  # the vector index, if this graph predates it
    loaded = load_static()
    what = "distilled and cached" if loaded.distilled else "loaded from cache"
    report = embed_catalog(store, loaded.encoder).report
    return [f"static model {loaded.encoder.name} ({loaded.encoder.dim} dimensions) {what} in "
            f"{loaded.seconds:.1f} s: {loaded.path}",
            f"{report.entities:,} entities at catalog version {report.catalog_version}: "
            f"{report.encoded:,} embedded, {report.reused:,} already in the graph",
            f"read {report.read_s:.1f} s, encode {report.encode_s:.1f} s, "
            f"write {report.write_s:.1f} s"]


def _snippet(text: str) -> str:
    return text if len(text) < SNIPPET else text[:SNIPPET].rsplit(" ", 1)[0] + "..."


class TextEmbeddingRetriever:
    """Retriever over entity-text vectors: cosine similarity to the encoded query, best first."""

    name = "text"

    def __init__(self, encoder: Encoder, catalog: EmbeddedCatalog, **index_options: Any) -> None:
        self.encoder = encoder
        self._options = index_options
        self._lock = threading.Lock()
        self._install(catalog)

    @classmethod
    def build(cls, store: GraphStore, encoder: Encoder | None = None,
              **index_options: Any) -> TextEmbeddingRetriever:
        """Embed what is missing (writing it back to Neo4j) and build the serving index.
        The encoder defaults to the static model distilled from MiniLM (cached on disk)."""
        encoder = encoder or default_static()
        return cls(encoder, embed_catalog(store, encoder), **index_options)

    def _install(self, catalog: EmbeddedCatalog) -> None:
        index = VectorIndex(catalog.vectors, catalog.kinds, **self._options)
        with self._lock:  # readers see the old tables or the new, never a mix
            self._catalog, self._index = catalog, index

    @property
    def catalog_version(self) -> int:
        return self._catalog.report.catalog_version

    @property
    def report(self) -> EmbedReport:
        return self._catalog.report

    def refresh(self, store: GraphStore) -> bool:
        """Re-embed what changed and rebuild the index if the catalog version moved."""
        if store.catalog_version() == self.catalog_version:
            return False
        old = self._catalog
        previous = None if isinstance(store, Neo4jStore) else {
            i: (k, v) for i, k, v in zip(old.ids, old.keys, old.vectors, strict=True)}
        self._install(embed_catalog(store, self.encoder, previous))
        return True

    def retrieve(self, query: Query, k: int) -> list[Candidate]:
        if k <= 0 or not query.text.strip():
            return []
        vec = self.encoder.encode([query.text])[0]
        if not vec.any():
            return []
        with self._lock:
            catalog, index = self._catalog, self._index
        hits = index.search(vec, k, query.kinds)
        return [Candidate(catalog.ids[row], score, self.name,
                          f'text similar to "{_snippet(catalog.snippets[row])}"')
                for row, score in hits]

