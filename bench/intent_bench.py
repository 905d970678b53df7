"""The intent bench: TuneGraph's page against BM25, dense and hybrid peers on the intent dev set.

    .venv/bin/python -m bench.intent_bench [--split test] [--warm-start 80] [--clicks N]
        [--per-class 60] [--seed 0] [--out bench/results/intent_bench.txt] [--append]
        [--peers | --no-peers]

Generates the intent dev set (bench/intent_devset.py) from a snapshot of the local catalog and
prints one Markdown row per class: TuneGraph's main metric and kind@10 for each pass, then each
peer's main metric (bench/intent_peers.py), and a latency line. Main metric: p@10 for the set
classes, hit@1, hit@3 and MRR@10 for `title_artist`, hit@1, hit@3, hit@10 and MRR@10 for
`album_artist` (hit@3: a song and an album of one name, a single's, are both in the top 3).

- p@10 = relevant works in the top 10 / min(10, relevant works), where versions of one work
  (a title by one artist: remasters, the same song on several albums) count once
  (`work_keys`); kind@10 = the share of the top 10 of the asked kind; both over the ranking
  with the query's anchor (the artist of "songs by X") removed first; hit@k and MRR@10 on the
  relevant set. Means over the queries of `--split`.
- TuneGraph runs in process as bench/sim_run.py runs it (same settings, a simulated clock, the
  learning state wiped first). Passes over the judged queries: "untrained" (no learned state
  at all), "warm" (after the warm start a fresh deployment makes by itself, api.warmstart, from
  lessons on the tune half's subjects only), and with `--clicks N` after N more searches drawn
  from the other split's queries, each with a position-biased user (position p examined with
  probability (1/(1+p))**0.7, the first examined relevant item clicked), settled and applied.
  The judged passes' own searches are wiped before anything learns, so that the judged queries
  never teach the learner anything.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np

from api.feedback import FeedbackError, handle_feedback
from api.schemas import FeedbackIn
from api.search import SearchResult
from api.service import Service
from api.warmstart import WarmStartReport
from bench.devset_variants import core_title, fold
from bench.intent_devset import CLASSES, RANKED, IntentQuery, generate
from bench.intent_peers import PEERS, Dense, Peers, bm25
from bench.sim_run import READY_S, SIM_SETTINGS, SimClock, clear_learning, seed_policy
from graph.connect import open_store, resolve
from graph.model import Entity, Kind, Relation, RelType
from graph.neo4j_store import Neo4jStore
from graph.snapshot import Snapshot
from retrievers.base import Query

REPO: Final = Path(__file__).resolve().parents[1]
DEFAULT_OUT: Final = REPO / "bench" / "results" / "intent_bench.txt"
PAGE: Final = 10
PEER_K: Final = 50  # candidates a peer returns
EXAMINE_DECAY: Final = 0.7  # position p examined with probability (1 / (1 + p)) ** 0.7
CLICK_GAP_S: Final = 20.0  # simulated seconds between two searches of the click phase
SETTLE_EVERY: Final = 20
MAIN: Final[dict[str, tuple[str, ...]]] = {
    **{c: ("p@10",) for c in CLASSES}, "title_artist": ("hit@1", "hit@3", "mrr"),
    "album_artist": ("hit@1", "hit@3", "hit@10", "mrr")}


# -- metrics ---------------------------------------------------------------------------------------

def judged(ids: Sequence[str], anchor: str | None) -> list[str]:
    """The top 10 once the anchor is taken out."""
    return [i for i in ids if i != anchor][:PAGE]


def precision_at_10(ids: Sequence[str], relevant: frozenset[str], anchor: str | None,
                    work_of: Mapping[str, str] | None = None) -> float:
    """Distinct relevant works in the judged top 10 over min(10, relevant works): versions of
    one work (a song on six albums, its remasters) count once, on the page and in the set, so a
    page that collapses them is not short of the bar, nor one that repeats them above it."""
    if not relevant:
        return 0.0
    work = (lambda i: i) if work_of is None else (lambda i: work_of.get(i, i))
    top = {work(i) for i in judged(ids, anchor) if i in relevant}
    return len(top) / min(PAGE, len({work(i) for i in relevant}))


def kind_at_10(ids: Sequence[str], kind_of: Mapping[str, str], kind: str,
               anchor: str | None) -> float:
    """The share of the judged top 10 (as many as there are, at most 10) of `kind`."""
    top = judged(ids, anchor)
    return sum(kind_of.get(i) == kind for i in top) / len(top) if top else 0.0


def hit_at(ids: Sequence[str], relevant: frozenset[str], k: int,
           anchor: str | None = None) -> float:
    return float(any(i in relevant for i in judged(ids, anchor)[:k]))


def mrr_at_10(ids: Sequence[str], relevant: frozenset[str], anchor: str | None = None) -> float:
    return next((1.0 / r for r, i in enumerate(judged(ids, anchor), start=1) if i in relevant),
                0.0)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the judge reads of the catalog: each entity's kind and work (`work_keys`)."""

    kind_of: Mapping[str, str]
    work_of: Mapping[str, str]


def work_keys(entities: Sequence[Entity], relations: Sequence[Relation]) -> dict[str, str]:
    """A song's or album's work: its folded core title and first artist (by id); a playlist's:
    its folded name; anything else is its own work."""
    first: dict[str, str] = {}
    for r in relations:
        if r.type in (RelType.PERFORMED_BY, RelType.BY) and r.dst < first.get(r.src, "~"):
            first[r.src] = r.dst
    out = {}
    for e in entities:
        if e.kind in (Kind.SONG, Kind.ALBUM):
            out[e.id] = f"{e.kind.value}:{fold(core_title(e.name))}:{first.get(e.id, '')}"
        elif e.kind is Kind.PLAYLIST:
            out[e.id] = f"playlist:{fold(e.name)}"
    return out


def scores(q: IntentQuery, ids: Sequence[str], facts: Facts) -> dict[str, float]:
    """Every metric of one ranking for one query."""
    kind_of = facts.kind_of
    rel = frozenset(q.relevant)
    if q.cls in RANKED:
        return {"hit@1": hit_at(ids, rel, 1, q.anchor), "hit@3": hit_at(ids, rel, 3, q.anchor),
                "hit@10": hit_at(ids, rel, PAGE, q.anchor), "mrr": mrr_at_10(ids, rel, q.anchor)}
    out = {"p@10": precision_at_10(ids, rel, q.anchor, facts.work_of)}
    if q.kind is not None:
        out["kind@10"] = kind_at_10(ids, kind_of, q.kind, q.anchor)
    return out


# -- TuneGraph in process --------------------------------------------------------------------------

@dataclass(slots=True)
class Ranked:
    """One system's answer to one query."""

    ids: list[str]
    ms: float


@dataclass(slots=True)
class Run:
    """One system over the judged queries: per query its scores, and the search times."""

    name: str
    per_query: list[dict[str, float]]
    ms: list[float]


def judge(name: str, queries: Sequence[IntentQuery], answers: Sequence[Ranked],
          facts: Facts) -> Run:
    return Run(name, [scores(q, a.ids, facts) for q, a in zip(queries, answers, strict=True)],
               [a.ms for a in answers])


def percentiles(ms: Sequence[float]) -> str:
    if not ms:
        return "-"
    p50, p95 = np.percentile(np.asarray(ms), [50, 95])
    return f"{p50:.0f} / {p95:.0f}"


class TuneGraph:
    """A started `Service` over the local Neo4j with a simulated clock, from no learned state."""

    def __init__(self, uri: str, seed: int) -> None:
        self.uri = uri
        self.forget()
        self.clock = SimClock()
        self.service = Service.connect(SIM_SETTINGS, uri)
        self.service.clock = self.clock
        self.service.start()
        if not self.service.wait_ready(READY_S):
            self.service.close()
            raise RuntimeError(f"the service did not get ready: {self.service.load_error}")
        seed_policy(self.service, seed)
        assert self.service.learner is not None
        self.learner = self.service.learner

    def forget(self) -> None:
        """Wipe the store's learning state (searches, feedback, outcomes, policy, memory)."""
        store = Neo4jStore.connect(self.uri)
        try:
            clear_learning(store)
        finally:
            store.close()

    def forget_unsettled(self) -> None:
        """Drop the searches no outcome settled (a judged pass's), keeping what was learned."""
        self.wait_logged()
        self.service.store.driver.execute_query(
            "MATCH (s:Search) WHERE s.settled IS NULL DETACH DELETE s",
            database_=self.service.store.database)

    def warm(self, per_class: int, seed: int) -> WarmStartReport:
        """The warm start a fresh deployment makes by itself (api.warmstart), on this service."""
        searcher = self.service.searcher
        assert searcher is not None
        return self.service.warm(searcher, per_class, seed)

    def static_text(self, queries: Sequence[IntentQuery]) -> list[Ranked] | None:
        """The service's own `text` source (the static model distilled from MiniLM) alone, top
        50: what a contextual model would have to beat to pay as a source. None when the
        catalog has no text vectors."""
        text = self.service.indexes.retrievers.get("text")
        if text is None:
            return None
        out = []
        for q in queries:
            t0 = time.perf_counter()
            ids = [c.entity_id for c in text.retrieve(Query(q.query), PEER_K)]
            out.append(Ranked(ids, (time.perf_counter() - t0) * 1000))
        return out

    def search(self, text: str) -> tuple[SearchResult, float]:
        searcher = self.service.searcher
        assert searcher is not None
        t0 = time.perf_counter()
        result = searcher.search(text, user=None, limit=PAGE, kinds=frozenset())
        return result, (time.perf_counter() - t0) * 1000

    def answer(self, queries: Sequence[IntentQuery]) -> list[Ranked]:
        out = []
        for q in queries:
            result, ms = self.search(q.query)
            out.append(Ranked([item.id for item in result.page.items], ms))
        return out

    def wait_logged(self, timeout: float = 30.0) -> None:
        """Searches are written by a background thread: wait until none is pending."""
        end = time.monotonic() + timeout
        while self.service.events._pending and time.monotonic() < end:
            time.sleep(0.05)

    def clicks(self, pool: Sequence[IntentQuery], n: int, rng: random.Random) -> int:
        """`n` searches drawn from `pool`, each with a position-biased click; how many clicked."""
        clicked = 0
        for i in range(n):
            q = rng.choice(pool)
            self.clock.now += CLICK_GAP_S
            record = self.search(q.query)[0].record
            pos = examined_click(record.page, frozenset(q.relevant), rng)
            if pos is not None:
                try:
                    handle_feedback(self.service, FeedbackIn(record.search_id, record.page[pos],
                                                             "click", pos))
                    clicked += 1
                except FeedbackError as exc:
                    print(f"feedback refused: {exc}", file=sys.stderr)
            if i % SETTLE_EVERY == SETTLE_EVERY - 1:
                self.learner.settle_expired()
            self.learner.sync()
        return clicked

    def settle(self) -> None:
        """Close every feedback window, settle, apply (as bench/sim_run.py's `finish`)."""
        self.clock.now += self.learner.reward.timeout_s + 1.0
        self.wait_logged()
        while self.learner.settle_expired() > 0:
            pass
        self.learner.sync()

    def close(self) -> None:
        self.service.close()


def examined_click(page: Sequence[str], relevant: frozenset[str],
                   rng: random.Random) -> int | None:
    """The first position the user examines ((1/(1+p))**0.7) that holds a relevant entity."""
    for p, eid in enumerate(page):
        if rng.random() < (1.0 / (1 + p)) ** EXAMINE_DECAY and eid in relevant:
            return p
    return None


def run_tunegraph(uri: str, judged_q: Sequence[IntentQuery], pool: Sequence[IntentQuery],
                  args: argparse.Namespace, facts: Facts,
                  log: Callable[[str], None]) -> list[Run]:
    t0 = time.perf_counter()
    tg = TuneGraph(uri, args.seed)
    log(f"TuneGraph ready in {time.perf_counter() - t0:.0f} s")
    try:
        t0 = time.perf_counter()
        runs = [judge("TuneGraph untrained", judged_q, tg.answer(judged_q), facts)]
        log(f"TuneGraph untrained: {len(judged_q)} searches in {time.perf_counter() - t0:.0f} s")
        static = tg.static_text(judged_q) if args.peers else None
        if static is not None:  # the served text source alone, beside the contextual peer
            static_run = judge("static text", judged_q, static, facts)
        tg.wait_logged()
        tg.forget()  # the judged pass's searches must not settle into the learner
        if args.warm_start > 0:
            report = tg.warm(args.warm_start, args.seed)
            log(f"warm start: {report.lessons} lessons from the tune half, {report.taken} "
                f"with a relevant entity on the page, {report.seconds:.0f} s")
            runs.append(judge("TuneGraph warm", judged_q, tg.answer(judged_q), facts))
            tg.forget_unsettled()
        if args.clicks > 0:
            t0 = time.perf_counter()
            clicked = tg.clicks(pool, args.clicks, random.Random(args.seed))
            tg.settle()
            log(f"click phase: {args.clicks} searches, {clicked} clicks, "
                f"{time.perf_counter() - t0:.0f} s")
            runs.append(judge(f"TuneGraph +{args.clicks} clicks", judged_q,
                              tg.answer(judged_q), facts))
    finally:
        tg.close()
    return runs if static is None else [*runs, static_run]


def run_peers(store: Neo4jStore, snap: Snapshot, judged_q: Sequence[IntentQuery],
              facts: Facts, log: Callable[[str], None]) -> list[Run]:
    t0 = time.perf_counter()
    peers = Peers(bm25(store), Dense.build(snap.entities, snap.relations, snap.version))
    peers.run("warm up")
    log(f"peers ready in {time.perf_counter() - t0:.0f} s")
    answers: dict[str, list[Ranked]] = {p: [] for p in PEERS}
    for q in judged_q:
        for name, (ids, ms) in peers.run(q.query).items():
            answers[name].append(Ranked(ids, ms))
    return [judge(p, judged_q, answers[p], facts) for p in PEERS]


# -- the table -------------------------------------------------------------------------------------

def _mean(run: Run, rows: Sequence[int], metric: str) -> float | None:
    values = [run.per_query[i][metric] for i in rows if metric in run.per_query[i]]
    return float(np.mean(values)) if values else None


def _cell(run: Run, rows: Sequence[int], metrics: Sequence[str]) -> str:
    means = [_mean(run, rows, m) for m in metrics]
    return " / ".join("-" if m is None else f"{m:.3f}" for m in means)


def table(runs: Sequence[Run], queries: Sequence[IntentQuery]) -> list[str]:
    """One row per class: each TuneGraph run's main metric and kind@10, each peer's main."""
    head = ["class", "n", "metric"]
    for r in runs:
        head += [r.name, "kind@10"] if r.name.startswith("TuneGraph") else [r.name]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    firsts: dict[str, list[float]] = {r.name: [] for r in runs}
    for cls in CLASSES:
        rows = [i for i, q in enumerate(queries) if q.cls == cls]
        if not rows:
            continue
        cells = [cls, str(len(rows)), " / ".join(MAIN[cls])]
        for r in runs:
            cells.append(_cell(r, rows, MAIN[cls]))
            if r.name.startswith("TuneGraph"):
                cells.append(_cell(r, rows, ["kind@10"]))
            firsts[r.name].append(_mean(r, rows, MAIN[cls][0]) or 0.0)
        lines.append("| " + " | ".join(cells) + " |")
    macro = ["**macro**", str(len(queries)), "first metric"]
    for r in runs:
        macro.append(f"{np.mean(firsts[r.name]):.3f}" if firsts[r.name] else "-")
        if r.name.startswith("TuneGraph"):
            macro.append("")
    lines.append("| " + " | ".join(macro) + " |")
    return lines


def latency(runs: Sequence[Run]) -> str:
    """The first pass's search times and the peers'; later passes repeat the first pass's
    queries, which the service's cache of source answers then serves, so they are left out."""
    notes = {"dense": " (query encoding included)", "hybrid": " (BM25 + dense + fusion)",
             "static text": " (the served text source alone)"}
    parts = [f"{r.name} {percentiles(r.ms)}{notes.get(r.name, '')}" for r in runs
             if r.name == "TuneGraph untrained" or not r.name.startswith("TuneGraph")]
    return "Latency, ms per search, p50 / p95: " + "; ".join(parts) + "."


def report(args: argparse.Namespace, runs: Sequence[Run], queries: Sequence[IntentQuery],
           header: Sequence[str], notes: Sequence[str]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python -m bench.intent_bench " + " ".join(sys.argv[1:] if args.argv is None
                                                          else args.argv)
    lines = [f"## Intent bench, {when}", "",
             f"Split `{args.split}`, seed {args.seed}, at most {args.per_class} queries per "
             f"class (n below); {', '.join(header)}.", f"Command: `{command.strip()}`", "",
             *table(runs, queries), "", latency(runs), "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("tune", "test"), default="test")
    ap.add_argument("--clicks", type=int, default=0)
    ap.add_argument("--warm-start", type=int, default=80,
                    help="lessons per class of the service's warm start before the second "
                    "pass (0: none); always from the tune half")
    ap.add_argument("--per-class", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--append", action="store_true", help="append to --out, not replace it")
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args(argv)
    args.argv = None if argv is None else list(argv)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    started = time.perf_counter()
    notes: list[str] = []

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        notes.append(line)

    store = open_store()
    try:
        snap = Snapshot.read(store)
        queries = generate(snap.entities, snap.relations, args.seed, args.per_class)
        judged_q = [q for q in queries if q.split == args.split]
        pool = [q for q in queries if q.split != args.split]
        facts = Facts({e.id: e.kind.value for e in snap.entities},
                      work_keys(snap.entities, snap.relations))
        header = [f"catalog version {snap.version}", f"{len(snap.entities):,} entities"]
        log(f"snapshot and dev set in {time.perf_counter() - started:.0f} s: "
            f"{len(judged_q)} queries judged, {len(pool)} in the click pool")
        runs = run_peers(store, snap, judged_q, facts, log) if args.peers else []
        del snap
    finally:
        store.close()
    runs = run_tunegraph(resolve().uri, judged_q, pool, args, facts, log) + runs
    log(f"run took {time.perf_counter() - started:.0f} s")
    text = report(args, runs, judged_q, header, notes)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a" if args.append else "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
