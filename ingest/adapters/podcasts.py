"""Podcast directory excerpt (December 2017): podcasts, episodes and their iTunes categories."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Final

from ingest.adapters.common import (
    AdapterResult,
    Record,
    clean_description,
    clean_name,
    genre_id,
    read_csv,
    record,
    unique,
    valid_date,
)

SOURCE: Final = Path("podcasts")
# The iTunes top-level podcast categories of 2017. The data set lists a podcast's categories in
# no fixed order ("Christianity | Religion & Spirituality" as often as the reverse), so the
# hierarchy cannot be read from the position of a part; every other category is a subcategory.
TOP_CATEGORIES: Final = frozenset({
    "Arts", "Business", "Comedy", "Education", "Games & Hobbies", "Government & Organizations",
    "Health", "Kids & Family", "Music", "News & Politics", "Religion & Spirituality",
    "Science & Medicine", "Society & Culture", "Sports & Recreation", "TV & Film", "Technology"})
# The data set names languages in English; the feed wants language tags.
LANGUAGES: Final = {
    "english": "en", "german": "de", "spanish": "es", "french": "fr", "dutch": "nl",
    "italian": "it", "russian": "ru", "portuguese": "pt", "chinese": "zh", "turkish": "tr",
    "swedish": "sv", "polish": "pl", "japanese": "ja", "korean": "ko", "danish": "da",
    "norwegian": "no", "finnish": "fi", "czech": "cs", "greek": "el", "hebrew": "he",
    "arabic": "ar", "hindi": "hi", "indonesian": "id", "hungarian": "hu", "romanian": "ro"}
_LANGUAGE_TAG: Final = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
_LOOKS_HTML: Final = re.compile(r"<[A-Za-z/!]|&[#A-Za-z0-9]+;")
MAX_SECONDS: Final = 100 * 3600  # the feed's limit on a duration


def language_tag(name: str) -> str | None:
    name = name.strip()
    if name.lower() in LANGUAGES:
        return LANGUAGES[name.lower()]
    return name if _LANGUAGE_TAG.match(name) else None


def _parts(categories: str) -> list[str]:
    return unique(p for p in (clean_name(x) for x in categories.split("|")) if p)


def category_parents(rows: list[dict[str, str]]) -> dict[str, str]:
    """Subcategory -> the top-level category it is listed with most often (ties by name)."""
    together: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        parts = _parts(row["categories"])
        tops = [p for p in parts if p in TOP_CATEGORIES]
        for sub in parts:
            if sub not in TOP_CATEGORIES:
                together[sub].update(tops)
    return {sub: min(c, key=lambda t: (-c[t], t)) for sub, c in together.items() if c}


def _podcast(row: dict[str, str], skips: Counter[str]) -> Record | None:
    name = clean_name(row["title"])
    if not name:
        skips["podcast without a title"] += 1
        return None
    description = row["description"]
    language = language_tag(row["language"])
    if row["language"].strip() and language is None:
        skips["unknown language (field dropped)"] += 1
    return record(
        "podcast", "po:" + row["id"].strip(), name,
        description=clean_description(description, html=bool(_LOOKS_HTML.search(description))),
        publisher=clean_name(row["author"]),
        genres=[genre_id(p) for p in _parts(row["categories"])], language=language)


def _duration_ms(text: str, skips: Counter[str]) -> int | None:
    try:
        seconds = int(text.strip())
    except ValueError:
        skips["unparsable audio_length (field dropped)"] += 1
        return None
    if not 0 < seconds <= MAX_SECONDS:
        # A length of 0 means the directory did not know it, not an empty episode.
        skips["audio_length zero or out of range (field dropped)"] += 1
        return None
    return seconds * 1000


def _episodes(rows: list[dict[str, str]], podcasts: set[str],
              skips: Counter[str]) -> list[Record]:
    out, seen = [], set()
    for row in rows:
        pid, name = "po:" + row["podcast_id"].strip(), clean_name(row["title"])
        date = valid_date(row["pub_date"].strip()[:10])
        if pid not in podcasts:
            skips["episode of an unknown podcast"] += 1
        elif not name:
            skips["episode without a title"] += 1
        elif (pid, name, date) in seen:
            skips["duplicate episode (same podcast, title and date)"] += 1
        else:
            seen.add((pid, name, date))
            out.append(record(
                "episode", "ep:" + row["id"].strip(), name, podcast=pid,
                description=clean_description(row["description"], html=True),
                duration_ms=_duration_ms(row["audio_length"], skips), release_date=date))
    return out


def convert_podcasts(data_dir: Path) -> AdapterResult:
    """Podcast, episode and category-genre records; episodes keep the data set's episode id."""
    result = AdapterResult()
    rows = list(read_csv(data_dir / SOURCE / "podcasts.csv"))
    parents = category_parents(rows)
    genres: dict[str, Record] = {}
    podcasts = []
    for row in rows:
        podcast = _podcast(row, result.skips)
        if podcast is None:
            continue
        podcasts.append(podcast)
        for part in _parts(row["categories"]):
            parent = parents.get(part)
            genres.setdefault(genre_id(part), record(
                "genre", genre_id(part), part, parent=genre_id(parent) if parent else None))
    episodes = _episodes(list(read_csv(data_dir / SOURCE / "episodes.csv")),
                         {str(p["id"]) for p in podcasts}, result.skips)
    result.records = [*genres.values(), *podcasts, *episodes]
    return result
