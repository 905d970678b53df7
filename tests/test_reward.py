"""Reward: action weights, position discount, per-source credit, outages and expiry."""

from __future__ import annotations

import math

import pytest

from bandit.plan import ActionSpace, SourceSpec
from bandit.reward import Feedback, RewardConfig, credit, settle

SPACE = ActionSpace((SourceSpec("fuzzy"), SourceSpec("text"), SourceSpec("memory"),
                     SourceSpec("related", "second")), budget=30, step=10)
PLAN = SPACE.plan({"fuzzy": 10, "text": 10, "related": 10})
LISTS = {"fuzzy": ("a", "b", "c"), "text": ("c", "d", *tuple(f"x{i}" for i in range(8))),
         "related": ("e",) * 0}


def fb(entity: str, action: str = "play", position: int = 0, ts: float = 10.0) -> Feedback:
    return Feedback("s1", entity, action, position, ts)  # type: ignore[arg-type]


def test_position_discount_and_action_weights() -> None:
    top = credit(PLAN, LISTS, [fb("c", "play", 0)])
    third = credit(PLAN, LISTS, [fb("c", "play", 2)])
    click = credit(PLAN, LISTS, [fb("c", "click", 0)])
    assert top.value == pytest.approx(1.0)
    assert third.value == pytest.approx(1.0 / math.log2(4))
    assert click.value == pytest.approx(0.5)
    flat = credit(PLAN, LISTS, [fb("c", "play", 2)], RewardConfig(discount="none"))
    assert flat.value == pytest.approx(1.0)


def test_credit_goes_to_every_source_that_held_the_take() -> None:
    r = credit(PLAN, LISTS, [fb("c", "play", 1)])
    fuzzy, text, related = r.outcome("fuzzy"), r.outcome("text"), r.outcome("related")
    assert fuzzy is not None
    assert text is not None
    assert related is not None
    assert (fuzzy.rank, text.rank, related.rank) == (2, 0, None)
    assert fuzzy.credit == text.credit == pytest.approx(1.0 / math.log2(3))
    assert related.credit == 0.0
    assert related.returned == 0
    assert related.exhausted
    assert fuzzy.exhausted
    assert not text.exhausted
    assert r.hit
    assert r.taken == ("c",)


def test_repeated_feedback_counts_once_at_its_best() -> None:
    r = credit(PLAN, LISTS, [fb("a", "click", 0), fb("a", "play", 0), fb("a", "like", 0)])
    assert r.value == pytest.approx(1.0)
    assert r.outcome("fuzzy") is not None
    assert r.outcome("fuzzy").credit == pytest.approx(1.0)  # type: ignore[union-attr]


def test_best_ranked_take_sets_the_source_rank() -> None:
    r = credit(PLAN, LISTS, [fb("b", "play", 3), fb("a", "click", 0)])
    o = r.outcome("fuzzy")
    assert o is not None
    assert o.rank == 0
    # the click at the top (0.5) beats the play in fourth place (1 / log2(5) = 0.43)
    assert o.credit == pytest.approx(0.5)
    assert r.taken == ("a", "b")
    assert r.value == pytest.approx(0.5)


def test_unavailable_source_is_not_a_miss() -> None:
    ran = PLAN.with_unavailable(["text"])
    r = credit(ran, {"fuzzy": LISTS["fuzzy"]}, [fb("d", "play", 0)])
    assert r.unavailable == ("text",)
    assert r.outcome("text") is None
    assert [o.source for o in r.sources] == ["fuzzy", "related"]
    assert not r.hit
    assert r.value == pytest.approx(1.0)


def test_a_take_outside_every_list_credits_nobody() -> None:
    r = credit(PLAN, LISTS, [fb("zzz", "add", 0)])
    assert not r.hit
    assert all(o.credit == 0 for o in r.sources)


def test_skip_penalty_when_asked() -> None:
    assert credit(PLAN, LISTS, [fb("a", "skip", 0)]).value == 0.0
    cfg = RewardConfig(weights={"play": 1.0, "skip": -0.25})
    r = credit(PLAN, LISTS, [fb("a", "skip", 0), fb("c", "play", 0)], cfg)
    assert r.value == pytest.approx(0.75)
    worst = credit(PLAN, LISTS, [fb("a", "skip", 0)] * 10, cfg)
    assert worst.value == -1.0


def test_settle_waits_for_the_window_then_expires_as_zero() -> None:
    cfg = RewardConfig(timeout_s=60)
    assert settle(PLAN, LISTS, 0.0, [], now=59.0, config=cfg) is None
    r = settle(PLAN, LISTS, 0.0, [], now=60.0, config=cfg)
    assert r is not None
    assert r.expired
    assert r.value == 0.0
    assert not r.hit
    assert [o.rank for o in r.sources] == [None, None, None]
    late = settle(PLAN, LISTS, 0.0, [fb("c", ts=61.0)], now=100.0, config=cfg)
    assert late is not None
    assert late.value == 0.0
    seen = settle(PLAN, LISTS, 0.0, [fb("c", ts=30.0)], now=100.0, config=cfg)
    assert seen is not None
    assert seen.hit
    assert not seen.expired
