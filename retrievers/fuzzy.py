"""Fuzzy names: n-gram and sound-key blocking, rapidfuzz reranking, and prefix type-ahead."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Final

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from graph.model import Entity, Kind
from graph.store import GraphStore
from retrievers.base import Candidate, Query
from retrievers.normalize import (
    N_TRIGRAMS,
    NameForms,
    gram_text,
    normalize,
    phonetic_keys,
    trigrams,
)

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
Mask = npt.NDArray[np.bool_]

KINDS: Final = tuple(Kind)
POOL: Final = 2_000  # entries kept by n-gram overlap
RERANK: Final = 200  # entries scored with WRatio (~3 us each, 25x the Indel ratio)
BUDGET: Final = 150_000  # postings counted per query; rarer lists first, common ones skipped
SHORT: Final = 3  # keys this short have almost no trigrams: word-prefix matches join the pool
SHORT_POOL: Final = 200
CHUNK: Final = 100_000  # names per vectorized trigram pass at build
SUGGEST_WIDTH: Final = 16  # sort-key bytes per word start; longer prefixes are verified
NAME_START_BONUS: Final = 0.25  # type-ahead: a match at the name's start beats one mid-name
W_TEXT, W_SOUND, W_POP = 0.88, 0.07, 0.05  # fuzzy score = FUZZY_CAP * weighted sum
EXACT_KEY, EXACT_COMPACT, FUZZY_CAP = 0.95, 0.90, 0.89  # (+ W_POP * popularity): exact first


class _Pool:
    """Many strings in one UTF-8 buffer with offsets: ~1 byte per char, no object per string."""

    def __init__(self, items: Iterable[str]) -> None:
        parts = [s.encode() for s in items]
        self.buf = b"".join(parts)
        self.starts = np.zeros(len(parts) + 1, np.int64)
        np.cumsum([len(b) for b in parts], out=self.starts[1:])
        self.nbytes = len(self.buf) + self.starts.nbytes

    def __getitem__(self, i: int) -> str:
        return self.buf[self.starts[i]:self.starts[i + 1]].decode()


class _KeyPool:
    """ASCII strings (normalized keys) in one str, so slices need no decoding. ASCII takes a byte
    a char in a str; other text could widen the whole str to 4, hence UTF-8 bytes in `_Pool`."""

    def __init__(self, items: Sequence[str]) -> None:
        self.text = "".join(items)
        self.starts = np.zeros(len(items) + 1, np.int64)
        np.cumsum([len(s) for s in items], out=self.starts[1:])
        self.nbytes = len(self.text) + self.starts.nbytes

    def take(self, idx: I32) -> list[str]:
        text, ends = self.text, self.starts[idx + 1].tolist()
        return [text[s:e] for s, e in zip(self.starts[idx].tolist(), ends, strict=True)]


def _csr(keys: I32 | I64, owners: I32 | I64, n_keys: int, n_owners: int) -> tuple[I64, I32]:
    """Posting lists: owners of key j are postings[offsets[j]:offsets[j+1]], ascending, unique.
    One int64 array of (key, owner) pairs, sorted and rewritten in place: few temporaries."""
    pairs = keys.astype(np.int64) * n_owners + owners
    pairs.sort()  # np.unique would hash: 10x slower here
    keep = np.ones(len(pairs), np.bool_)
    np.not_equal(pairs[1:], pairs[:-1], out=keep[1:])
    pairs = pairs[keep]
    offsets = np.searchsorted(pairs, np.arange(n_keys + 1, dtype=np.int64) * n_owners)
    np.remainder(pairs, n_owners, out=pairs)
    return offsets, pairs.astype(np.int32)


def _crc(s: str) -> int:
    # CRC-32, not hash(): str hashes differ between processes, and an index may be pickled.
    return zlib.crc32(s.encode())


def _hash_table(strings: Sequence[str]) -> tuple[U32, I32]:
    """Sorted CRCs and their entries: exact lookup in 8 bytes an entry, not a dict's ~100.
    CRC-32 collides now and then at a million names; lookups compare the strings anyway."""
    hashes = np.fromiter(map(_crc, strings), np.uint32, len(strings))
    order = np.argsort(hashes, kind="stable").astype(np.int32)
    return hashes[order], order


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


@dataclass(frozen=True, slots=True, eq=False)
class _Tables:
    """Everything a query reads, built at once and swapped whole on refresh."""

    version: int
    ent_ids: _Pool  # entities in id order, so entity index order is id order
    ent_pop: F32
    entry_ent: I32  # entries: an entity's name, then its distinct aliases
    entry_alias: Mask
    entry_ngrams: npt.NDArray[np.int16]
    entry_kind: I8  # the entity's, copied so that blocking gathers once
    entry_pop8: U8  # the entity's popularity in 1/255ths
    key_off: U8  # NameForms.key_offset: full form = "the " + key where it is 4
    texts: _Pool  # original spelling, for reasons
    keys: _KeyPool
    gram_off: I64
    gram_post: I32
    sound_ids: dict[str, int]
    sound_off: I64
    sound_post: I32
    exact: dict[str, tuple[U32, I32]]  # "key"/"compact" -> _hash_table
    ws_sort: npt.NDArray[np.bytes_]  # word starts of full forms, by their first bytes
    ws_entry: I32
    ws_off: U8
    ws_kind: I8
    ws_rank: I32  # place in (popularity + name-start bonus desc, entity id, entry)

    @property
    def nbytes(self) -> int:
        values = [getattr(self, f.name) for f in fields(self)]
        values += [a for pair in self.exact.values() for a in pair]
        return sum(getattr(v, "nbytes", 0) for v in values) + 80 * len(self.sound_ids)


def _entries(ents: Sequence[Entity]) -> list[tuple[int, bool, str, NameForms]]:
    """(entity, is alias, text, forms): one per distinct normalized name or alias, none empty."""
    rows: list[tuple[int, bool, str, NameForms]] = []
    for i, e in enumerate(ents):
        seen: set[str] = set()
        for j, text in enumerate((e.name, *e.aliases)):
            f = normalize(text)
            if f.key and f.full not in seen:
                seen.add(f.full)
                rows.append((i, j > 0, text, f))
    return rows


def _gram_index(forms: Sequence[NameForms]) -> tuple[I64, I32]:
    codes, owners = [np.zeros(0, np.int32)], [np.zeros(0, np.int32)]
    for lo in range(0, len(forms), CHUNK):  # chunks bound the per-character temporaries
        c, o = trigrams([gram_text(f) for f in forms[lo:lo + CHUNK]])
        codes.append(c)
        owners.append(o + lo)
    return _csr(np.concatenate(codes), np.concatenate(owners), N_TRIGRAMS, max(1, len(forms)))


def _sound_index(forms: Sequence[NameForms]) -> tuple[dict[str, int], I64, I32]:
    ids: dict[str, int] = {}
    pairs = [(ids.setdefault(c, len(ids)), i) for i, f in enumerate(forms)
             for c in phonetic_keys(f.key)]
    keys, owners = np.array(pairs, np.int64).reshape(-1, 2).T
    return (ids, *_csr(keys, owners, len(ids), max(1, len(forms))))


def _word_starts(forms: Sequence[NameForms], pop: F32,
                 entry_ent: I32) -> tuple[npt.NDArray[np.bytes_], I32, U8, I32]:
    """Every word start of every full form, sorted by its next SUGGEST_WIDTH bytes, with its
    entry, offset, and rank for type-ahead."""
    fulls = _Pool(f.full for f in forms)
    buf, starts = np.frombuffer(fulls.buf, np.uint8), fulls.starts
    space = buf == 32
    word = ~space & np.concatenate(([True], space[:-1]))[:len(buf)]
    word[starts[:-1][np.diff(starts) > 0]] = True  # each name's first char (never a space)
    at = np.flatnonzero(word)
    entry = np.searchsorted(starts, at, side="right") - 1
    keep = at - starts[entry] < 256  # word starts past 255 chars: not worth wider offsets
    at, entry = at[keep], entry[keep]
    end = starts[entry + 1]
    cols = np.zeros((len(at), SUGGEST_WIDTH), np.uint8)
    for j in range(SUGGEST_WIDTH):  # column by column: no (rows x width) index temporary
        cols[:, j] = np.where(at + j < end, buf[np.minimum(at + j, len(buf) - 1)], 0)
    rows: npt.NDArray[np.bytes_] = cols.view(f"S{SUGGEST_WIDTH}").ravel()
    order = np.argsort(rows, kind="stable")
    entry, off = entry[order].astype(np.int32), (at - starts[entry])[order].astype(np.uint8)
    key_off = np.array([f.key_offset for f in forms], np.uint8)
    score = pop[entry] + np.where(off <= key_off[entry], NAME_START_BONUS, 0.0)
    by_rank = np.lexsort((entry, entry_ent[entry], -score.astype(np.float32)))
    rank = np.empty(len(by_rank), np.int32)
    rank[by_rank] = np.arange(len(by_rank), dtype=np.int32)  # unique, so top-m is exact
    return rows[order], entry.astype(np.int32), off, rank


def build_tables(entities: Iterable[Entity], version: int) -> _Tables:
    """Index entities (any order, unique ids) for `FuzzyIndex`."""
    ents = sorted(entities, key=lambda e: e.id)  # entity order is id order: ties break by id
    kind = np.array([KINDS.index(e.kind) for e in ents], np.int8)
    pop = np.clip(np.array([e.popularity for e in ents], np.float32), 0.0, 1.0)
    rows = _entries(ents)
    forms = [r[3] for r in rows]
    entry_ent = np.array([r[0] for r in rows], np.int32)
    gram_off, gram_post = _gram_index(forms)
    ngrams = np.bincount(gram_post, minlength=len(forms)).clip(max=2**15 - 1).astype(np.int16)
    ws_sort, ws_entry, ws_off, ws_rank = _word_starts(forms, pop[entry_ent], entry_ent)
    exact = {"key": _hash_table([f.key for f in forms]),
             "compact": _hash_table([f.compact for f in forms])}
    return _Tables(
        version, _Pool(e.id for e in ents), pop, entry_ent,
        np.array([r[1] for r in rows], np.bool_), ngrams, kind[entry_ent],
        np.round(pop[entry_ent] * 255).astype(np.uint8),
        np.array([f.key_offset for f in forms], np.uint8), _Pool(r[2] for r in rows),
        _KeyPool([f.key for f in forms]), gram_off, gram_post, *_sound_index(forms), exact,
        ws_sort, ws_entry, ws_off, kind[entry_ent[ws_entry]], ws_rank)


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

    def __init__(self, tables: _Tables) -> None:
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
        sound = [t.sound_post[t.sound_off[j]:t.sound_off[j + 1]]
                 for j in (t.sound_ids.get(c) for c in phonetic_keys(forms.key)) if j is not None]
        pool, contain = self._block(t, forms, sound, allowed)
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
    def _exact(t: _Tables, which: str, value: str, allowed: Mask | None) -> I32:
        """Entries whose key (`which` "key") or compact form ("compact") equals `value`."""
        hashes, entries = t.exact[which]
        h = _crc(value)
        found = entries[np.searchsorted(hashes, h, "left"):np.searchsorted(hashes, h, "right")]
        keys = t.keys.take(found)
        found = found[[(s if which == "key" else s.replace(" ", "")) == value for s in keys]]
        return found if allowed is None else found[allowed[t.entry_kind[found]]]

    @staticmethod
    def _block(t: _Tables, forms: NameForms, sound: list[I32],
               allowed: Mask | None) -> tuple[I32, F32]:
        """The POOL entries sharing most grams and sound keys, with their share of the weight
        counted. Lists go rarest first until BUDGET postings: common grams say little, cost most."""
        codes = np.unique(trigrams([gram_text(forms)])[0])
        lists = [(t.gram_post[t.gram_off[c]:t.gram_off[c + 1]], 1) for c in codes.tolist()]
        lists = sorted([(p, w) for p, w in lists + [(s, 2) for s in sound] if len(p)],
                       key=lambda pw: len(pw[0]))
        chosen: list[I32] = []
        weight = total = 0
        for post, w in lists:
            if chosen and total + len(post) > BUDGET:
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
        if len(uniq) > POOL:
            take = FuzzyIndex._cut(t, uniq, counts, len(codes))
            uniq, counts = uniq[take], counts[take]
        return uniq, (counts / weight).astype(np.float32)

    @staticmethod
    def _cut(t: _Tables, uniq: I32, counts: I64, n_grams: int) -> I64:
        """Positions of the POOL best by overlap. Only entries tied at the cut are ranked further
        (gram count near the query's, then popularity): gathers over all would cost more."""
        at_least = np.cumsum(np.bincount(counts)[::-1])[::-1]  # [c]: how many have >= c
        cut = int(np.flatnonzero(at_least >= POOL)[-1])
        sure, tied = np.flatnonzero(counts > cut), np.flatnonzero(counts == cut)
        need = POOL - len(sure)
        if len(tied) > need:
            gap = np.abs(t.entry_ngrams[uniq[tied]].astype(np.int32) - n_grams)
            tied = tied[np.argpartition(gap * 256 - t.entry_pop8[uniq[tied]], need - 1)[:need]]
        return np.concatenate([sure, tied])

    @staticmethod
    def _top_rows(t: _Tables, prefix: str, allowed: Mask | None, k: int) -> I32:
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
    def _cheap(t: _Tables, key: str, pool: I32, contain: F32) -> tuple[I32, list[str]]:
        """Keep RERANK entries by Indel ratio or gram containment (WRatio's whole-string and
        substring cases at 1/25 of its cost), popularity breaking near-ties."""
        keys = t.keys.take(pool)
        if len(pool) <= RERANK:
            return pool, keys
        ratio = process.cdist([key], keys, scorer=fuzz.ratio, dtype=np.float32)[0] / 100
        cheap = np.maximum(ratio, 0.95 * contain) + 0.02 * t.ent_pop[t.entry_ent[pool]]
        top = np.argpartition(-cheap, RERANK - 1)[:RERANK]
        return pool[top], [keys[i] for i in top.tolist()]

    def _final(self, t: _Tables, key: str, pool: I32, keys: list[str], sound: list[I32],
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
    def _match(t: _Tables, entry: int, score: float, extra: dict[str, float]) -> Match:
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
