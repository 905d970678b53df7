"""What every candidate generator shares: the query, the candidate, and the two protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from graph.model import Kind


@dataclass(frozen=True, slots=True)
class Query:
    """A search as the retrievers see it. `kinds` restricts results (empty means all kinds)."""

    text: str
    kinds: frozenset[Kind] = frozenset()
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One entity proposed by one source. `score` is native to its source, comparable only
    within that source (fusion calibrates); `reason` says why (matched alias, graph path, ...)."""

    entity_id: str
    score: float
    source: str
    reason: str = ""
    extra: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Retriever(Protocol):
    """Query text -> entities. At most k candidates, best first, deterministic."""

    name: str

    def retrieve(self, query: Query, k: int) -> list[Candidate]: ...


@runtime_checkable
class Expander(Protocol):
    """Entities already found -> related entities. At most k candidates, best first."""

    name: str

    def expand(self, seeds: Sequence[Candidate], k: int) -> list[Candidate]: ...
