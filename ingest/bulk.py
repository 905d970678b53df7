"""First load of an empty local database with Neo4j's offline importer (`neo4j-admin import`).

Over Bolt, every node and edge is a transactional write (about 10-15k edges/s on 2 cores here).
For the first load into an empty database, the offline importer, which ships in the same jars,
writes the store files directly. It needs the server stopped, so `initial_load` stops it,
imports, and starts it again. Validation, reference resolution and content hashes are the same
as `ingest()` (it shares `prepare()`), and the graph ends equal to what `ingest()` writes; the
tests check that by content hash. Incremental feeds always go over Bolt.
"""

from __future__ import annotations

import csv
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from graph import server
from graph.memory_store import MemoryStore
from graph.model import EXTRA_PROPS, EntityRecord, Kind, RelType
from graph.neo4j_store import Neo4jStore
from ingest.pipeline import IngestReport, Progress, ingest, prepare

# Names and aliases can hold no control characters (the feed rejects them), so US is a safe
# array delimiter.
_ARRAY_DELIMITER: Final = "\x1f"
_NODE_HEADER: Final = ["id:ID", ":LABEL", "kind", "name", "aliases:string[]", "description",
                       "popularity:double", "duration_ms:long", "release_date", "language",
                       "publisher", "_hash"]
_REL_HEADER: Final = [":START_ID", ":END_ID", ":TYPE", "position:long", "weight:double",
                      "source"]


def _node_row(rec: EntityRecord) -> list[object]:
    e = rec.entity
    extra = [e.extra.get(k, "") for k in ("duration_ms", "release_date", "language",
                                          "publisher")]
    assert set(e.extra) <= set(EXTRA_PROPS)
    return [e.id, f"Entity{_ARRAY_DELIMITER}{e.kind.label}", e.kind.value, e.name,
            _ARRAY_DELIMITER.join(e.aliases), e.description, e.popularity, *extra,
            rec.content_hash]


def write_csv(records: Sequence[EntityRecord], folder: Path) -> tuple[list[Path], list[Path], int]:
    """The importer's input: one nodes file per kind, one relationships file per type.
    Empty cells are left out of the graph (`--ignore-empty-strings`), as Bolt ingest leaves out
    empty aliases and descriptions."""
    node_files: dict[Kind, Path] = {}
    rel_files: dict[RelType, Path] = {}
    n_rels = 0
    handles = {}
    try:
        for rec in records:
            kind = rec.entity.kind
            if kind not in node_files:
                node_files[kind] = folder / f"nodes-{kind.value}.csv"
                handles[kind.value] = node_files[kind].open("w", newline="", encoding="utf-8")
                csv.writer(handles[kind.value]).writerow(_NODE_HEADER)
            csv.writer(handles[kind.value]).writerow(_node_row(rec))
            for rel in rec.relations:
                if rel.type not in rel_files:
                    rel_files[rel.type] = folder / f"rels-{rel.type.value}.csv"
                    handles[rel.type.value] = rel_files[rel.type].open("w", newline="",
                                                                       encoding="utf-8")
                    csv.writer(handles[rel.type.value]).writerow(_REL_HEADER)
                p = rel.props
                csv.writer(handles[rel.type.value]).writerow(
                    [rel.src, rel.dst, rel.type.value, p.get("position", ""),
                     p.get("weight", ""), p.get("source", "")])
                n_rels += 1
    finally:
        for handle in handles.values():
            handle.close()
    return list(node_files.values()), list(rel_files.values()), n_rels


def import_records(home: Path, records: Sequence[EntityRecord]) -> int:
    """Replace the (stopped) local database in `home` with `records`; returns the edge count."""
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="import-", dir=home) as tmp:
        nodes, rels, n_rels = write_csv(records, Path(tmp))
        server.admin(home, [
            # The database name first: the file options take every word after them.
            "database", "import", "full", "neo4j", "--overwrite-destination=true",
            "--ignore-empty-strings=true", "--array-delimiter=U+001F",
            "--multiline-fields=true", f"--report-file={Path(tmp) / 'import.report'}",
            *(f"--nodes={p}" for p in nodes), *(f"--relationships={p}" for p in rels)])
    return n_rels


def initial_load(home: Path, port: int, sources: Sequence[str], *,
                 progress: Progress | None = None) -> IngestReport:
    """Load feeds into the local server of `home`: with the offline importer when its database
    is empty (stopping and restarting the server), else with an ordinary ingest."""
    started = time.perf_counter()
    info = server.status(home)
    if info is not None or (home / "data" / "databases" / "neo4j").exists():
        info = info or server.start(home, port)
        port = info.port  # restart where it was
        store = Neo4jStore.connect(info.uri)
        try:
            if store.counts().total_nodes > 0:
                store.apply_schema()
                return ingest(store, sources, progress=progress)
        finally:
            store.close()
        server.stop(home)
    report = IngestReport()
    plan = prepare(MemoryStore(), sources, report, progress)  # the database is empty
    report.relationships = import_records(home, plan.created)
    info = server.start(home, port)
    store = Neo4jStore.connect(info.uri)
    try:
        store.apply_schema()
        report.catalog_version = store.bump_catalog_version()
    finally:
        store.close()
    report.elapsed_s = time.perf_counter() - started
    return report
