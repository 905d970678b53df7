"""The ingest fast path: feed lines to lean validated records, with `feed.decode`'s verdicts.

`feed.decode` is the reference: its msgspec schema carries regex patterns (ids, names, dates,
language tags), and those patterns cost about half of msgspec's decode time. Here each line is
decoded with the same schema minus the patterns (`lax.py`, kept equal to feed.py's by a test),
then checked cheaply for whatever a pattern could object to. Only a line that fails either check
is decoded again by the strict schema, which words the reason exactly as before; so every line
gets the same verdict and the same reason as `feed.decode` gives it (tests compare the two).

Why the cheap check is enough: JSON cannot carry a raw control character inside a string, so a
line without a backslash and without DEL cannot put one in any decoded string; then the id
pattern can only object to Unicode whitespace, which a scan of the record's ids finds; dates and
language tags are matched with the very same regexes (memoised, since a catalog repeats them).

A kept record is an `Item`: the decoded struct, its kind, and its references grouped per field
(deduplicated, in the order `feed.decode` lists its `refs`), from which both writers (Bolt and
the offline importer's CSV) and the content hash are made without intermediate objects.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec
from msgspec import Struct

from graph.model import Entity, EntityRecord, Kind, PropValue, Relation, RelType
from ingest import feed
from ingest.feed import Delete, FeedError
from ingest.lax import SCHEMA_PAIRS, LaxRec, LaxRelatedRef

AnyRec = LaxRec | feed.UpsertRec
_lax = msgspec.json.Decoder(LaxRec)
_KIND_OF_TYPE: Final[dict[type, Kind]] = {
    cls: Kind(str(cls.__struct_config__.tag)) for pair in SCHEMA_PAIRS[:-1] for cls in pair}

# Per kind, the fields that reference other entities, in the order `feed.decode` lists refs:
# (field, holds a list, relationship type, the kind the target must have).
RefField = tuple[str, bool, RelType, Kind]
_GENRES: Final[RefField] = ("genres", True, RelType.IN_GENRE, Kind.GENRE)
REF_FIELDS: Final[dict[Kind, tuple[RefField, ...]]] = {
    Kind.ARTIST: (_GENRES, ("related", True, RelType.RELATED_TO, Kind.ARTIST)),
    Kind.ALBUM: (_GENRES, ("artists", True, RelType.BY, Kind.ARTIST)),
    Kind.SONG: (_GENRES, ("artists", True, RelType.PERFORMED_BY, Kind.ARTIST),
                ("album", False, RelType.ON_ALBUM, Kind.ALBUM)),
    Kind.PLAYLIST: (_GENRES, ("songs", True, RelType.CONTAINS, Kind.SONG)),
    Kind.PODCAST: (_GENRES,),
    Kind.EPISODE: (_GENRES, ("podcast", False, RelType.EPISODE_OF, Kind.PODCAST)),
    Kind.GENRE: (("parent", False, RelType.SUBGENRE_OF, Kind.GENRE),),
}
# The kind-specific properties each kind carries, in `feed.decode`'s order.
EXTRA_FIELDS: Final[dict[Kind, tuple[str, ...]]] = {
    Kind.ALBUM: ("release_date",), Kind.SONG: ("duration_ms", "release_date"),
    Kind.PODCAST: ("publisher", "language"), Kind.EPISODE: ("duration_ms", "release_date"),
    Kind.ARTIST: (), Kind.PLAYLIST: (), Kind.GENRE: (),
}

def _uniq(values: list[str]) -> list[str]:
    return values if len(values) < 2 else list(dict.fromkeys(values))  # a repeat is one edge


def _one(value: str | None) -> list[str]:
    return [] if value is None else [value]


# The target ids per field of REF_FIELDS, deduplicated, for every kind but artist (whose related
# entries carry properties; see `_related`). Written out per kind: it runs for every record.
_GROUPS: Final[dict[Kind, Callable[[Any], tuple[list[str], ...]]]] = {
    Kind.ALBUM: lambda r: (_uniq(r.genres), _uniq(r.artists)),
    Kind.SONG: lambda r: (_uniq(r.genres), _uniq(r.artists), _one(r.album)),
    Kind.PLAYLIST: lambda r: (_uniq(r.genres), _uniq(r.songs)),
    Kind.PODCAST: lambda r: (_uniq(r.genres),),
    Kind.EPISODE: lambda r: (_uniq(r.genres), _one(r.podcast)),
    Kind.GENRE: lambda r: (_one(r.parent),),
}
# Relationship type names per group (enum attribute access is slow in the hot loops).
_TYPE_NAMES: Final = {k: tuple(t.value for _, _, t, _ in f) for k, f in REF_FIELDS.items()}
_DATED: Final = frozenset({Kind.ALBUM, Kind.SONG, Kind.EPISODE})


_BAD_ID_CHAR: Final = re.compile(r"[\s\x00-\x1f\x7f]")
_DATE_RE: Final = re.compile(feed.DATE_PATTERN)
_LANGUAGE_RE: Final = re.compile(feed.LANGUAGE_PATTERN)
_MEMO_LIMIT: Final = 100_000
_date_memo: dict[str, str | None] = {}  # date -> "" (pattern fails), a reason, or None (fine)
_lang_memo: dict[str, bool] = {}


class Item:
    """One validated upsert: the struct, its kind, and its references per field.

    `groups[i]` holds the (deduplicated) target ids of `REF_FIELDS[kind][i]`; `weights` and
    `sources` hold the RELATED_TO properties of an artist, parallel to its related ids.
    """

    __slots__ = ("groups", "hash", "id", "kind", "line", "raw", "rec", "source", "sources",
                 "weights")

    def __init__(self, rec: AnyRec, kind: Kind, groups: tuple[list[str], ...],
                 source: str, line: int, raw: bytes) -> None:
        self.rec = rec
        self.id = rec.id
        self.kind = kind
        self.groups = groups
        self.weights: Sequence[float] = ()
        self.sources: Sequence[str] = ()
        self.source = source
        self.line = line
        self.raw = raw
        self.hash = ""

    def where(self) -> str:
        return f"line {self.line} of {self.source}"

    def refs(self) -> list[tuple[str, str, Kind]]:
        """(field as `feed.decode` names it, target id, expected kind), in order; for messages."""
        out = []
        for (name, is_list, _, want), dsts in zip(REF_FIELDS[self.kind], self.groups,
                                                   strict=True):
            for dst in dsts:
                out.append((f"{name}[{_first_index(self.rec, name, dst)}]" if is_list else name,
                            dst, want))
        return out

    def relation_count(self) -> int:
        return sum(len(g) for g in self.groups)


def _first_index(rec: AnyRec, name: str, dst: str) -> int:
    values = getattr(rec, name)
    if name == "related":
        return next(i for i, v in enumerate(values) if (v if isinstance(v, str) else v.id) == dst)
    return int(values.index(dst))


def parse(raw: bytes, source: str, line: int) -> Item | Delete:
    """Decode and validate one feed line; raise FeedError with `feed.decode`'s reason."""
    try:
        rec: LaxRec = _lax.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return _strict(raw, source, line)  # deletes and bad records
    if b"\\" in raw or b"\x7f" in raw:
        return _strict(raw, source, line)
    item = _lower(rec, source, line, raw)
    if _suspicious(item):
        return _strict(raw, source, line)
    _check(item)
    return item


def _strict(raw: bytes, source: str, line: int) -> Item | Delete:
    rec = feed.decode_struct(raw)
    if isinstance(rec, Delete):
        return rec
    item = _lower(rec, source, line, raw)
    _check(item)
    return item


def _suspicious(item: Item) -> bool:
    """Whether a pattern of the strict schema might reject this (backslash-free) record."""
    ids = item.id + "".join(map("".join, item.groups))
    if (" " in ids) if ids.isascii() else _BAD_ID_CHAR.search(ids) is not None:
        return True
    rec = item.rec
    if item.kind in _DATED:
        date = rec.release_date  # type: ignore[union-attr]
        if date is not None and _date_verdict(date) == "":
            return True
    elif item.kind is Kind.PODCAST:
        language = rec.language  # type: ignore[union-attr]
        return language is not None and not _language_ok(language)
    return False


def _date_verdict(value: str) -> str | None:
    """"" when the date pattern rejects `value`, a reason when it is no calendar date, else
    None. The pattern is matched with `re.search` semantics, as msgspec matches it."""
    if value in _date_memo:
        return _date_memo[value]
    verdict: str | None = ""
    if _DATE_RE.search(value) is not None:
        try:
            feed.check_date("release_date", value)
            verdict = None
        except FeedError as exc:
            verdict = str(exc)
    if len(_date_memo) > _MEMO_LIMIT:
        _date_memo.clear()
    _date_memo[value] = verdict
    return verdict


def _language_ok(value: str) -> bool:
    ok = _lang_memo.get(value)
    if ok is None:
        ok = _LANGUAGE_RE.search(value) is not None
        if len(_lang_memo) > _MEMO_LIMIT:
            _lang_memo.clear()
        _lang_memo[value] = ok
    return ok


def _lower(rec: AnyRec, source: str, line: int, raw: bytes) -> Item:
    kind = _KIND_OF_TYPE[type(rec)]
    if kind is Kind.ARTIST:
        ids, weights, sources = _related(rec.related)  # type: ignore[union-attr]
        item = Item(rec, kind, (_uniq(rec.genres), ids), source, line, raw)  # type: ignore[union-attr]
        item.weights, item.sources = weights, sources
        return item
    return Item(rec, kind, _GROUPS[kind](rec), source, line, raw)


def _check(item: Item) -> None:
    """`feed.decode`'s two checks beyond the schema, in its order: calendar dates, then
    references to the record itself."""
    if item.kind in _DATED:
        date = item.rec.release_date  # type: ignore[union-attr]
        if date is not None:
            reason = _date_verdict(date)
            if reason:
                raise FeedError(reason)
    rid = item.id
    for g in item.groups:
        if rid in g:
            field = next(f for f, dst, _ in item.refs() if dst == rid)
            raise FeedError(f"{field}: a record cannot refer to itself")


def _related(values: Sequence[str | LaxRelatedRef | feed.RelatedRef]
             ) -> tuple[list[str], list[float], list[str]]:
    ids: list[str] = []
    weights: list[float] = []
    sources: list[str] = []
    seen: set[str] = set()
    for v in values:
        rid, weight, src = (v, 1.0, "feed") if isinstance(v, str) else (v.id, v.weight, v.source)
        if rid not in seen:
            seen.add(rid)
            ids.append(rid)
            weights.append(weight)
            sources.append(src)
    return ids, weights, sources


# -- content hash and records -------------------------------------------------------------

class _HashEntity(Struct):
    """`graph.model.Entity`'s fields, so that the hash bytes equal `fingerprint.record_hash`."""

    aliases: list[str]
    description: str
    extra: dict[str, PropValue]
    id: str
    kind: str
    name: str
    popularity: float


class _HashRelation(Struct):
    dst: str
    props: dict[str, PropValue]
    src: str
    type: str


# Fields above and every dict below are in sorted order, so the plain encoder writes exactly
# what `fingerprint`'s sorting encoder writes, a little faster.
_encoder = msgspec.json.Encoder()
_EXTRA_SORTED: Final = {k: tuple(sorted(v)) for k, v in EXTRA_FIELDS.items()}
_NO_PROPS: Final[dict[str, PropValue]] = {}


def extra_props(item: Item) -> dict[str, PropValue]:
    rec = item.rec
    out: dict[str, PropValue] = {}
    for name in EXTRA_FIELDS[item.kind]:
        value = getattr(rec, name)
        if value is not None:
            out[name] = value
    return out


def rel_props(item: Item, group: int, position: int) -> dict[str, PropValue]:
    rel_type = REF_FIELDS[item.kind][group][2]
    if rel_type is RelType.CONTAINS:
        return {"position": position}
    if rel_type is RelType.RELATED_TO:
        return {"weight": item.weights[position], "source": item.sources[position]}
    return _NO_PROPS


def content_hash(item: Item) -> str:
    """The same value as `fingerprint.make_record(...)` gives for the record's Entity and
    Relations (a test checks it), so that hashes stored by earlier ingests still match."""
    rec = item.rec
    rid = rec.id
    kind = item.kind
    rels: list[_HashRelation] = []
    for type_name, dsts in zip(_TYPE_NAMES[kind], item.groups, strict=True):
        if not dsts:
            continue
        if type_name == "CONTAINS":
            rels += [_HashRelation(d, {"position": i}, rid, type_name) for i, d in enumerate(dsts)]
        elif type_name == "RELATED_TO":
            rels += [_HashRelation(d, {"source": s, "weight": w}, rid, type_name)
                     for d, w, s in zip(dsts, item.weights, item.sources, strict=True)]
        else:
            rels += [_HashRelation(d, _NO_PROPS, rid, type_name) for d in dsts]
    extra = {}
    for name in _EXTRA_SORTED[kind]:
        value = getattr(rec, name)
        if value is not None:
            extra[name] = value
    entity = _HashEntity(rec.aliases, rec.description, extra, rid, kind.value, rec.name,
                         rec.popularity)
    return hashlib.blake2b(_encoder.encode((entity, rels)), digest_size=16).hexdigest()


def to_record(item: Item) -> EntityRecord:
    """The `EntityRecord` the stores write (built only for records that are written)."""
    rec = item.rec
    entity = Entity(id=rec.id, kind=item.kind, name=rec.name, aliases=tuple(rec.aliases),
                    description=rec.description, popularity=rec.popularity,
                    extra=extra_props(item))
    rels = []
    for g, ((_, _, rel_type, _), dsts) in enumerate(zip(REF_FIELDS[item.kind], item.groups,
                                                        strict=True)):
        for pos, dst in enumerate(dsts):
            rels.append(Relation(rec.id, rel_type, dst, dict(rel_props(item, g, pos))))
    return EntityRecord(entity, tuple(rels), item.hash or content_hash(item))
