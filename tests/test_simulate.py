"""The user simulator: seeded, deterministic user, query and click models; a short run through
the real search path on the fixture catalog in the test session's Neo4j; and a learning policy
that beats a fixed single source on traffic rigged so that the single source cannot win."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from bench.sim_report import best_fixed, class_table, plots, regret, rolling, table
from bench.sim_run import PolicyRun, Row, run_policy
from bench.sim_users import MIX, Clicks, Intent, Traffic
from bench.sim_world import Catalog, lastfm_users, load_catalog, synthetic_users
from graph import server
from graph.neo4j_store import Neo4jStore
from ingest.pipeline import ingest
from tests.conftest import FIXTURES

CATALOG = FIXTURES / "catalog.jsonl"


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog(CATALOG)


def test_catalog_view_reads_the_feed(cat: Catalog) -> None:
    assert cat.items["ar:radiohead"].kind == "artist"
    assert "ar:sigur-ros" in dict(cat.related["ar:radiohead"])
    assert "ar:radiohead" in dict(cat.related["ar:sigur-ros"])  # read both ways
    songs = cat.songs_of["ar:ed-sheeran"]
    assert songs
    assert all(cat.items[s].kind == "song" for s in songs)
    assert cat.same_name("ar:radiohead") == {"ar:radiohead"}


def test_traffic_is_seeded_and_follows_the_mix(cat: Catalog) -> None:
    users = synthetic_users(cat, 30, seed=1)
    assert synthetic_users(cat, 30, seed=1) == users
    a = Traffic(cat, users, seed=5).intents(400)
    assert a == Traffic(cat, users, seed=5).intents(400)
    assert a != Traffic(cat, users, seed=6).intents(400)
    counts = Counter(i.cls for i in a)
    for cls, share in MIX.items():  # seeded: wide margins, never flaky
        assert abs(counts[cls] / len(a) - share) < 0.08, cls
    for i in a:
        assert i.target in i.relevant
        assert i.relevant <= cat.items.keys()
        assert i.query.strip()
        if i.cls in ("typo", "partial"):
            assert i.retry is not None
            assert i.retry != i.query.lower()
    like = [i for i in a if i.cls == "like"]
    assert all(i.target in dict(cat.related[a_id]) for i in like
               for a_id in cat.items if cat.items[a_id].kind == "artist"
               and cat.items[a_id].name.lower() in i.query.lower()
               and i.target in dict(cat.related[a_id]))


def test_misspellings_recur_across_users(cat: Catalog) -> None:
    traffic = Traffic(cat, synthetic_users(cat, 5, seed=2), seed=3)
    rng = random.Random(0)
    name = cat.items["ar:britney-spears"].name
    seen = Counter(traffic.misspelling("ar:britney-spears", name, rng) for _ in range(200))
    assert 1 < len(seen) <= 3  # a few variants per target, the same for every user
    assert seen.most_common(1)[0][1] > 60


def _intent(relevant: str = "ar:u2") -> Intent:
    return Intent(0, "u", "exact", "u2", relevant, frozenset({relevant}), "u2", 1.0)


def test_clicks_are_seeded_position_based_and_noisy() -> None:
    clicks = Clicks(seed=4)
    page = [f"x:{i}" for i in range(10)]
    intent = _intent("x:0")
    assert clicks.session(intent, page) == clicks.session(intent, page)
    assert clicks.examine(0) > clicks.examine(3) > clicks.examine(9)

    def click_rate(pos: int) -> float:
        target = page[pos]
        n = 0
        for k in range(600):
            s = clicks.session(Intent(k, "u", "exact", "q", target, frozenset({target})), page)
            n += s.satisfied
        return n / 600

    top, deep = click_rate(0), click_rate(9)
    assert top > 0.7
    assert deep < 0.35
    assert top > deep + 0.4
    plays = [clicks.session(Intent(k, "u", "exact", "q", "x:0", frozenset({"x:0"})), page)
             for k in range(600)]
    assert 0.5 < sum(any(e.action == "play" for e in s.events) for s in plays) / 600 < 0.9
    missing = [clicks.session(Intent(k, "u", "typo", "q", "y", frozenset({"y"}), "fix"), page)
               for k in range(600)]
    assert not any(s.satisfied for s in missing)
    assert 0.55 < sum(s.retry for s in missing) / 600 < 0.85
    assert sum(len(s.events) for s in missing) > 0  # noise clicks on what they did not want


def test_lastfm_users_map_onto_catalog_artists(tmp_path: Path, cat: Catalog) -> None:
    folder = tmp_path / "lastfm_hetrec2011"
    folder.mkdir()
    (folder / "artists.dat").write_text(
        "id\tname\turl\tpictureURL\n1\tRadiohead\tu\tp\n2\tBjörk\tu\tp\n3\tNobody Here\tu\tp\n"
        "4\tSigur Rós\tu\tp\n5\tPortishead\tu\tp\n6\tColdplay\tu\tp\n")
    (folder / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n" + "".join(f"7\t{a}\t{100 * a}\n" for a in range(1, 7))
        + "8\t1\t5\n")
    (folder / "tags.dat").write_bytes("tagID\ttagValue\n1\tchillout\n".encode("latin-1"))
    (folder / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\n7\t5\t1\t1\t1\t2010\n")
    users = lastfm_users(tmp_path, cat)
    assert [u.id for u in users] == ["lfm7"]  # user 8 knows too few catalog artists
    taste = dict(users[0].taste)
    assert "ar:nobody-here" not in taste
    assert users[0].taste[0] == ("ar:coldplay", 600.0)  # most played first
    assert users[0].spelling["ar:bjork"] == "Björk"
    assert users[0].tags == {"chillout": ("ar:portishead",)}


def test_report_figures_from_rows() -> None:
    def run(policy: str, rewards: list[float]) -> PolicyRun:
        rows = [Row(i, "exact" if i % 2 else "like", 0, f"s{i}", r > 0, r, 0.0, {}, 1, r > 0,
                    1.0, reward=r) for i, r in enumerate(rewards)]
        return PolicyRun(policy, rows)

    runs = {"learned": run("learned", [0.0, 1.0, 1.0, 1.0]),
            "fixed:a": run("fixed:a", [1.0, 0.0, 0.0, 1.0]),
            "fixed:b": run("fixed:b", [0.0, 1.0, 0.0, 0.0])}
    assert best_fixed(runs) == {"exact": "fixed:a", "like": "fixed:a"}
    assert list(regret(runs["learned"], runs)) == [1.0, 0.0, -1.0, -1.0]
    assert list(rolling([1.0, 0.0, 1.0, 1.0], window=2)) == [1.0, 0.5, 0.5, 1.0]
    assert "| learned |" in table(runs)
    assert "| fixed:b |" in class_table(runs)


@pytest.fixture(scope="module")
def fixture_catalog(neo4j_server: server.ServerInfo, shared_neo4j: Neo4jStore) -> str:
    shared_neo4j.clear()
    ingest(shared_neo4j, [str(CATALOG)])
    shared_neo4j.driver.execute_query(
        "CALL db.index.fulltext.awaitEventuallyConsistentIndexRefresh()")
    return neo4j_server.uri


@pytest.mark.neo4j
def test_a_short_run_logs_an_outcome_per_search(fixture_catalog: str, cat: Catalog,
                                                tmp_path: Path) -> None:
    intents = Traffic(cat, synthetic_users(cat, 20, seed=1), seed=1).intents(60)
    run = run_policy(fixture_catalog, "semibandit", intents, Clicks(1), seed=1)
    assert [r.index for r in run.primary] == list(range(60))
    assert run.outcomes == len(run.rows)  # every search settled once: taken or expired
    assert sum(r.recall for r in run.primary) > 30
    assert sum(r.feedback for r in run.rows) > 0
    assert "fuzzy" in run.first_stage
    written = plots({"semibandit": run}, tmp_path)
    assert all(p.stat().st_size > 1000 for p in written)


@pytest.mark.neo4j
def test_a_learning_policy_beats_a_fixed_single_source_on_rigged_traffic(
        fixture_catalog: str, cat: Catalog) -> None:
    """Only "like X" queries: the related artists they want come from the related-entity
    expander, which a fixed fuzzy-only plan never runs. (Since the page follows an asked
    reading, query understanding's structured answer joins every plan's candidates, so the
    fixed plan finds the strongest related artists too: 0.87 in the tail over three runs,
    against 0.97-1.0 learned. Before, it found none and the margin was 0.4.)"""
    users = synthetic_users(cat, 20, seed=2)
    intents = Traffic(cat, users, seed=2, mix={"like": 1.0}).intents(60)
    learned = run_policy(fixture_catalog, "semibandit", intents, Clicks(2), seed=2)
    fixed = run_policy(fixture_catalog, "fixed:single:fuzzy", intents, Clicks(2), seed=2)

    def recall(run: PolicyRun) -> float:
        tail = run.primary[-30:]
        return sum(r.recall for r in tail) / len(tail)

    assert recall(learned) > recall(fixed) + 0.05, (recall(learned), recall(fixed))


def test_a_fresh_semibandit_spreads_the_budget_past_the_probed_sources() -> None:
    """On the service only the probed sources (fuzzy, memory) carry features before the plan;
    a fresh semi-bandit must still try the others (the simulator found it giving fuzzy all
    60 candidates on every search, so the expander that "like X" needs never ran)."""
    from bandit import ActionSpace, Context, SemiBandit, SourceFeatures

    space = ActionSpace.of(["fuzzy", "fulltext", "understand", "memory"], ["related"])
    ctx = Context(query_chars=22, tokens=("artists", "like", "radiohead"),
                  sources=(SourceFeatures("fuzzy", n_results=55, top_score=0.77, score_gap=0.1),
                           SourceFeatures("memory")))
    plan = SemiBandit(space, seed=0, eps_local=0.0, eps_global=0.0).choose(ctx)
    assert len(plan.sources) == 5, plan.ks
