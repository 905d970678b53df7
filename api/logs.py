"""Structured logs: one JSON object per line, with the fields a log call passes in `extra`
(`search_id`, `query`, ...), so that a search can be followed from request to feedback."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Final

import msgspec

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}
_encode = msgspec.json.Encoder().encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                  + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name,
            "msg": record.getMessage(), "pid": record.process}
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return _encode(doc).decode()


def configure(level: str | None = None) -> None:
    """JSON lines on standard error for our loggers and the driver's warnings."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("TUNEGRAPH_LOG_LEVEL", "INFO").upper())
    logging.getLogger("neo4j").setLevel(logging.WARNING)
