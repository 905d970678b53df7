"""`tunegraph evaluate-policy`: off-policy estimates of a candidate policy from the decision log.

    tunegraph evaluate-policy [--candidate semibandit] [--since SEQ|ISO-TIME]
        [--metric value|hit] [--ci normal|bootstrap] [--alpha 0.05] [--uri bolt://...]

Reads every settled search of the service's log in Neo4j (the (:Outcome) records, in sequence
order: context, plan as run with its logged propensity, reward). The candidate is a policy spec
("linucb", "fixed:rrf", ...; see `bandit.create`) or a file holding a policy state (JSON, as
`policy.state()` writes it). A spec's policy first learns from the outcomes up to `--since`
(replayed in log order), then is frozen and evaluated on the outcomes after it, which it has
not seen; with no `--since` it is evaluated untrained on the whole log. Prints IPS,
self-normalized IPS and doubly robust estimates with their intervals (`bandit.ope`) next to the
logging policy's observed value on the same outcomes.

The action space is the one the service logged under (the newest policy snapshot in the
store); a log with no snapshot gets one built from the sources its plans name.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

import msgspec
from neo4j import RoutingControl

from api.eventlog import EventLog
from api.learning import action_space
from api.settings import Settings
from bandit import ActionSpace, Outcome, Policy, create, decode, load, ope
from graph.neo4j_store import Neo4jStore

SECOND_STAGE: Final = frozenset({"related", "kge", "gnn"})  # expanders, when no snapshot says


@dataclass(frozen=True, slots=True)
class Split:
    train: list[Outcome]
    test: list[Outcome]


def read_outcomes(store: Neo4jStore) -> list[tuple[int, Outcome]]:
    events = EventLog(store)
    out: list[tuple[int, Outcome]] = []
    seq = 0
    while True:
        rows = events.outcomes_after(seq)
        if not rows:
            return out
        out += [(s, o) for s, doc in rows if isinstance(o := decode(doc), Outcome)]
        seq = rows[-1][0]


def logged_space(store: Neo4jStore, outcomes: Sequence[Outcome]) -> ActionSpace:
    """The newest snapshot's action space; else one over the sources the plans name."""
    records, _, _ = store.driver.execute_query(
        "MATCH (p:PolicyState) RETURN p.state AS state ORDER BY p.seq DESC LIMIT 1",
        database_=store.database, routing_=RoutingControl.READ)
    if records:
        doc = json.loads(records[0]["state"])
        space = doc.get("policy", {}).get("config", {}).get("space")
        if space is not None:
            return msgspec.convert(space, ActionSpace)
    names: dict[str, None] = {}
    for o in outcomes:
        names.update(dict.fromkeys(n for n, _ in o.plan.ks))
    if not names:
        raise ValueError("the log has no outcomes to take an action space from")
    s = Settings()
    budget = max((o.plan.budget for o in outcomes), default=s.budget)
    return action_space([n for n in names if n not in SECOND_STAGE],
                        [n for n in names if n in SECOND_STAGE], budget=budget,
                        step=s.budget_step, latency_weight=s.latency_weight,
                        remote=frozenset({"fulltext"}) if s.fulltext == "neo4j" else frozenset())


def split(rows: Sequence[tuple[int, Outcome]], since: str | None) -> Split:
    """Outcomes up to `since` (a sequence number, or an ISO time) and after it."""
    if since is None:
        return Split([], [o for _, o in rows])
    if since.isdigit():
        cut = int(since)
        return Split([o for s, o in rows if s <= cut], [o for s, o in rows if s > cut])
    at = datetime.fromisoformat(since).timestamp()
    return Split([o for _, o in rows if o.ts <= at], [o for _, o in rows if o.ts > at])


def candidate(spec: str, space: ActionSpace, train: Sequence[Outcome], seed: int) -> Policy:
    """A state file's policy as it is, or a fresh `spec` policy that learned from `train`."""
    path = Path(spec)
    if spec.endswith(".json") and path.exists():
        return load(json.loads(path.read_text()))
    policy = create(spec, space, seed)
    for o in train:
        policy.update(o.context, o.plan, o.reward)
    return policy


def evaluate_log(store: Neo4jStore, spec: str, *, since: str | None = None,
                 metric: Literal["value", "hit"] = "value",
                 ci: Literal["normal", "bootstrap"] = "normal", alpha: float = 0.05,
                 seed: int = 0) -> str:
    rows = read_outcomes(store)
    parts = split(rows, since)
    if len(parts.test) < 4:
        raise ValueError(f"{len(parts.test)} outcomes to evaluate on; need at least 4")
    space = logged_space(store, [o for _, o in rows])
    target = candidate(spec, space, parts.train, seed)
    data = ope.samples(parts.test, metric=metric)
    report = ope.evaluate(data, target, alpha=alpha, ci=ci, seed=seed)
    logging = Counter(o.plan.policy or "?" for o in parts.test)
    who = ", ".join(f"{p} {n}" for p, n in logging.most_common())
    head = [f"{len(rows)} outcomes in the log; the candidate learnt from {len(parts.train)}, "
            f"evaluated on {len(parts.test)} (metric: {metric})",
            f"logged by: {who}", ""]
    return "\n".join(head) + ope.format_report(report, spec, logged="logging policy")
