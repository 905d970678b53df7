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

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from graph.fingerprint import make_record
from graph.model import EntityRecord, Kind, Relation
from graph.store import Existing, GraphStore
from ingest.feed import Delete, FeedError, Upsert, decode
from ingest.reader import read_lines

BATCH_SIZE: Final = 5_000
LOOKUP_BATCH: Final = 20_000
# Parents before children keeps phase-1 batches small and readable; correctness does not need it.
KIND_ORDER: Final = (Kind.GENRE, Kind.ARTIST, Kind.ALBUM, Kind.SONG, Kind.PLAYLIST,
                     Kind.PODCAST, Kind.EPISODE)

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

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    @property
    def rate(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _Pending:
    op: Upsert | Delete
    source: str
    line: int
    raw: bytes

    def where(self) -> str:
        return f"line {self.line} of {self.source}"


def _snippet(raw: bytes | None) -> str:
    if raw is None:
        return ""
    return raw[:300].decode("utf-8", errors="replace")


def _read(sources: Sequence[str], report: IngestReport,
          progress: Progress | None) -> dict[str, _Pending]:
    pending: dict[str, _Pending] = {}
    for source in sources:
        for line in read_lines(source):
            report.records += 1
            if progress and report.records % 10_000 == 0:
                progress("validate", 10_000)
            if line.data is None:
                report.rejections.append(Rejection(
                    source, line.number, f"line is {line.length:,} bytes; the limit is "
                    f"{1 << 20:,}", ""))
                continue
            try:
                op = decode(line.data)
            except FeedError as exc:
                report.rejections.append(
                    Rejection(source, line.number, str(exc), _snippet(line.data)))
                continue
            key = op.id if isinstance(op, Delete) else op.entity.id
            if key in pending:
                report.superseded += 1
            pending[key] = _Pending(op, source, line.number, line.data)
    return pending


def _lookup(store: GraphStore, ids: Iterable[str]) -> dict[str, Existing]:
    wanted = sorted(set(ids))
    found: dict[str, Existing] = {}
    for i in range(0, len(wanted), LOOKUP_BATCH):
        found.update(store.existing(wanted[i:i + LOOKUP_BATCH]))
    return found


def _a(kind: Kind) -> str:
    return f"{'an' if kind.value[0] in 'aeiou' else 'a'} {kind.value}"


def _reason(p: _Pending, pending: dict[str, _Pending], existing: dict[str, Existing],
            rejected: dict[str, str]) -> str | None:
    """Why an upsert cannot land, or None when it can."""
    assert isinstance(p.op, Upsert)
    entity = p.op.entity
    held = existing.get(entity.id)
    if held is not None and held.kind is not entity.kind:
        return f"id {entity.id!r} is already {_a(held.kind)}; ids are unique across kinds"
    for ref in p.op.refs:
        target = pending.get(ref.dst)
        if target is not None:
            if ref.dst in rejected:
                return f"{ref.field}: {ref.dst!r} was rejected ({rejected[ref.dst]})"
            if isinstance(target.op, Delete):
                return f"{ref.field}: {ref.dst!r} is deleted by this feed ({target.where()})"
            kind = target.op.entity.kind
        elif ref.dst in existing:
            kind = existing[ref.dst].kind
        else:
            return f"{ref.field}: {ref.dst!r} is not in this feed or the catalog"
        if kind is not ref.kind:
            return f"{ref.field}: {ref.dst!r} is {_a(kind)}, expected {_a(ref.kind)}"
    return None


def _resolve(pending: dict[str, _Pending], existing: dict[str, Existing],
             report: IngestReport) -> list[EntityRecord]:
    rejected: dict[str, str] = {}  # id -> where, for the messages of records that point at it
    upserts = [p for p in pending.values() if isinstance(p.op, Upsert)]
    changed = True
    while changed:  # a rejection can orphan records that point at it: repeat until stable
        changed = False
        for p in upserts:
            assert isinstance(p.op, Upsert)
            if p.op.entity.id in rejected:
                continue
            reason = _reason(p, pending, existing, rejected)
            if reason is not None:
                rejected[p.op.entity.id] = p.where()
                if " is not in this feed" in reason:
                    report.unresolved_references += 1
                report.rejections.append(Rejection(p.source, p.line, reason, _snippet(p.raw)))
                changed = True
    records = []
    for p in upserts:
        assert isinstance(p.op, Upsert)
        if p.op.entity.id not in rejected:
            rels = [Relation(p.op.entity.id, r.type, r.dst, r.props) for r in p.op.refs]
            records.append(make_record(p.op.entity, rels))
    return records


def _batches(records: list[EntityRecord], size: int) -> Iterable[list[EntityRecord]]:
    order = {k: i for i, k in enumerate(KIND_ORDER)}
    records.sort(key=lambda r: (order[r.entity.kind], r.entity.id))
    for i in range(0, len(records), size):
        yield records[i:i + size]


@dataclass(frozen=True, slots=True)
class Plan:
    """What an ingest will write, once every record is validated and resolved."""

    created: list[EntityRecord]
    updated: list[EntityRecord]
    deletes: list[str]


def prepare(store: GraphStore, sources: Sequence[str], report: IngestReport,
            progress: Progress | None = None) -> Plan:
    """Read, validate and resolve the feeds against `store`; fill the report's counts and
    rejections; write nothing."""
    pending = _read(sources, report, progress)
    mentioned = set(pending)
    for p in pending.values():
        if isinstance(p.op, Upsert):
            mentioned.update(r.dst for r in p.op.refs)
    existing = _lookup(store, mentioned)
    records = _resolve(pending, existing, report)
    report.rejections.sort(key=lambda r: (sources.index(r.source), r.line))
    plan = Plan([], [], [k for k, p in pending.items()
                         if isinstance(p.op, Delete) and k in existing])
    for rec in records:
        held = existing.get(rec.entity.id)
        if held is None:
            plan.created.append(rec)
        elif held.content_hash != rec.content_hash:
            plan.updated.append(rec)
        else:
            report.unchanged += 1
    report.created, report.updated = len(plan.created), len(plan.updated)
    return plan


def _write(store: GraphStore, plan: Plan, report: IngestReport, batch_size: int,
           progress: Progress | None) -> None:
    for i in range(0, len(plan.deletes), batch_size):
        report.deleted += store.delete(plan.deletes[i:i + batch_size])
    for fresh, records in ((True, plan.created), (False, plan.updated)):
        for batch in _batches(records, batch_size):
            store.write_nodes(batch, fresh=fresh)
            if progress:
                progress("nodes", len(batch))
    for fresh, records in ((True, plan.created), (False, plan.updated)):
        for batch in _batches(records, batch_size):
            report.relationships += store.write_relations(batch, fresh=fresh)
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
