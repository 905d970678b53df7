"""The data-set converters on the real public data, and the fixtures made from them."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from graph.memory_store import MemoryStore
from graph.model import Kind, RelType
from ingest.adapters.catalog import (
    CONVERTERS,
    KIND_ORDER,
    SETS,
    ConvertReport,
    build_catalog,
    build_fixture,
    encode_feed,
    merge,
    write_feed,
)
from ingest.adapters.common import (
    AdapterResult,
    Record,
    artist_id,
    clean_description,
    clean_name,
    slugify,
)
from ingest.feed import FeedError, Upsert, decode
from ingest.pipeline import ingest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = REPO / "fixtures"
CATALOG_FIXTURE = FIXTURES / "catalog.jsonl"
BAD_RECORDS = FIXTURES / "bad_records.jsonl"


@pytest.fixture(scope="module")
def results() -> dict[str, AdapterResult]:
    """Each converter run once on the real data."""
    if not DATA.is_dir():
        pytest.skip(f"the public data sets are not at {DATA}")
    return {name: convert(DATA) for name, convert in CONVERTERS.items()}


@pytest.fixture(scope="module")
def built() -> tuple[list[Record], ConvertReport]:
    """The full catalog, built once (a second, independent conversion from `results`)."""
    if not DATA.is_dir():
        pytest.skip(f"the public data sets are not at {DATA}")
    return build_catalog(DATA)


def _kinds(result: AdapterResult) -> Counter[str]:
    return Counter(str(r["kind"]) for r in result.records)


def _strs(rec: Record, key: str) -> list[str]:
    value = rec.get(key, [])
    assert isinstance(value, list)
    return [str(v) for v in value]


def _decoded(records: list[Record]) -> list[Upsert]:
    out = []
    for line in encode_feed(records).splitlines():
        op = decode(line)
        assert isinstance(op, Upsert)
        out.append(op)
    return out


def _unresolved(ops: list[Upsert]) -> list[str]:
    kinds = {op.entity.id: op.entity.kind for op in ops}
    return [f"{op.entity.id} {ref.field} -> {ref.dst}" for op in ops for ref in op.refs
            if kinds.get(ref.dst) is not ref.kind]


# --- helpers -------------------------------------------------------------------------------


def test_ids_and_text_cleaning() -> None:
    assert slugify("Beyoncé") == "beyonce"
    assert artist_id("AC/DC") == "ar:ac-dc"
    assert artist_id("Destiny's Child") == artist_id("Destinys Child") == "ar:destinys-child"
    assert artist_id("Дима Билан") == artist_id("Dima Bilan")
    symbols = artist_id("!!!")
    assert re.fullmatch(r"ar:x-[0-9a-f]{10}", symbols)
    assert artist_id("!!!") == symbols
    assert artist_id("#####") != symbols
    assert len(artist_id("東方神起" * 60)) <= 200
    assert clean_name("  Katy Perry\ue216\t\n") == "Katy Perry"
    assert clean_name("a\x07b  c") == "ab c"
    html = '<p>One &amp; two</p><p>three<script>x()</script></p>\n<br/>four'
    assert clean_description(html, html=True) == "One & two three four"
    long = clean_description("word " * 3_000)
    assert len(long) <= 10_000
    assert long.endswith("\u2026")


# --- each converter on the real data ---------------------------------------------------------


@pytest.mark.slow
def test_spotify(results: dict[str, AdapterResult]) -> None:
    spotify = results["spotify"]
    kinds = _kinds(spotify)
    assert 28_000 <= kinds["song"] <= 28_356
    assert 22_400 <= kinds["album"] <= 22_545
    assert kinds["playlist"] == 471
    assert kinds["genre"] == 30
    assert 10_500 <= kinds["artist"] <= 10_692
    assert spotify.skips["missing track name, artist, album or id"] == 5
    by_id = {str(r["id"]): r for r in spotify.records}
    assert by_id["g:dance-pop"]["parent"] == "g:pop"
    shape = [r for r in spotify.records if r["name"] == "Shape of You" and r["kind"] == "song"]
    assert any(s["artists"] == ["ar:ed-sheeran"] and str(s["album"]).startswith("al:")
               for s in shape)
    for playlist in (r for r in spotify.records if r["kind"] == "playlist"):
        songs = playlist["songs"]
        assert isinstance(songs, list)
        assert len(songs) == len(set(songs))


@pytest.mark.slow
def test_lastfm(results: dict[str, AdapterResult]) -> None:
    lastfm = results["lastfm"]
    kinds = _kinds(lastfm)
    assert 17_000 <= kinds["artist"] <= 17_632
    assert 200 <= kinds["genre"] <= 900
    artists = [r for r in lastfm.records if r["kind"] == "artist"]
    assert all(0.0 < float(str(a["popularity"])) <= 1.0 for a in artists)
    related = [a for a in artists if "related" in a]
    assert 2_000 <= len(related) <= 3_000
    for artist in related:
        links = artist["related"]
        assert isinstance(links, list)
        assert 1 <= len(links) <= 10
        weights = [link["weight"] for link in links]
        assert weights == sorted(weights, reverse=True)
        assert all(0 < w <= 1 for w in weights)
        assert {link["source"] for link in links} == {"lastfm"}
    assert all(len(_strs(a, "genres")) <= 5 for a in artists)
    rihanna = next(a for a in artists if a["id"] == "ar:rihanna")
    assert rihanna["name"] == "Rihanna"
    assert "Rihannà" in _strs(rihanna, "aliases")


@pytest.mark.slow
def test_podcasts(results: dict[str, AdapterResult]) -> None:
    podcasts = results["podcasts"]
    kinds = _kinds(podcasts)
    assert kinds["podcast"] == 1_000
    assert 5_500 <= kinds["episode"] <= 5_633
    by_id = {str(r["id"]): r for r in podcasts.records}
    assert by_id["g:personal-journals"]["parent"] == "g:society-culture"
    assert by_id["g:christianity"]["parent"] == "g:religion-spirituality"  # listed either way
    assert Counter(r.get("language") for r in podcasts.records if r["kind"] == "podcast")[
        "en"] == 953
    for episode in (r for r in podcasts.records if r["kind"] == "episode"):
        text = str(episode.get("description", ""))
        assert not re.search(r"</?(p|br|a|img|div|span)\b", text)
        assert len(text) <= 10_000
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(episode["release_date"]))


@pytest.mark.slow
def test_chinook(results: dict[str, AdapterResult]) -> None:
    chinook = results["chinook"]
    assert _kinds(chinook) == {"song": 3_503, "album": 347, "artist": 275, "genre": 25,
                               "playlist": 14}
    first = next(r for r in chinook.records if r["id"] == "so:chinook-1")
    assert first == {"kind": "song", "id": "so:chinook-1",
                     "name": "For Those About To Rock (We Salute You)", "artists": ["ar:ac-dc"],
                     "album": "al:chinook-1", "genres": ["g:rock"], "duration_ms": 343719}


# --- the merged catalog ----------------------------------------------------------------------


@pytest.mark.slow
def test_catalog_counts_order_and_validity(built: tuple[list[Record], ConvertReport]) -> None:
    records, report = built
    assert 85_000 <= len(records) <= 100_000
    assert report.total == len(records)
    assert list(report.records) == list(KIND_ORDER)
    assert report.dropped_references == 0
    ids = [str(r["id"]) for r in records]
    assert len(set(ids)) == len(ids)
    order = {k: i for i, k in enumerate(KIND_ORDER)}
    keys = [(order[str(r["kind"])], str(r["id"])) for r in records]
    assert keys == sorted(keys)
    ops = _decoded(records)  # every record passes the feed validator
    assert _unresolved(ops) == []
    assert {t for op in ops for t in (r.type for r in op.refs)} == set(RelType)


@pytest.mark.slow
def test_one_artist_per_slug_across_sets(built: tuple[list[Record], ConvertReport],
                                         results: dict[str, AdapterResult]) -> None:
    records, report = built
    assert report.merged["artist"] > 1_000
    by_id = {str(r["id"]): r for r in records}
    given = {name: {str(r["id"]) for r in res.records} for name, res in results.items()}
    assert "ar:beyonce" in given["spotify"] & given["lastfm"]
    assert "ar:ac-dc" in given["spotify"] & given["lastfm"] & given["chinook"]
    beyonce = by_id["ar:beyonce"]
    assert beyonce["name"] == "Beyoncé"
    assert "related" in beyonce
    assert "g:dance-pop" in _strs(beyonce, "genres")
    # Spotify writes "Florence + The Machine", Last.fm "Florence + the Machine": one record.
    florence = by_id["ar:florence-the-machine"]
    assert florence["name"] == "Florence + The Machine"
    assert florence["aliases"] == ["Florence + the Machine"]
    assert sum(1 for r in records if r["id"] == "ar:ac-dc") == 1


@pytest.mark.slow
def test_same_data_same_bytes(built: tuple[list[Record], ConvertReport],
                              results: dict[str, AdapterResult], tmp_path: Path) -> None:
    records, _ = built
    again = merge(results, ConvertReport(SETS))
    assert encode_feed(again) == encode_feed(records)
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    assert write_feed(records[:5_000], a) == write_feed(again[:5_000], b) == 5_000
    assert a.read_bytes() == b.read_bytes()  # no name or time in the gzip header
    with gzip.open(a, "rb") as f:
        assert f.read() == encode_feed(records[:5_000])


@pytest.mark.slow
def test_committed_fixture_is_current(built: tuple[list[Record], ConvertReport]) -> None:
    assert encode_feed(build_fixture(built[0])) == CATALOG_FIXTURE.read_bytes(), (
        "regenerate with: .venv/bin/python -m ingest.adapters.catalog fixture")


# --- the fixtures ----------------------------------------------------------------------------


def test_catalog_fixture_covers_every_kind_and_relationship() -> None:
    records = [json.loads(line) for line in CATALOG_FIXTURE.read_text("utf-8").splitlines()]
    ops = _decoded(records)
    assert {op.entity.kind for op in ops} == set(Kind)
    assert {ref.type for op in ops for ref in op.refs} == set(RelType)
    assert _unresolved(ops) == []
    assert 150 <= len(records) <= 400
    names = {op.entity.name for op in ops if op.entity.kind is Kind.ARTIST}
    assert {"Taylor Swift", "Ed Sheeran", "Beyoncé", "AC/DC", "Björk", "The Beatles", "U2",
            "Sia"} <= names
    related = [r for op in ops for r in op.refs if r.type is RelType.RELATED_TO]
    assert related
    assert all(r.props["source"] == "lastfm" for r in related)
    store = MemoryStore()
    report = ingest(store, [str(CATALOG_FIXTURE)])
    assert report.rejections == []
    assert report.created == len(records)
    # fixtures/README.md describes the file with numbers: keep them true.
    readme = (FIXTURES / "README.md").read_text("utf-8")
    paragraph = readme.split("Every relationship")[1].split("\n\n")[0]
    stated = dict(re.findall(r"\b([A-Z_]{2,}) (\d+)", paragraph))
    assert {t.value: str(n) for t, n in store.counts().relationships.items()} == stated
    table = dict(re.findall(r"^\| (\w+) \| (\d+) \|", readme, flags=re.MULTILINE))
    assert table == {k.value: str(n) for k, n in store.counts().nodes.items()}


def _expected_outcomes() -> dict[int, tuple[str, str]]:
    """line -> (outcome, reason) from the table in fixtures/README.md."""
    rows = {}
    for line in (FIXTURES / "README.md").read_text("utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 3 and cells[0].isdigit():
            reason = cells[2].replace("\\|", "|")
            if reason.startswith("``"):
                reason = reason[2:-2].strip()
            rows[int(cells[0])] = (cells[1], reason)
    return rows


@pytest.mark.parametrize("same_run", [False, True])
def test_bad_records_match_the_readme_table(same_run: bool) -> None:
    table = _expected_outcomes()
    lines = BAD_RECORDS.read_bytes().split(b"\n")[:-1]
    assert sorted(table) == list(range(1, len(lines) + 1))
    store = MemoryStore()
    source = str(BAD_RECORDS)
    if same_run:
        report = ingest(store, [str(CATALOG_FIXTURE), source])
    else:
        ingest(store, [str(CATALOG_FIXTURE)])
        report = ingest(store, [source])
    got = {r.line: r.reason for r in report.rejections if r.source == source}
    assert len(got) == len(report.rejections)  # nothing in the catalog is disturbed
    want = {n: reason.replace("{source}", source) for n, (outcome, reason) in table.items()
            if outcome == "rejected"}
    assert got == want
    for n, (outcome, _) in table.items():
        assert (outcome == "skipped") == (lines[n - 1].strip() == b""), n
    accepted = [n for n, (outcome, _) in table.items() if outcome == "accepted"]
    deletes = [n for n in accepted if b'"op":"delete"' in lines[n - 1]]
    assert report.created - (len(CATALOG_FIXTURE.read_bytes().splitlines()) if same_run
                             else 0) == len(accepted) - len(deletes)
    assert report.deleted == 0


def test_decode_alone_rejects_the_record_level_lines() -> None:
    table = _expected_outcomes()
    lines = BAD_RECORDS.read_bytes().split(b"\n")
    for n, (outcome, reason) in table.items():
        if outcome != "rejected" or " is not in this feed" in reason or "was rejected" in reason \
                or " is an " in reason:
            continue
        with pytest.raises(FeedError) as exc:
            decode(lines[n - 1])
        assert str(exc.value) == reason, n


@pytest.mark.slow
def test_full_catalog_ingests_without_a_rejection(built: tuple[list[Record], ConvertReport],
                                                  tmp_path: Path) -> None:
    """The real catalog (about 89k records) goes through the whole ingest: nothing rejected,
    every reference resolved, and a second run changes nothing."""
    feed = tmp_path / "catalog.jsonl.gz"
    write_feed(built[0], feed)
    store = MemoryStore()
    report = ingest(store, [str(feed)])
    assert report.rejections == []
    assert report.created == len(built[0]) == store.counts().total_nodes
    assert report.relationships == store.counts().total_relationships > 250_000
    again = ingest(store, [str(feed)])
    assert again.unchanged == len(built[0])
