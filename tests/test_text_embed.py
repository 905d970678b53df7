"""The text retriever: offline models, vectors in the graph, re-embedding only what changed."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from api.cli import main as cli_main
from graph import server
from graph.memory_store import MemoryStore
from graph.model import Kind, RelType
from graph.neo4j_store import Neo4jStore
from graph.store import GraphStore
from ingest.pipeline import ingest
from retrievers.base import Query
from retrievers.encoders import MiniLMEncoder, default_static, load_static
from retrievers.text_embed import (
    META_KEY,
    TextEmbeddingRetriever,
    catalog_texts,
    stored_encoder,
)
from retrievers.vector_index import VectorIndex
from tests.conftest import FIXTURES


def _fixture_record(entity_id: str) -> dict[str, Any]:
    for line in (FIXTURES / "catalog.jsonl").read_text().splitlines():
        record: dict[str, Any] = json.loads(line)
        if record["id"] == entity_id:
            return record
    raise KeyError(entity_id)


def _ingest_records(store: GraphStore, tmp_path: Path, records: list[dict[str, Any]]) -> None:
    feed = tmp_path / "change.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in records))
    report = ingest(store, [str(feed)])
    assert report.rejected == 0


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection beyond loopback fails, so a model that reaches for a hub fails loudly."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in (
                "127.0.0.1", "::1", "localhost"):
            raise OSError(f"test blocks network access to {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.mark.slow
@pytest.mark.usefixtures("no_network")
def test_models_load_offline_and_distil_once() -> None:
    first = load_static()  # distils into the machine's cache the first time only
    again = load_static()
    assert not again.distilled
    assert again.path == first.path
    assert (again.path / "config.json").exists()
    static = again.encoder
    full = MiniLMEncoder()
    texts = ["true crime podcast", "murder mystery stories", "happy dance pop", "Björk"]
    for enc in (static, full):
        vecs = enc.encode(texts)
        assert vecs.shape == (len(texts), enc.dim)
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # The static model keeps MiniLM's sense: crime is nearer murder than dance, in both.
    for enc in (static, full):
        v = enc.encode(texts)
        assert v[0] @ v[1] > v[0] @ v[2] + 0.1
    # Accents fold as MiniLM's tokenizer folds them.
    a, b = static.encode(["Bjork", "Björk"])
    assert a @ b > 0.99


@pytest.mark.parametrize("scan_limit", [10_000, 2_000], ids=["scan", "ivf"])
def test_vector_index_recall_and_kinds(scan_limit: int) -> None:
    """Every code scanned (6,000 rows under scan_limit) or an inverted file (above it): recall
    against exact search, best first, and kind filters that return only that kind."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((50, 64)).astype(np.float32)
    vectors = centres[rng.integers(0, 50, 6000)] + 0.4 * rng.standard_normal(
        (6000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kinds = [Kind.SONG] * 3000 + [Kind.ARTIST] * 1000 + [Kind.ALBUM] * 1500 + [Kind.GENRE] * 500
    index = VectorIndex(vectors, kinds, exact_limit=800, kind_exact_limit=0,
                        scan_limit=scan_limit, rescore=200)
    assert index.approximate
    assert (index.nprobe > 0) == (scan_limit < 6000)
    queries = vectors[rng.integers(0, 6000, 100)] + 0.2 * rng.standard_normal(
        (100, 64)).astype(np.float32)
    recalls = []
    for q in queries:
        tenth = np.sort(vectors @ q)[-10]
        hits = index.search(q, 10)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        recalls.append(np.mean([vectors[r] @ q >= tenth - 1e-6 for r, _ in hits]))
        # Song and artist (their own indexes), genre (exact): only that kind.
        for kind in (Kind.SONG, Kind.ARTIST, Kind.GENRE):
            rows = [r for r, _ in index.search(q, 5, frozenset({kind}))]
            assert len(rows) == 5
            assert {kinds[r] for r in rows} == {kind}
    assert np.mean(recalls) >= 0.95


def test_vector_index_is_reproducible() -> None:
    """Two builds over the same rows answer every query the same (seeded training)."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((4000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kinds = [Kind.SONG] * 4000
    a, b = (VectorIndex(vectors, kinds, exact_limit=500, scan_limit=1000, rescore=20)
            for _ in range(2))
    for q in vectors[:30]:
        assert a.search(q, 10) == b.search(q, 10)


def test_small_kinds_are_searched_exactly_beside_an_index() -> None:
    """Below kind_exact_limit rows a kind is scored exactly, even when the whole set has an
    approximate index: the same rows as a brute-force search within the kind."""
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kinds = [Kind.SONG] * 2000 + [Kind.ARTIST] * 1000
    index = VectorIndex(vectors, kinds, exact_limit=500, kind_exact_limit=1500)
    assert index.approximate
    artists = np.arange(2000, 3000)
    for q in vectors[rng.integers(0, 3000, 20)]:
        exact = artists[np.argsort(-(vectors[artists] @ q), kind="stable")[:10]]
        assert [r for r, _ in index.search(q, 10, frozenset({Kind.ARTIST}))] == exact.tolist()


def _retrieve_ids(r: TextEmbeddingRetriever, text: str, k: int = 10,
                  kinds: frozenset[Kind] = frozenset()) -> list[str]:
    return [c.entity_id for c in r.retrieve(Query(text, kinds), k)]


@pytest.fixture(scope="module")
def memory_text(memory_catalog: MemoryStore) -> TextEmbeddingRetriever:
    return TextEmbeddingRetriever.build(memory_catalog)


def test_topic_queries_find_the_right_things(memory_text: TextEmbeddingRetriever,
                                             memory_catalog: MemoryStore) -> None:
    ents = list(memory_catalog.iter_entities())
    crime = {e.id for e in ents if e.kind is Kind.PODCAST
             and "true crime" in f"{e.name} {e.description}".lower()}
    assert len(crime) == 2
    assert set(_retrieve_ids(memory_text, "true crime podcast", 2,
                             frozenset({Kind.PODCAST}))) == crime
    assert crime <= set(_retrieve_ids(memory_text, "true crime podcast", 3))
    tagged = {r.src for r in memory_catalog.iter_relations()
              if r.type is RelType.IN_GENRE and r.dst == "g:female-vocalists"}
    top = _retrieve_ids(memory_text, "female vocalists", 5, frozenset({Kind.ARTIST}))
    assert len(set(top) & tagged) >= 4
    best = memory_text.retrieve(Query("Björk"), 1)[0]
    assert best.entity_id == "ar:bjork"
    assert best.reason.startswith('text similar to "Björk')


def test_kind_filter_is_the_unfiltered_list_restricted(memory_text: TextEmbeddingRetriever,
                                                       memory_catalog: MemoryStore) -> None:
    kinds = {e.id: e.kind for e in memory_catalog.iter_entities()}
    for text in ("taylor swift love", "rock classics", "true crime podcast"):
        everything = _retrieve_ids(memory_text, text, len(kinds))
        assert len(everything) == len(kinds)
        for kind in (Kind.SONG, Kind.ARTIST, Kind.PODCAST, Kind.EPISODE):
            want = [i for i in everything if kinds[i] is kind][:5]
            assert _retrieve_ids(memory_text, text, 5, frozenset({kind})) == want
        two = frozenset({Kind.SONG, Kind.ALBUM})
        assert _retrieve_ids(memory_text, text, 8, two) == [
            i for i in everything if kinds[i] in two][:8]


def test_deterministic_and_ties_broken_by_id(tmp_path: Path) -> None:
    feed = [{"kind": "genre", "id": f"g:jazz-{i}", "name": "jazz"} for i in (3, 1, 2)]
    feed.append({"kind": "genre", "id": "g:metal", "name": "metal"})
    stores = [MemoryStore(), MemoryStore()]
    for store in stores:
        _ingest_records(store, tmp_path, feed)
    a, b = (TextEmbeddingRetriever.build(s) for s in stores)
    got = a.retrieve(Query("jazz"), 4)
    assert [c.entity_id for c in got[:3]] == ["g:jazz-1", "g:jazz-2", "g:jazz-3"]
    assert got[0].score == got[2].score > got[3].score
    assert got == b.retrieve(Query("jazz"), 4) == a.retrieve(Query("jazz"), 4)


def test_memory_refresh_reembeds_only_what_changed(tmp_path: Path) -> None:
    store = MemoryStore()
    ingest(store, [str(FIXTURES / "catalog.jsonl")])
    r = TextEmbeddingRetriever.build(store)
    n = r.report.entities
    assert r.report.encoded == n
    assert not r.refresh(store)
    podcast = _fixture_record("po:404")
    podcast["description"] = "Stand-up comedy, sketches and jokes from the morning show."
    _ingest_records(store, tmp_path, [podcast])
    assert r.refresh(store)
    assert (r.report.encoded, r.report.reused) == (1, n - 1)
    assert _retrieve_ids(r, "stand-up comedy sketches and jokes", 1) == ["po:404"]
    store.clear()  # serving reads no store: the index answers on its own
    assert _retrieve_ids(r, "stand-up comedy sketches and jokes", 1) == ["po:404"]


@pytest.mark.neo4j
def test_vectors_written_to_and_read_back_from_neo4j(neo4j_catalog: Neo4jStore) -> None:
    first = TextEmbeddingRetriever.build(neo4j_catalog)
    n = first.report.entities
    assert n == neo4j_catalog.counts().total_nodes
    assert first.report.encoded == n
    records, _, _ = neo4j_catalog.driver.execute_query(
        "MATCH (n:Entity) RETURN count(n.text_vec) AS vecs, count(n.text_key) AS keys, "
        "min(size(n.text_vec)) AS dim")
    assert (records[0]["vecs"], records[0]["keys"], records[0]["dim"]) == (n, n, first.encoder.dim)
    assert stored_encoder(neo4j_catalog) == first.encoder.name
    # A second process reads the vectors back instead of encoding again.
    second = TextEmbeddingRetriever.build(neo4j_catalog)
    assert (second.report.encoded, second.report.reused) == (0, n)
    for text in ("true crime podcast", "Taylor Swift", "classic rock"):
        assert first.retrieve(Query(text), 10) == second.retrieve(Query(text), 10)
    # Neo4j's own vector index over the same property agrees on the best match.
    records, _, _ = neo4j_catalog.driver.execute_query(
        "SHOW VECTOR INDEXES YIELD name, options WHERE name = 'entity_text_vec' RETURN options")
    assert records[0]["options"]["indexConfig"]["vector.dimensions"] == first.encoder.dim
    neo4j_catalog.driver.execute_query("CALL db.awaitIndexes(60)")
    query = first.encoder.encode(["true crime podcast"])[0].tolist()
    records, _, _ = neo4j_catalog.driver.execute_query(
        "CALL db.index.vector.queryNodes('entity_text_vec', 1, $q) YIELD node RETURN node.id AS id",
        q=query)
    assert records[0]["id"] == _retrieve_ids(first, "true crime podcast", 1)[0]


@pytest.mark.neo4j
def test_neo4j_reembeds_only_missing_or_changed(neo4j_catalog: Neo4jStore,
                                                tmp_path: Path) -> None:
    r = TextEmbeddingRetriever.build(neo4j_catalog)
    n = r.report.entities
    # The same text from both stores (the Neo4j query and the generic path agree).
    generic = {t.id: t.text for t in catalog_texts(_as_memory(neo4j_catalog))}
    assert {t.id: t.text for t in catalog_texts(neo4j_catalog)} == generic
    assert not r.refresh(neo4j_catalog)
    # An updated podcast loses its vector (ingest replaces its properties); a renamed artist
    # changes the text of its songs and albums, whose nodes were not touched.
    podcast = _fixture_record("po:404")
    podcast["description"] = "Stand-up comedy, sketches and jokes from the morning show."
    artist = _fixture_record("ar:sia")
    artist["name"] = "Sia Furler"
    works = {rel.src for rel in neo4j_catalog.relations("ar:sia", [RelType.PERFORMED_BY,
                                                                    RelType.BY])}
    _ingest_records(neo4j_catalog, tmp_path, [podcast, artist])
    assert r.refresh(neo4j_catalog)
    assert r.report.encoded == 2 + len(works)
    assert r.report.reused == n - 2 - len(works)
    assert _retrieve_ids(r, "stand-up comedy sketches and jokes", 1) == ["po:404"]
    assert "ar:sia" in _retrieve_ids(r, "Sia Furler", 3)
    # Another process finds everything in place.
    assert TextEmbeddingRetriever.build(neo4j_catalog).report.encoded == 0


@pytest.mark.neo4j
def test_new_encoder_reembeds_everything(neo4j_catalog: Neo4jStore) -> None:
    r = TextEmbeddingRetriever.build(neo4j_catalog)
    renamed = _Renamed(default_static())
    other = TextEmbeddingRetriever.build(neo4j_catalog, renamed)
    assert other.report.encoded == r.report.entities
    assert stored_encoder(neo4j_catalog) == renamed.name
    records, _, _ = neo4j_catalog.driver.execute_query(
        "MATCH (m:Meta {key: $key}) RETURN m.count AS c", key=META_KEY)
    assert records[0]["c"] == r.report.entities


@pytest.mark.neo4j
def test_train_text_command(neo4j_catalog: Neo4jStore, neo4j_server: server.ServerInfo,
                            monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NEO4J_URI", neo4j_server.uri)
    n = neo4j_catalog.counts().total_nodes
    assert cli_main(["train", "text"]) == 0
    assert f"{n:,} embedded, 0 already in the graph" in capsys.readouterr().out
    assert cli_main(["train", "text"]) == 0
    assert f"0 embedded, {n:,} already in the graph" in capsys.readouterr().out


class _Renamed:
    """The serving encoder under another name: what a new model looks like to the graph."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name + "+renamed"
        self.dim = inner.dim

    def encode(self, texts: Any) -> Any:
        return self.inner.encode(texts)


def _as_memory(store: GraphStore) -> MemoryStore:
    """A MemoryStore copy of the catalog, through the generic text path."""
    from graph.model import EntityRecord

    copy = MemoryStore()
    ents = list(store.iter_entities())
    rels = list(store.iter_relations())
    out: dict[str, list[Any]] = {e.id: [] for e in ents}
    for rel in rels:
        out[rel.src].append(rel)
    recs = [EntityRecord(e, tuple(out[e.id]), "copy") for e in ents]
    copy.write_nodes(recs)
    copy.write_relations(recs)
    return copy
