"""The Neo4j schema: constraints and indexes, applied idempotently at every start."""

from __future__ import annotations

from typing import Final, LiteralString

from graph.model import REL_ENDPOINTS, Kind, RelType

FULLTEXT_INDEX: Final = "entity_text"

SCHEMA_STATEMENTS: Final[tuple[LiteralString, ...]] = (
    # The one key: ids are unique across kinds. Every lookup matches (:Entity {id}) to use it.
    "CREATE CONSTRAINT entity_id IF NOT EXISTS FOR (n:Entity) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT meta_key IF NOT EXISTS FOR (m:Meta) REQUIRE m.key IS UNIQUE",
    # Names, aliases (a LIST<STRING>) and descriptions, with accents folded ("Bjork" = "Björk").
    # Eventually consistent: Lucene updates leave the commit path, which keeps ingest fast;
    # readers that must see a fresh write first call
    # db.index.fulltext.awaitEventuallyConsistentIndexRefresh().
    "CREATE FULLTEXT INDEX entity_text IF NOT EXISTS FOR (n:Entity) "
    "ON EACH [n.name, n.aliases, n.description] OPTIONS {indexConfig: {"
    "`fulltext.analyzer`: 'standard-folding', `fulltext.eventually_consistent`: true}}",
    # The memory of what users took for a query (retrievers/memory.py).
    "CREATE CONSTRAINT query_key IF NOT EXISTS FOR (q:Query) REQUIRE q.key IS UNIQUE",
    "CREATE INDEX took_updated IF NOT EXISTS FOR ()-[t:TOOK]-() ON (t.updated)",
    # Popularity orders "top entities of a genre" and cold-start lists.
    "CREATE INDEX entity_popularity IF NOT EXISTS FOR (n:Entity) ON (n.popularity)",
    # Entity-text vectors (retrievers/text_embed.py): the static model's 256 dimensions.
    "CREATE VECTOR INDEX entity_text_vec IF NOT EXISTS FOR (n:Entity) ON n.text_vec "
    "OPTIONS {indexConfig: {`vector.dimensions`: 256, `vector.similarity_function`: 'cosine'}}",
)


def owned_types(kind: Kind) -> list[RelType]:
    """The relationship types whose edges a record of `kind` owns (its outgoing edges)."""
    return [t for t, (starts, _) in REL_ENDPOINTS.items() if kind in starts]
