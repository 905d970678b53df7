"""Feed ingest: validate every record, resolve references, then write the changes in batches.

The order of work, and why:
1. Read and validate every line. Within one run the last record for an id wins (feeds are
   change logs); the earlier ones are counted as superseded.
2. Look up every id the feed mentions in the store (kind and content hash).
3. Resolve references. A record whose reference points nowhere, at the wrong kind, or at a
   rejected record is rejected itself, repeatedly until nothing changes, so no edge is ever
   silently dropped.
4. Write: deletes; then nodes (phase 1, marked half written); then each node's outgoing edges
   with its content hash (phase 2). A record whose hash the store already holds is skipped, so a
   second run changes nothing, and a run cut short by a crash is finished by running it again.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final

from graph.model import Kind
from graph.store import Existing, GraphStore
from ingest.feed import MAX_LINE_BYTES, Delete, FeedError
from ingest.reader import read_blocks
from ingest.records import REF_FIELDS, Item, content_hash, parse, to_record

BATCH_SIZE: Final = 5_000
LOOKUP_BATCH: Final = 20_000
# Parents before children keeps phase-1 batches small and readable; correctness does not need it.
KIND_ORDER: Final = (Kind.GENRE, Kind.ARTIST, Kind.ALBUM, Kind.SONG, Kind.PLAYLIST,
                     Kind.PODCAST, Kind.EPISODE)
_WANTS: Final = {kind: tuple(want for _, _, _, want in fields)
                 for kind, fields in REF_FIELDS.items()}
_DELETED: Final = object()  # in `kind_of`: the id is deleted by this feed
_REJECTED: Final = object()  # in `kind_of`: the record of this id was rejected

Progress = Callable[[str, int], None]  # (stage, records done since last call)


@dataclass(frozen=True, slots=True)
class Rejection:
    source: str
    line: int
    reason: str
    record: str  # the start of the raw line, for the reject file

    def as_dict(self) -> dict[str, object]:
        return {"source": self.source, "line": self.line, "reason": self.reason,
                "record": self.record}


@dataclass(slots=True)
class IngestReport:
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    superseded: int = 0
    relationships: int = 0
    unresolved_references: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    elapsed_s: float = 0.0
    catalog_version: int | None = None
    dry_run: bool = False
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage, for benchmarks

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    @property
    def rate(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _Deletion:
    id: str
    source: str
    line: int

    def where(self) -> str:
        return f"line {self.line} of {self.source}"


Pending = dict[str, Item | _Deletion]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Python's cyclic garbage collector off for a bulk step. Reading a feed allocates millions
    of objects that all live until the end, and each collection walks all of them: with it on,
    validation ran 3-4 times slower. Afterwards the step's survivors are frozen (moved out of
    the collector's reach, still freed by reference counting), else the first collection after
    it would walk them all once more. Ingest makes no reference cycles, so nothing leaks."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _snippet(raw: bytes | None) -> str:
    if raw is None:
        return ""
    return raw[:300].decode("utf-8", errors="replace")


def _read(sources: Sequence[str], report: IngestReport,
          progress: Progress | None) -> Pending:
    pending: Pending = {}
    rejections = report.rejections
    for source in sources:
        for block in read_blocks(source):
            report.records += len(block)
            for number, data, length in block:
                if data is None:
                    rejections.append(Rejection(
                        source, number, f"line is {length:,} bytes; the limit is "
                        f"{MAX_LINE_BYTES:,}", ""))
                    continue
                try:
                    op = parse(data, source, number)
                except FeedError as exc:
                    rejections.append(Rejection(source, number, str(exc), _snippet(data)))
                    continue
                if isinstance(op, Delete):
                    entry: Item | _Deletion = _Deletion(op.id, source, number)
                else:
                    entry = op
                if entry.id in pending:
                    report.superseded += 1
                pending[entry.id] = entry
            if progress:
                progress("validate", len(block))
    return pending


def _lookup(store: GraphStore, ids: Iterable[str]) -> dict[str, Existing]:
    wanted = sorted(set(ids))
    found: dict[str, Existing] = {}
    for i in range(0, len(wanted), LOOKUP_BATCH):
        found.update(store.existing(wanted[i:i + LOOKUP_BATCH]))
    return found


def _a(kind: Kind) -> str:
    return f"{'an' if kind.value[0] in 'aeiou' else 'a'} {kind.value}"


def _reason(item: Item, pending: Pending, existing: dict[str, Existing],
            rejected: dict[str, str]) -> str | None:
    """Why an upsert cannot land, or None when it can."""
    held = existing.get(item.id)
    if held is not None and held.kind is not item.kind:
        return f"id {item.id!r} is already {_a(held.kind)}; ids are unique across kinds"
    for name, dst, want in item.refs():
        target = pending.get(dst)
        if target is not None:
            if dst in rejected:
                return f"{name}: {dst!r} was rejected ({rejected[dst]})"
            if isinstance(target, _Deletion):
                return f"{name}: {dst!r} is deleted by this feed ({target.where()})"
            kind = target.kind
        elif dst in existing:
            kind = existing[dst].kind
        else:
            return f"{name}: {dst!r} is not in this feed or the catalog"
        if kind is not want:
            return f"{name}: {dst!r} is {_a(kind)}, expected {_a(want)}"
    return None


def _lands(item: Item, get: Callable[[str], object]) -> bool:
    """Whether every reference of `item` lands on an entity of the kind it wants."""
    for want, dsts in zip(_WANTS[item.kind], item.groups, strict=True):
        # list.count compares by identity first: one pass in C per field.
        if dsts and list(map(get, dsts)).count(want) != len(dsts):
            return False
    return True


def _resolve(pending: Pending, existing: dict[str, Existing],
             report: IngestReport) -> list[Item]:
    """The upserts that can land. `kind_of` answers the common case (every reference lands on
    the kind it wants) with one dict lookup per reference; `_reason` words the rest."""
    kind_of: dict[str, object] = {k: e.kind for k, e in existing.items()}
    kind_of.update((k, _DELETED if isinstance(p, _Deletion) else p.kind)
                   for k, p in pending.items())
    get = kind_of.get
    rejected: dict[str, str] = {}  # id -> where, for the messages of records that point at it
    upserts = [p for p in pending.values() if isinstance(p, Item)]
    changed = True
    while changed:  # a rejection can orphan records that point at it: repeat until stable
        changed = False
        for item in upserts:
            if get(item.id) is _REJECTED:
                continue
            held = existing.get(item.id) if existing else None
            if (held is None or held.kind is item.kind) and _lands(item, get):
                continue
            reason = _reason(item, pending, existing, rejected)
            assert reason is not None
            rejected[item.id] = item.where()
            kind_of[item.id] = _REJECTED
            if " is not in this feed" in reason:
                report.unresolved_references += 1
            report.rejections.append(Rejection(item.source, item.line, reason,
                                               _snippet(item.raw)))
            changed = True
    return [item for item in upserts if get(item.id) is not _REJECTED]


def _batches(items: list[Item], size: int) -> Iterable[list[Item]]:
    order = {k: i for i, k in enumerate(KIND_ORDER)}
    items.sort(key=lambda r: (order[r.kind], r.id))
    for i in range(0, len(items), size):
        yield items[i:i + size]


@dataclass(frozen=True, slots=True)
class Plan:
    """What an ingest will write, once every record is validated, resolved and hashed."""

    created: list[Item]
    updated: list[Item]
    deletes: list[str]


def prepare(store: GraphStore | None, sources: Sequence[str], report: IngestReport,
            progress: Progress | None = None) -> Plan:
    """Read, validate and resolve the feeds against `store` (None: an empty database, nothing to
    look up); fill the report's counts and rejections; write nothing."""
    with paused_gc():
        return _prepare(store, sources, report, progress)


def _prepare(store: GraphStore | None, sources: Sequence[str], report: IngestReport,
             progress: Progress | None) -> Plan:
    started = time.perf_counter()
    pending = _read(sources, report, progress)
    report.stages["validate"] = time.perf_counter() - started
    existing: dict[str, Existing] = {}
    # An empty graph (a first load over Bolt) holds nothing to look up.
    if store is not None and store.counts().total_nodes > 0:
        # A reference to a record of this feed is resolved within the feed (see `_reason`):
        # only the feed's own ids (kind and hash) and references beyond it need the store.
        mentioned = list(pending)
        for p in pending.values():
            if isinstance(p, Item):
                mentioned += [d for g in p.groups for d in g if d not in pending]
        existing = _lookup(store, mentioned)
    items = _resolve(pending, existing, report)
    report.rejections.sort(key=lambda r: (sources.index(r.source), r.line))
    plan = Plan([], [], [k for k, p in pending.items()
                         if isinstance(p, _Deletion) and k in existing])
    for item in items:
        item.hash = content_hash(item)
        held = existing.get(item.id)
        if held is None:
            plan.created.append(item)
        elif held.content_hash != item.hash:
            plan.updated.append(item)
        else:
            report.unchanged += 1
    report.created, report.updated = len(plan.created), len(plan.updated)
    report.stages["resolve"] = time.perf_counter() - started - report.stages["validate"]
    return plan


def _write(store: GraphStore, plan: Plan, report: IngestReport, batch_size: int,
           progress: Progress | None) -> None:
    """One writer. Two concurrent ones were measured slower on 2 cores (82 s against 116 s
    for the 100k feed): the server is CPU-bound either way, and writers that add edges to the
    same genre or artist wait on its lock and deadlock, which costs retries."""
    for i in range(0, len(plan.deletes), batch_size):
        report.deleted += store.delete(plan.deletes[i:i + batch_size])
    # Records are built per batch, twice (nodes, then edges), rather than held for the whole
    # feed: a million of them would take about a gigabyte.
    for fresh, items in ((True, plan.created), (False, plan.updated)):
        for batch in _batches(items, batch_size):
            store.write_nodes([to_record(i) for i in batch], fresh=fresh)
            if progress:
                progress("nodes", len(batch))
    for fresh, items in ((True, plan.created), (False, plan.updated)):
        for batch in _batches(items, batch_size):
            report.relationships += store.write_relations([to_record(i) for i in batch],
                                                          fresh=fresh)
            if progress:
                progress("relationships", len(batch))
    if plan.created or plan.updated or report.deleted:
        report.catalog_version = store.bump_catalog_version()


def ingest(store: GraphStore, sources: Sequence[str], *, batch_size: int = BATCH_SIZE,
           dry_run: bool = False, progress: Progress | None = None) -> IngestReport:
    """Ingest feed files (or "-" for standard input) into `store`; never raises on bad records."""
    started = time.perf_counter()
    report = IngestReport(dry_run=dry_run)
    plan = prepare(store, sources, report, progress)
    if dry_run:
        report.deleted = len(plan.deletes)
    else:
        _write(store, plan, report, batch_size, progress)
    report.elapsed_s = time.perf_counter() - started
    return report
