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
