"""Install, start, stop and inspect the local Neo4j (embedded DBMS with Bolt) TuneGraph runs."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from neo4j import GraphDatabase, RoutingControl
from neo4j.exceptions import GqlError

NEO4J_VERSION: Final = "5.26.30"
HOST: Final = "127.0.0.1"
_SOURCES: Final = Path(__file__).resolve().parent / "neo4j"
_LOG_TAIL: Final = 40
# Without these opens Neo4j fails with a LinkageError on DirectByteBuffer (see shared/NEO4J.md).
_JVM_FLAGS: Final = (
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true",
)
# Processes started by this interpreter: polling their Popen reaps them, so a stopped child is
# not mistaken for a live one while it lingers as a zombie.
_children: dict[int, subprocess.Popen[bytes]] = {}


class ServerError(RuntimeError):
    """The local Neo4j could not be installed, started or stopped."""


@dataclass(frozen=True)
class ServerInfo:
    home: Path
    port: int
    pid: int

    @property
    def uri(self) -> str:
        return f"bolt://{HOST}:{self.port}"


def runtime_dir() -> Path:
    """Where the Neo4j jars (lib/) and the compiled launcher (classes/) live, for all homes."""
    base = os.environ.get("TUNEGRAPH_CACHE") or Path.home() / ".cache" / "tunegraph"
    return Path(base).absolute() / f"neo4j-{NEO4J_VERSION}"


def default_home() -> Path:
    return Path(os.environ.get("TUNEGRAPH_HOME") or ".tunegraph").absolute() / "neo4j"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ServerError(f"`{name}` was not found on PATH: the local Neo4j {NEO4J_VERSION} needs "
                          "a JDK 17 or 21 (java, javac) and Maven (mvn)")
    return path


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-_LOG_TAIL:]
        raise ServerError(f"{what} failed (exit {done.returncode}): {' '.join(cmd)}\n"
                          + "\n".join(output))


def install(*, quiet: bool = False) -> Path:
    """Resolve the Neo4j jars with Maven and compile the launcher, unless already done."""
    runtime = runtime_dir()
    runtime.mkdir(parents=True, exist_ok=True)
    source = _SOURCES / "Launcher.java"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    lib, classes = runtime / "lib", runtime / "classes"
    # A lock, because parallel test workers or shells may install into the same cache at once.
    with (runtime / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not any(lib.glob("neo4j-*.jar")):
            mvn = _tool("mvn")
            if not quiet:
                print(f"resolving Neo4j {NEO4J_VERSION} with Maven into {lib} (about a minute)",
                      file=sys.stderr)
            part = runtime / "lib.part"
            shutil.rmtree(part, ignore_errors=True)
            shutil.rmtree(lib, ignore_errors=True)
            _run([mvn, "-B", "-q", "-f", str(_SOURCES / "pom.xml"),
                  "dependency:copy-dependencies", "-DincludeScope=runtime",
                  f"-DoutputDirectory={part}"], "resolving the Neo4j jars")
            # The rename is the commit point: an interrupted download never looks complete.
            part.rename(lib)
        stamp = classes / ".launcher-sha256"
        if not stamp.is_file() or stamp.read_text().strip() != digest:
            javac = _tool("javac")
            _tool("java")
            part = runtime / "classes.part"
            shutil.rmtree(part, ignore_errors=True)
            _run([javac, "-d", str(part), "-cp", f"{lib}/*", str(source)],
                 "compiling the Neo4j launcher")
            (part / ".launcher-sha256").write_text(digest + "\n")
            shutil.rmtree(classes, ignore_errors=True)
            part.rename(classes)
    return runtime


def admin(home: Path, args: list[str], *, max_heap: str = "2g") -> str:
    """Run a `neo4j-admin` command (from the same jars) against the server home `home`, whose
    server must be stopped; returns its output, or raises ServerError quoting it."""
    runtime = install(quiet=True)
    conf = home / "conf"
    conf.mkdir(parents=True, exist_ok=True)  # neo4j-admin insists on a configuration folder
    env = {**os.environ, "NEO4J_HOME": str(home.absolute()), "NEO4J_CONF": str(conf.absolute())}
    cmd = [_tool("java"), f"-Xmx{max_heap}", *_JVM_FLAGS, "-cp", f"{runtime / 'lib'}/*",
           "org.neo4j.cli.AdminTool", *args]
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=env, check=False)
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-_LOG_TAIL:])
        raise ServerError(f"neo4j-admin {' '.join(args[:3])} failed (exit {done.returncode}):\n"
                          f"{tail}")
    return output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_taken(port: int) -> bool:
    # Bind with SO_REUSEADDR like Netty does, so lingering TIME_WAIT connections do not count.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def _state_file(home: Path) -> Path:
    return home / "server.json"


def _log_file(home: Path) -> Path:
    return home / "logs" / "server.log"


def _alive(pid: int, home: Path) -> bool:
    """Whether `pid` is a running launcher for `home` (not a zombie, not a recycled pid)."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs to check against
    try:
        if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX":
            return False
        argv = proc.joinpath("cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    return b"Launcher" in argv and str(home).encode() in argv


def status(home: Path) -> ServerInfo | None:
    """The server running for `home`, or None (removing a stale state file)."""
    home = home.resolve()
    state = _state_file(home)
    try:
        data = json.loads(state.read_text())
        info = ServerInfo(home, int(data["port"]), int(data["pid"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        state.unlink(missing_ok=True)
        return None
    if not _alive(info.pid, home):
        state.unlink(missing_ok=True)
        return None
    return info


def _answers(uri: str) -> bool:
    try:
        with GraphDatabase.driver(uri, auth=None, connection_timeout=2.0) as driver, \
                driver.session(database="neo4j") as session:
            # session.run, not execute_query: the latter retries for 30 s on its own.
            record = session.run("RETURN 1 AS one").single()
            return record is not None and record["one"] == 1
    except (GqlError, OSError):
        return False


def _log_tail(home: Path, offset: int) -> str:
    try:
        with _log_file(home).open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no server log)"
    # Stack frames crowd out the "Caused by" lines that say what went wrong.
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(("at ", "... "))]
    return "\n".join(lines[-_LOG_TAIL:]) or "(server log is empty)"


def _hint(tail: str, home: Path, port: int) -> str:
    if "Address already in use" in tail:
        return f"port {port} on {HOST} is already in use; pick another port. "
    if "store_lock" in tail:
        return f"another process holds the store lock of {home}. "
    return ""


def _wait_ready(info: ServerInfo, timeout: float, offset: int) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not _alive(info.pid, info.home):
            tail = _log_tail(info.home, offset)
            raise ServerError(f"Neo4j exited during start. {_hint(tail, info.home, info.port)}"
                              f"Last lines of {_log_file(info.home)}:\n{tail}")
        if _answers(info.uri):
            return
        if time.monotonic() > deadline:
            raise ServerError(f"Neo4j did not answer on {info.uri} within {timeout:.0f} s. "
                              f"Last lines of {_log_file(info.home)}:\n"
                              f"{_log_tail(info.home, offset)}")
        time.sleep(0.25)


def _bytes(size: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    size = size.strip().lower()
    if size and size[-1] in units:
        return int(size[:-1]) * units[size[-1]]
    return int(size)


def start(home: Path, port: int = 7687, *, timeout: float = 180.0, heap: str = "1g",
          max_heap: str = "2g", pagecache: str = "512m") -> ServerInfo:
    """Start Neo4j for `home` on `port` and wait until it answers; reuse one already running."""
    runtime = install(quiet=True)
    home.mkdir(parents=True, exist_ok=True)
    home = home.resolve()
    running_now = status(home)
    if running_now is not None:
        # Possibly still starting (another shell's `start`): wait, but it is not ours to kill.
        _wait_ready(running_now, timeout, 0)
        return running_now
    if _port_taken(port):
        raise ServerError(f"port {port} on {HOST} is already in use by another process; "
                          f"choose another port (for example {free_port()}) or stop that process")
    log_path = _log_file(home)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    initial = max_heap if _bytes(heap) > _bytes(max_heap) else heap
    cmd = [_tool("java"), f"-Xms{initial}", f"-Xmx{max_heap}", *_JVM_FLAGS,
           "-cp", f"{runtime / 'lib'}/*{os.pathsep}{runtime / 'classes'}",
           "Launcher", str(home), str(port), pagecache]
    with log_path.open("ab") as log:
        offset = log.tell()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n=== {stamp} tunegraph starting Neo4j {NEO4J_VERSION}: {' '.join(cmd)}\n"
                  .encode())
        log.flush()
        proc = subprocess.Popen(cmd, cwd=home, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    _children[proc.pid] = proc
    info = ServerInfo(home, port, proc.pid)
    state = _state_file(home)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": proc.pid, "port": port}) + "\n")
    tmp.replace(state)
    try:
        _wait_ready(info, timeout, offset)
    except BaseException:
        _signal_and_wait(info, signal.SIGKILL, 10.0)
        state.unlink(missing_ok=True)
        raise
    return info


def _signal_and_wait(info: ServerInfo, sig: signal.Signals, timeout: float) -> bool:
    """Send `sig`; True once the process has gone within `timeout` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(info.pid, info.home):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _end(home: Path, sig: signal.Signals, timeout: float) -> bool:
    info = status(home)
    if info is None:
        return False
    if not _signal_and_wait(info, sig, timeout) and \
            not _signal_and_wait(info, signal.SIGKILL, 10.0):
        raise ServerError(f"Neo4j (pid {info.pid}) did not exit after SIGKILL")
    _state_file(info.home).unlink(missing_ok=True)
    return True


def stop(home: Path, *, timeout: float = 60.0) -> bool:
    """Stop the server for `home` cleanly (SIGKILL after `timeout`); False if none was running."""
    return _end(home, signal.SIGTERM, timeout)


def kill(home: Path) -> bool:
    """Kill the server for `home` without a clean shutdown (the next start runs recovery)."""
    return _end(home, signal.SIGKILL, 10.0)


def node_count(uri: str) -> int:
    with GraphDatabase.driver(uri, auth=None) as driver:
        records, _, _ = driver.execute_query("MATCH (n) RETURN count(n) AS n", database_="neo4j",
                                             routing_=RoutingControl.READ)
        return int(records[0]["n"])


@contextlib.contextmanager
def running(home: Path, port: int | None = None, *, timeout: float = 180.0, heap: str = "1g",
            max_heap: str = "2g", pagecache: str = "512m") -> Iterator[ServerInfo]:
    """A server for `home` (on a free port when none is given), stopped on exit."""
    info = start(home, free_port() if port is None else port, timeout=timeout, heap=heap,
                 max_heap=max_heap, pagecache=pagecache)
    try:
        yield info
    finally:
        stop(home)
