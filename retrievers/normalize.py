"""Name normalization for fuzzy matching: folded, article-free and compact forms; match keys."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Final, NamedTuple

import jellyfish
import numpy as np
import numpy.typing as npt
from anyascii import anyascii

# Symbols (emoji, dingbats, (c), TM) carry no name: anyascii would spell them out as ":blue_heart:".
_DROP_CATEGORIES: Final = frozenset({"So", "Sk", "Co", "Cs", "Cn"})
_DOLLAR: Final = re.compile(r"(?<=[a-z])\$|\$(?=[a-z])")  # Ke$ha, A$AP: a dollar read as "s"
_AND: Final = re.compile(r"\s*[&+]\s*|(?<![a-z0-9])'?n'(?![a-z0-9])|(?<![a-z0-9])'n(?![a-z0-9])")
_APOSTROPHE: Final = re.compile(r"['`\u00b4]")  # "Don't" -> "dont", not "don t"
# A dot after a lone letter is an initialism (R.E.M., B.B. King): join it rather than split it.
_INITIAL: Final = re.compile(r"(?<![a-z0-9])([a-z])\.")
# "Beatles, The" and "Day To Remember, A": library-catalog order, moved back to the front.
_TRAILING_ARTICLE: Final = re.compile(r"^(.+?)\s*,\s*(the|a|an)\s*$")
_TRAILING_ARTICLE_ANY_CASE: Final = re.compile(_TRAILING_ARTICLE.pattern, re.IGNORECASE)
_NON_WORD: Final = re.compile(r"[^a-z0-9]+")
# Only "the" is dropped from the front: "a"/"an" start too many real names ("A-ha", "A Tribe").
LEADING_ARTICLE: Final = "the"
MIN_PHONETIC_LEN: Final = 4  # metaphone of "sia" is "X": shorter tokens would collide wholesale
# Function words sound alike in every title: as sound keys they only add noise and long lists.
SOUND_STOPWORDS: Final = frozenset({"the", "and", "for", "with", "feat", "from", "you", "your"})
ALPHABET: Final = " abcdefghijklmnopqrstuvwxyz0123456789"  # all a normalized form may hold
N_TRIGRAMS: Final = len(ALPHABET) ** 3
_CODE: Final = np.zeros(256, np.int32)
_CODE[np.frombuffer(ALPHABET.encode(), np.uint8)] = np.arange(len(ALPHABET))


class NameForms(NamedTuple):
    """The forms of one name used for matching (all lowercase ASCII: [a-z0-9 ] only).

    `full` keeps a leading "the" (type-ahead matches what users start typing); `key` drops it
    ("the beatles" and "beatles" are the same name); `compact` is `key` without spaces, so "ACDC",
    "AC DC" and "AC/DC" meet. `key` is always the tail of `full`, starting at `key_offset`.
    """

    full: str
    key: str
    compact: str
    key_offset: int


def _fold(text: str) -> str:
    """Transliterate to lowercase ASCII, dropping symbol characters first."""
    if not text.isascii():
        text = "".join(ch for ch in text if unicodedata.category(ch) not in _DROP_CATEGORIES)
        text = anyascii(text)
    return text.casefold()


def normalize(text: str) -> NameForms:
    """Case, diacritics, script, punctuation, "&"/"and" and articles folded; see `NameForms`."""
    folded = _fold(text)
    # Each rewrite only where its character occurs: most names need none (2x faster builds).
    if "$" in folded:
        folded = _DOLLAR.sub("s", folded)
    if "&" in folded or "+" in folded or "'" in folded:
        folded = _AND.sub(" and ", folded)
    if "'" in folded or "`" in folded or "\u00b4" in folded:
        folded = _APOSTROPHE.sub("", folded)
    if "." in folded:
        folded = _INITIAL.sub(r"\1", folded)
    moved = _TRAILING_ARTICLE.match(folded) if "," in folded else None
    if moved:
        folded = f"{moved.group(2)} {moved.group(1)}"
    full = " ".join(_NON_WORD.sub(" ", folded).split())
    offset = len(LEADING_ARTICLE) + 1
    if full.startswith(LEADING_ARTICLE + " ") and len(full) > offset:
        key = full[offset:]
    else:
        key, offset = full, 0
    return NameForms(full, key, key.replace(" ", ""), offset)


def article_first(text: str) -> str:
    """"Beatles, The" -> "The Beatles": a library-catalog article put back in front."""
    moved = _TRAILING_ARTICLE_ANY_CASE.match(text.strip()) if "," in text else None
    return f"{moved.group(2)} {moved.group(1)}" if moved else text


_VERSION_PART: Final = re.compile(r"\s*[(\[][^)\]]*[)\]]")


def core_title(name: str) -> str:
    """What people type of a title: no "(feat. X)", "[Live]" or " - 2008 Remaster"."""
    core = _VERSION_PART.sub("", name).split(" - ")[0].strip()
    return core if any(ch.isalnum() for ch in core) else name


@lru_cache(maxsize=1 << 16)
def phonetic(token: str) -> str | None:
    """The Metaphone key of one normalized token, or None when it should not get one.

    Metaphone rather than NYSIIS or Soundex: it models English spelling (soft "c", "ph", "sh",
    silent letters), so "beyonse"/"beyonce" and "tayler"/"taylor" agree where NYSIIS keeps
    vowel spellings apart, and it keeps every consonant where Soundex truncates to four.
    Tokens with digits, under four letters (trigrams cover those) or function words get none.
    """
    if len(token) < MIN_PHONETIC_LEN or not token.isalpha() or token in SOUND_STOPWORDS:
        return None
    key = jellyfish.metaphone(token)
    return str(key) if key else None


def phonetic_keys(key: str) -> list[str]:
    """The distinct Metaphone keys of a normalized key's tokens, in token order."""
    seen: dict[str, None] = {}
    for token in key.split():
        code = phonetic(token)
        if code is not None:
            seen.setdefault(code)
    return list(seen)


def gram_text(forms: NameForms) -> str:
    """What trigrams are taken from: the key and, if different, the compact form, each padded
    with spaces so that word starts and ends make grams of their own."""
    return f" {forms.key} " + (f" {forms.compact} " if forms.compact != forms.key else "")


def trigrams(texts: Sequence[str]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Trigram codes (0..N_TRIGRAMS-1) of `gram_text`s, and which text each came from.

    Vectorized over all texts at once: a Python loop over the grams of a million names would take
    most of an index build."""
    lens = np.fromiter(map(len, texts), np.int64, len(texts))
    sym = _CODE[np.frombuffer("".join(texts).encode(), np.uint8)]
    codes = sym[:-2] * len(ALPHABET) ** 2 + sym[1:-1] * len(ALPHABET) + sym[2:]
    valid = np.ones(len(codes), np.bool_)
    ends = np.cumsum(lens)
    for back in (1, 2):  # the grams starting at a text's last two chars run into the next text
        valid[(ends - back)[(ends - back >= 0) & (ends - back < len(codes))]] = False
    owner = np.repeat(np.arange(len(texts), dtype=np.int32), lens)[:len(codes)]
    return codes[valid], owner[valid]
