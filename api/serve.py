"""`tunegraph serve`: the app under Granian (a production ASGI server), one or several workers.

Workers are separate processes that each build the app from the environment, so the command
line's choices travel as TUNEGRAPH_* variables. With several workers, Prometheus metrics go
through a shared directory so that /metrics sums them all.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from api.settings import PREFIX, Settings


def serve(host: str | None = None, port: int | None = None, workers: int | None = None) -> None:
    for name, value in (("host", host), ("port", port), ("workers", workers)):
        if value is not None:
            os.environ[f"{PREFIX}{name.upper()}"] = str(value)
    settings = Settings.from_env()  # fails early, with the variable's name, on a bad value
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tunegraph-metrics-")
    from granian import Granian
    from granian.constants import Interfaces

    Granian("api.app:app_factory", factory=True, address=settings.host, port=settings.port,
            workers=settings.workers, interface=Interfaces.ASGI,
            working_dir=Path.cwd(), log_access=False).serve()
