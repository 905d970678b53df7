"""Plain lexical baselines for the retrieval evaluation: Tantivy fuzzy terms and rapidfuzz WRatio.

What a developer would reach for first, set up plainly: no popularity, no kind priors.

- Tantivy: one document per entity, its name and aliases in one field analysed with Tantivy's
  simple tokenizer, lower-casing and ASCII folding; a query is, per token, one fuzzy term query
  (Lucene's AUTO distance: 0 edits up to 2 characters, 1 up to 5, else 2) and one exact term
  query (BM25, so exact words count more), all SHOULD clauses.
- rapidfuzz: `process.extract(query, names, scorer=WRatio, processor=default_process)` over
  every name and alias, best entry per entity. Quality is computed with `process.cdist` over
  batches of queries (same scores, much faster); latency with `extract`, one query at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import tantivy
from anyascii import anyascii
from rapidfuzz import fuzz, process, utils

from graph.model import Entity

_TOKEN: Final = re.compile(r"[a-z0-9]+")
MAX_TOKENS: Final = 12


def auto_distance(token: str) -> int:
    return 0 if len(token) <= 2 else 1 if len(token) <= 5 else 2


class TantivyBaseline:
    """Entities in a Tantivy index (in memory), searched with fuzzy term queries per token."""

    def __init__(self, entities: Iterable[Entity]) -> None:
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("id", stored=True, tokenizer_name="raw")
        sb.add_text_field("name", tokenizer_name="folding")
        self.schema = sb.build()
        self.index = tantivy.Index(self.schema)
        self.index.register_tokenizer("folding", tantivy.TextAnalyzerBuilder(
            tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase()).filter(
            tantivy.Filter.ascii_fold()).build())
        writer = self.index.writer(200_000_000, 1)
        for e in entities:
            writer.add_document(tantivy.Document(id=e.id, name=[e.name, *e.aliases]))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()

    def search(self, text: str, k: int) -> list[str]:
        tokens = _TOKEN.findall(anyascii(text).lower())[:MAX_TOKENS]
        if not tokens or k <= 0:
            return []
        clauses = []
        for t in tokens:
            clauses.append((tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "name", t)))
            if auto_distance(t):
                clauses.append((tantivy.Occur.Should, tantivy.Query.fuzzy_term_query(
                    self.schema, "name", t, auto_distance(t))))
        hits = self.searcher.search(tantivy.Query.boolean_query(clauses), k).hits
        return [str(self.searcher.doc(addr)["id"][0]) for _, addr in hits]


class WRatioBaseline:
    """rapidfuzz WRatio over every name and alias (`default_process`: lower case, no
    punctuation)."""

    def __init__(self, entities: Iterable[Entity]) -> None:
        self.owner: list[str] = []
        self.texts: list[str] = []
        for e in entities:
            for t in dict.fromkeys((e.name, *e.aliases)):
                self.owner.append(e.id)
                self.texts.append(t)
        self.processed = [utils.default_process(t) for t in self.texts]

    def search(self, text: str, k: int) -> list[str]:
        found = process.extract(text, self.texts, scorer=fuzz.WRatio,
                                processor=utils.default_process, limit=4 * k)
        return self._entities([i for _, _, i in found], k)

    def search_many(self, texts: Sequence[str], k: int, batch: int = 64) -> list[list[str]]:
        """The same rankings as `search` (WRatio ties by entry order), for many queries."""
        out: list[list[str]] = []
        for lo in range(0, len(texts), batch):
            queries = [utils.default_process(t) for t in texts[lo:lo + batch]]
            scores = process.cdist(queries, self.processed, scorer=fuzz.WRatio,
                                   dtype=np.float32, workers=-1)
            for row in scores:
                top = np.argpartition(-row, 4 * k)[:4 * k]
                top = top[np.lexsort((top, -row[top]))]
                out.append(self._entities(top.tolist(), k))
        return out

    def _entities(self, entries: Sequence[int], k: int) -> list[str]:
        return list(dict.fromkeys(self.owner[i] for i in entries))[:k]
