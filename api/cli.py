"""The `tunegraph` command: run the local Neo4j, convert the public data, ingest feeds."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Never

import msgspec
from tqdm import tqdm

from graph import server
from graph.connect import open_store, resolve
from ingest.bulk import initial_load
from ingest.pipeline import IngestReport, ingest

DEFAULT_DATA = Path("../shared/data")


def _neo4j(args: argparse.Namespace) -> int:
    home = Path(args.data) if args.data else server.default_home()
    if args.action == "install":
        print(f"Neo4j {server.NEO4J_VERSION} runtime in {server.install()}")
    elif args.action == "start":
        info = server.start(home, args.port, timeout=args.timeout, max_heap=args.heap,
                            pagecache=args.pagecache)
        print(f"Neo4j {server.NEO4J_VERSION} listening on {info.uri} (pid {info.pid}, data {home})")
    elif args.action == "stop":
        print("stopped" if server.stop(home) else f"no Neo4j was running for {home}")
    else:
        status = server.status(home)
        if status is None:
            print(f"not running (data {home})")
            return 3
        print(f"running on {status.uri} (pid {status.pid}, data {home}), "
              f"{server.node_count(status.uri):,} nodes")
    return 0


def _summary(report: IngestReport) -> str:
    verb = "would write" if report.dry_run else "wrote"
    return (f"{report.records:,} records in {report.elapsed_s:.1f} s "
            f"({report.rate:,.0f} records/s): {report.created:,} created, "
            f"{report.updated:,} updated, "
            f"{report.unchanged:,} unchanged, {report.deleted:,} deleted, "
            f"{report.rejected:,} rejected ({report.unresolved_references:,} for unresolved "
            f"references), {report.superseded:,} superseded; {verb} "
            f"{report.relationships:,} relationships"
            + (f"; catalog version {report.catalog_version}" if report.catalog_version else ""))


def _rejects_path(args: argparse.Namespace) -> Path:
    if args.rejects:
        return Path(args.rejects)
    first = args.feeds[0]
    if first == "-":
        return Path("stdin.rejects.jsonl")
    name = Path(first).name.removesuffix(".gz").removesuffix(".jsonl")
    return Path(first).with_name(f"{name}.rejects.jsonl")


def _ingest(args: argparse.Namespace) -> int:
    bars: dict[str, tqdm[Never]] = {}

    def progress(stage: str, done: int) -> None:
        if stage not in bars:
            bars[stage] = tqdm(desc=stage, unit=" rec", disable=args.quiet, file=sys.stderr)
        bars[stage].update(done)

    try:
        if args.initial and not args.dry_run and not os.environ.get("NEO4J_URI"):
            home = Path(args.data) if args.data else server.default_home()
            report = initial_load(home, args.port, args.feeds, progress=progress)
        else:
            store = open_store()
            try:
                store.apply_schema()
                report = ingest(store, args.feeds, batch_size=args.batch_size,
                                dry_run=args.dry_run, progress=progress)
            finally:
                store.close()
    finally:
        for bar in bars.values():
            bar.close()
    if report.rejections:
        path = _rejects_path(args)
        with path.open("wb") as f:
            for rejection in report.rejections:
                f.write(msgspec.json.encode(rejection.as_dict()) + b"\n")
        for r in report.rejections[:10]:
            print(f"rejected {r.source}:{r.line}: {r.reason}", file=sys.stderr)
        more = report.rejected - 10
        print(f"{'... and ' + str(more) + ' more; ' if more > 0 else ''}"
              f"all {report.rejected} rejections are in {path}", file=sys.stderr)
    print(_summary(report))
    return 1 if report.rejections else 0


def _convert(args: argparse.Namespace) -> int:
    from ingest.adapters.catalog import build_catalog, write_feed

    records, convert_report = build_catalog(Path(args.data_dir), sets=args.sets)
    n = write_feed(records, Path(args.out))
    print(f"wrote {n:,} records to {args.out}")
    print(convert_report)
    return 0


def _train_graph(args: argparse.Namespace) -> int:
    from retrievers.graph_train import train_main

    store = open_store()
    try:
        print(train_main(store, args.out, models=args.models, seed=args.seed,
                         epochs=args.epochs, dim=args.dim, holdout=args.holdout,
                         device=args.device, threads=args.threads))
    finally:
        store.close()
    return 0


def _train_text(_: argparse.Namespace) -> int:
    from retrievers.text_embed import train_text

    store = open_store()
    try:
        for line in train_text(store):
            print(line)
    finally:
        store.close()
    return 0


def _train_warm_start(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from api.service import Service
    from api.settings import Settings

    service = Service.connect(replace(Settings.from_env(), warm_start=0))
    service.start()
    try:
        if not service.wait_ready(600) or service.learner is None or service.searcher is None:
            print(f"tunegraph train warm-start: the indexes did not load: {service.load_error}",
                  file=sys.stderr)
            return 1
        service.learner.reset()  # a fresh state under a new epoch: every process reloads it
        report = service.warm(service.searcher, args.per_class, args.seed)
        print(f"warm start: {report.lessons} lessons, {report.taken} with a relevant entity on "
              f"the page, {report.seconds:.1f} s; policy {service.learner.name} at outcome "
              f"{service.learner.seq}")
    finally:
        service.close()
    return 0


def _where(_: argparse.Namespace) -> int:
    print(resolve().uri)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from api.serve import serve

    serve(args.host, args.port, args.workers)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from bench.simulate import run

    return run(args)


def _evaluate_policy(args: argparse.Namespace) -> int:
    from bench.sim_ope import evaluate_log
    from graph.neo4j_store import Neo4jStore

    store = Neo4jStore.connect(args.uri) if args.uri else open_store()
    try:
        print(evaluate_log(store, args.candidate, since=args.since, metric=args.metric,
                           ci=args.ci, alpha=args.alpha, seed=args.seed))
    except ValueError as exc:
        print(f"tunegraph evaluate-policy: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunegraph", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    neo = sub.add_parser("neo4j", help="run the local Neo4j server")
    neo.add_argument("action", choices=["install", "start", "stop", "status"])
    neo.add_argument("--port", type=int, default=7687)
    neo.add_argument("--data", help="server home and data directory (default .tunegraph/neo4j)")
    neo.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for start")
    neo.add_argument("--heap", default="2g", help="JVM maximum heap")
    neo.add_argument("--pagecache", default="512m", help="Neo4j page cache size")
    neo.set_defaults(func=_neo4j)

    ing = sub.add_parser("ingest", help="validate and load catalog feeds (JSON Lines)")
    ing.add_argument("feeds", nargs="+", help="feed files (.jsonl or .jsonl.gz), or - for stdin")
    ing.add_argument("--dry-run", action="store_true", help="validate only; write nothing")
    ing.add_argument("--rejects", help="where rejected records go (default FEED.rejects.jsonl)")
    ing.add_argument("--batch-size", type=int, default=5000)
    ing.add_argument("--quiet", action="store_true", help="no progress bars")
    ing.add_argument("--initial", action="store_true",
                     help="first load: when the local database is empty, load it with the "
                     "offline importer (starts the local server, restarting it if running)")
    ing.add_argument("--port", type=int, default=7687, help="local server port, with --initial")
    ing.add_argument("--data", help="local server home, with --initial")
    ing.set_defaults(func=_ingest)

    conv = sub.add_parser("convert", help="build a catalog feed from the public data sets")
    conv.add_argument("--data-dir", default=str(DEFAULT_DATA))
    conv.add_argument("--out", default=".tunegraph/catalog.jsonl.gz")
    conv.add_argument("--sets", nargs="+", default=["spotify", "lastfm", "podcasts", "chinook"],
                      choices=["spotify", "lastfm", "podcasts", "chinook"])
    conv.set_defaults(func=_convert)

    train = sub.add_parser("train", help="train models and build serving artifacts")
    targets = train.add_subparsers(dest="target", required=True)
    # Each trainer adds its own target below (`tunegraph train text`, `train graph`, ...), with a
    # function that imports its (heavy) module only when it runs.
    graph_train = targets.add_parser(
        "graph", help="graph embeddings (PyKEEN, PyG): train, evaluate on held-out edges, save")
    graph_train.add_argument("--models", nargs="+", default=["rotate", "lightgcn"],
                             choices=["rotate", "complex", "lightgcn"])
    graph_train.add_argument("--epochs", type=int, help="epochs (default: each model's own)")
    graph_train.add_argument("--dim", type=int, help="embedding size (default: each model's)")
    graph_train.add_argument("--seed", type=int, default=0)
    graph_train.add_argument("--holdout", type=float, default=0.1,
                             help="share of RELATED_TO/CONTAINS edges held out (0: train on all)")
    graph_train.add_argument("--out", default=".tunegraph/embeddings",
                             help="saved under OUT/<model>")
    graph_train.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    graph_train.add_argument("--threads", type=int, help="torch CPU threads")
    graph_train.set_defaults(func=_train_graph)
    text_train = targets.add_parser(
        "text", help="distil the static text model (once a machine) and embed entity texts "
        "into the graph (only those missing or changed)")
    text_train.set_defaults(func=_train_text)
    warm = targets.add_parser(
        "warm-start", help="reset the learning state and learn it again from the catalog's "
        "own lessons (api.warmstart); the service does this by itself on a fresh log")
    warm.add_argument("--per-class", type=int, default=80, help="lessons per query class")
    warm.add_argument("--seed", type=int, default=0)
    warm.set_defaults(func=_train_warm_start)
    del targets

    srv = sub.add_parser("serve", help="run the search API and web page (Granian, ASGI)")
    srv.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    srv.add_argument("--port", type=int, help="port (default 8000)")
    srv.add_argument("--workers", type=int, help="worker processes (default 1)")
    srv.set_defaults(func=_serve)

    from bench import sim_args  # argparse only: the commands import their modules when run

    simulate = sub.add_parser("simulate", help="compare policies on simulated users through "
                              "the real search path; writes a table and plots")
    sim_args.add_simulate(simulate)
    simulate.set_defaults(func=_simulate)
    evaluate = sub.add_parser("evaluate-policy", help="off-policy estimates (IPS, SNIPS, DR) of "
                              "a candidate policy from the decision log")
    sim_args.add_evaluate(evaluate)
    evaluate.set_defaults(func=_evaluate_policy)

    where = sub.add_parser("where", help="print the Neo4j URI that commands will use")
    where.set_defaults(func=_where)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except server.ServerError as exc:
        print(f"tunegraph: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
