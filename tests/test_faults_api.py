"""Faults at the API: overload, bad requests, killed API processes, a slow store, scale-out.

Each test runs `tunegraph serve` as a real process (Granian) against a real Neo4j, bounded in
time, and states its pass criterion in its docstring. Where a test stops, kills or freezes a Neo4j,
it runs its own server so that the session's stays untouched.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from neo4j import RoutingControl

from bench import loadgen
from graph import server
from graph.neo4j_store import Neo4jStore
from tests.api_support import figure, live_server, wait_for
from tests.conftest import load_fixture_catalog

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]
QUERIES = ["taylor swift", "bjork", "tayler swfit", "true crime podcast", "rock playlist", "u2",
           "beatles", "sia", "ed sheeran shape", "90s rock"]
PATHS = [f"/v1/search?q={q.replace(' ', '+')}&limit=10" for q in QUERIES]


@pytest.fixture(scope="module")
def catalog_uri(neo4j_server: server.ServerInfo, shared_neo4j: Neo4jStore) -> str:
    load_fixture_catalog(shared_neo4j)
    return neo4j_server.uri


def _catalog_fingerprint(store: Neo4jStore) -> tuple[str, int]:
    """The catalog's content hash and the count of nodes that are neither catalog nor log."""
    records, _, _ = store.driver.execute_query(
        "MATCH (n) WHERE NOT (n:Entity OR n:Meta OR n:Search OR n:Feedback OR n:Outcome "
        "OR n:PolicyState OR n:Query) RETURN count(n) AS n", routing_=RoutingControl.READ)
    return store.content_hash(), int(records[0]["n"])


def test_overload_is_refused_then_recovers(catalog_uri: str, tmp_path: Path) -> None:
    """Well past capacity (an open loop at 200 searches/s, 5 ms apart, against one search in
    flight at a time and the cache of repeated queries off, so that each of the ten queries
    costs a whole search every time): every answer is a 2xx or a 503/429 and none times out
    (10 s); within 10 s after the load stops a search answers 200 again. (With 4 in flight and
    the cache on, a quiet machine answered 120/s of these ten queries without a refusal.)"""
    with live_server(catalog_uri, log_path=tmp_path / "serve.log",
                     TUNEGRAPH_MAX_IN_FLIGHT="1", TUNEGRAPH_CACHE_ENTRIES="0") as url:
        result = loadgen.run(url, PATHS, rate=200, seconds=5, timeout=10)
        stopped = time.monotonic()
        assert result.errors == 0, result.row()
        assert result.refused > 0, result.row()
        assert result.ok > 0, result.row()
        assert wait_for(lambda: httpx.get(f"{url}{PATHS[0]}", timeout=5).status_code == 200,
                        timeout=10, every=0.2)
        assert time.monotonic() - stopped < 10
        figure("overload", f"{result.row()}; 200 again after "
                           f"{time.monotonic() - stopped:.1f} s")


def test_closed_loop_flood_gets_only_refusals_or_answers(catalog_uri: str,
                                                         tmp_path: Path) -> None:
    """wrk with 64 connections that resend at once (no back-off): no socket errors or timeouts,
    only 200 and 503/429 answers."""
    with live_server(catalog_uri, log_path=tmp_path / "serve.log",
                     TUNEGRAPH_MAX_IN_FLIGHT="4") as url:
        statuses, errors = _wrk(url, tmp_path, connections=64, seconds=5)
        assert errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}, (errors, statuses)
        assert set(statuses) <= {200, 429, 503}, statuses
        assert statuses.get(503, 0) + statuses.get(429, 0) > 0, statuses
        figure("flood", f"statuses {dict(sorted(statuses.items()))}, socket errors {errors}")


_WRK_LUA = r"""
local paths, n = {}, 0
for line in io.lines(os.getenv("TG_PATHS")) do paths[#paths + 1] = line end
request = function() n = n + 1; return wrk.format("GET", paths[(n % #paths) + 1]) end
done = function(summary)
  local e = summary.errors
  io.write(string.format("ERRORS %d %d %d %d\n", e.connect, e.read, e.write, e.timeout))
end
"""


def _wrk(url: str, work: Path, *, connections: int, seconds: int
         ) -> tuple[dict[int, int], dict[str, int]]:
    """Run wrk; (status -> count as the server answered, socket errors). The statuses come
    from the server's own metrics: wrk's Lua state is per thread and cannot sum them."""
    (work / "paths.txt").write_text("\n".join(PATHS) + "\n")
    (work / "load.lua").write_text(_WRK_LUA)
    before = _status_counts(url)
    done = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                           "-s", str(work / "load.lua"), url], capture_output=True, text=True,
                          env={**os.environ, "TG_PATHS": str(work / "paths.txt")}, timeout=120)
    line = next(x for x in done.stdout.splitlines() if x.startswith("ERRORS "))
    errors = dict(zip(("connect", "read", "write", "timeout"), map(int, line.split()[1:]),
                      strict=True))
    after = _status_counts(url)
    return {k: after[k] - before.get(k, 0) for k in after if after[k] > before.get(k, 0)}, errors


def _status_counts(url: str) -> dict[int, int]:
    """Answers by status code so far, from /metrics (search route, refusals included)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    counts: dict[int, int] = {}
    for line in text.splitlines():
        if line.startswith("tunegraph_http_requests_total{") and '"/v1/search"' in line:
            code = int(line.split('status_code="')[1].split('"')[0])
            counts[code] = counts.get(code, 0) + int(float(line.rsplit(" ", 1)[1]))
        elif line.startswith("tunegraph_refused_total "):
            counts[503] = counts.get(503, 0) + int(float(line.rsplit(" ", 1)[1]))
    return counts


def test_steady_load_short(catalog_uri: str, tmp_path: Path) -> None:
    """The CI variant of the steady-load test: 15 s at 8 searches/s (the full 60 s run at the
    README's capacity is `python -m bench.load_bench --steady RATE`): zero errors, zero
    refusals, p95 under 1,000 ms on a shared 2-core CI machine."""
    with live_server(catalog_uri, log_path=tmp_path / "serve.log") as url:
        loadgen.run(url, PATHS, rate=4, seconds=3)  # warm up
        result = loadgen.run(url, PATHS, rate=8, seconds=15)
        assert result.errors == 0, result.row()
        assert result.refused == 0, result.row()
        assert result.percentile(95) < 1000, result.row()
        figure("steady load (short)", result.row())


BAD_PATHS = [
    "/v1/search?q=%FF%FE%FD", "/v1/search?q=caf%C3", "/v1/search?q=" + "a" * 5000,
    "/v1/search?q=" + "%E2%98%83" * 300, "/v1/search?q=x&limit=-1", "/v1/search?q=x&limit=0",
    "/v1/search?q=x&limit=99999999999999999999", "/v1/search?q=x&limit=1e3",
    "/v1/search?q=x&kinds=song,%00", "/v1/search?q=%00", "/v1/search?q=x&debug=2",
    "/v1/search?q=" + "%22%5C%28%29%5B%5D%7B%7D%5E%7E%2A%3F%3A%2F%21%2B%2D%26%26%7C%7C",
    "/v1/search?q=MATCH+(n)+DETACH+DELETE+n", "/v1/search?q=%27%29+MATCH+(n)+SET+n.x%3D1+%2F%2F",
    "/v1/search?q=*", "/v1/search?q=~", "/v1/search?q=AND", "/v1/suggest?q=%FF",
    "/v1/suggest?q=" + "z" * 3000, "/v1/suggest?q=a&limit=-5", "/v1/artists/%FF/related",
    "/v1/artists/" + "a" * 3000 + "/related", "/v1/entities/%00", "/v1/entities/..%2F..%2Fetc",
    "/v1/artists/ar:taylor-swift/related?limit=100000", "/v1/search", "/v1/nothing-here",
]


def test_bad_requests_get_4xx_and_change_nothing(catalog_uri: str, shared_neo4j: Neo4jStore,
                                                 tmp_path: Path) -> None:
    """A hand-made corpus of bad requests (invalid UTF-8, Lucene and Cypher syntax, huge and
    negative limits, over-long texts, oversize and malformed bodies): no 5xx, an oversize body
    gets 413, and the catalog's content hash is unchanged."""
    before = _catalog_fingerprint(shared_neo4j)
    with live_server(catalog_uri, log_path=tmp_path / "serve.log") as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        for path in BAD_PATHS:
            r = client.get(path)
            assert r.status_code < 500, (path[:80], r.status_code, r.text[:200])
        bodies: list[bytes] = [b"{", b"\xff\xfe", b"[]", b"null", b'{"search_id": 1}',
                               b'{"search_id":"x","entity_id":"y","action":"click",'
                               b'"position":1e309}', b"{" + b'"a":' * 10_000 + b"1}"]
        for body in bodies:
            r = client.post("/v1/feedback", content=body,
                            headers={"content-type": "application/json"})
            assert 400 <= r.status_code < 500, (body[:40], r.status_code, r.text[:200])
        # on a connection of its own: the server may close it after the 413 without reading the
        # rest of the body, and a POST sent on it next would see the disconnect, not an answer
        big = httpx.post(f"{url}/v1/feedback", content=b" " * (64 * 1024),
                         headers={"content-type": "application/json"}, timeout=30)
        assert big.status_code == 413
        r = client.post("/v1/feedback", content=b"x=1",
                        headers={"content-type": "application/x-www-form-urlencoded"})
        assert 400 <= r.status_code < 500
    assert _catalog_fingerprint(shared_neo4j) == before
    figure("bad requests", f"{len(BAD_PATHS)} bad GETs and {len(bodies) + 2} bad bodies: no 5xx, "
                           "413 for the oversize body, catalog hash unchanged")


def test_acknowledged_feedback_survives_sigkill(catalog_uri: str, shared_neo4j: Neo4jStore,
                                                tmp_path: Path) -> None:
    """Feedback sent while the API process is killed with SIGKILL five times at random moments
    (and started again): every event answered 202 is stored, exactly once."""
    rng = random.Random(5)
    acked: list[str] = []
    env = {**os.environ, "NEO4J_URI": catalog_uri, "TUNEGRAPH_RATE_LIMIT_PER_MINUTE": "0",
           "TUNEGRAPH_POLICY": "fixed:rrf", "TUNEGRAPH_SEARCH_DEADLINE_MS": "10000"}
    port = server.free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("ab")

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        assert wait_for(lambda: _ready(url), timeout=120, every=0.3)
        return proc

    proc = start()
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(5):
                kill_at = time.monotonic() + rng.uniform(1.0, 4.0)
                while time.monotonic() < kill_at:
                    _one_feedback(client, rng, acked)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                proc = start()
            for _ in range(5):
                _one_feedback(client, rng, acked)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    assert len(acked) >= 10
    records, _, _ = shared_neo4j.driver.execute_query(
        "UNWIND $keys AS k OPTIONAL MATCH (f:Feedback {key: k}) RETURN k, count(f) AS n",
        {"keys": acked}, routing_=RoutingControl.READ)
    counts = {r["k"]: r["n"] for r in records}
    assert all(counts[k] == 1 for k in acked), [k for k in acked if counts[k] != 1][:5]
    figure("feedback through 5 SIGKILLs", f"{len(acked)} events answered 202, all stored "
                                          "exactly once")


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _one_feedback(client: httpx.Client, rng: random.Random, acked: list[str]) -> None:
    """A search and a click on one of its items; records the event key if answered 202."""
    try:
        page = client.get("/v1/search", params={"q": rng.choice(QUERIES)}).json()
        if not page.get("items"):
            return
        pos = rng.randrange(len(page["items"]))
        item = page["items"][pos]
        r = client.post("/v1/feedback", json={"search_id": page["search_id"],
                                              "entity_id": item["id"], "action": "click",
                                              "position": pos})
        if r.status_code == 202:
            acked.append(f"{page['search_id']}|{item['id']}|click|{pos}")
    except (httpx.HTTPError, ValueError):
        pass  # the process died mid-request: nothing was acknowledged


def test_slow_store_keeps_the_deadline(own_neo4j: tuple[Path, server.ServerInfo],
                                       tmp_path: Path) -> None:
    """With Neo4j frozen (SIGSTOP) for 4 s: searches still answer within the page deadline plus
    a margin, degraded; the store-call pool is not exhausted (at most 16 calls in flight), and
    once Neo4j runs again full pages come back without restarting the API."""
    home, info = own_neo4j
    # Neo4j's full-text index: the one source that reads the store per search, so searches
    # meet the frozen store (the in-process default never waits on it)
    with live_server(info.uri, log_path=tmp_path / "serve.log",
                     TUNEGRAPH_SEARCH_DEADLINE_MS="300", TUNEGRAPH_FULLTEXT="neo4j") as url, \
            httpx.Client(base_url=url, timeout=10) as client:
        # not one of PATHS: those must meet the frozen store, not the cache of repeated queries;
        # retried, as the first search can miss the 300 ms deadline on a busy machine
        assert wait_for(lambda: not client.get("/v1/search?q=adele").json()["degraded"],
                        timeout=30, every=0.5)
        os.kill(info.pid, signal.SIGSTOP)
        try:
            times: list[float] = []
            degraded: list[bool] = []
            end = time.monotonic() + 4
            while time.monotonic() < end:
                t0 = time.perf_counter()
                r = client.get(PATHS[len(times) % len(PATHS)])
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200
                degraded.append(r.json()["degraded"])
        finally:
            os.kill(info.pid, signal.SIGCONT)
        assert len(times) >= 5
        assert max(times) < 0.3 + 1.5, times
        assert all(degraded)

        def full() -> bool:
            r = client.get(PATHS[0])
            return r.status_code == 200 and not r.json()["degraded"]

        back = time.monotonic()
        assert wait_for(full, timeout=30, every=0.3)
        figure("slow store (SIGSTOP 4 s)", f"{len(times)} searches, max "
               f"{max(times) * 1000:.0f} ms, all degraded; full pages "
               f"{time.monotonic() - back:.1f} s after SIGCONT")
    _ = home


def test_two_api_processes_learn_together(catalog_uri: str, tmp_path: Path) -> None:
    """Two API processes on different ports share one Neo4j: feedback sent to one changes what
    the other's policy has learnt (its outcome count) and what its memory returns.

    Both rank by RRF: the learned ranker shares this module's store with the SIGKILL test, whose
    clicks land on uniformly random positions; position-debiased, such clicks teach it that the
    deep results are the good ones, and it then buries the exact-name artist this test takes."""
    with live_server(catalog_uri, log_path=tmp_path / "a.log", TUNEGRAPH_POLICY="semibandit",
                     TUNEGRAPH_RANKER="rrf") as a, \
            live_server(catalog_uri, log_path=tmp_path / "b.log",
                        TUNEGRAPH_POLICY="semibandit", TUNEGRAPH_RANKER="rrf") as b, \
            httpx.Client(timeout=30) as client:
        seen = client.get(f"{b}/ready").json()["detail"]["outcomes_applied"]
        page = client.get(f"{a}/v1/search", params={"q": "beyonce", "user": "u-scale"}).json()
        ids = [i["id"] for i in page["items"]]
        assert "ar:beyonce" in ids, ids
        pos = ids.index("ar:beyonce")
        r = client.post(f"{a}/v1/feedback", json={"search_id": page["search_id"],
                                                  "entity_id": "ar:beyonce", "action": "play",
                                                  "position": pos})
        assert r.status_code == 202
        assert wait_for(lambda: client.get(f"{b}/ready").json()["detail"]["outcomes_applied"]
                        > seen, timeout=20)

        def memory_on_b() -> bool:
            other = client.get(f"{b}/v1/search", params={"q": "beyonce", "debug": "true"}).json()
            top = next((i for i in other["items"] if i["id"] == "ar:beyonce"), None)
            return top is not None and any(p["source"] == "memory" and p["reason"].startswith(
                "taken") for p in top["provenance"])

        assert wait_for(memory_on_b, timeout=20)
        figure("two processes", "feedback to A: B applied the outcome and its memory "
                                "returns the take")
