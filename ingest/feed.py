"""The catalog feed format: decoding and validating one JSON Lines record at a time."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta, Struct

from graph.model import Entity, Kind, PropValue, RelType

MAX_LINE_BYTES: Final = 1 << 20  # 1 MiB: a catalog record is a few hundred bytes
MAX_REFS: Final = 10_000  # songs in one playlist, related artists, ...

_NO_CONTROL: Final = r"^[^\x00-\x1f\x7f]*$"
_ID_PATTERN: Final = r"^[^\s\x00-\x1f\x7f]+$"
DATE_PATTERN: Final = r"^\d{4}(-\d{2}(-\d{2})?)?$"
LANGUAGE_PATTERN: Final = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$"
Id = Annotated[str, Meta(min_length=1, max_length=200, pattern=_ID_PATTERN)]
Name = Annotated[str, Meta(min_length=1, max_length=500, pattern=_NO_CONTROL)]
ShortText = Annotated[str, Meta(min_length=1, max_length=500, pattern=_NO_CONTROL)]
Description = Annotated[str, Meta(max_length=10_000)]
Popularity = Annotated[float, Meta(ge=0.0, le=1.0)]
Duration = Annotated[int, Meta(ge=0, le=100 * 3600 * 1000)]
Date = Annotated[str, Meta(pattern=DATE_PATTERN)]
Language = Annotated[str, Meta(min_length=2, max_length=35, pattern=LANGUAGE_PATTERN)]
Refs = Annotated[list[Id], Meta(max_length=MAX_REFS)]


class RelatedRef(Struct, forbid_unknown_fields=True):
    id: Id
    weight: Annotated[float, Meta(ge=0.0, le=1.0)] = 1.0
    source: ShortText = "feed"


class _Base(Struct, forbid_unknown_fields=True, tag_field="kind"):
    id: Id
    name: Name
    aliases: Annotated[list[Name], Meta(max_length=50)] = []
    description: Description = ""
    popularity: Popularity = 0.0
    op: Literal["upsert"] = "upsert"


class _Tagged(_Base):
    genres: Refs = []


class ArtistRec(_Tagged, tag="artist"):
    related: Annotated[list[Id | RelatedRef], Meta(max_length=MAX_REFS)] = []


class AlbumRec(_Tagged, tag="album"):
    artists: Refs = []
    release_date: Date | None = None


class SongRec(_Tagged, tag="song"):
    artists: Refs = []
    album: Id | None = None
    duration_ms: Duration | None = None
    release_date: Date | None = None


class PlaylistRec(_Tagged, tag="playlist"):
    songs: Refs = []


class PodcastRec(_Tagged, tag="podcast"):
    publisher: ShortText | None = None
    language: Language | None = None


class EpisodeRec(_Tagged, tag="episode"):
    podcast: Id | None = None
    duration_ms: Duration | None = None
    release_date: Date | None = None


class GenreRec(_Base, tag="genre"):
    parent: Id | None = None


class DeleteRec(Struct, forbid_unknown_fields=True):
    op: Literal["delete"]
    id: Id


UpsertRec = ArtistRec | AlbumRec | SongRec | PlaylistRec | PodcastRec | EpisodeRec | GenreRec


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference from a record to another entity, which becomes one outgoing edge."""

    field: str  # where it was written, for messages: "artists[2]"
    type: RelType
    dst: str
    kind: Kind  # the kind the target must have
    props: dict[str, PropValue]


@dataclass(frozen=True, slots=True)
class Upsert:
    entity: Entity
    refs: tuple[Ref, ...]


@dataclass(frozen=True, slots=True)
class Delete:
    id: str


class FeedError(ValueError):
    """One record's reason for rejection."""


_decoder = msgspec.json.Decoder()

_PATTERN_RULES: Final = {
    _ID_PATTERN: "must be non-empty, without whitespace or control characters",
    _NO_CONTROL: "must not contain control characters",
    DATE_PATTERN: "must be a date as YYYY, YYYY-MM or YYYY-MM-DD",
    LANGUAGE_PATTERN: "must be a language tag such as 'en' or 'pt-BR'",
}
_AT_FIELD = re.compile(r"^(?P<what>.*) - at `\$\.(?P<field>.+)`$")


def _friendly(message: str) -> str:
    """Turn msgspec's "Expected ... - at `$.field`" into "field: ..." with plain wording."""
    m = _AT_FIELD.match(message)
    if m is None:
        m2 = re.match(r"Object (contains unknown|missing required) field `(.+)`", message)
        if m2:
            return f"{'unknown' if 'unknown' in m2[1] else 'missing required'} field '{m2[2]}'"
        return message
    what, field = m["what"], m["field"]
    for pattern, rule in _PATTERN_RULES.items():
        if repr(pattern) in what:
            return f"{field}: {rule}"
    return f"{field}: {what[0].lower()}{what[1:]}"


_fast = msgspec.json.Decoder(UpsertRec)


def decode(raw: bytes) -> Upsert | Delete:
    """Decode and validate one feed line; raise FeedError with the reason.

    The reference for every verdict; the ingest itself uses the faster `records.parse`, which
    gives the same verdicts and reasons (tests compare the two)."""
    rec = decode_struct(raw)
    return rec if isinstance(rec, Delete) else _to_upsert(rec)


def decode_struct(raw: bytes) -> UpsertRec | Delete:
    """The schema half of `decode`: the validated struct, before the checks of `_to_upsert`."""
    try:
        rec: UpsertRec = _fast.decode(raw)  # the common case, in one pass of C
        return rec
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        pass  # deletes and bad records: the slow path below words the reason
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FeedError(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        obj = _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise FeedError(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise FeedError(f"a record must be a JSON object, got {type(obj).__name__}")
    try:
        if obj.get("op") == "delete":
            return Delete(msgspec.convert(obj, DeleteRec).id)
        if "kind" not in obj:
            raise FeedError("missing required field 'kind'")
        if not isinstance(obj["kind"], str) or obj["kind"] not in Kind._value2member_map_:
            raise FeedError(f"unknown kind {obj['kind']!r}; expected one of "
                            f"{', '.join(k.value for k in Kind)}")
        rec = msgspec.convert(obj, UpsertRec)
    except msgspec.ValidationError as exc:
        raise FeedError(_friendly(str(exc))) from None
    return rec


def check_date(field: str, value: str | None) -> None:
    if value is None:
        return
    parts = [int(p) for p in value.split("-")]
    try:
        dt.date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except ValueError:
        raise FeedError(f"{field}: {value!r} is not a calendar date") from None


def _refs(field: str, ids: list[str], rel: RelType, kind: Kind) -> list[Ref]:
    seen: set[str] = set()
    out = []
    for i, dst in enumerate(ids):
        if dst not in seen:  # a repeated reference is one edge
            seen.add(dst)
            out.append(Ref(f"{field}[{i}]", rel, dst, kind, {}))
    return out


def _to_upsert(rec: UpsertRec) -> Upsert:
    kind = Kind(str(type(rec).__struct_config__.tag))
    refs: list[Ref] = []
    extra: dict[str, PropValue] = {}
    if not isinstance(rec, GenreRec):
        refs += _refs("genres", rec.genres, RelType.IN_GENRE, Kind.GENRE)
    match rec:
        case ArtistRec():
            refs += _related(rec)
        case AlbumRec():
            refs += _refs("artists", rec.artists, RelType.BY, Kind.ARTIST)
            check_date("release_date", rec.release_date)
            extra = _present(release_date=rec.release_date)
        case SongRec():
            refs += _refs("artists", rec.artists, RelType.PERFORMED_BY, Kind.ARTIST)
            if rec.album is not None:
                refs.append(Ref("album", RelType.ON_ALBUM, rec.album, Kind.ALBUM, {}))
            check_date("release_date", rec.release_date)
            extra = _present(duration_ms=rec.duration_ms, release_date=rec.release_date)
        case PlaylistRec():
            songs = _refs("songs", rec.songs, RelType.CONTAINS, Kind.SONG)
            refs += [Ref(r.field, r.type, r.dst, r.kind, {"position": pos})
                     for pos, r in enumerate(songs)]
        case PodcastRec():
            extra = _present(publisher=rec.publisher, language=rec.language)
        case EpisodeRec():
            if rec.podcast is not None:
                refs.append(Ref("podcast", RelType.EPISODE_OF, rec.podcast, Kind.PODCAST, {}))
            check_date("release_date", rec.release_date)
            extra = _present(duration_ms=rec.duration_ms, release_date=rec.release_date)
        case GenreRec():
            if rec.parent is not None:
                refs.append(Ref("parent", RelType.SUBGENRE_OF, rec.parent, Kind.GENRE, {}))
    for ref in refs:
        if ref.dst == rec.id:
            raise FeedError(f"{ref.field}: a record cannot refer to itself")
    entity = Entity(id=rec.id, kind=kind, name=rec.name, aliases=tuple(rec.aliases),
                    description=rec.description, popularity=rec.popularity, extra=extra)
    return Upsert(entity, tuple(refs))


def _related(rec: ArtistRec) -> list[Ref]:
    seen: set[str] = set()
    out = []
    for i, item in enumerate(rec.related):
        ref = RelatedRef(item) if isinstance(item, str) else item
        if ref.id not in seen:
            seen.add(ref.id)
            out.append(Ref(f"related[{i}]", RelType.RELATED_TO, ref.id, Kind.ARTIST,
                           {"weight": ref.weight, "source": ref.source}))
    return out


def _present(**values: Any) -> dict[str, PropValue]:
    return {k: v for k, v in values.items() if v is not None}
