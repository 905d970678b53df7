"""Fuzzy names: n-gram and sound-key blocking, rapidfuzz reranking, and prefix type-ahead."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from graph.model import Entity, Kind
from graph.store import GraphStore
from retrievers.base import Candidate, Query
from retrievers.fuzzy_tables import (
    F32,
    I32,
    I64,
    KINDS,
    NAME_START_BONUS,
    SUGGEST_WIDTH,
    Mask,
    Tables,
    build_tables,
    crc,
)
from retrievers.normalize import gram_text, normalize, phonetic_keys, trigrams

__all__ = ["FuzzyIndex", "FuzzyRetriever", "Match", "build_tables"]

POOL: Final = 2_000  # entries kept by n-gram overlap
RERANK: Final = 200  # entries scored with WRatio (~3 us each, 25x the Indel ratio)
BUDGET: Final = 150_000  # postings counted per query; rarer lists first, common ones skipped
SHORT: Final = 3  # keys this short have almost no trigrams: word-prefix matches join the pool
SHORT_POOL: Final = 200
LINK_POOL, LINK_BUDGET = 500, 40_000  # linking wants whole-name matches: a narrower pool serves
W_TEXT, W_SOUND, W_POP = 0.88, 0.07, 0.05  # fuzzy score = FUZZY_CAP * weighted sum
EXACT_KEY, EXACT_COMPACT, FUZZY_CAP = 0.95, 0.90, 0.89  # (+ W_POP * popularity): exact first


@dataclass(frozen=True, slots=True)
class Match:
    """One entity found by name: the entry (name or alias) that matched best, and how well."""

    entity_id: str
    kind: Kind
    score: float
    text: str
    alias: bool
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return f'{"alias" if self.alias else "name"} "{self.text}"'


def _text_scores(key: str, keys: list[str]) -> F32:
    """WRatio where the name is at least as long as the query (which may be part of it). Shorter
    names get whole-string scores: WRatio gives "cold" 0.9 for "coldplya", a substring of the
    typo, above "coldplay"."""
    longer = np.fromiter(map(len, keys), np.int64, len(keys)) >= len(key)
    text = np.zeros(len(keys), np.float32)
    for mask, scorers in ((longer, ((fuzz.WRatio, 1.0),)),
                          (~longer, ((fuzz.ratio, 1.0), (fuzz.token_sort_ratio, 0.95),
                                     (fuzz.token_set_ratio, 0.85)))):
        subset = [keys[i] for i in np.flatnonzero(mask).tolist()]
        for scorer, weight in scorers if subset else ():
            got = process.cdist([key], subset, scorer=scorer, dtype=np.float32)[0] * weight
            text[mask] = np.maximum(text[mask], got / 100)
    return text


def _allowed(kinds: frozenset[Kind]) -> Mask | None:
    return np.array([k in kinds for k in KINDS], np.bool_) if kinds else None


class FuzzyIndex:
    """Every name and alias as an entry, for fuzzy lookup (`search`) and type-ahead (`suggest`).

    search: normalize the query like the names, then (1) block: count, per entry, the query's
    trigrams (of key and compact form) and Metaphone token keys (weight 2) it shares, over CSR
    posting lists taken rarest first within BUDGET; keep the POOL best, plus exact key and compact
    matches and, for short keys, word-prefix matches; (2) keep RERANK by Indel ratio or gram
    containment; (3) score those by WRatio, sound-alike share and popularity. Queries read only
    these arrays, never the store; `refresh` swaps in a rebuilt set whole.
    """

    def __init__(self, tables: Tables) -> None:
        self._t = tables

    @classmethod
    def build(cls, store: GraphStore) -> FuzzyIndex:
        # The version is read first: a write landing mid-build makes the next refresh rebuild.
        version = store.catalog_version()
        return cls(build_tables(store.iter_entities(), version))

    @classmethod
    def from_entities(cls, entities: Iterable[Entity], version: int = 0) -> FuzzyIndex:
        return cls(build_tables(entities, version))

    @property
    def catalog_version(self) -> int:
        return self._t.version

    @property
    def nbytes(self) -> int:
        """Bytes held by the index's arrays and string pools."""
        return self._t.nbytes

    def __len__(self) -> int:
        return len(self._t.entry_ent)

    def refresh(self, store: GraphStore) -> bool:
        """Rebuild if the store's catalog version moved; True when it did."""
        version = store.catalog_version()
        if version == self._t.version:
            return False
        self._t = build_tables(store.iter_entities(), version)
        return True

    def search(self, text: str, k: int, kinds: frozenset[Kind] = frozenset()) -> list[Match]:
        """The k entities whose name or an alias best matches `text`, best first."""
        t = self._t  # one snapshot for the whole query, whatever refresh does meanwhile
        forms = normalize(text)
        if k <= 0 or not forms.key or not len(t.entry_ent):
            return []
        allowed = _allowed(kinds)
        exact_key = self._exact(t, "key", forms.key, allowed)
        exact_compact = self._exact(t, "compact", forms.compact, allowed)
        sound = self._sound(t, phonetic_keys(forms.key))
        pool, contain = self._block(t, np.unique(trigrams([gram_text(forms)])[0]), sound, allowed)
        sure = [exact_key, exact_compact]
        if len(forms.key) <= SHORT:
            sure.append(t.ws_entry[self._top_rows(t, forms.key, allowed, SHORT_POOL)])
        extra = np.setdiff1d(np.concatenate(sure), pool)
        pool = np.concatenate([pool, extra])
        contain = np.concatenate([contain, np.ones(len(extra), np.float32)])
        pool, keys = self._cheap(t, forms.key, pool, contain)
        return self._final(t, forms.key, pool, keys, sound, np.isin(pool, exact_key),
                           np.isin(pool, exact_compact), k)

    def suggest(self, prefix: str, k: int, kinds: frozenset[Kind] = frozenset()) -> list[Match]:
        """Type-ahead: entities with a name or alias word starting with `prefix`, most popular
        first; a match at the start of the name counts NAME_START_BONUS more."""
        t = self._t
        p = normalize(prefix).full
        if k <= 0 or not p or not len(t.entry_ent):
            return []
        rows = self._top_rows(t, p, _allowed(kinds), k)
        entries = t.ws_entry[rows]
        start = (t.ws_off[rows] <= t.key_off[entries]).astype(np.float32)
        pop = t.ent_pop[t.entry_ent[entries]]
        scores = (pop + NAME_START_BONUS * start) / (1.0 + NAME_START_BONUS)
        return [self._match(t, e, s, {"popularity": q, "name_start": b}) for e, s, q, b in
                zip(entries.tolist(), scores.tolist(), pop.tolist(), start.tolist(), strict=True)]

    @staticmethod
    def _exact(t: Tables, which: str, value: str, allowed: Mask | None) -> I32:
        """Entries whose key (`which` "key") or compact form ("compact") equals `value`."""
        hashes, entries = t.exact[which]
        h = crc(value)
        found = entries[np.searchsorted(hashes, h, "left"):np.searchsorted(hashes, h, "right")]
        keys = t.keys.take(found)
        found = found[[(s if which == "key" else s.replace(" ", "")) == value for s in keys]]
        return found if allowed is None else found[allowed[t.entry_kind[found]]]

    def link(self, spans: Sequence[str], k: int, kinds: frozenset[Kind] = frozenset(), *,
             partial: bool = False) -> list[list[Match]]:
        """For each span (a part of a query), the k entities whose whole name or alias is most
        like it (with `partial`, whose first words are: "tayler" -> "Taylor Swift"): Indel
        ratio of normalized keys, 1 for an equal key, popularity breaking ties;
        `extra["edits"]` is the edit distance (a swap of neighbours counts one).

        One blocking pass over all the spans' trigrams and sound keys serves every span, so
        linking a query's prefixes and suffixes costs about one search, not one each."""
        t = self._t
        forms = [normalize(s) for s in spans]
        out: list[list[Match]] = [[] for _ in spans]
        live = [i for i, f in enumerate(forms) if f.key]
        if k <= 0 or not live or not len(t.entry_ent):
            return out
        allowed = _allowed(kinds)
        codes = np.unique(trigrams([gram_text(forms[i]) for i in live])[0])
        sound = self._sound(t, list(dict.fromkeys(
            c for i in live for c in phonetic_keys(forms[i].key))))
        exact = [self._exact(t, "key", forms[i].key, allowed) for i in live]
        blocked = self._block(t, codes, sound, allowed, LINK_POOL, LINK_BUDGET)[0]
        pool = np.union1d(blocked, np.concatenate(exact)).astype(np.int32)
        keys = t.keys.take(pool)
        ents = t.entry_ent[pool]
        pop = t.ent_pop[ents]
        whole = None if partial else process.cdist(
            [forms[i].key for i in live], keys, scorer=fuzz.ratio, dtype=np.float32) / 100
        words = [key.split() for key in keys] if partial else []
        starts: dict[int, list[str]] = {}  # word count -> each key's first that many words
        for row, (i, exact_i) in enumerate(zip(live, exact, strict=True)):
            n = len(forms[i].key.split())
            if partial and n not in starts:
                starts[n] = [" ".join(w[:n]) for w in words]
            against = starts[n] if partial else keys
            sim = whole[row] if whole is not None else process.cdist(
                [forms[i].key], against, scorer=fuzz.ratio, dtype=np.float32)[0] / 100
            text = np.where(np.isin(pool, exact_i), np.float32(1.0), sim)
            order = np.lexsort((pool, ents, -(text + 0.01 * pop)))
            _, first = np.unique(ents[order], return_index=True)
            best = order[np.sort(first)[:k]].tolist()
            out[i] = [self._match(t, int(pool[j]), float(text[j]), {
                "text": float(text[j]), "popularity": float(pop[j]),
                "edits": float(OSA.distance(forms[i].key, against[j]))}) for j in best]
        return out

    @staticmethod
    def _sound(t: Tables, codes: Sequence[str]) -> list[I32]:
        """Posting lists of the given sound keys that the index knows."""
        return [t.sound_post[t.sound_off[j]:t.sound_off[j + 1]]
                for j in (t.sound_ids.get(c) for c in codes) if j is not None]

    @staticmethod
    def _block(t: Tables, codes: I32, sound: list[I32], allowed: Mask | None,
               pool: int = POOL, budget: int = BUDGET) -> tuple[I32, F32]:
        """The POOL entries sharing most of the trigrams `codes` and sound keys, with their share
        of the weight counted. Lists go rarest first until BUDGET postings: common grams say
        little and cost most."""
        lists = [(t.gram_post[t.gram_off[c]:t.gram_off[c + 1]], 1) for c in codes.tolist()]
        lists = sorted([(p, w) for p, w in lists + [(s, 2) for s in sound] if len(p)],
                       key=lambda pw: len(pw[0]))
        chosen: list[I32] = []
        weight = total = 0
        for post, w in lists:
            if chosen and total + len(post) > budget:
                break
            chosen += [post] * w
            weight, total = weight + w, total + len(post)
        if not chosen:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        every = np.sort(np.concatenate(chosen))
        first = np.flatnonzero(np.diff(every, prepend=-1))  # where each entry's run starts
        uniq, counts = every[first], np.diff(np.append(first, len(every)))
        if allowed is not None:
            keep = allowed[t.entry_kind[uniq]]
            uniq, counts = uniq[keep], counts[keep]
        if len(uniq) > pool:
            take = FuzzyIndex._cut(t, uniq, counts, len(codes), pool)
            uniq, counts = uniq[take], counts[take]
        return uniq, (counts / weight).astype(np.float32)

    @staticmethod
    def _cut(t: Tables, uniq: I32, counts: I64, n_grams: int, pool: int) -> I64:
        """Positions of the `pool` best by overlap. Only entries tied at the cut are ranked further
        (gram count near the query's, then popularity): gathers over all would cost more."""
        at_least = np.cumsum(np.bincount(counts)[::-1])[::-1]  # [c]: how many have >= c
        cut = int(np.flatnonzero(at_least >= pool)[-1])
        sure, tied = np.flatnonzero(counts > cut), np.flatnonzero(counts == cut)
        need = pool - len(sure)
        if len(tied) > need:
            gap = np.abs(t.entry_ngrams[uniq[tied]].astype(np.int32) - n_grams)
            tied = tied[np.argpartition(gap * 256 - t.entry_pop8[uniq[tied]], need - 1)[:need]]
        return np.concatenate([sure, tied])

    @staticmethod
    def _top_rows(t: Tables, prefix: str, allowed: Mask | None, k: int) -> I32:
        """The best word-start row starting with `prefix` of each of the k best entities."""
        b = prefix.encode()[:SUGGEST_WIDTH]
        lo = int(np.searchsorted(t.ws_sort, b))
        hi = int(np.searchsorted(t.ws_sort, b[:-1] + bytes([b[-1] + 1])))  # ASCII: no overflow
        rows = np.arange(lo, hi, dtype=np.int32)
        if allowed is not None:
            rows = rows[allowed[t.ws_kind[lo:hi]]]
        if len(prefix) > SUGGEST_WIDTH:  # longer than the sort key: check the rest
            entries, offs = t.ws_entry[rows], t.ws_off[rows].tolist()
            heads = ["the " if o else "" for o in t.key_off[entries].tolist()]
            fulls = [h + s for h, s in zip(heads, t.keys.take(entries), strict=True)]
            rows = rows[[f[o:].startswith(prefix) for f, o in zip(fulls, offs, strict=True)]]
        m = min(len(rows), 4 * k + 16)  # a few rows spare: an entity may have several
        while True:
            best = rows if m >= len(rows) else rows[np.argpartition(t.ws_rank[rows], m - 1)[:m]]
            best = best[np.argsort(t.ws_rank[best])]
            _, first = np.unique(t.entry_ent[t.ws_entry[best]], return_index=True)
            if len(first) >= k or m >= len(rows):
                return best[np.sort(first)[:k]]
            m *= 4

    @staticmethod
    def _cheap(t: Tables, key: str, pool: I32, contain: F32) -> tuple[I32, list[str]]:
        """Keep RERANK entries by Indel ratio or gram containment (WRatio's whole-string and
        substring cases at 1/25 of its cost), popularity breaking near-ties."""
        keys = t.keys.take(pool)
        if len(pool) <= RERANK:
            return pool, keys
        ratio = process.cdist([key], keys, scorer=fuzz.ratio, dtype=np.float32)[0] / 100
        cheap = np.maximum(ratio, 0.95 * contain) + 0.02 * t.ent_pop[t.entry_ent[pool]]
        top = np.argpartition(-cheap, RERANK - 1)[:RERANK]
        return pool[top], [keys[i] for i in top.tolist()]

    def _final(self, t: Tables, key: str, pool: I32, keys: list[str], sound: list[I32],
               exact_key: Mask, exact_compact: Mask, k: int) -> list[Match]:
        text = _text_scores(key, keys)
        hits = np.zeros(len(pool), np.float32)
        for post in sound:  # posting lists are sorted: membership by binary search
            hits += post[np.minimum(np.searchsorted(post, pool), len(post) - 1)] == pool
        alike = hits / max(len(sound), 1)
        ents = t.entry_ent[pool]
        pop = t.ent_pop[ents]
        score = FUZZY_CAP * (W_TEXT * text + W_SOUND * alike + W_POP * pop)
        score = np.where(exact_compact, EXACT_COMPACT + W_POP * pop, score)
        score = np.where(exact_key, EXACT_KEY + W_POP * pop, score)
        order = np.lexsort((pool, ents, -score))  # best entry per entity; ties by entity id
        _, first = np.unique(ents[order], return_index=True)
        return [self._match(t, int(pool[i]), float(score[i]),
                            {"text": float(text[i]), "sound": float(alike[i]),
                             "popularity": float(pop[i]), "exact": float(exact_key[i]),
                             "exact_compact": float(exact_compact[i])})
                for i in order[np.sort(first)[:k]].tolist()]

    @staticmethod
    def _match(t: Tables, entry: int, score: float, extra: dict[str, float]) -> Match:
        return Match(t.ent_ids[int(t.entry_ent[entry])], KINDS[t.entry_kind[entry]],
                     min(max(score, 0.0), 1.0), t.texts[entry], bool(t.entry_alias[entry]), extra)


class FuzzyRetriever:
    """Retriever over a `FuzzyIndex`; never reads the store while serving."""

    name = "fuzzy"

    def __init__(self, index: FuzzyIndex) -> None:
        self.index = index

    @classmethod
    def build(cls, store: GraphStore) -> FuzzyRetriever:
        return cls(FuzzyIndex.build(store))

    def refresh(self, store: GraphStore) -> bool:
        """Rebuild the index if the catalog changed (see `FuzzyIndex.refresh`)."""
        return self.index.refresh(store)

    def retrieve(self, query: Query, k: int) -> list[Candidate]:
        return [Candidate(m.entity_id, m.score, self.name, m.reason, m.extra)
                for m in self.index.search(query.text, k, query.kinds)]
