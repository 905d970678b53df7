"""The fuzzy name index's tables: entries, trigram and sound-key postings, exact and prefix keys."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

from graph.model import Entity, Kind
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
CHUNK: Final = 100_000  # names per vectorized trigram pass at build
SUGGEST_WIDTH: Final = 16  # sort-key bytes per word start; longer prefixes are verified
NAME_START_BONUS: Final = 0.25  # type-ahead: a match at the name's start beats one mid-name


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


def crc(s: str) -> int:
    # CRC-32, not hash(): str hashes differ between processes, and an index may be pickled.
    return zlib.crc32(s.encode())


def _hash_table(strings: Sequence[str]) -> tuple[U32, I32]:
    """Sorted CRCs and their entries: exact lookup in 8 bytes an entry, not a dict's ~100.
    CRC-32 collides now and then at a million names; lookups compare the strings anyway."""
    hashes = np.fromiter(map(crc, strings), np.uint32, len(strings))
    order = np.argsort(hashes, kind="stable").astype(np.int32)
    return hashes[order], order



@dataclass(frozen=True, slots=True, eq=False)
class Tables:
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


def build_tables(entities: Iterable[Entity], version: int) -> Tables:
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
    return Tables(
        version, _Pool(e.id for e in ents), pop, entry_ent,
        np.array([r[1] for r in rows], np.bool_), ngrams, kind[entry_ent],
        np.round(pop[entry_ent] * 255).astype(np.uint8),
        np.array([f.key_offset for f in forms], np.uint8), _Pool(r[2] for r in rows),
        _KeyPool([f.key for f in forms]), gram_off, gram_post, *_sound_index(forms), exact,
        ws_sort, ws_entry, ws_off, kind[entry_ent[ws_entry]], ws_rank)

