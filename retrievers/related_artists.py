"""Related artists with their reasons: co-listening, shared genres, shared playlists, and
graph-embedding neighbours, combined into one score per artist.

One Cypher call gathers the three graph reasons, each branch capped so that a hub (a big genre,
a long playlist) costs the same as a small one; embedding neighbours, when trained, come from the
in-process expander.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from neo4j import RoutingControl

from graph.neo4j_store import Neo4jStore
from retrievers.base import Candidate, Expander

CAP: Final = 50
# How much each reason says "related", before popularity: co-listening is direct evidence;
# sharing a genre or a playlist is weaker, and saturates (three genres, five playlists).
W_COLISTEN, W_GENRE, W_PLAYLIST, W_EMBED = 1.0, 0.35, 0.45, 0.5
GENRES_SATURATE, PLAYLISTS_SATURATE = 3, 5

_QUERY: Final = """
MATCH (a:Artist {id: $id})
CALL (a) {
  MATCH (a)-[r:RELATED_TO]-(b:Artist) WHERE b <> a
  WITH b, max(coalesce(r.weight, 0.5)) AS w, collect(DISTINCT coalesce(r.source, 'feed')) AS src
  ORDER BY w DESC LIMIT $cap
  RETURN b, 'colisten' AS why, w AS strength, src AS detail
  UNION ALL
  MATCH (a)-[:IN_GENRE]->(g:Genre)<-[:IN_GENRE]-(b:Artist) WHERE b <> a
  WITH b, collect(g.name) AS genres ORDER BY size(genres) DESC, b.popularity DESC LIMIT $cap
  RETURN b, 'genre' AS why, toFloat(size(genres)) AS strength, genres[..3] AS detail
  UNION ALL
  MATCH (a)<-[:PERFORMED_BY]-(:Song)<-[:CONTAINS]-(p:Playlist)
  WITH DISTINCT a, p LIMIT $cap
  MATCH (p)-[:CONTAINS]->(:Song)-[:PERFORMED_BY]->(b:Artist) WHERE b <> a
  WITH b, collect(DISTINCT p.name) AS lists ORDER BY size(lists) DESC, b.popularity DESC
  LIMIT $cap
  RETURN b, 'playlist' AS why, toFloat(size(lists)) AS strength, lists[..3] AS detail
}
RETURN b.id AS id, b.popularity AS popularity, why, strength, detail
"""


@dataclass(slots=True)
class RelatedArtist:
    id: str
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)


def _reason(why: str, strength: float, detail: Sequence[str]) -> tuple[float, str]:
    if why == "colisten":
        return W_COLISTEN * strength, f"co-listening ({', '.join(detail)}, weight {strength:.2f})"
    if why == "genre":
        n = int(strength)
        return (W_GENRE * min(1.0, n / GENRES_SATURATE),
                f"shares {n} genre{'s' if n > 1 else ''}: {', '.join(detail)}")
    n = int(strength)
    return (W_PLAYLIST * min(1.0, n / PLAYLISTS_SATURATE),
            f"in {n} playlist{'s' if n > 1 else ''} together: {', '.join(detail)}")


def related_artists(store: Neo4jStore, artist_id: str, limit: int, *,
                    embeddings: Expander | None = None) -> list[RelatedArtist]:
    """Best first; ties by id. Scores add over reasons, then weigh popularity lightly."""
    records, _, _ = store.driver.execute_query(
        _QUERY, {"id": artist_id, "cap": CAP}, database_=store.database,
        routing_=RoutingControl.READ)
    found: dict[str, RelatedArtist] = {}
    popularity: dict[str, float] = {}
    for r in records:
        got = found.setdefault(r["id"], RelatedArtist(r["id"]))
        score, reason = _reason(r["why"], float(r["strength"]), r["detail"])
        got.score += score
        got.reasons.append(reason)
        popularity[r["id"]] = float(r["popularity"] or 0.0)
    if embeddings is not None:
        # By rank: the models' scores have no common scale (RotatE's are negative distances).
        for rank, c in enumerate(embeddings.expand([Candidate(artist_id, 1.0, "seed")], CAP)):
            got = found.setdefault(c.entity_id, RelatedArtist(c.entity_id))
            got.score += W_EMBED * (1 - rank / CAP)
            got.reasons.append(f"graph-embedding neighbour ({embeddings.name}, #{rank + 1})")
    for a in found.values():
        a.score *= 0.75 + 0.25 * popularity.get(a.id, 0.0)
    return sorted(found.values(), key=lambda a: (-a.score, a.id))[:limit]
