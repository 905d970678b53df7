"""Feed record validation and line reading: one clear reason for each kind of bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from graph.model import Kind, RelType
from ingest.feed import MAX_LINE_BYTES, Delete, FeedError, Upsert, decode
from ingest.reader import read_lines


def test_every_documented_kind_decodes() -> None:
    song = decode(b'{"kind":"song","id":"so:1","name":"Shape of You","artists":["ar:1"],'
                  b'"album":"al:1","genres":["g:pop"],"duration_ms":233713,"popularity":0.95}')
    assert isinstance(song, Upsert)
    assert song.entity.kind is Kind.SONG
    assert song.entity.extra == {"duration_ms": 233713}
    assert [(r.field, r.type, r.dst, r.kind) for r in song.refs] == [
        ("genres[0]", RelType.IN_GENRE, "g:pop", Kind.GENRE),
        ("artists[0]", RelType.PERFORMED_BY, "ar:1", Kind.ARTIST),
        ("album", RelType.ON_ALBUM, "al:1", Kind.ALBUM)]
    playlist = decode(b'{"kind":"playlist","id":"pl:1","name":"P","songs":["so:2","so:1","so:2"]}')
    assert isinstance(playlist, Upsert)
    assert [(r.dst, r.props) for r in playlist.refs] == [("so:2", {"position": 0}),
                                                       ("so:1", {"position": 1})]
    artist = decode(b'{"kind":"artist","id":"ar:1","name":"A","related":["ar:2",'
                    b'{"id":"ar:3","weight":0.5,"source":"lastfm"}]}')
    assert isinstance(artist, Upsert)
    assert [r.props for r in artist.refs] == [{"weight": 1.0, "source": "feed"},
                                              {"weight": 0.5, "source": "lastfm"}]
    podcast = decode(b'{"kind":"podcast","id":"po:1","name":"P","publisher":"X","language":"en"}')
    assert isinstance(podcast, Upsert)
    assert podcast.entity.extra == {"publisher": "X", "language": "en"}
    assert decode(b'{"op":"delete","id":"so:1"}') == Delete("so:1")


@pytest.mark.parametrize(("line", "reason"), [
    (b'{"kind":"song",', "invalid JSON: Input data was truncated"),
    (b"[1, 2]", "a record must be a JSON object, got list"),
    (b'{"id":"so:1","name":"x"}', "missing required field 'kind'"),
    (b'{"kind":"song","name":"x"}', "missing required field 'id'"),
    (b'{"kind":"song","id":"so:1"}', "missing required field 'name'"),
    (b'{"kind":"sng","id":"so:1","name":"x"}', "unknown kind 'sng'; expected one of song, "
     "artist, album, playlist, podcast, episode, genre"),
    (b'{"kind":["song"],"id":"so:1","name":"x"}', "unknown kind ['song']; expected one of "
     "song, artist, album, playlist, podcast, episode, genre"),
    (b'{"kind":"song","id":"so:1","name":"x","popularity":"high"}',
     "popularity: expected `float`, got `str`"),
    (b'{"kind":"song","id":"so:1","name":"x","popularity":1.5}',
     "popularity: expected `float` <= 1.0"),
    (b'{"kind":"song","id":"so:1","name":"x","duration_ms":-1}',
     "duration_ms: expected `int` >= 0"),
    (b'{"kind":"song","id":"so:1","name":"x","artists":"ar:1"}',
     "artists: expected `array`, got `str`"),
    (b'{"kind":"song","id":"so:1","name":"x","release_date":"2017-13-45"}',
     "release_date: '2017-13-45' is not a calendar date"),
    (b'{"kind":"song","id":"so:1","name":"x","release_date":"17"}',
     "release_date: must be a date as YYYY, YYYY-MM or YYYY-MM-DD"),
    (b'{"kind":"song","id":"so:1","name":"x","popularty":0.5}', "unknown field 'popularty'"),
    (b'{"kind":"song","id":"so:1","name":""}', "name: expected `str` of length >= 1"),
    (b'{"kind":"song","id":"so:1","name":"a\\u0007b"}',
     "name: must not contain control characters"),
    (b'{"kind":"song","id":"so 1","name":"x"}',
     "id: must be non-empty, without whitespace or control characters"),
    (b'{"kind":"genre","id":"g:1","name":"x","parent":"g:1"}',
     "parent: a record cannot refer to itself"),
    (b'{"kind":"podcast","id":"po:1","name":"x","language":"english!"}',
     "language: must be a language tag such as 'en' or 'pt-BR'"),
    (b'{"op":"delete"}', "missing required field 'id'"),
    (b'{"kind":"song","id":"\xff","name":"x"}', "invalid UTF-8 at byte 21"),
    (b'{"kind":"song","id":"so:1","name":"x","description":"' + b"d" * 10_001 + b'"}',
     "description: expected `str` of length <= 10000"),
])
def test_bad_record_gets_one_clear_reason(line: bytes, reason: str) -> None:
    with pytest.raises(FeedError) as exc:
        decode(line)
    assert str(exc.value) == reason


def test_reader_numbers_lines_skips_blanks_and_caps_huge_lines(tmp_path: Path) -> None:
    huge = b"x" * (MAX_LINE_BYTES + 10)
    path = tmp_path / "feed.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b'{"a":1}\n\n   \n' + huge + b'\n{"b":2}\r\n{"c":3}')
    lines = list(read_lines(str(path)))
    assert [(ln.number, ln.data) for ln in lines] == [
        (1, b'{"a":1}'), (4, None), (5, b'{"b":2}'), (6, b'{"c":3}')]
    assert lines[1].length == len(huge) + 1
