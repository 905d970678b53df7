"""The user simulator: policies compared on the same simulated traffic through the real search path.

    .venv/bin/python -m bench.simulate [--searches 2000] [--policies semibandit vw ...]
        [--out bench/results/sim] [--seed 7] [--catalog .tunegraph/catalog.jsonl.gz]
        [--data-dir ../shared/data] [--uri bolt://... --wipe-learning-state]
    (or `tunegraph simulate ...`)

Loads the catalog feed into a fresh Neo4j in a temporary home (offline importer; or uses
`--uri`, whose learning state the simulator then deletes before each policy, hence the explicit
flag), reads the same feed as the simulator's view of the catalog and the real Last.fm users'
tastes (bench/sim_world.py), draws `--searches` seeded intents (bench/sim_users.py) and runs
each policy over them from a fresh learning state (bench/sim_run.py). Writes to `--out`: the
table (`table.md`: candidate recall at the budget, MRR@10 of the final page, first 500 / last
500 / all, reward, cumulative regret against the best fixed plan per query class, plan cost),
recall and MRR per query class, the plots (recall.png, mrr.png, regret.png, against the number
of feedback events), and every search's row (`rows.jsonl`, for re-plotting with `--replot`).
`fixed:single:*` stands for one fixed single-source policy per first-stage source.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import msgspec

from api.service import Service
from api.settings import Settings
from bench import sim_args, sim_report
from bench.evalkit import catalog_uri
from bench.sim_reform import ReformReport
from bench.sim_run import READY_S, SIM_SETTINGS, PolicyRun, Row, Runner, run_policy
from bench.sim_users import CLASSES, Clicks, Intent, Traffic
from bench.sim_world import Catalog, User, lastfm_users, load_catalog


def first_stage(uri: str) -> tuple[str, ...]:
    """The first-stage sources the service composes over this catalog."""
    service = Service.connect(SIM_SETTINGS, uri)
    service.start()
    try:
        if not service.wait_ready(READY_S) or service.learner is None:
            raise RuntimeError(f"the service did not get ready: {service.load_error}")
        return tuple(s.name for s in service.learner.space.sources if s.stage == "first")
    finally:
        service.close()


def mix_line(intents: Sequence[Intent]) -> str:
    counts = Counter(i.cls for i in intents)
    return ", ".join(f"{c} {counts[c]}" for c in CLASSES)


def run_all(uri: str, policies: Sequence[str], intents: Sequence[Intent], clicks: Clicks,
            seed: int, log: bool = True,
            after: dict[str, Callable[[Runner], object]] | None = None,
            settings: Settings = SIM_SETTINGS) -> dict[str, PolicyRun]:
    """Each policy in turn (`fixed:single:*` expanded once the sources are known). `after`:
    policy -> what to run on its service once its searches are done ("*": the first policy
    that is not fixed)."""
    runs: dict[str, PolicyRun] = {}
    hooks = dict(after or {})
    if "*" in hooks:
        learner = next((p for p in policies if not p.startswith("fixed:")), None)
        if learner is not None:
            hooks[learner] = hooks["*"]
    sources: tuple[str, ...] = ()
    for policy in policies:
        names = [policy]
        if policy == "fixed:single:*":
            sources = sources or first_stage(uri)
            names = [f"fixed:single:{s}" for s in sources]
        for name in names:
            if name in runs:
                continue
            started = time.perf_counter()

            def progress(n: int, name: str = name, started: float = started) -> None:
                if log and n % 250 == 0:
                    print(f"  {name}: {n}/{len(intents)} searches, "
                          f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

            run = run_policy(uri, name, intents, clicks, seed=seed, progress=progress,
                             after=hooks.get(name), settings=settings)
            runs[name] = run
            sources = sources or run.first_stage
            if log:
                print(f"{name}: done in {run.seconds:.0f} s ({run.outcomes} outcomes)",
                      file=sys.stderr, flush=True)
    return runs


def save(runs: dict[str, PolicyRun], out: Path) -> None:
    enc = msgspec.json.Encoder()
    with (out / "rows.jsonl").open("wb") as f:
        for policy, run in runs.items():
            for row in run.rows:
                f.write(enc.encode({"policy": policy, **asdict(row)}) + b"\n")


def load_rows(path: Path) -> dict[str, PolicyRun]:
    runs: dict[str, PolicyRun] = {}
    for line in path.read_bytes().splitlines():
        doc = msgspec.json.decode(line)
        policy = doc.pop("policy")
        runs.setdefault(policy, PolicyRun(policy)).rows.append(Row(**doc))
    return runs


def report(runs: dict[str, PolicyRun], out: Path, header: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    text = "\n\n".join([header, sim_report.table(runs),
                        "Candidate recall / MRR@10 per query class (all searches):",
                        sim_report.class_table(runs),
                        "Best fixed plan per class (for regret): " + ", ".join(
                            f"{c} {p}" for c, p in sim_report.best_fixed(runs).items())])
    (out / "table.md").write_text(text + "\n")
    sim_report.plots(runs, out)
    return text


def world(catalog: Path, data_dir: Path) -> tuple[Catalog, list[User]]:
    cat = load_catalog(catalog)
    return cat, lastfm_users(data_dir, cat)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tunegraph simulate",
                                 description=__doc__.splitlines()[0] if __doc__ else "")
    sim_args.add_simulate(ap)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


def run(args: argparse.Namespace) -> int:
    if args.uri and not args.wipe_learning_state:
        print("simulate: --uri deletes that database's searches, feedback and click memory "
              "before each policy; add --wipe-learning-state to confirm", file=sys.stderr)
        return 2
    if args.replot:
        runs = load_rows(args.out / "rows.jsonl")
        print(report(runs, args.out, "(re-plotted from rows.jsonl)"))
        return 0
    cat, users = world(args.catalog, args.data_dir)
    intents = Traffic(cat, users, args.seed).intents(args.searches)
    header = (f"{args.searches} searches per policy, seed {args.seed}, {len(users)} Last.fm "
              f"users, {len(cat.items):,} catalog entities; classes: {mix_line(intents)}")
    print(header, file=sys.stderr)
    after = reformulations(args) if args.reformulation else None
    with catalog_uri(args.catalog, args.uri, prefix="tg-sim-") as uri:
        knobs = {"latency_weight": args.latency_weight, "budget": args.budget,
                 "budget_step": args.budget_step}
        settings = replace(SIM_SETTINGS, **{k: v for k, v in knobs.items() if v is not None})
        runs = run_all(uri, args.policies, intents, Clicks(args.seed), args.seed, after=after,
                       settings=settings)
    args.out.mkdir(parents=True, exist_ok=True)
    save(runs, args.out)
    text = report(runs, args.out, header)
    for policy, run in runs.items():
        if isinstance(run.after, ReformReport):
            part = (f"Reformulations, on the {policy} service after its {len(run.primary)} "
                    f"searches:\n\n{run.after.table()}")
            (args.out / "reformulation.md").write_text(part + "\n")
            text += "\n\n" + part
    print(text)
    return 0


def reformulations(args: argparse.Namespace) -> dict[str, Callable[[Runner], object]]:
    """The reformulation evaluation, run on the first learning policy's service."""
    from bench import devset
    from bench.sim_reform import TOP_ARTISTS, Reformulations, generated_variants

    queries = devset.read()
    cat = devset.load_catalog(args.catalog, args.data_dir)
    top = devset.lastfm_top(args.data_dir, TOP_ARTISTS)
    variants = [q for q in queries if q.cls == "artist_variant"]
    variants += generated_variants(cat, top, args.seed)

    def after(runner: Runner) -> object:
        return Reformulations(runner).run(variants, queries, seed=args.seed)

    return {"*": after}


if __name__ == "__main__":
    raise SystemExit(main())
