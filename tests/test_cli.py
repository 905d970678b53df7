"""The `tunegraph` command as a user runs it: exit codes, reject file, killed ingest resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from graph import server
from graph.memory_store import MemoryStore
from graph.neo4j_store import Neo4jStore
from ingest.pipeline import ingest
from ingest.synthetic import generate
from tests.conftest import FIXTURES

pytestmark = pytest.mark.neo4j


def tunegraph(args: list[str], uri: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEO4J_URI": uri}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_ingest_reports_rejects_and_exit_codes(neo4j_store: Neo4jStore,
                                               neo4j_server: server.ServerInfo,
                                               tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    ok = tunegraph(["ingest", "--quiet", str(FIXTURES / "catalog.jsonl")], neo4j_server.uri, repo)
    assert ok.returncode == 0, ok.stderr
    assert "201 created" in ok.stdout
    assert "0 rejected" in ok.stdout

    rejects = tmp_path / "rejects.jsonl"
    bad = tunegraph(["ingest", "--quiet", "--rejects", str(rejects),
                     str(FIXTURES / "bad_records.jsonl")], neo4j_server.uri, repo)
    assert bad.returncode == 1
    rows = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["line"] for r in rows] == sorted({r["line"] for r in rows})  # once each, in order
    assert {r["line"]: r["reason"] for r in rows}[20] == (
        "artists[0]: 'ar:does-not-exist' is not in this feed or the catalog")
    assert f"all {len(rows)} rejections are in {rejects}" in bad.stderr
    assert "rejected " in bad.stderr

    before = neo4j_store.content_hash()
    dry = tunegraph(["ingest", "--quiet", "--dry-run", "--rejects", str(tmp_path / "d.jsonl"),
                     str(FIXTURES / "catalog.jsonl")], neo4j_server.uri, repo)
    assert dry.returncode == 0
    assert "201 unchanged" in dry.stdout
    assert neo4j_store.content_hash() == before


def test_status_of_a_stopped_home_and_missing_server(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    env["TUNEGRAPH_HOME"] = str(tmp_path)
    status = subprocess.run([sys.executable, "-m", "api.cli", "neo4j", "status"], cwd=repo,
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert status.returncode == 3
    assert "not running" in status.stdout
    feed = tmp_path / "f.jsonl"
    feed.write_text('{"kind":"genre","id":"g:x","name":"x"}\n')
    no_server = subprocess.run([sys.executable, "-m", "api.cli", "ingest", str(feed)], cwd=repo,
                               env=env, capture_output=True, text=True, timeout=60, check=False)
    assert no_server.returncode == 2
    assert "no Neo4j is running" in no_server.stderr
    assert "tunegraph neo4j start" in no_server.stderr


def test_ingest_killed_with_sigkill_resumes_to_the_same_graph(
        neo4j_store: Neo4jStore, neo4j_server: server.ServerInfo, tmp_path: Path) -> None:
    """Kill the ingest process as soon as its first nodes land; running it again must end with
    exactly the graph an uninterrupted ingest gives (compared by content hash and counts)."""
    feed = tmp_path / "syn.jsonl"
    feed.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in generate(20_000, seed=5)))
    reference = MemoryStore()
    ingest(reference, [str(feed)])

    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "ingest", "--quiet", str(feed)],
                            cwd=repo, env={**os.environ, "NEO4J_URI": neo4j_server.uri},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while neo4j_store.counts().total_nodes == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    ids = [e.id for e in reference.iter_entities()]
    held = neo4j_store.existing(ids)
    sealed = sum(1 for h in held.values() if h.content_hash is not None)
    assert sealed < len(ids)  # the kill really cut it short

    again = tunegraph(["ingest", "--quiet", str(feed)], neo4j_server.uri, repo)
    assert again.returncode == 0, again.stderr
    assert neo4j_store.counts() == reference.counts()
    assert neo4j_store.content_hash() == reference.content_hash()


@pytest.mark.slow
def test_neo4j_killed_during_ingest_then_ingest_again_gives_the_same_graph(
        tmp_path: Path) -> None:
    """Kill Neo4j itself (SIGKILL) while an ingest writes: the ingest fails with a non-zero exit
    and an error, nothing is acknowledged that did not land; once Neo4j is back, running the
    ingest again ends with the counts and content hash of an uninterrupted run, no duplicates."""
    feed = tmp_path / "syn.jsonl"
    feed.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in generate(20_000, seed=6)))
    reference = MemoryStore()
    ingest(reference, [str(feed)])
    home = tmp_path / "neo4j"
    info = server.start(home, server.free_port(), pagecache="128m")
    try:
        store = Neo4jStore.connect(info.uri)
        store.apply_schema()
        repo = Path(__file__).resolve().parents[1]
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "ingest", "--quiet", str(feed)],
                                cwd=repo, env={**os.environ, "NEO4J_URI": info.uri},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while store.counts().total_nodes < 2_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        store.close()
        server.kill(home)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode not in (0, None), "the ingest must fail when its store dies"
        assert err, "and say why"

        server.start(home, info.port, pagecache="128m")
        store = Neo4jStore.connect(info.uri)
        try:
            held = store.existing([e.id for e in reference.iter_entities()])
            assert held  # some records landed before the kill
            sealed = sum(h.content_hash is not None for h in held.values())
            assert sealed < len(list(reference.iter_entities()))  # and it really cut it short
            again = tunegraph(["ingest", "--quiet", str(feed)], info.uri, repo)
            assert again.returncode == 0, again.stderr
            assert store.counts() == reference.counts()
            assert store.content_hash() == reference.content_hash()
            again = tunegraph(["ingest", "--quiet", str(feed)], info.uri, repo)
            assert again.returncode == 0, again.stderr
            assert store.counts() == reference.counts()  # and a third run changes nothing
        finally:
            store.close()
    finally:
        server.stop(home)
