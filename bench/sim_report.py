"""The simulator's figures: the per-policy table, recall per query class, regret, and PNG plots.

All figures are over each intent's first search (its retry, if any, is counted in the feedback
events and the retry column only), so every policy is scored on the same 2,000 queries.

Regret: for each query class, the best fixed plan is the fixed policy (fixed:*) with the most
reward on that class's searches of this traffic, in hindsight; a policy's regret at search t is
that plan's reward on search t minus its own (both logged by the service: the first take's
position-discounted value, 0 when nothing was taken). Summed over t, against the number of
feedback events the policy had received by then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from bench.sim_run import PolicyRun
from bench.sim_users import CLASSES

HEAD: Final = 500  # "first 500" / "last 500"
WINDOW: Final = 200  # rolling mean for the curves
START: Final = 50  # searches before a trailing mean is drawn (fewer are noise)
Array = npt.NDArray[np.float64]


def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if len(xs) else float("nan")


def best_fixed(runs: Mapping[str, PolicyRun]) -> dict[str, str]:
    """Per query class, the fixed policy with the most reward on it."""
    fixed = {p: r for p, r in runs.items() if p.startswith("fixed:")}
    out = {}
    for cls in CLASSES:
        totals = {p: sum(row.reward for row in r.primary if row.cls == cls)
                  for p, r in fixed.items() if any(row.cls == cls for row in r.primary)}
        if totals:
            out[cls] = max(sorted(totals), key=lambda p: totals[p])
    return out


def regret(run: PolicyRun, runs: Mapping[str, PolicyRun]) -> Array:
    """Cumulative regret after each search, against the best fixed plan per class."""
    best = best_fixed(runs)
    if not best:
        return np.full(len(run.primary), np.nan)
    by_policy = {p: {row.index: row.reward for row in r.primary} for p, r in runs.items()}
    gaps = [by_policy[best[row.cls]].get(row.index, 0.0) - row.reward
            if row.cls in best else 0.0 for row in run.primary]
    return np.cumsum(np.array(gaps, dtype=np.float64))


def feedback_axis(run: PolicyRun) -> Array:
    """The number of feedback events received up to and including each intent."""
    per_intent: dict[int, int] = {}
    for row in run.rows:
        per_intent[row.index] = per_intent.get(row.index, 0) + row.feedback
    return np.cumsum(np.array([per_intent[row.index] for row in run.primary],
                              dtype=np.float64))


def summary(runs: Mapping[str, PolicyRun]) -> list[dict[str, float | str]]:
    out: list[dict[str, float | str]] = []
    for policy, run in runs.items():
        rows = run.primary
        head, tail = rows[:HEAD], rows[-HEAD:]
        mrr_first, mrr_last = _mean([r.rr for r in head]), _mean([r.rr for r in tail])
        reg = regret(run, runs)
        out.append({
            "policy": policy, "searches": len(rows),
            "recall_first": _mean([r.recall for r in head]),
            "recall_last": _mean([r.recall for r in tail]),
            "recall": _mean([r.recall for r in rows]),
            "mrr_first": mrr_first, "mrr_last": mrr_last,
            "mrr_ratio": mrr_last / mrr_first if mrr_first else float("nan"),
            "mrr": _mean([r.rr for r in rows]),
            "reward": _mean([r.reward for r in rows]),
            "regret": float(reg[-1]) if len(reg) else float("nan"),
            "cost": _mean([r.cost for r in rows]),
            "feedback": float(sum(r.feedback for r in run.rows)),
            "retries": float(sum(r.attempt for r in run.rows)),
            "ms": float(np.median([r.ms for r in rows])) if rows else float("nan"),
        })
    return out


def table(runs: Mapping[str, PolicyRun]) -> str:
    rows = summary(runs)
    n = max((int(r["searches"]) for r in rows), default=0)
    lines = [f"| policy | recall@budget first {HEAD} | last {HEAD} | all {n} | "
             f"MRR@10 first {HEAD} | last {HEAD} | last/first | all | reward | "
             "cum. regret | cost | feedback events | retries |",
             "|---|" + "---:|" * 12]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['recall_first']:.3f} | {r['recall_last']:.3f} | "
            f"{r['recall']:.3f} | {r['mrr_first']:.3f} | {r['mrr_last']:.3f} | "
            f"{r['mrr_ratio']:.2f} | {r['mrr']:.3f} | {r['reward']:.3f} | "
            f"{r['regret']:.1f} | {r['cost']:.2f} | {int(r['feedback'])} | "
            f"{int(r['retries'])} |")
    return "\n".join(lines)


def class_table(runs: Mapping[str, PolicyRun]) -> str:
    """Candidate recall (and MRR@10) per query class, over all searches."""
    first = next(iter(runs.values()), None)
    counts = {c: sum(1 for r in first.primary if r.cls == c) for c in CLASSES} if first else {}
    lines = ["| policy | " + " | ".join(f"{c} ({counts.get(c, 0)})" for c in CLASSES) + " |",
             "|---|" + "---:|" * len(CLASSES)]
    for policy, run in runs.items():
        cells = []
        for c in CLASSES:
            rows = [r for r in run.primary if r.cls == c]
            cells.append(f"{_mean([r.recall for r in rows]):.2f} / "
                         f"{_mean([r.rr for r in rows]):.2f}")
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rolling(xs: Sequence[float], window: int = WINDOW, start: int = 0) -> Array:
    """Trailing mean over up to `window` values; NaN (not drawn) for the first `start`."""
    a = np.asarray(xs, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(a)])
    idx = np.arange(1, len(a) + 1)
    lo = np.maximum(0, idx - window)
    out = np.asarray((c[idx] - c[lo]) / (idx - lo), dtype=np.float64)
    out[:start] = np.nan
    return out


def plots(runs: Mapping[str, PolicyRun], out: Path) -> list[Path]:
    """recall.png, mrr.png, regret.png and the three side by side (learning.png) in `out`
    (matplotlib, Agg backend), each against the number of feedback events."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    curves = {
        "recall.png": (f"candidate recall at the budget (trailing mean of {WINDOW})",
                       {p: rolling([r.recall for r in run.primary], start=START)
                        for p, run in runs.items()}),
        "mrr.png": (f"MRR@10 of the final page (trailing mean of {WINDOW})",
                    {p: rolling([r.rr for r in run.primary], start=START)
                     for p, run in runs.items()}),
        "regret.png": ("cumulative regret vs the best fixed plan per query class",
                       {p: regret(run, runs) for p, run in runs.items()}),
    }
    written = []
    for name, (title, ys) in curves.items():
        fig, ax = plt.subplots(figsize=(8, 4.8), dpi=90)
        _draw(ax, runs, title, ys)
        written.append(_save(fig, out / name))
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2), dpi=80)
    for ax, (title, ys) in zip(axes, curves.values(), strict=True):
        _draw(ax, runs, title, ys)
    written.append(_save(fig, out / "learning.png"))
    return written


def _draw(ax: Any, runs: Mapping[str, PolicyRun], title: str, ys: Mapping[str, Array]) -> None:
    for policy, y in ys.items():
        style = "--" if policy.startswith("fixed:") else "-"
        ax.plot(feedback_axis(runs[policy]), y, style, linewidth=1.3, label=policy)
    ax.set_xlabel("feedback events")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
