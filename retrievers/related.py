"""Related entities: typed graph traversals from entities already found, with the path as reason.

From an artist: related artists (RELATED_TO, either direction, by weight) and its top songs.
From a song: its album, other songs by its artists, songs that share its playlists.
From an album: its songs and its artists. From a playlist: its top songs.
From a podcast: its latest episodes. From an episode: its podcast.
From a genre: its most popular entities and its subgenres.

Each step has a weight (how strongly it implies relevance); a candidate's score is the best over
its paths of seed weight x step weight x edge weight x (0.5 + 0.5 x popularity). Every branch is
capped (`LIMIT`), so a hub such as a big genre costs the same as a small one. Every order has a
tie-break (entity id; for paths, via then seed id), so the answer is deterministic and
`retrievers.related_local` can give the same one from memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from neo4j import RoutingControl

from graph.neo4j_store import Neo4jStore
from retrievers.base import Candidate

PER_BRANCH: Final = 25

_TRAVERSALS: Final = """
UNWIND $seeds AS seed
MATCH (n:Entity {id: seed.id})
CALL (n) {
  MATCH (n:Artist)-[r:RELATED_TO]-(m:Artist) WHERE m <> n
  WITH m, max(coalesce(r.weight, 0.5)) AS w ORDER BY w DESC, m.id LIMIT $cap
  RETURN m, 'related artist' AS via, 1.0 * w AS w
  UNION
  MATCH (n:Artist)<-[:PERFORMED_BY]-(m:Song)
  WITH m ORDER BY m.popularity DESC, m.id LIMIT $cap RETURN m, 'song by' AS via, 0.8 AS w
  UNION
  MATCH (n:Song)-[:ON_ALBUM]->(m:Album) RETURN m, 'album of' AS via, 0.7 AS w
  UNION
  MATCH (n:Song)-[:PERFORMED_BY]->(:Artist)<-[:PERFORMED_BY]-(m:Song) WHERE m <> n
  WITH DISTINCT m ORDER BY m.popularity DESC, m.id LIMIT $cap
  RETURN m, 'same artist' AS via, 0.6 AS w
  UNION
  MATCH (n:Song)<-[:CONTAINS]-(:Playlist)-[:CONTAINS]->(m:Song) WHERE m <> n
  WITH m, count(*) AS shared ORDER BY shared DESC, m.popularity DESC, m.id LIMIT $cap
  RETURN m, 'shares playlists with' AS via, 0.4 AS w
  UNION
  MATCH (n:Album)<-[:ON_ALBUM]-(m:Song)
  WITH m ORDER BY m.popularity DESC, m.id LIMIT $cap RETURN m, 'song on' AS via, 0.8 AS w
  UNION
  MATCH (n:Album)-[:BY]->(m:Artist) RETURN m, 'artist of' AS via, 0.8 AS w
  UNION
  MATCH (n:Playlist)-[:CONTAINS]->(m:Song)
  WITH m ORDER BY m.popularity DESC, m.id LIMIT $cap RETURN m, 'song in' AS via, 0.6 AS w
  UNION
  MATCH (n:Podcast)<-[:EPISODE_OF]-(m:Episode)
  WITH m ORDER BY coalesce(m.release_date, '') DESC, m.id LIMIT $cap
  RETURN m, 'episode of' AS via, 0.8 AS w
  UNION
  MATCH (n:Episode)-[:EPISODE_OF]->(m:Podcast) RETURN m, 'podcast of' AS via, 0.8 AS w
  UNION
  MATCH (n:Genre)<-[:IN_GENRE]-(m)
  WITH m ORDER BY m.popularity DESC, m.id LIMIT $cap RETURN m, 'top of genre' AS via, 0.5 AS w
  UNION
  MATCH (n:Genre)<-[:SUBGENRE_OF]-(m:Genre) RETURN m, 'subgenre of' AS via, 0.4 AS w
}
WITH n, m, via, seed.weight * w * (0.5 + 0.5 * coalesce(m.popularity, 0.0)) AS score
WHERE NOT m.id IN $seed_ids AND (size($kinds) = 0 OR m.kind IN $kinds)
WITH m, score, via, n ORDER BY score DESC, via, n.id
WITH m, collect([score, via, n.name])[0] AS best
RETURN m.id AS id, best[0] AS score, best[1] + ' ' + best[2] AS reason
ORDER BY score DESC, id LIMIT $k
"""


class RelatedExpander:
    """Expander over typed Cypher traversals; seeds count less the lower they ranked."""

    name = "related"

    def __init__(self, store: Neo4jStore, *, per_branch: int = PER_BRANCH) -> None:
        self.store = store
        self.per_branch = per_branch

    def expand(self, seeds: Sequence[Candidate], k: int, *,
               kinds: Sequence[str] = ()) -> list[Candidate]:
        if k <= 0 or not seeds:
            return []
        rows = [{"id": c.entity_id, "weight": 1.0 / (1 + rank)} for rank, c in enumerate(seeds)]
        records, _, _ = self.store.driver.execute_query(
            _TRAVERSALS, {"seeds": rows, "seed_ids": [r["id"] for r in rows], "k": k,
                          "cap": self.per_branch, "kinds": list(kinds)},
            database_=self.store.database, routing_=RoutingControl.READ)
        return [Candidate(r["id"], float(r["score"]), self.name, r["reason"]) for r in records]
