"""Shared helpers for the data-set converters: ids, text cleaning, CSV reading, result type."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

from anyascii import anyascii

Record = dict[str, object]

MAX_NAME: Final = 500
MAX_DESCRIPTION: Final = 10_000
MAX_ALIASES: Final = 50
# Ids may be 200 characters; long transliterations (CJK names) are cut well below that and keep a
# hash so two long names that share a prefix still get different ids.
MAX_SLUG: Final = 120
ELLIPSIS: Final = "\u2026"

# Control, format, private-use, surrogate and unassigned code points: invisible junk in names
# ("Katy Perry\ue216" in Last.fm) that the feed rejects or that would split one artist in two.
_DROP_CATEGORIES: Final = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})
_WS = re.compile(r"\s+")
# Everything but printable ASCII: only these need a look at their Unicode category.
_ODD = re.compile(r"[^\x20-\x7e]")
_ALNUM = re.compile(r"[a-z0-9]+")
_APOSTROPHES = re.compile(r"['`]")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@dataclass(slots=True)
class AdapterResult:
    """One data set's records (artists and genres may repeat across sets) and its skip counts."""

    records: list[Record] = field(default_factory=list)
    skips: Counter[str] = field(default_factory=Counter)


def _replace_odd(m: re.Match[str]) -> str:
    c = m.group()
    if c.isspace():
        return " "
    return "" if unicodedata.category(c) in _DROP_CATEGORIES else c


def clean_text(text: str) -> str:
    """NFC, invisible characters removed, whitespace runs collapsed to one space, trimmed."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return _WS.sub(" ", _ODD.sub(_replace_odd, text)).strip()


def truncate(text: str, limit: int) -> str:
    """Cut to `limit` characters, at a word boundary when one is near, ending with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.9:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


@lru_cache(maxsize=1 << 16)
def clean_name(text: str) -> str:
    """A display name the feed accepts, or "" when nothing printable is left."""
    return truncate(clean_text(text), MAX_NAME)


class _TextExtractor(HTMLParser):
    _SKIP: Final = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        self.parts.append(" ")  # "<p>a</p><p>b</p>" must not read "ab"

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(text: str) -> str:
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def clean_description(text: str, *, html: bool = False) -> str:
    """Plain text of at most 10,000 characters ("" when empty); `html` strips tags and entities."""
    if html:
        text = html_to_text(text)
    return truncate(clean_text(text), MAX_DESCRIPTION)


def slugify(text: str) -> str:
    """"Beyoncé" -> "beyonce", "AC/DC" -> "ac-dc": transliterated, lowercase alnum runs.

    Apostrophes join rather than split, so "Destiny's Child" and "Destinys Child" meet.
    """
    ascii_text = anyascii(unicodedata.normalize("NFC", text)).lower()
    return "-".join(_ALNUM.findall(_APOSTROPHES.sub("", ascii_text)))


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


@lru_cache(maxsize=1 << 16)
def make_id(prefix: str, name: str) -> str:
    """`prefix` + slug of `name`; a hash stands in for names with no letters or digits ("!!!")."""
    slug = slugify(name)
    if not slug:
        return f"{prefix}x-{_short_hash(clean_text(name))}"
    if len(slug) > MAX_SLUG:
        return f"{prefix}{slug[:MAX_SLUG - 11].rstrip('-')}-{_short_hash(slug)}"
    return prefix + slug


def artist_id(name: str) -> str:
    return make_id("ar:", name)


def genre_id(name: str) -> str:
    return make_id("g:", name)


def valid_date(value: str) -> str | None:
    """The value when it is YYYY, YYYY-MM or YYYY-MM-DD and a real calendar date, else None."""
    value = value.strip()
    if not _DATE.match(value):
        return None
    parts = [int(p) for p in value.split("-")]
    try:
        dt.date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except ValueError:
        return None
    return value


def top(counts: Counter[str], n: int) -> list[str]:
    """The `n` most counted keys, ties broken by key so the result never depends on input order."""
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def unique(items: Iterable[str]) -> list[str]:
    """Items in first-seen order without repeats."""
    return list(dict.fromkeys(items))


def aliases_for(name: str, spellings: Iterable[str]) -> list[str]:
    """Spellings that differ from the chosen name, first-seen order, at most 50."""
    return [s for s in unique(spellings) if s and s != name][:MAX_ALIASES]


def record(kind: str, id_: str, name: str, **fields: object) -> Record:
    """A feed record in canonical key order, without the optional fields that are None or empty."""
    rec: Record = {"kind": kind, "id": id_, "name": name}
    for key, value in fields.items():
        if value is None or value == "" or value == [] or (key == "popularity" and value == 0.0):
            continue
        rec[key] = value
    return rec


def read_csv(path: Path, *, encoding: str = "utf-8-sig") -> Iterator[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as f:
        yield from csv.DictReader(f)


def read_tsv(path: Path, *, encoding: str = "utf-8") -> Iterator[list[str]]:
    """Rows of a tab-separated file after its header line; Last.fm quotes nothing."""
    with path.open(encoding=encoding, newline="") as f:
        next(f, None)
        for line in f:
            line = line.rstrip("\r\n")
            if line:
                yield line.split("\t")
