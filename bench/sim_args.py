"""The arguments of `tunegraph simulate` and `tunegraph evaluate-policy` (light: argparse only,
so that building the command's parser imports nothing heavy)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
DEFAULT_CATALOG: Final = REPO / ".tunegraph" / "catalog.jsonl.gz"
DEFAULT_DATA: Final = REPO.parent / "shared" / "data"
DEFAULT_OUT: Final = REPO / "bench" / "results" / "sim"
POLICIES: Final = ("semibandit", "linucb", "lints", "epsilon_greedy", "vw", "fixed:rrf",
                   "fixed:equal", "fixed:single:*")


def add_simulate(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--searches", type=int, default=2000, help="searches per policy")
    ap.add_argument("--policies", nargs="+", default=list(POLICIES),
                    help="policy specs; fixed:single:* is one per first-stage source")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="where the table, plots and rows go")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--latency-weight", type=float,
                    help="the plans' latency cost weight (default: the service's, 0.02)")
    ap.add_argument("--budget", type=int,
                    help="candidates a plan may draw from all sources (default: the service's, 60)")
    ap.add_argument("--budget-step", type=int,
                    help="the step the policy allocates k in (default: the service's, 10)")
    ap.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--uri", help="an existing Neo4j holding the catalog (its learning state "
                    "is deleted before each policy: needs --wipe-learning-state)")
    ap.add_argument("--wipe-learning-state", action="store_true")
    ap.add_argument("--reformulation", action="store_true",
                    help="also run the reformulation evaluation after the policies")
    ap.add_argument("--replot", action="store_true",
                    help="only rebuild the table and plots from OUT/rows.jsonl")


def add_evaluate(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--candidate", default="semibandit",
                    help="a policy spec (learns from the log up to --since) or a state .json")
    ap.add_argument("--since", help="evaluate on outcomes after this sequence number or ISO "
                    "time (the candidate learns from those before); default: all, untrained")
    ap.add_argument("--metric", choices=["value", "hit"], default="value",
                    help="page value, or hit: candidate recall of the taken entity")
    ap.add_argument("--ci", choices=["normal", "bootstrap"], default="normal")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--uri", help="the Neo4j with the log (default: NEO4J_URI or the local one)")
