"""Retrieval quality of every generator on the development queries, against the real catalog.

    .venv/bin/python -m bench.retrieval_eval [--catalog .tunegraph/catalog.jsonl.gz]
        [--devset bench/data/devset.jsonl] [--uri bolt://...] [--fit] [--split test]

Loads the real catalog (88,717 records) into a fresh Neo4j in a temporary home (offline
importer; or uses `--uri`), builds every generator from it, runs each on every development
query (top 50), and prints markdown tables:

1. the bar: the lexical path (fuzzy + full text + query understanding, calibrated fusion) on the
   held-out artist-variant queries, next to Tantivy and rapidfuzz WRatio baselines
   (bench/baselines.py) run here on the same queries, each source alone, and RRF;
2. the same per variant generator, and without the queries that are exact after simple folding;
3. the calibration fitted with one variant generator left out, tested on that generator;
4. hit@1, hit@10 and MRR per candidate generator and per query class (`--split`, default test),
   with RRF over all sources and the related-entity expanders seeded by the lexical top 5.

`--fit` refits the lexical path's calibration on the tuning split first and rewrites the
FITTED block of retrievers/lexical.py. Metrics: a query's relevant ids come from the devset;
MRR counts the first relevant result in the top 10 (0 beyond).
"""

from __future__ import annotations

import argparse
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bench.baselines import TantivyBaseline, WRatioBaseline
from bench.devset import CLASSES, DEFAULT_CATALOG, DEFAULT_OUT, DevQuery, read
from bench.evalkit import (
    Scores,
    Timed,
    catalog_server,
    optional_retrievers,
    pct,
    run_sources,
    table,
)
from graph.neo4j_store import Neo4jStore
from retrievers.base import Candidate, Expander, Query, Retriever
from retrievers.fusion import Calibrator, Fused, Platt, fit_platt, relative_scores, rrf
from retrievers.lexical import SOURCES, LexicalPath
from retrievers.memory import InProcessMemoryLog, MemoryRetriever
from retrievers.related import RelatedExpander
from retrievers.understand import Interpretation

K = 50
BAR = (0.85, 0.98, 0.90)
LEXICAL_FILE = Path(__file__).resolve().parents[1] / "retrievers" / "lexical.py"
Rankings = Mapping[int, Sequence[str]]  # query index -> ranked entity ids


def fit(path: LexicalPath, qs: Sequence[DevQuery], lists: Mapping[str, list[list[Candidate]]],
        readings: Sequence[list[Interpretation]], keep: Callable[[DevQuery], bool]
        ) -> dict[str, Platt]:
    """Per source, a Platt model over the candidates of the queries `keep` accepts."""
    models = {}
    for source in SOURCES:
        cols: dict[str, list[float]] = defaultdict(list)
        labels: list[bool] = []
        for i, q in enumerate(qs):
            if not keep(q):
                continue
            cands = lists[source][i]
            kind_fit = path.kind_fit(readings[i])
            for rank, (c, rel) in enumerate(zip(cands, relative_scores(cands), strict=True)):
                cols["score"].append(c.score)
                cols["rank"].append(rank)
                cols["relative"].append(rel)
                cols["kind"].append(kind_fit(c.entity_id) if kind_fit else 0.0)
                labels.append(c.entity_id in q.relevant)
        models[source] = fit_platt(cols["score"], [int(r) for r in cols["rank"]], labels,
                                   relative=cols["relative"], kind_fit=cols["kind"], l2=1e-2)
    return models


def write_calibration(models: Mapping[str, Platt], path: Path = LEXICAL_FILE) -> None:
    """Rewrite the FITTED block of retrievers/lexical.py with `models`."""
    text = path.read_text()
    body = "".join(f'    "{s}": Platt({m.a:.4f}, {m.b:.4f}, {m.c:.4f}, {m.d:.4f}, {m.e:.4f}),\n'
                   for s, m in models.items())
    block = f"CALIBRATION: Final[dict[str, Platt]] = {{\n{body}}}\n"
    new, n = re.subn(r"(# BEGIN FITTED[^\n]*\n).*?(# END FITTED)", lambda m: m[1] + block + m[2],
                     text, flags=re.S)
    if n != 1:
        raise RuntimeError(f"no FITTED block in {path}")
    path.write_text(new)


def evaluate(qs: Sequence[DevQuery], rankers: Mapping[str, Rankings],
             keep: Callable[[DevQuery], bool], group: Callable[[DevQuery], str]
             ) -> dict[str, dict[str, Scores]]:
    """ranker -> group -> scores, over the queries `keep` accepts (and the ranker ran on)."""
    out: dict[str, dict[str, Scores]] = {n: defaultdict(Scores) for n in rankers}
    for i, q in enumerate(qs):
        if keep(q):
            rel = set(q.relevant)
            for n, ranked in rankers.items():
                if i in ranked:
                    out[n][group(q)].add(ranked[i], rel)
                    out[n]["all"].add(ranked[i], rel)
    return out


def held_out(q: DevQuery) -> bool:
    return q.cls == "artist_variant" and q.split == "test"


def as_rankings(lists: Sequence[Sequence[Candidate | Fused]]) -> dict[int, list[str]]:
    return {i: [c.entity_id for c in cands] for i, cands in enumerate(lists)}


def expander_lists(expanders: Mapping[str, Expander], seeds: Sequence[list[str]]
                   ) -> dict[str, list[list[Candidate]]]:
    out: dict[str, list[list[Candidate]]] = {}
    for name, exp in expanders.items():
        out[name] = [exp.expand([Candidate(e, 1.0, "lexical") for e in s[:5]], K) for s in seeds]
    return out


def optional_expanders(store: Neo4jStore) -> dict[str, Expander]:
    found: dict[str, Expander] = {"related": RelatedExpander(store)}
    try:
        from retrievers import graph_embed
        for model in (*graph_embed.KGE_MODELS, *graph_embed.PYG_MODELS):
            exp = graph_embed.GraphEmbeddingExpander.load(store, model)
            found[exp.name] = exp
    except Exception as exc:  # embeddings not trained here, or that work still in progress
        print(f"graph-embedding expanders not loaded: {type(exc).__name__}: {exc}"[:200])
    return found


def bar_tables(qs: Sequence[DevQuery], rankers: Mapping[str, Rankings],
               ms: Mapping[str, Sequence[float]]) -> str:
    res = evaluate(qs, rankers, held_out, lambda q: q.generator)
    plain = evaluate(qs, rankers, lambda q: held_out(q) and not q.folded_exact, lambda q: "x")
    n, n_plain = res["lexical"]["all"].n, plain["lexical"]["all"].n
    rows = []
    for name in rankers:
        h1, h10, mrr = res[name]["all"].figures
        p50, p95 = pct(ms[name]) if ms.get(name) else (float("nan"), float("nan"))
        rows.append((name, h1, h10, mrr, *plain[name]["all"].figures, f"{p50:.1f}",
                     f"{p95:.1f}"))
    verdict = all(x >= b for x, b in zip(res["lexical"]["all"].figures, BAR, strict=True))
    out = [f"### Held-out artist variants ({n} queries; {n_plain} not exact after folding)\n",
           table(["ranker", "hit@1", "hit@10", "MRR", "hit@1*", "hit@10*", "MRR*", "p50 ms",
                  "p95 ms"], rows),
           f"\n\\* without folded-exact queries. Bar: hit@1 >= {BAR[0]}, hit@10 >= {BAR[1]}, "
           f"MRR >= {BAR[2]}: lexical path {'meets it' if verdict else 'falls short'}.\n",
           "### Per variant generator (hit@1 / hit@10)\n"]
    gens = sorted({q.generator for q in qs if held_out(q)})
    out.append(table(["ranker", *gens], [
        (name, *(f"{res[name][g].figures[0]:.2f} / {res[name][g].figures[1]:.2f}"
                 for g in gens)) for name in rankers]))
    return "\n".join(out)


def leave_one_out(path: LexicalPath, qs: Sequence[DevQuery],
                  lists: Mapping[str, list[list[Candidate]]],
                  readings: Sequence[list[Interpretation]]) -> str:
    """Calibration fitted without one variant generator, tested on that generator only."""
    rows = []
    for gen in sorted({q.generator for q in qs if q.cls == "artist_variant"}):
        def keep(q: DevQuery, gen: str = gen) -> bool:
            return q.split == "tune" and q.generator != gen
        cal = Calibrator(fit(path, qs, lists, readings, keep))
        scores = Scores()
        for i, q in enumerate(qs):
            if q.split == "test" and q.generator == gen:
                fused = cal.fuse({s: lists[s][i] for s in SOURCES}, 10,
                                 kind_fit=path.kind_fit(readings[i]))
                scores.add([f.entity_id for f in fused], set(q.relevant))
        rows.append((gen, scores.n, *scores.figures))
    return ("### Calibration fitted without the generator it is tested on\n\n"
            + table(["left-out generator", "queries", "hit@1", "hit@10", "MRR"], rows))


def class_tables(qs: Sequence[DevQuery], rankers: Mapping[str, Rankings], split: str) -> str:
    res = evaluate(qs, rankers, lambda q: q.split == split, lambda q: q.cls)
    classes = [c for c in CLASSES if any(q.cls == c and q.split == split for q in qs)]
    n = {c: sum(q.cls == c and q.split == split for q in qs) for c in classes}
    head = ["generator", *(f"{c} ({n[c]})" for c in classes), "all"]
    out = [f"### hit@10 / MRR per generator and query class ({split} split)\n"]
    out.append(table(head, [(name, *(f"{res[name][c].figures[1]:.2f} / "
                                     f"{res[name][c].figures[2]:.2f}" for c in [*classes, "all"]))
                            for name in rankers]))
    out.append("\n### hit@1 per generator and query class\n")
    out.append(table(head, [(name, *(res[name][c].figures[0] for c in [*classes, "all"]))
                            for name in rankers]))
    return "\n".join(out)


def ids(cands: Sequence[Candidate | Fused]) -> list[str]:
    return [c.entity_id for c in cands]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    ap.add_argument("--devset", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--uri", help="use this Neo4j (holding the catalog) instead of a fresh one")
    ap.add_argument("--fit", action="store_true", help="refit and rewrite the calibration")
    ap.add_argument("--split", default="test", choices=["test", "tune"])
    args = ap.parse_args(argv)
    qs = read(args.devset)
    texts = [q.query for q in qs]
    with catalog_server(args.catalog, args.uri) as store:
        path = LexicalPath.build(store)
        assert path.understand is not None
        entities = list(store.iter_entities())
        extra, why = optional_retrievers(store)
        for module, reason in why.items():
            print(f"{module} not evaluated: {reason}")
        sources: dict[str, Retriever] = {**path.sources, "memory": MemoryRetriever.build(
            store, InProcessMemoryLog()), **extra}
        runs: Timed = run_sources(sources, texts, K)
        lists = dict(runs.lists)
        readings = [path.understand.interpret(t) for t in texts]
        if args.fit:
            models = fit(path, qs, lists, readings, lambda q: q.split == "tune")
            write_calibration(models)
            path.calibrator = Calibrator(models)
            print("refitted:", models)
        n = len(qs)
        lexical = [path.fuse({s: lists[s][i] for s in SOURCES}, K, readings[i]) for i in range(n)]
        lexical_rrf = [rrf({s: lists[s][i] for s in SOURCES}, K) for i in range(n)]
        lists.update(expander_lists(optional_expanders(store), [ids(f) for f in lexical]))
        everything = [rrf({s: v[i] for s, v in lists.items()}, K) for i in range(n)]
        held = [i for i, q in enumerate(qs) if held_out(q)]
        lexical_ms = [timed_search(path, texts[i]) for i in held]
        tantivy, wratio = TantivyBaseline(entities), WRatioBaseline(entities)
        base_tv, tv_ms = baseline_run(tantivy.search, texts, held)
        base_wr = dict(zip(held, wratio.search_many([texts[i] for i in held], 10), strict=True))
        _, wr_ms = baseline_run(wratio.search, texts, held[:50])
    rankings: dict[str, Rankings] = {
        "lexical": as_rankings(lexical), "lexical RRF": as_rankings(lexical_rrf),
        "tantivy": base_tv, "rapidfuzz WRatio": base_wr}
    rankings |= {s: as_rankings(lists[s]) for s in SOURCES}
    ms = {**runs.ms, "lexical": lexical_ms, "tantivy": tv_ms, "rapidfuzz WRatio": wr_ms}
    print(bar_tables(qs, rankings, ms), "\n")
    print(leave_one_out(path, qs, lists, readings), "\n")
    per_class: dict[str, Rankings] = {name: as_rankings(v) for name, v in lists.items()}
    per_class |= {"lexical": rankings["lexical"], "lexical RRF": rankings["lexical RRF"],
                  "RRF of all": as_rankings(everything)}
    print(class_tables(qs, per_class, args.split))
    path.close()


def timed_search(path: LexicalPath, text: str) -> float:
    t0 = time.perf_counter()
    path.search(Query(text), 10)
    return (time.perf_counter() - t0) * 1e3


def baseline_run(search: Callable[[str, int], list[str]], texts: Sequence[str],
                 which: Sequence[int]) -> tuple[dict[int, list[str]], list[float]]:
    out, ms = {}, []
    for i in which:
        t0 = time.perf_counter()
        out[i] = search(texts[i], 10)
        ms.append((time.perf_counter() - t0) * 1e3)
    return out, ms


if __name__ == "__main__":
    main()
