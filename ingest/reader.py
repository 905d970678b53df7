"""Reading feed sources line by line: files, gzip files and standard input, with a line limit."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ingest.feed import MAX_LINE_BYTES

_CHUNK = 1 << 16
_BLOCK = 1 << 22  # bytes per read in `read_blocks`; more than the line limit


@dataclass(frozen=True, slots=True)
class Line:
    source: str  # the file name as given, or "-" for standard input
    number: int  # 1-based
    data: bytes | None  # None when the line was longer than the limit
    length: int


@contextmanager
def _open(source: str) -> Iterator[BinaryIO]:
    if source == "-":
        yield sys.stdin.buffer
    elif source.endswith(".gz"):
        with gzip.open(source, "rb") as f:
            yield f  # type: ignore[misc]
    else:
        with Path(source).open("rb") as f:
            yield f


def read_lines(source: str, limit: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """Yield every non-blank line. A line over `limit` bytes is yielded with `data=None` and is
    never held in memory whole, so a runaway line cannot exhaust memory."""
    with _open(source) as f:
        number = 0
        while True:
            chunk = f.readline(limit + 1)
            if not chunk:
                return
            number += 1
            if len(chunk) > limit and not chunk.endswith(b"\n"):
                length = len(chunk)
                while chunk and not chunk.endswith(b"\n"):
                    chunk = f.readline(_CHUNK)
                    length += len(chunk)
                yield Line(source, number, None, length)
                continue
            data = chunk.rstrip(b"\r\n")
            if data.strip():
                yield Line(source, number, data, len(chunk))


Numbered = list[tuple[int, bytes | None, int]]  # (line number, data or None, length in bytes)


def read_blocks(source: str, limit: int = MAX_LINE_BYTES) -> Iterator[Numbered]:
    """The same lines as `read_lines`, as lists of (number, data, length) read a block at a time
    (several times faster than a `readline` per line). A line over `limit` bytes still comes
    with `data=None`, and no more than one block plus `limit` bytes of it is ever held."""
    assert limit < _BLOCK
    with _open(source) as f:
        number = 0
        carry = b""  # the start of a line that the last block cut
        skipping = -1  # >= 0: bytes seen so far of an over-long line, up to its newline
        while True:
            block = f.read(_BLOCK)
            out: Numbered = []
            if not block:
                if skipping >= 0:
                    out.append((number + 1, None, skipping))
                elif carry:
                    out += _numbered([carry], number, limit)
                if out:
                    yield out
                return
            if skipping >= 0:
                end = block.find(b"\n")
                if end < 0:
                    skipping += len(block)
                    continue
                number += 1
                out.append((number, None, skipping + end + 1))
                skipping = -1
                block = block[end + 1:]
            else:
                block = carry + block
            parts = block.split(b"\n")
            carry = parts.pop()
            out += _numbered(parts, number, limit, terminated=True)
            number += len(parts)
            if len(carry) > limit:
                skipping, carry = len(carry), b""
            if out:
                yield out


def _numbered(parts: list[bytes], number: int, limit: int, *,
              terminated: bool = False) -> Numbered:
    out: Numbered = []
    for i, part in enumerate(parts, number + 1):
        if len(part) > limit:
            out.append((i, None, len(part) + terminated))
            continue
        # Most lines start with "{": skip the strip (a copy) for them.
        if part[:1] == b"{" or part.strip():
            out.append((i, part.rstrip(b"\r\n"), len(part) + terminated))
    return out
