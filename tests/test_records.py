"""The ingest fast path (`records.parse`) against the reference decoder (`feed.decode`)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from graph.fingerprint import make_record
from graph.model import Relation
from ingest import feed, records
from ingest.feed import Delete, FeedError, Upsert
from ingest.lax import SCHEMA_PAIRS
from ingest.reader import read_blocks, read_lines
from ingest.synthetic import generate
from tests.conftest import FIXTURES


def _shape(info: Any) -> Any:
    """A msgspec.inspect tree with class identities and regex patterns left out."""
    if isinstance(info, tuple):
        return tuple(_shape(i) for i in info)
    if isinstance(info, msgspec.Struct):
        return (type(info).__name__, {f: (None if f == "pattern" else _shape(getattr(info, f)))
                                      for f in info.__struct_fields__ if f != "cls"})
    return info


@pytest.mark.parametrize(("lax", "strict"), SCHEMA_PAIRS)
def test_lax_schema_is_the_strict_one_without_patterns(lax: type, strict: type) -> None:
    assert _shape(msgspec.inspect.type_info(lax)) == _shape(msgspec.inspect.type_info(strict))


def _verdict(raw: bytes) -> tuple[str, Any]:
    """What both paths must agree on: the reason, or the record with its hash."""
    try:
        op = records.parse(raw, "f", 1)
    except FeedError as exc:
        fast: tuple[str, Any] = ("rejected", str(exc))
    else:
        fast = ("delete", op.id) if isinstance(op, Delete) else (
            "upsert", (records.to_record(op), records.content_hash(op), op.refs()))
    try:
        ref = feed.decode(raw)
    except FeedError as exc:
        reference: tuple[str, Any] = ("rejected", str(exc))
    else:
        if isinstance(ref, Upsert):
            rels = [Relation(ref.entity.id, r.type, r.dst, r.props) for r in ref.refs]
            record = make_record(ref.entity, rels)
            reference = ("upsert", (record, record.content_hash,
                                    [(r.field, r.dst, r.kind) for r in ref.refs]))
        else:
            reference = ("delete", ref.id)
    assert fast == reference, raw
    return fast


def test_fixtures_get_the_same_verdicts_and_hashes() -> None:
    lines = [*(FIXTURES / "catalog.jsonl").read_bytes().splitlines(),
             *(FIXTURES / "bad_records.jsonl").read_bytes().splitlines()]
    kinds = [_verdict(raw)[0] for raw in lines if raw.strip()]
    assert kinds.count("rejected") >= 20
    assert kinds.count("upsert") >= 200


_TRICKY = ["", " ", "a b", "a\u00a0b", "x\u3000", "a\u2003b", "a\u0007b", "a\nb", "abc\n",
           "ab\r", "a\tb", "a\x7fb", "é", "日本", "a\u200bb", "a\u0085b", "a\"b", "a\\b",
           "x" * 201, "ok", "a,b", "2017", "2017-02-30", "2016-02-29", "2017-13", "17",
           "٢٠١٧", "2017\n", "en", "pt-BR", "english!", "g:syn-1", "ar:syn-1", "so:syn-1"]
_DATES = ["2017", "2017-03", "2017-03-03", "2017-13-45", "2017-02-30", "17", "2017-3-3",
          "٢٠١٧", "2017-03-03\n", "0000", "abcd", ""]
_LANGUAGES = ["en", "pt-BR", "english!", "e", "en_US", "en\n", "zh-Hant-TW", "x" * 40, ""]
_VALUES: list[Any] = [None, 0, 1, -1, 1.5, 0.5, 2**40, 233713.5, True, [], {}, ["a"], [1],
                      {"id": "x"}]


def _mutate(rec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One change that stays close to the rules, so that the first error does not hide the
    rest (most changed records are still valid, or wrong in exactly one place)."""
    rec = dict(rec)
    pick = rng.randrange(12)
    own_id = rec.get("id", "x")
    if pick == 0:
        rec[rng.choice(list(rec))] = rng.choice(_TRICKY + _VALUES)
    elif pick in (1, 2):
        rec[rng.choice(["id", "name", "description", "publisher"])] = rng.choice(_TRICKY)
    elif pick == 3:
        rec["aliases"] = rng.sample(_TRICKY, rng.randint(0, 3))
    elif pick == 4:
        field = rng.choice(["genres", "artists", "songs", "related"])
        rec[field] = [rng.choice([*_TRICKY, own_id]) for _ in range(rng.randint(0, 4))]
    elif pick == 5:
        rec["release_date"] = rng.choice(_DATES)
    elif pick == 6:
        rec["language"] = rng.choice(_LANGUAGES)
    elif pick == 7:
        rec[rng.choice(["album", "podcast", "parent"])] = rng.choice([*_TRICKY, own_id])
    elif pick == 8:
        rec["kind"] = rng.choice(["song", "artist", "album", "playlist", "podcast", "episode",
                                  "genre", "track", 5, ["song"]])
    elif pick == 9:
        rec.pop(rng.choice(list(rec)), None)
    elif pick == 10:
        rec["related"] = [rng.choice([rng.choice(_TRICKY), {
            "id": rng.choice(_TRICKY), "weight": rng.choice([0.5, 2, "x", 1]),
            "source": rng.choice(_TRICKY)}]) for _ in range(rng.randint(0, 3))]
    else:
        rec = {"op": rng.choice(["delete", "upsert", "remove"]),
               "id": rng.choice([*_TRICKY, "so:syn-3"])}
    return rec


def test_mutated_records_get_the_same_verdicts() -> None:
    rng = random.Random(20261124)
    base = [msgspec.json.decode(msgspec.json.encode(r)) for r in generate(500, seed=11)]
    seen: set[str] = set()
    for _ in range(15_000):
        rec = rng.choice(base)
        for _ in range(rng.randint(1, 2)):
            rec = _mutate(rec, rng)
        raw = json.dumps(rec, ensure_ascii=rng.random() < 0.5).encode()
        if rng.random() < 0.05:  # damage below the JSON level too
            raw = rng.choice([raw[:rng.randrange(len(raw))], b"\xff" + raw, b"[1]",
                              raw.replace(b"a", b"\x7f", 1), raw.replace(b" ", b"\xc2\xa0", 1)])
        kind, detail = _verdict(raw)
        seen.add(kind if kind != "rejected" else detail.split(":")[0])
    # The corpus reaches every verdict and the reasons of every pattern.
    assert {"upsert", "delete", "id", "name", "release_date", "language", "artists[0]",
            "genres[0]", "related[0].source", "aliases[0]", "album"} <= seen


def test_self_references_dates_and_related_props_agree() -> None:
    lines = [
        {"kind": "song", "id": "so:1", "name": "x", "artists": ["ar:1", "ar:1", "so:1"]},
        {"kind": "playlist", "id": "pl:1", "name": "x", "songs": ["a", "b", "a", "pl:1"]},
        {"kind": "artist", "id": "ar:1", "name": "x",
         "related": ["ar:2", {"id": "ar:2", "weight": 0.3}, {"id": "ar:3", "source": "lastfm"}]},
        {"kind": "artist", "id": "ar:1", "name": "x", "related": [{"id": "ar:1"}]},
        {"kind": "album", "id": "al:1", "name": "x", "release_date": "2017-02-29"},
        {"kind": "album", "id": "al:1", "name": "x", "release_date": "2016-02-29"},
        {"kind": "genre", "id": "g:1", "name": "x", "parent": "g:1"},
        {"kind": "episode", "id": "ep:1", "name": "x", "podcast": "ep:1"},
        {"kind": "podcast", "id": "po:1", "name": "x", "language": "zh-Hant-TW"},
        {"kind": "song", "id": "so:1\n", "name": "x\n"},  # the patterns' `$` allows a final \n
        {"op": "delete", "id": "so:1"},
    ]
    verdicts = [_verdict(json.dumps(r).encode()) for r in lines]
    assert [v[0] for v in verdicts] == ["rejected", "rejected", "upsert", "rejected",
                                        "rejected", "upsert", "rejected", "rejected", "upsert",
                                        "upsert", "delete"]
    assert verdicts[0][1] == "artists[2]: a record cannot refer to itself"
    assert verdicts[1][1] == "songs[3]: a record cannot refer to itself"


def test_block_reader_gives_the_lines_of_the_line_reader(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.reader as reader

    monkeypatch.setattr(reader, "_BLOCK", 64)  # lines and blocks cut each other everywhere
    limit = 40
    body = b"".join([b'{"a":1}\n', b"\n", b"  \r\n", b"x" * 41 + b"\n", b"y" * 40 + b"\n",
                     b"z" * 200 + b"\n", b'{"b":2}\r\n', b"w" * 39 + b"\r\n", b"v" * 300,
                     b"\n", b"q" * 41])
    path = tmp_path / "feed.jsonl"
    path.write_bytes(body)
    expected = [(ln.number, ln.data, ln.length if ln.data is None else None)
                for ln in read_lines(str(path), limit)]
    got = [(n, d, length if d is None else None)
           for block in read_blocks(str(path), limit) for n, d, length in block]
    assert got == expected
    assert [n for n, d, _ in got if d is None] == [4, 6, 9, 10]
