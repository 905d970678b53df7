"""Full-text candidates from an in-process Tantivy index: the query of `retrievers.fulltext`,
answered from the catalog snapshot with no store round trip.

Neo4j's `entity_text` index is Lucene with the `standard-folding` analyzer; this is a Tantivy
(Rust, BM25) index in memory, built from the snapshot every serving index is built from and
swapped with them when the catalog version moves, so full text keeps answering while the store
is down. The two follow the same recipe, not the same code, so their scores differ a little:

- analysis: words of letters and digits, lower-cased, ASCII-folded ("Björk" -> "bjork"), the
  same English stop words as Lucene's standard analyzer dropped;
- fields and boosts: name x3, aliases x2, description x1 (BM25 each), the whole query as a phrase
  on name x4 and aliases x3;
- fuzzy terms: each word of four or more characters also matches one edit away (a transposition
  is one edit). Lucene scores such a term by BM25 scaled by its similarity; Tantivy scores it as
  a constant, so here an exact word scores its BM25 plus `FUZZY_WEIGHT` and a word one edit
  away scores `FUZZY_WEIGHT` alone (times the field's boost);
- popularity prior: score x (1 + 0.5 x popularity), applied inside Tantivy's top-k collector
  (`weight_by_field` multiplies by log2(2 + w); w is stored so that this is the prior exactly);
- kinds: a kind filter is a required clause, not an over-fetch.

`bench/fulltext_bench.py` compares the two on the development queries (quality and latency).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Final

import tantivy

from graph.model import Entity
from retrievers.base import Candidate, Query
from retrievers.fulltext import MAX_TOKENS, POPULARITY_PRIOR

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, which `standard-folding` uses (Neo4j lists it
# with db.index.fulltext.listAvailableAnalyzers()).
STOP_WORDS: Final = ("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in",
                     "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the",
                     "their", "then", "there", "these", "they", "this", "to", "was", "will",
                     "with")
FIELDS: Final = (("name", 3.0), ("aliases", 2.0), ("description", 1.0))
PHRASES: Final = (("name", 4.0), ("aliases", 3.0))
FUZZY_MIN_LEN: Final = 4
FUZZY_WEIGHT: Final = 1.0  # the constant a word one edit away scores, before the field boost
ANALYZER: Final = "folding_stop"
WRITER_HEAP: Final = 200_000_000
DF_CACHE: Final = 100_000  # (field, word) -> fuzzy document frequency, per catalog version


def _analyzer() -> tantivy.TextAnalyzer:
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(100))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
            .filter(tantivy.Filter.custom_stopword(list(STOP_WORDS)))
            .build())


def prior_weight(popularity: float) -> float:
    """The `weight_by_field` value w with log2(2 + w) = 1 + prior x popularity."""
    return float(2.0 ** (1.0 + POPULARITY_PRIOR * min(max(popularity, 0.0), 1.0)) - 2.0)


class LocalFullTextRetriever:
    """Retriever over an in-memory Tantivy index of every entity's name, aliases and
    description; reads no store."""

    name = "fulltext"

    def __init__(self, entities: Iterable[Entity], *, writer_heap: int = WRITER_HEAP) -> None:
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("kind", tokenizer_name="raw")
        for field, _ in FIELDS:
            sb.add_text_field(field, tokenizer_name=ANALYZER, index_option="position")
        sb.add_float_field("prior", fast=True)
        sb.add_integer_field("ord", fast=True)  # the entity's position in `self.ids`
        self.schema = sb.build()
        self.index = tantivy.Index(self.schema)
        self._analyzer = _analyzer()
        self.index.register_tokenizer(ANALYZER, self._analyzer)
        writer = self.index.writer(writer_heap, 1)
        ids: list[str] = []
        for e in entities:
            writer.add_document(tantivy.Document(
                kind=e.kind.value, name=e.name, aliases=list(e.aliases),
                description=e.description, prior=prior_weight(e.popularity), ord=len(ids)))
            ids.append(e.id)
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()
        self.ids: Sequence[str] = ids
        self._fuzzy_df = lru_cache(maxsize=DF_CACHE)(self._count_fuzzy)

    def _count_fuzzy(self, field: str, token: str) -> int:
        """Documents whose `field` holds a word at most one edit from `token`: the document
        frequency the fuzzy clause's IDF uses (like Lucene's blended frequency of its terms)."""
        fuzzy = tantivy.Query.fuzzy_term_query(self.schema, field, token, 1)
        found = self.searcher.search(fuzzy, 1, count=True)
        return int(found.count or 0)  # type: ignore[attr-defined]  # missing from the stub

    def tokens(self, text: str) -> list[str]:
        """The query's words as the index analysed them (stop words dropped)."""
        return [t for t in self._analyzer.analyze(text)][:MAX_TOKENS]

    def query(self, text: str, kinds: Iterable[str] = ()) -> tantivy.Query | None:
        """The Tantivy query for user text, or None when nothing searchable is left."""
        tokens = self.tokens(text)
        if not tokens:
            return None
        schema, Q, should = self.schema, tantivy.Query, tantivy.Occur.Should
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
        n = max(self.searcher.num_docs, 1)
        for field, boost in FIELDS:
            for t in tokens:
                exact = Q.boost_query(Q.term_query(schema, field, t), boost)
                if len(t) < FUZZY_MIN_LEN:
                    clauses.append((should, exact))
                    continue
                fuzzy = Q.fuzzy_term_query(schema, field, t, 1)
                df = self._fuzzy_df(field, t)
                idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
                weight = boost * idf * (1.0 - 1.0 / len(t)) * FUZZY_WEIGHT
                clauses.append((should, Q.disjunction_max_query(
                    [exact, Q.const_score_query(fuzzy, weight)])))
        if len(tokens) > 1:
            for field, boost in PHRASES:
                words: list[str | tuple[int, str]] = list(tokens)
                clauses.append((should, Q.boost_query(Q.phrase_query(schema, field, words),
                                                      boost)))
        text_query = Q.boolean_query(clauses)
        wanted = sorted(set(kinds))
        if not wanted:
            return text_query
        kind_query = Q.term_set_query(schema, "kind", wanted)
        return Q.boolean_query([(tantivy.Occur.Must, text_query),
                                (tantivy.Occur.Must, Q.const_score_query(kind_query, 0.0))])

    def retrieve(self, query: Query, k: int) -> list[Candidate]:
        q = self.query(query.text, (kind.value for kind in query.kinds)) if k > 0 else None
        if q is None:
            return []
        hits = self.searcher.search(q, k, count=False, weight_by_field="prior").hits
        ords = self.searcher.fast_field_values("ord", [addr for _, addr in hits])
        found = [(self.ids[int(o)], float(score)) for (score, _), o in zip(hits, ords, strict=True)
                 if o is not None]
        # Tantivy breaks score ties by doc id, which is id order here; say so explicitly.
        found.sort(key=lambda h: (-h[1], h[0]))
        return [Candidate(i, s, self.name, "full-text match") for i, s in found
                if math.isfinite(s)]
