"""Full-text candidates from Neo4j's Lucene index: BM25 on names, aliases and descriptions."""

from __future__ import annotations

import re
from typing import Final

from neo4j import RoutingControl

from graph.neo4j_store import Neo4jStore
from graph.schema import FULLTEXT_INDEX
from retrievers.base import Candidate, Query

# Lucene's query syntax: each of these must be escaped, or user text becomes operators.
_SPECIAL: Final = re.compile(r'([+\-&|!(){}\[\]^"~*?:\\/])')
_TOKEN: Final = re.compile(r"\w+", re.UNICODE)
MAX_TOKENS: Final = 12
POPULARITY_PRIOR: Final = 0.5  # score * (1 + prior * popularity): breaks ties toward the known


def escape(text: str) -> str:
    """Escape every Lucene special character in `text`."""
    return _SPECIAL.sub(r"\\\1", text)


def lucene_query(text: str) -> str | None:
    """The Lucene query for user text, or None when nothing searchable is left.

    Names weigh most, then aliases, then descriptions; the whole query as a phrase adds a bonus;
    each token of four or more characters also matches one edit away, so "tayler" finds "taylor".
    Lower-casing keeps AND/OR/NOT from acting as operators.
    """
    tokens = [t for t in _TOKEN.findall(text.lower()) if t.strip("_")][:MAX_TOKENS]
    if not tokens:
        return None
    terms = " ".join(f"{escape(t)}~1" if len(t) >= 4 else escape(t) for t in tokens)
    phrase = escape(" ".join(tokens))
    return (f'name:({terms})^3 aliases:({terms})^2 description:({terms}) '
            f'name:"{phrase}"^4 aliases:"{phrase}"^3')


class FullTextRetriever:
    """Retriever over the `entity_text` full-text index; reads Neo4j on every query."""

    name = "fulltext"

    def __init__(self, store: Neo4jStore, *, overfetch: int = 3,
                 filtered_fetch: int = 300) -> None:
        self.store = store
        self.overfetch = overfetch
        # The index knows no kinds: a kind filter looks deeper so that rarer kinds still fill k.
        self.filtered_fetch = filtered_fetch

    def retrieve(self, query: Query, k: int) -> list[Candidate]:
        lucene = lucene_query(query.text)
        if k <= 0 or lucene is None:
            return []
        kinds = sorted(kind.value for kind in query.kinds)
        fetch = max(k * self.overfetch, self.filtered_fetch if kinds else 0)
        records, _, _ = self.store.driver.execute_query(
            "CALL db.index.fulltext.queryNodes($index, $q, {limit: $fetch}) YIELD node, score "
            "WHERE size($kinds) = 0 OR node.kind IN $kinds "
            "WITH node, score * (1 + $prior * coalesce(node.popularity, 0.0)) AS s "
            "WITH node.id AS id, s ORDER BY s DESC, id LIMIT $k "
            # One record holding the list: the driver's cost is per record, not per value.
            "RETURN collect([id, s]) AS found",
            {"index": FULLTEXT_INDEX, "q": lucene, "fetch": fetch, "kinds": kinds,
             "prior": POPULARITY_PRIOR, "k": k},
            database_=self.store.database, routing_=RoutingControl.READ)
        return [Candidate(i, float(score), self.name, "full-text match")
                for i, score in records[0]["found"]]
