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
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Final

from graph import server
from graph.model import Kind, RelType
from graph.neo4j_store import Neo4jStore
from graph.schema import SCHEMA_STATEMENTS
from ingest.pipeline import IngestReport, Progress, ingest, paused_gc, prepare
from ingest.records import EXTRA_FIELDS, REF_FIELDS, Item

# Names and aliases can hold no control characters (the feed rejects them), so US is a safe
# array delimiter.
_ARRAY_DELIMITER: Final = "\x1f"
_COMMON: Final = ("id:ID", "kind", "name", "aliases:string[]", "description", "popularity:double")
_EXTRA_TYPES: Final = {"duration_ms": "duration_ms:long", "release_date": "release_date",
                       "publisher": "publisher", "language": "language"}
_JAVA_OPTIONS: Final = "JDK_JAVA_OPTIONS"
INDEX_WAIT_S: Final = 3_600
_REL_PROPS: Final = {RelType.CONTAINS: ("position:long",),
                     RelType.RELATED_TO: ("weight:double", "source")}


class CsvFiles:
    """The importer's input: one nodes file per kind (labels given on the command line, only
    the columns the kind has) and one relationships file per type (type on the command line).
    Empty cells are left out of the graph (`--ignore-empty-strings`), as Bolt ingest leaves out
    empty aliases and descriptions. Files holding a line break inside a value are listed, so
    that only they are parsed in the importer's slower multi-line mode."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.nodes: dict[Kind, Path] = {}
        self.rels: dict[RelType, Path] = {}
        self.multiline: set[Path] = set()
        self.relationships = 0
        self._handles: list[IO[str]] = []
        self._node_out: dict[Kind, Any] = {}
        self._rel_out: dict[RelType, Any] = {}

    def _open(self, name: str, header: Sequence[str]) -> tuple[Path, Any]:
        path = self.folder / name
        handle = path.open("w", newline="", encoding="utf-8")
        self._handles.append(handle)
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(header)
        return path, out

    def write(self, items: Sequence[Item]) -> None:
        for item in items:
            kind = item.kind
            node_out = self._node_out.get(kind)
            if node_out is None:
                header = (*_COMMON, *(_EXTRA_TYPES[f] for f in EXTRA_FIELDS[kind]), "_hash")
                self.nodes[kind], node_out = self._open(f"nodes-{kind.value}.csv", header)
                self._node_out[kind] = node_out
            rec = item.rec
            node_out.writerow((rec.id, kind.value, rec.name, _ARRAY_DELIMITER.join(rec.aliases),
                               rec.description, rec.popularity,
                               *(getattr(rec, f) for f in EXTRA_FIELDS[kind]), item.hash))
            for g, dsts in enumerate(item.groups):
                if dsts:
                    self._write_rels(item, REF_FIELDS[kind][g][2], dsts)
            if b"\\" in item.raw:  # only an escape can put a line break in a value
                self._note_line_breaks(item)

    def _write_rels(self, item: Item, rel_type: RelType, dsts: list[str]) -> None:
        out = self._rel_out.get(rel_type)
        if out is None:
            header = (":START_ID", ":END_ID", *_REL_PROPS.get(rel_type, ()))
            self.rels[rel_type], out = self._open(f"rels-{rel_type.value}.csv", header)
            self._rel_out[rel_type] = out
        src = item.id
        if rel_type is RelType.CONTAINS:
            out.writerows([(src, d, pos) for pos, d in enumerate(dsts)])
        elif rel_type is RelType.RELATED_TO:
            out.writerows(zip([src] * len(dsts), dsts, item.weights, item.sources, strict=True))
        else:
            out.writerows([(src, d) for d in dsts])
        self.relationships += len(dsts)

    def _note_line_breaks(self, item: Item) -> None:
        rec = item.rec
        texts = [rec.id, rec.name, rec.description, *rec.aliases,
                 getattr(rec, "publisher", None) or ""]
        if _breaks(texts):
            self.multiline.add(self.nodes[item.kind])
        for g, dsts in enumerate(item.groups):
            rel_type = REF_FIELDS[item.kind][g][2]
            if dsts and _breaks([item.id, *dsts, *item.sources]):
                self.multiline.add(self.rels[rel_type])

    def close(self) -> None:
        for handle in self._handles:
            handle.close()


def _breaks(texts: Sequence[str]) -> bool:
    return any("\n" in t or "\r" in t for t in texts)


def write_csv(items: Sequence[Item], folder: Path) -> CsvFiles:
    files = CsvFiles(folder)
    try:
        files.write(items)
    finally:
        files.close()
    return files


def import_args(files: CsvFiles, report_file: Path) -> list[str]:
    """The `neo4j-admin database import full` arguments for `files`."""
    args = [
        # The database name first: the file options take every word after them.
        "database", "import", "full", "neo4j", "--overwrite-destination=true",
        "--ignore-empty-strings=true", "--array-delimiter=U+001F",
        f"--report-file={report_file}",
        *(f"--nodes=Entity:{kind.label}={path}" for kind, path in files.nodes.items()),
        *(f"--relationships={t.value}={path}" for t, path in files.rels.items())]
    if files.multiline:
        args[5:5] = ["--multiline-fields-format=v2",
                     "--multiline-fields=" + ",".join(sorted(map(str, files.multiline)))]
    return args


@contextmanager
def _importer_jvm() -> Iterator[None]:
    """JVM options for the one-shot importer: C1 only (`TieredStopAtLevel=1`). Its C2 compiles
    cost more than they return on a run this short: the real catalog's import took 19 s of CPU
    with them and 8 s without; at a million entities the two are even. Passed through the
    environment, which `java` reads, because `server.admin` builds the command line."""
    before = os.environ.get(_JAVA_OPTIONS)
    os.environ[_JAVA_OPTIONS] = " ".join(filter(None, (before, "-XX:TieredStopAtLevel=1")))
    try:
        yield
    finally:
        if before is None:
            del os.environ[_JAVA_OPTIONS]
        else:
            os.environ[_JAVA_OPTIONS] = before


def import_items(home: Path, items: Sequence[Item], report: IngestReport | None = None) -> int:
    """Replace the (stopped) local database in `home` with `items`; returns the edge count."""
    home.mkdir(parents=True, exist_ok=True)
    # neo4j-admin splits its file lists on commas: CSV files under a home whose path holds one
    # go to the system's temporary directory instead.
    where = home if "," not in str(home.resolve()) else None
    with tempfile.TemporaryDirectory(prefix="import-", dir=where) as tmp:
        started = time.perf_counter()
        with paused_gc():
            files = write_csv(items, Path(tmp))
        mid = time.perf_counter()
        with _importer_jvm():
            server.admin(home, import_args(files, Path(tmp) / "import.report"))
        if report is not None:
            report.stages["csv"] = mid - started
            report.stages["import"] = time.perf_counter() - mid
    return files.relationships


def create_schema(store: Neo4jStore, *, wait_for_indexes: bool,
                  report: IngestReport | None = None) -> None:
    """The schema of a freshly imported database. Creating the `id` constraint returns once its
    index is built: every later lookup and ingest needs it. The search indexes (full text,
    popularity, vectors) then populate in the server's background, as Neo4j does for any new
    index; at a million entities the full-text one takes longer than the whole import. Readers
    wait for them: `apply_schema` (the API at start, every ingest) awaits every index."""
    started = time.perf_counter()
    for statement in SCHEMA_STATEMENTS:
        store.driver.execute_query(statement, database_=store.database)
    mark = time.perf_counter()
    if wait_for_indexes:
        store.driver.execute_query("CALL db.awaitIndexes($s)", s=INDEX_WAIT_S,
                                   database_=store.database)
    if report is not None:
        report.stages["schema"] = mark - started
        if wait_for_indexes:
            report.stages["indexes"] = time.perf_counter() - mark


def initial_load(home: Path, port: int, sources: Sequence[str], *,
                 progress: Progress | None = None,
                 wait_for_indexes: bool = False) -> IngestReport:
    """Load feeds into the local server of `home`: with the offline importer when its database
    is empty (stopping and restarting the server), else with an ordinary ingest.

    After an import it returns once the graph is loaded and its `id` constraint online; with
    `wait_for_indexes`, only once the search indexes are online too (see `create_schema`)."""
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
    plan = prepare(None, sources, report, progress)  # the database is empty
    report.relationships = import_items(home, plan.created, report)
    mark = time.perf_counter()
    info = server.start(home, port)
    report.stages["start"] = time.perf_counter() - mark
    store = Neo4jStore.connect(info.uri)
    try:
        create_schema(store, wait_for_indexes=wait_for_indexes, report=report)
        report.catalog_version = store.bump_catalog_version()
    finally:
        store.close()
    report.elapsed_s = time.perf_counter() - started
    return report
