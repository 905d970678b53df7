"""The search API through Litestar's test client, against the real Neo4j and the fixture catalog."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from api.service import Service
from graph import server
from graph.neo4j_store import Neo4jStore
from ingest.pipeline import ingest
from tests.api_support import client_for, running_service, wait_for
from tests.conftest import load_fixture_catalog

pytestmark = pytest.mark.neo4j
KINDS = {"song", "artist", "album", "playlist", "podcast", "episode", "genre"}


@pytest.fixture(scope="module")
def service(neo4j_server: server.ServerInfo,
            shared_neo4j: Neo4jStore) -> Iterator[Service]:
    store = shared_neo4j
    load_fixture_catalog(store)
    with running_service(neo4j_server.uri) as svc:
        yield svc


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[TestClient[Any]]:
    with client_for(service) as c:
        yield c


def search(client: TestClient[Any], q: str, **params: Any) -> dict[str, Any]:
    r = client.get("/v1/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_search_page_shape_and_misspelled_artist(client: TestClient[Any]) -> None:
    page = search(client, "tayler swift")
    assert set(page) >= {"search_id", "query", "items", "interpretations", "degraded"}
    assert page["query"] == "tayler swift"
    assert not page["degraded"]
    top = page["items"][0]
    assert (top["id"], top["kind"], top["name"]) == ("ar:taylor-swift", "artist", "Taylor Swift")
    assert "fuzzy" in top["sources"]
    assert top["score"] > 0
    assert top["related_label"] == "top songs"
    assert len(top["related"]) == 3
    assert all(r["kind"] == "song" for r in top["related"])
    assert {i["kind"] for i in page["items"]} <= KINDS
    assert len({i["kind"] for i in page["items"]}) > 1  # one page, mixed kinds
    assert "debug" not in page
    assert all("provenance" not in i for i in page["items"])


def test_kinds_filter_and_limit(client: TestClient[Any]) -> None:
    page = search(client, "taylor swift", kinds="song", limit=5)
    assert 0 < len(page["items"]) <= 5
    assert {i["kind"] for i in page["items"]} == {"song"}
    page = search(client, "crime", kinds="podcast,episode")
    assert page["items"]
    assert {i["kind"] for i in page["items"]} <= {"podcast", "episode"}


def test_debug_shows_provenance_and_plan(client: TestClient[Any]) -> None:
    page = search(client, "bjork", debug="true")
    debug = page["debug"]
    assert debug["propensity"] == 1.0
    assert debug["policy"] == "fixed"
    assert set(debug["plan"]) == {"fuzzy", "fulltext", "understand", "memory", "related"}
    assert all(s["status"] == "ok" for s in debug["sources"].values())
    top = page["items"][0]
    assert top["id"] == "ar:bjork"
    assert {p["source"] for p in top["provenance"]} == set(top["sources"])
    fuzzy = next(p for p in top["provenance"] if p["source"] == "fuzzy")
    assert fuzzy["rank"] == 0
    assert "Björk" in fuzzy["reason"]
    expanded = [i for i in page["items"] if "related" in i["sources"]]
    assert expanded
    assert all(next(p for p in i["provenance"] if p["source"] == "related")["reason"]
                            for i in expanded)


def test_a_repeated_query_is_answered_from_the_snapshot_cache(client: TestClient[Any]) -> None:
    """Within one catalog version, a repeat of a query takes every source's answer but the click
    memory's from the cache: no store round trip, the same page, hits counted on /metrics. (That
    a new version starts with an empty cache is what test_reingest_while_serving_is_picked_up
    checks: its query is searched before the ingest and must find the new artist after it.)"""
    first = search(client, "shape of you divide", debug="true")
    again = search(client, "shape of you divide", debug="true")
    assert not any(s["cached"] for s in first["debug"]["sources"].values())
    cached = {name for name, s in again["debug"]["sources"].items() if s["cached"]}
    assert cached == set(again["debug"]["plan"]) - {"memory"}
    assert {"fulltext", "related"} <= cached  # a retriever and the expander
    assert [i["id"] for i in again["items"]] == [i["id"] for i in first["items"]]
    assert again["debug"]["sources"]["fulltext"]["ms"] < 1.0
    metrics = client.get("/metrics").text
    assert 'tunegraph_source_cache_total{result="hit",source="fulltext"}' in metrics


def test_interpretations(client: TestClient[Any]) -> None:
    page = search(client, "true crime podcast")
    reading = page["interpretations"][0]
    assert reading["kinds"] == ["podcast"]
    assert reading["confidence"] > 0
    assert page["items"][0]["kind"] == "podcast"


@pytest.mark.parametrize(("params", "needle"), [
    ({"q": ""}, "q must not be empty"),
    ({"q": "   "}, "q must not be empty"),
    ({"q": "x" * 201}, "the limit is 200"),
    ({"q": "x" * 5000}, "q"),
    ({"q": "rock", "kinds": "songs,planets"}, "unknown kinds"),
    ({"q": "rock", "limit": "0"}, "limit"),
    ({"q": "rock", "limit": "-3"}, "limit"),
    ({"q": "rock", "limit": "51"}, "limit must be between 1 and 50"),
    ({"q": "rock", "limit": "many"}, "limit"),
    ({"q": "rock\x00drop"}, "control"),
    ({"q": "rock", "debug": "maybe"}, "debug"),
    ({}, "q"),
])
def test_bad_search_requests_get_400_problem_details(client: TestClient[Any],
                                                     params: dict[str, str], needle: str) -> None:
    r = client.get("/v1/search", params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 400
    assert body["title"] == "Bad Request"
    assert needle in body["detail"]


def test_lucene_and_cypher_syntax_is_just_text(client: TestClient[Any]) -> None:
    for q in ['AC/DC', '!(")', "a:b OR c~", '"unclosed', "') MATCH (n) DETACH DELETE n //",
              "{}[]^~*?\\", "AND OR NOT"]:
        page = search(client, q)
        assert isinstance(page["items"], list), q
        assert not page["degraded"], q
    assert search(client, "AC/DC")["items"][0]["id"] == "ar:ac-dc"


def test_feedback_is_stored_once_and_feeds_the_memory(client: TestClient[Any],
                                                      service: Service) -> None:
    page = search(client, "love story swift")
    pos, item = next((n, i) for n, i in enumerate(page["items"]) if i["kind"] == "song")
    body = {"search_id": page["search_id"], "entity_id": item["id"], "action": "click",
            "position": pos}
    first = client.post("/v1/feedback", json=body)
    assert first.status_code == 202
    assert first.json()["status"] == "stored"
    again = client.post("/v1/feedback", json=body)  # a client's retry
    assert again.status_code == 202
    assert again.json()["status"] == "duplicate"
    stored = [e for e in service.events.feedback() if e.search_id == page["search_id"]]
    assert len(stored) == 1
    assert stored[0].entity_id == item["id"]
    assert stored[0].query == "love story swift"
    later = search(client, "Love Story  Swift", debug="true")
    took = next(i for i in later["items"] if i["id"] == item["id"])
    assert "memory" in took["sources"]
    memory = next(p for p in took["provenance"] if p["source"] == "memory")
    assert memory["reason"] == "taken 1 time"


@pytest.mark.parametrize(("change", "status", "needle"), [
    ({"search_id": "0" * 32}, 404, "unknown search_id"),
    ({"entity_id": "ar:not-on-the-page"}, 422, "was not on the page"),
    ({"position": 7}, 422, "was at position 0"),
    ({"action": "love"}, 400, "action"),
    ({"position": -1}, 400, "position"),
    ({"extra": 1}, 400, "extra"),
])
def test_bad_feedback_gets_4xx(client: TestClient[Any], change: dict[str, Any], status: int,
                               needle: str) -> None:
    page = search(client, "beatles")
    body = {"search_id": page["search_id"], "entity_id": page["items"][0]["id"],
            "action": "play", "position": 0, **change}
    r = client.post("/v1/feedback", json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]


def test_feedback_body_limits(client: TestClient[Any]) -> None:
    r = client.post("/v1/feedback", content=b"{" + b" " * 20_000 + b"}",
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = client.post("/v1/feedback", content=b"\xff\xfe not json",
                    headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = client.post("/v1/feedback", json=["a", "list"])
    assert r.status_code == 400


def test_suggest(client: TestClient[Any]) -> None:
    r = client.get("/v1/suggest", params={"q": "tay"})
    assert r.status_code == 200
    items = r.json()["items"]
    assert items[0]["id"] == "ar:taylor-swift"
    assert all(i["name"].lower().split()[0].startswith("tay") or "tay" in i["name"].lower()
               for i in items)
    r = client.get("/v1/suggest", params={"q": "the beat", "kinds": "artist"})
    assert [i["id"] for i in r.json()["items"]][:1] == ["ar:the-beatles"]
    assert client.get("/v1/suggest", params={"q": ""}).status_code == 400


def test_related_artists_with_reasons(client: TestClient[Any]) -> None:
    r = client.get("/v1/artists/ar:taylor-swift/related", params={"limit": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["artist"]["name"] == "Taylor Swift"
    assert 0 < len(body["items"]) <= 5
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(i["reasons"] for i in body["items"])
    assert any(r.startswith("co-listening") for i in body["items"] for r in i["reasons"])
    assert client.get("/v1/artists/ar:nobody/related").status_code == 404
    song = search(client, "shape of you", kinds="song")["items"][0]["id"]
    assert client.get(f"/v1/artists/{song}/related").status_code == 404
    assert client.get("/v1/artists/ar:taylor-swift/related", params={"limit": 0}).status_code \
        == 400


def test_entity_with_neighbours(client: TestClient[Any]) -> None:
    r = client.get("/v1/entities/ar:u2")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "U2"
    assert body["kind"] == "artist"
    relations = {n["relation"] for n in body["neighbours"]}
    assert {"PERFORMED_BY", "RELATED_TO"} <= relations
    assert client.get("/v1/entities/zz:none").status_code == 404


def test_health_ready_metrics_openapi(client: TestClient[Any]) -> None:
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["detail"]["entities"] == 201
    search(client, "u2")
    metrics = client.get("/metrics").text
    for name in ("tunegraph_searches_total", "tunegraph_source_seconds_bucket",
                 "tunegraph_policy_choices_total", "tunegraph_http_requests_total"):
        assert name in metrics
    schema = client.get("/schema/openapi.json").json()
    assert {"/v1/search", "/v1/feedback", "/v1/suggest"} <= set(schema["paths"])


def test_admin_needs_the_api_key(client: TestClient[Any]) -> None:
    assert client.post("/v1/admin/reload").status_code == 401
    assert client.post("/v1/admin/reload", headers={"x-api-key": "wrong"}).status_code == 401
    assert client.post("/v1/admin/reload", headers={"x-api-key": "test-key"}).status_code == 202


def test_web_page(client: TestClient[Any]) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="q"' in page.text
    assert client.get("/static/app.js").status_code == 200


def test_reingest_while_serving_is_picked_up(client: TestClient[Any], service: Service,
                                             tmp_path: Any) -> None:
    feed = tmp_path / "new.jsonl"
    feed.write_text('{"kind":"artist","id":"ar:zqx-new","name":"Zyqxoria Quartet",'
                    '"genres":["g:rock"],"popularity":0.4}\n')
    before = search(client, "Zyqxoria Quartet")
    assert all(i["id"] != "ar:zqx-new" for i in before["items"])
    writer = Neo4jStore(service.store.driver, service.store.database)  # an ingest "elsewhere"
    report = ingest(writer, [str(feed)])
    assert report.created == 1
    assert wait_for(lambda: search(client, "Zyqxoria Quartet")["items"][:1]
                    and search(client, "Zyqxoria Quartet")["items"][0]["id"] == "ar:zqx-new")


def test_the_serving_indexes_are_out_of_the_collectors_reach(service: Service) -> None:
    """After each build (this runs after the re-ingest above, so it sees a rebuilt snapshot) the
    snapshot is frozen: the collector no longer tracks its objects, so a full collection never
    scans them."""
    cards = service.indexes.cards
    assert gc.get_freeze_count() > len(cards)
    tracked = {id(o) for o in gc.get_objects()}
    assert id(cards) not in tracked
    assert id(next(iter(cards.values()))) not in tracked


def test_artists_like_x_puts_related_artists_before_x(client: TestClient[Any]) -> None:
    """"artists like U2" reads as U2's related artists: the first results are other artists
    (understand's RELATED_TO reading), and U2 itself, if on the page, comes after them."""
    page = search(client, "artists like u2")
    assert page["interpretations"][0]["explanation"] == "like U2 (RELATED_TO)"
    ids = [i["id"] for i in page["items"]]
    assert ids
    assert ids[0] != "ar:u2"
    assert "ar:u2" not in ids[:3]
    assert "understand" in page["items"][0]["sources"] or any(
        "understand" in i["sources"] for i in page["items"][:3])


def test_the_page_follows_an_asked_reading(client: TestClient[Any]) -> None:
    """"songs by tayler swift": Taylor Swift leads, then her songs, before anything else;
    "rock playlists": playlists first; every song title appears once."""
    items = search(client, "songs by tayler swift", limit=10)["items"]
    assert items[0]["id"] == "ar:taylor-swift"
    # the fixture holds 6 of her songs: all of them next, and songs only after them
    assert [("Taylor Swift" in i["subtitle"], i["kind"]) for i in items[1:7]] == [
        (True, "song")] * 6
    assert {i["kind"] for i in items[1:]} == {"song"}
    playlists = search(client, "rock playlists", limit=5)["items"]
    assert [i["kind"] for i in playlists[:2]] == ["playlist", "playlist"]


def test_versions_of_a_song_appear_once(client: TestClient[Any]) -> None:
    items = search(client, "lover taylor swift", limit=10)["items"]
    keys = [(i["kind"], i["name"].split(" (")[0].split(" - ")[0].lower()) for i in items]
    assert len(keys) == len(set(keys))
    assert {"song", "album"} <= {k for k, name in keys[:3] if name == "lover"}


@pytest.mark.parametrize(("q", "kind"), [("songs", "song"), ("podcasts", "podcast"),
                                         ("songs by nobodyatall", "song"),
                                         ("britpop podcasts", "podcast"),
                                         ("PLAYLISTS", "playlist")])
def test_intent_words_alone_or_unmet_get_a_page_of_the_asked_kind(
        client: TestClient[Any], q: str, kind: str) -> None:
    """Only intent words, a subject that does not exist, a genre no entity of the asked kind is
    in: a page that leads with the asked kind, and the reading in `interpretations`."""
    page = search(client, q, limit=5)
    assert page["items"], q
    assert page["items"][0]["kind"] == kind, q
    assert page["interpretations"][0]["kinds"] == [kind]


def test_like_alone_is_no_error(client: TestClient[Any]) -> None:
    assert search(client, "like")["query"] == "like"
