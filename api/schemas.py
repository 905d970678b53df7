"""The API's request and response shapes (msgspec Structs: validated, and the OpenAPI schema).

The names `search_id`, `items`, `id`, `kind` and the feedback body's fields are a contract that
outside clients rely on: change them only with a new API version.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

KindName = Literal["song", "artist", "album", "playlist", "podcast", "episode", "genre"]
Action = Literal["click", "play", "like", "add", "skip"]
EntityId = Annotated[str, Meta(min_length=1, max_length=200)]


class RelatedItem(Struct, frozen=True):
    id: str
    kind: KindName
    name: str


class Provenance(Struct, frozen=True):
    source: str
    rank: int  # 0-based, in that source's list
    score: float  # native to the source
    reason: str  # matched alias, graph path, memory count, ...


class Item(Struct, frozen=True, omit_defaults=True):
    id: str
    kind: KindName
    name: str
    subtitle: str
    score: float
    sources: list[str]
    related: list[RelatedItem] = []
    related_label: str = ""
    provenance: list[Provenance] | None = None  # with debug=true
    other_versions: int = 0  # versions of this work in the catalog besides this one


class Interpretation(Struct, frozen=True, omit_defaults=True):
    kinds: list[str]
    confidence: float
    explanation: str
    artist: str | None = None
    genres: list[str] = []
    years: list[int] | None = None
    text: str = ""
    entity: str | None = None


class SourceDebug(Struct, frozen=True):
    k: int
    found: int
    ms: float
    status: Literal["ok", "unavailable", "skipped"]
    error: str = ""
    cached: bool = False  # answered from the cache of repeated queries


class PageDebug(Struct, frozen=True):
    policy: str
    plan: dict[str, int]
    propensity: float
    sources: dict[str, SourceDebug]
    catalog_version: int
    total_ms: float


class SearchPage(Struct, frozen=True, omit_defaults=True):
    search_id: str
    query: str
    items: list[Item]
    interpretations: list[Interpretation]
    degraded: bool
    debug: PageDebug | None = None


class FeedbackIn(Struct, frozen=True, forbid_unknown_fields=True):
    search_id: Annotated[str, Meta(min_length=1, max_length=64)]
    entity_id: EntityId
    action: Action
    position: Annotated[int, Meta(ge=0, le=1000)]


class FeedbackAck(Struct, frozen=True):
    status: Literal["stored", "duplicate"]
    search_id: str
    entity_id: str


class Suggestion(Struct, frozen=True):
    id: str
    kind: KindName
    name: str
    subtitle: str


class Suggestions(Struct, frozen=True):
    query: str
    items: list[Suggestion]


class RelatedArtist(Struct, frozen=True):
    id: str
    name: str
    subtitle: str
    score: float
    reasons: list[str]


class RelatedArtists(Struct, frozen=True):
    artist: RelatedItem
    items: list[RelatedArtist]


class Neighbour(Struct, frozen=True):
    id: str
    kind: KindName
    name: str
    relation: str
    direction: Literal["out", "in"]


class EntityOut(Struct, frozen=True, omit_defaults=True):
    id: str
    kind: KindName
    name: str
    subtitle: str
    popularity: float
    aliases: list[str] = []
    description: str = ""
    properties: dict[str, str | float] = {}  # int | float would be an ambiguous oneOf
    neighbours: list[Neighbour] = []


class Health(Struct, frozen=True):
    status: str
    detail: dict[str, str | float | bool] = msgspec.field(default_factory=dict)


class Problem(Struct, frozen=True, omit_defaults=True):
    """An RFC 9457 problem-details body, as every error answers."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None
