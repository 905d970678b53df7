"""Service configuration, read from the environment once at start (see the README's table)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Final

PREFIX: Final = "TUNEGRAPH_"
FULLTEXT_MODES: Final = ("local", "neo4j")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the service. `from_env` reads `TUNEGRAPH_<NAME>` for each field."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    api_key: str = ""  # admin operations (reload, policy reset) need it; empty disables them
    cors_origins: tuple[str, ...] = ()  # e.g. "https://app.example.com,http://localhost:5173"
    rate_limit_per_minute: int = 6000  # per client address; 0 turns the limiter off
    max_in_flight: int = 48  # requests in flight per worker; past it, 503 at once
    max_body_bytes: int = 16 * 1024
    max_query_chars: int = 200
    max_limit: int = 50
    default_limit: int = 20
    search_deadline_ms: float = 250.0  # a source not done by then is dropped from the page
    store_timeout_s: float = 1.0  # connect timeout and retry budget of one store call
    store_retry_s: float = 2.0  # after a store failure, degraded pages until the next probe
    refresh_s: float = 5.0  # how often the catalog version is polled
    feedback_expiry_s: float = 600.0  # a search with no feedback by then counts as reward 0
    policy: str = "semibandit"  # or linucb, lints, epsilon_greedy, vw, fixed:rrf, fixed:equal
    budget: int = 60  # candidates the plan may draw from all sources together
    budget_step: int = 10  # the policy allocates k in steps of this many
    latency_weight: float = 0.02  # reward given up per unit of source cost (store round trips)
    ranker: str = "learned"  # or "rrf": reciprocal-rank fusion, no learning
    reformulation_window_s: float = 90.0  # a search given up this recently, then a take...
    reformulation_weight: float = 0.4  # ...credits the earlier query with this weight
    embeddings_dir: Path = field(default_factory=lambda: Path(".tunegraph/embeddings"))
    text_vectors: bool = True  # serve the text-embedding source when its model is available
    cache_entries: int = 10_000  # repeated queries' source answers kept per worker; 0: off
    cache_ttl_s: float = 300.0  # how long one such answer is reused at most
    fulltext: str = "local"  # in-process Tantivy index; "neo4j": the store's Lucene index
    # Queries per class learned from the catalog itself before the first user, when the log
    # holds no learning state yet (api.warmstart); 0: start untrained.
    warm_start: int = 80

    def __post_init__(self) -> None:
        if self.fulltext not in FULLTEXT_MODES:
            raise ValueError(f"{PREFIX}FULLTEXT={self.fulltext!r}: expected one of "
                             f"{', '.join(FULLTEXT_MODES)}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f.name, raw, type(getattr(cls(), f.name)))
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _parse(name: str, raw: str, kind: type[object]) -> object:
    try:
        if kind is bool:
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if kind is tuple:
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if issubclass(kind, Path):
            return Path(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        return raw
    except ValueError:
        raise ValueError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
