"""Query generators for the development set: typos, name forms, sound-alikes, and a fold.

Every generator is a pure function of (text, seeded rng) that returns the variant and a short
note of what it did, or None when it does not apply. They model how people mistype and restyle
names (keyboard slips, library-catalog order, band forms, dropped accents, spelling by ear,
spacing); none reads the catalog or any retriever, so none can be tuned to one of them.
`fold` is the evaluation's own notion of "the same name" (for relevant duplicates and for
flagging queries that are exact after simple folding); it is deliberately independent of
`retrievers.normalize`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Final

from anyascii import anyascii

Variant = tuple[str, str] | None
Generator = Callable[[str, random.Random], Variant]

_ROWS: Final = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, str]:
    """QWERTY neighbours: same row, and the rows above and below, offset as on a keyboard."""
    out = {}
    for r, row in enumerate(_ROWS):
        for c, ch in enumerate(row):
            near = [row[j] for j in (c - 1, c + 1) if 0 <= j < len(row)]
            for dr in (-1, 1):
                if 0 <= r + dr < len(_ROWS):
                    other = _ROWS[r + dr]
                    near += [other[j] for j in (c - (dr > 0), c + (dr < 0))
                             if 0 <= j < len(other)]
            out[ch] = "".join(dict.fromkeys(near))
    return out


NEIGHBOURS: Final = _neighbours()
_WORD: Final = re.compile(r"[a-z0-9]+")
_LEADING_ARTICLE: Final = re.compile(r"^(the|a)\s+(.+)$", re.IGNORECASE)
_ENSEMBLE: Final = re.compile(r"^(.+?)\s+(?:&|and|\+)\s+(?:the|his|her)\s+\S.*$", re.IGNORECASE)
_PERSON: Final = re.compile(r"^(?!(?:The|A|An)\s)[A-Z][a-z]+(?:\s+[A-Z][a-z.]+){1,2}$")
BAND_SUFFIXES: Final = ("and His Orchestra", "& His Orchestra", "and His Band", "& The Band",
                        "Orchestra", "Band")
GERMANIC: Final = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ø": "oe", "å": "aa", "æ": "ae",
                   "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "Ø": "Oe", "Å": "Aa", "Æ": "Ae"}
# Spellings by ear: (pattern, replacement). Each is a common English sound-alike respelling.
SOUND_RULES: Final = (
    ("ph", "f"), ("f", "ph"), ("ck", "k"), ("c(?=[aou])", "k"), ("k", "c"), ("qu", "kw"),
    ("x", "ks"), ("(?<=[aeiou])s(?=[aeiou])", "z"), ("z", "s"), ("y\\b", "ie"), ("ie\\b", "y"),
    ("i(?=[^aeiou]\\b)", "y"), ("y(?=[^aeiou])", "i"), ("ee", "ea"), ("ea", "ee"), ("oo", "u"),
    ("ou", "ow"), ("er\\b", "or"), ("or\\b", "er"), ("ar\\b", "er"), ("ai", "ay"), ("ay", "ai"),
    ("ight", "ite"), ("tion", "shun"), ("([bdfglmnprst])\\1", "\\1"),
    ("(?<=[aeiou])([lnrst])(?=[aeiou])", "\\1\\1"), ("e\\b", ""), ("wh", "w"), ("gh\\b", ""),
    ("ey\\b", "y"), ("ie", "ei"), ("ei", "ie"), ("s\\b", "z"), ("th", "t"))


def fold(text: str, *, compact: bool = True) -> str:
    """Transliterated, lower case, "&"/"+" read "and", apostrophes and a leading "the" dropped,
    and (`compact`) spaces removed: "The Beatles", "Beatles, The" and "beatles" fold alike."""
    t = anyascii(text).lower().replace("&", " and ").replace("+", " and ")
    t = re.sub(r"['`]", "", t)
    words = _WORD.findall(t)
    if len(words) >= 2 and words[-1] == "the" and "," in t:
        words = ["the", *words[:-1]]
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return ("" if compact else " ").join(words)


def core_title(name: str) -> str:
    """What people type of a title: no "(feat. X)", "[Live]" or " - 2008 Remaster"."""
    core = re.sub(r"\s*[(\[][^)\]]*[)\]]", "", name).split(" - ")[0].strip()
    return core if len(_WORD.findall(core.lower())) else name


def casing(text: str, rng: random.Random) -> str:
    """Most people type lower case."""
    return text.lower() if rng.random() < 0.6 else text


def _letters(text: str) -> list[int]:
    return [i for i, c in enumerate(text) if c.isalpha()]


def _edit(text: str, rng: random.Random) -> tuple[str, str]:
    """One keyboard slip at a letter: neighbour key, dropped, extra neighbour, swapped, doubled.
    The first letter is hit a third as often: people rarely get it wrong."""
    spots = _letters(text)
    weights = [1 / 3 if i == spots[0] else 1.0 for i in spots]
    i = rng.choices(spots, weights)[0]
    op = rng.choices(("sub", "del", "ins", "swap", "double"), (4, 2, 1.5, 1.5, 1))[0]
    c = text[i].lower()
    near = NEIGHBOURS.get(c, c)
    if op == "sub":
        return text[:i] + rng.choice(near) + text[i + 1:], f"sub {c}@{i}"
    if op == "del":
        return text[:i] + text[i + 1:], f"del {c}@{i}"
    if op == "ins":
        return text[:i] + rng.choice(near) + text[i:], f"ins @{i}"
    if op == "swap" and i + 1 < len(text) and text[i + 1].isalpha() and text[i + 1] != text[i]:
        return text[:i] + text[i + 1] + text[i] + text[i + 2:], f"swap @{i}"
    return text[:i] + text[i] + text[i:], f"double {c}@{i}"


def typo(n: int, min_letters: int) -> Generator:
    def gen(text: str, rng: random.Random) -> Variant:
        if len(_letters(text)) < min_letters:
            return None
        notes = []
        for _ in range(n):
            text, note = _edit(text, rng)
            notes.append(note)
        return text, ", ".join(notes)
    return gen


def the_comma(text: str, rng: random.Random) -> Variant:
    """"The Dead Milkmen" -> "Dead Milkmen, The" (library-catalog order)."""
    m = _LEADING_ARTICLE.match(text)
    if m is None:
        return None
    return f"{m[2]}, {m[1]}", "article moved to the end"


def ensemble(text: str, rng: random.Random) -> Variant:
    """"Joan Jett & The Blackhearts" -> "Joan Jett"; "Count Basie" -> "Count Basie and His
    Orchestra": the band form added or taken away."""
    m = _ENSEMBLE.match(text)
    if m is not None and len(_letters(m[1])) >= 4:
        return m[1], "band dropped"
    if _PERSON.match(text):
        suffix = rng.choice(BAND_SUFFIXES)
        return f"{text} {suffix}", f"+ {suffix}"
    return None


def translit(text: str, rng: random.Random) -> Variant:
    """Accents dropped or spelled out (ö -> o or oe), other scripts romanized."""
    if text.isascii():
        return None
    if any(c in GERMANIC for c in text) and rng.random() < 0.5:
        return "".join(GERMANIC.get(c, c) for c in text), "umlauts spelled out"
    return str(anyascii(text)), "romanized"


def soundalike(text: str, rng: random.Random) -> Variant:
    """One or two respellings by ear ("ph" -> "f", "ck" -> "k", "-er" -> "-or", ...)."""
    low, notes = text.lower(), []
    for _ in range(rng.choice((1, 1, 2))):
        rules = [(p, r) for p, r in SOUND_RULES if re.search(p, low)]
        if not rules:
            break
        pat, rep = rng.choice(rules)
        spots = list(re.finditer(pat, low))
        m = rng.choice(spots)
        low = low[:m.start()] + m.expand(rep) + low[m.end():]
        notes.append(f"{pat}->{rep}")
    if not notes or not low.strip():
        return None
    return low, ", ".join(notes)


def spacing(text: str, rng: random.Random) -> Variant:
    """Words run together ("pinkfloyd") or one split ("cold play"), punctuation dropped."""
    words = _WORD.findall(anyascii(text).lower())
    if len(words) >= 2 and rng.random() < 0.6:
        i = rng.randrange(len(words) - 1)
        return " ".join([*words[:i], words[i] + words[i + 1], *words[i + 2:]]), f"joined @{i}"
    long = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not long:
        return None
    i = rng.choice(long)
    cut = rng.randrange(3, len(words[i]) - 2)
    split = words[i][:cut] + " " + words[i][cut:]
    return " ".join([*words[:i], split, *words[i + 1:]]), f"split {words[i]}@{cut}"


ARTIST_GENERATORS: Final[dict[str, Generator]] = {
    "typo1": typo(1, 3), "typo2": typo(2, 8), "soundalike": soundalike, "spacing": spacing,
    "the_comma": the_comma, "ensemble": ensemble, "translit": translit}
# Queries per generator in the artist-variant set (fewer where fewer names qualify).
ARTIST_QUOTAS: Final = {"typo1": 450, "typo2": 300, "soundalike": 350, "spacing": 250,
                        "the_comma": 200, "ensemble": 250, "translit": 200}


def partial(text: str, rng: random.Random) -> Variant:
    """Part of a long name: its first words, or the name without one of its later words."""
    words = text.split()
    if len(words) < 3:
        return None
    if rng.random() < 0.5:
        n = rng.randrange(2, len(words))
        return " ".join(words[:n]), f"first {n} words"
    i = rng.randrange(1, len(words))
    return " ".join(words[:i] + words[i + 1:]), f"word {i} dropped"
