"""The web page in headless Chromium (Debian's, driven by Playwright): type a misspelled query,
see type-ahead and the intended artist, click it, and find the click stored as feedback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import RoutingControl
from playwright.sync_api import Browser, sync_playwright

from graph import server
from graph.neo4j_store import Neo4jStore
from tests.api_support import live_server, wait_for
from tests.conftest import REPO, load_fixture_catalog

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("TUNEGRAPH_ARTIFACTS", REPO / "test-artifacts"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="module")
def base_url(neo4j_server: server.ServerInfo, shared_neo4j: Neo4jStore,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = shared_neo4j
    load_fixture_catalog(store)
    with live_server(neo4j_server.uri,
                     log_path=tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make system`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def _clicks(store: Neo4jStore, entity_id: str) -> int:
    records, _, _ = store.driver.execute_query(
        "MATCH (f:Feedback) WHERE f.doc CONTAINS $needle RETURN count(f) AS n",
        {"needle": f'"entity_id":"{entity_id}","action":"click"'}, database_="neo4j",
        routing_=RoutingControl.READ)
    return int(records[0]["n"])


def test_misspelled_search_click_is_recorded(base_url: str, browser: Browser,
                                             shared_neo4j: Neo4jStore) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base_url + "/")
    box = page.locator("#q")
    box.press_sequentially("tayl", delay=40)
    suggestion = page.locator("#suggestions li").first
    suggestion.wait_for(state="visible", timeout=10_000)
    assert "Taylor Swift" in suggestion.inner_text()
    box.fill("")
    box.press_sequentially("tayler swfit", delay=30)  # two typos
    box.press("Escape")  # closes the suggestions, keeps the text
    assert box.input_value() == "tayler swfit"
    box.press("Enter")
    first = page.locator("#results li.card").first
    try:
        first.wait_for(timeout=15_000)
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "search-page-failed.png"), full_page=True)
        raise
    assert first.get_attribute("data-id") == "ar:taylor-swift"
    assert "Taylor Swift" in first.locator(".name").inner_text()
    assert first.locator(".related .chip").count() == 3  # her top songs
    first.locator("details.why summary").click()
    assert "fuzzy" in first.locator("details.why table").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "search-page.png"), full_page=True)
    before = _clicks(shared_neo4j, "ar:taylor-swift")
    first.locator(".name").click()
    page.locator("#status", has_text="Noted: click on Taylor Swift").wait_for(timeout=10_000)
    assert wait_for(lambda: _clicks(shared_neo4j, "ar:taylor-swift") == before + 1,
                    timeout=10)
    first.locator("button.related-artists").click()
    page.locator("#related-list li").first.wait_for(timeout=10_000)
    assert "Artists related to Taylor Swift" in page.locator("#related-title").inner_text()
    page.screenshot(path=str(ARTIFACTS / "related-artists.png"), full_page=True)
    assert errors == []
