"""Text embeddings: query encoding, index build, ANN latency and recall, static vs full quality.

Prints markdown tables. Usage:

    .venv/bin/python -m bench.text_embed_bench [--real FEED] [--large 1000000] [--no-full]

- Encoding: one query at a time, full all-MiniLM-L6-v2 (sentence-transformers, CPU) against the
  static model distilled from it, over the quality queries below.
- Search: the serving index (`VectorIndex`) against exact search (every row scored), top 10, one
  query at a time; recall@10 counts a returned row as right when its exact score reaches the
  exact 10th best (so rows tied with it count, as duplicate texts are common). "real" is the
  real catalog embedded with the static model; "large" is `--large` synthetic entities
  (`ingest.synthetic.generate`: made-up names over a small vocabulary, real genre/artist
  structure) turned into entity texts and embedded with the same static model, so the vectors
  are what the encoder really produces, clustered and with many near-duplicates. Queries for
  both: the quality queries' texts, plus (for "large") short phrases from the synthetic
  vocabulary.
- Quality on the real catalog, the same queries for both models, each over its own vectors of
  the same entity texts: known answers from the data. Popular artists' names -> that artist;
  Spotify playlist names -> playlists of that name; "<podcast category> podcast" (kind podcast)
  -> podcasts in it; a Last.fm tag or Spotify genre (kind artist) -> artists tagged with it.
  hit@10, MRR@10, and overlap@10 of the two models' top 10s.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from graph.memory_store import MemoryStore
from graph.model import Entity, Kind, RelType
from ingest.pipeline import ingest
from ingest.synthetic import generate
from retrievers.encoders import Encoder, MiniLMEncoder, cache_root, load_static
from retrievers.text_embed import EntityText, catalog_texts, embed_rows, entity_text
from retrievers.vector_index import VectorIndex

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class QualityQuery:
    group: str
    text: str
    kinds: frozenset[Kind]
    relevant: frozenset[str]


def ms(values: Sequence[float]) -> tuple[float, float]:
    """Median and p95 of seconds, in milliseconds."""
    ordered = sorted(values)
    return statistics.median(ordered) * 1e3, ordered[int(0.95 * (len(ordered) - 1))] * 1e3


def quality_queries(store: MemoryStore, seed: int = 7, per_group: int = 200) -> list[QualityQuery]:
    """Queries whose answers the data itself gives (see the module docstring)."""
    ents = {e.id: e for e in store.iter_entities()}
    tagged: dict[str, set[str]] = defaultdict(set)
    for rel in store.iter_relations():
        if rel.type is RelType.IN_GENRE:
            tagged[rel.dst].add(rel.src)
    by_name: dict[tuple[Kind, str], set[str]] = defaultdict(set)
    for e in ents.values():
        by_name[(e.kind, e.name.lower())].add(e.id)
    rng = random.Random(seed)
    out: list[QualityQuery] = []
    artists = sorted((e for e in ents.values() if e.kind is Kind.ARTIST),
                     key=lambda e: (-e.popularity, e.id))[:per_group]
    out += [QualityQuery("artist name", e.name, frozenset(),
                         frozenset(by_name[(Kind.ARTIST, e.name.lower())])) for e in artists]
    playlists = sorted({e.name for e in ents.values() if e.kind is Kind.PLAYLIST})
    out += [QualityQuery("playlist name", name, frozenset(),
                         frozenset(by_name[(Kind.PLAYLIST, name.lower())]))
            for name in rng.sample(playlists, min(per_group, len(playlists)))]
    for genre in sorted(tagged):
        pods = frozenset(i for i in tagged[genre] if ents[i].kind is Kind.PODCAST)
        if len(pods) >= 3:
            out.append(QualityQuery("podcast category", f"{ents[genre].name} podcast",
                                    frozenset({Kind.PODCAST}), pods))
    tags = sorted(g for g in tagged if sum(ents[i].kind is Kind.ARTIST for i in tagged[g]) >= 5)
    for genre in rng.sample(tags, min(per_group, len(tags))):
        out.append(QualityQuery("tag -> artists", ents[genre].name, frozenset({Kind.ARTIST}),
                                frozenset(i for i in tagged[genre] if ents[i].kind is Kind.ARTIST)))
    return out


def quality_slice(store: MemoryStore, top: int) -> frozenset[str]:
    """Every podcast, playlist and genre, and the `top` most popular artists, albums, songs."""
    ents = list(store.iter_entities())
    keep = {e.id for e in ents if e.kind in (Kind.PODCAST, Kind.PLAYLIST, Kind.GENRE)}
    for kind in (Kind.ARTIST, Kind.ALBUM, Kind.SONG):
        ranked = sorted((e for e in ents if e.kind is kind), key=lambda e: (-e.popularity, e.id))
        keep.update(e.id for e in ranked[:top])
    return frozenset(keep)


def encode_latency(encoder: Encoder, texts: Sequence[str]) -> list[float]:
    encoder.encode([texts[0]])  # warm up
    times = []
    for text in texts:
        start = time.perf_counter()
        encoder.encode([text])
        times.append(time.perf_counter() - start)
    return times


def cached_vectors(encoder: Encoder, rows: Sequence[EntityText]) -> F32:
    """Entity vectors, cached on disk by encoder and texts (the full model takes minutes)."""
    digest = hashlib.sha256(encoder.name.encode())
    for r in rows:
        digest.update(f"{r.title}\n{r.text}\n".encode())
    path = cache_root() / "bench" / f"vectors-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        vectors: F32 = np.load(path)
        return vectors
    vectors = embed_rows(encoder, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def exact_top(vectors: F32, query: F32, k: int) -> float:
    """The exact k-th best score (the worst, when there are fewer than k)."""
    scores = vectors @ query
    k = min(k, len(scores))
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


def search_rows(index: VectorIndex, vectors: F32, queries: F32, name: str,
                kinds: Sequence[Kind] = (), kind: Kind | None = None) -> list[tuple[str, str]]:
    """Latency and tie-aware recall@10 of the index against exact search over `vectors`
    (within one kind when `kind` is given)."""
    rows = np.flatnonzero(np.array([k is kind for k in kinds])) if kind else np.arange(
        len(vectors))
    subset = vectors[rows]
    wanted = frozenset({kind}) if kind else frozenset()
    times, recalls = [], []
    for q in queries:
        start = time.perf_counter()
        hits = index.search(q, 10, wanted)
        times.append(time.perf_counter() - start)
        tenth = exact_top(subset, q, 10)
        found = vectors[[r for r, _ in hits]] @ q
        recalls.append(float(np.sum(found >= tenth - 1e-6)) / min(10, len(rows)))
    p50, p95 = ms(times)
    exact_times = []
    for q in queries[:50]:
        start = time.perf_counter()
        exact_top(subset, q, 10)
        exact_times.append(time.perf_counter() - start)
    e50, _ = ms(exact_times)
    mode = index.describe(kind)
    what = f"kind {kind.value}, {len(rows):,} of {len(vectors):,}" if kind else (
        f"{len(vectors):,} vectors")
    return [(f"{name}: search top-10 ({mode}; {what})",
             f"{p50:.3f} / {p95:.3f} ms (exact numpy matmul: {e50:.2f} ms median)"),
            (f"{name}: recall@10 vs exact ({what})", f"{statistics.mean(recalls):.4f} "
             f"(min {min(recalls):.1f}, {len(recalls)} queries)")]


def synthetic_texts(n: int) -> Iterator[EntityText]:
    """Entity texts for a generated catalog, without loading it into a store."""
    names: dict[str, str] = {}
    for rec in generate(n):
        entity = Entity(rec["id"], Kind(rec["kind"]), rec["name"],
                        description=rec.get("description", ""))
        names[entity.id] = entity.name
        text = entity_text(entity, artists=[names[a] for a in rec.get("artists", ())],
                           genres=[names[g] for g in rec.get("genres", ())],
                           podcast=names.get(rec.get("podcast", ""), ""))
        yield EntityText(entity.id, entity.kind, entity.name, text)


def build_index(vectors: F32, kinds: Sequence[Kind]) -> tuple[VectorIndex, float]:
    start = time.perf_counter()
    index = VectorIndex(vectors, kinds)
    return index, time.perf_counter() - start


def quality(encoder: Encoder, vectors: F32, ids: Sequence[str], kinds: Sequence[Kind],
            queries: Sequence[QualityQuery]) -> list[list[str]]:
    """Each query's top-10 ids, by exact search (so only the model is compared)."""
    index = VectorIndex(vectors, kinds, exact_limit=len(ids) + 1)
    qv = encoder.encode([q.text for q in queries])
    return [[ids[r] for r, _ in index.search(v, 10, q.kinds)] for q, v in zip(queries, qv,
                                                                           strict=True)]


def score_lists(queries: Sequence[QualityQuery], tops: Sequence[Sequence[str]],
                ) -> dict[str, tuple[float, float]]:
    by_group: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for q, top in zip(queries, tops, strict=True):
        rank = next((i + 1 for i, e in enumerate(top) if e in q.relevant), 0)
        by_group[q.group].append((1.0 if rank else 0.0, 1.0 / rank if rank else 0.0))
    return {g: (statistics.mean(h for h, _ in v), statistics.mean(m for _, m in v))
            for g, v in by_group.items()}


def table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    print(f"\n### {title}\n\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    sys.stdout.flush()  # long runs: each table shows as soon as it is measured


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--real", default=".tunegraph/catalog.jsonl.gz")
    ap.add_argument("--large", type=int, default=1_000_000, help="0 skips the large run")
    ap.add_argument("--no-full", action="store_true", help="skip the full MiniLM")
    ap.add_argument("--latency-queries", type=int, default=200,
                    help="queries timed one at a time for encoding latency")
    ap.add_argument("--quality-slice", type=int, default=0,
                    help="compare the models on a slice: every podcast, playlist and genre, "
                    "and this many of the most popular artists, albums and songs each "
                    "(0: the whole catalog; the full model embeds ~300 entities/s here)")
    args = ap.parse_args(argv)
    loaded = load_static()
    static = loaded.encoder
    store = MemoryStore()
    ingest(store, [args.real])
    queries = quality_queries(store)
    texts = [q.text for q in queries]
    full = None if args.no_full else MiniLMEncoder()
    rng = random.Random(5)
    timed = rng.sample(texts, min(args.latency_queries, len(texts)))
    table("Query encoding (one query at a time)",
          [("static model distil + cache" if loaded.distilled else "static model load (cache)",
            f"{loaded.seconds:.1f} s"), *encoding_rows(static, full, timed)])
    ents = list(catalog_texts(store))
    ids, kinds = [e.id for e in ents], [e.kind for e in ents]
    start = time.perf_counter()
    vectors = embed_rows(static, ents)
    rows = [(f"real: embed {len(ents):,} entities (static)",
             f"{time.perf_counter() - start:.1f} s")]
    table("Real catalog: index and search", rows + index_rows(
        "real", vectors, kinds, static.encode(texts)))
    if args.quality_slice:
        keep = quality_slice(store, args.quality_slice)
        rows_kept = [i for i, e in enumerate(ents) if e.id in keep]
        ents = [ents[i] for i in rows_kept]
        ids, kinds, vectors = [ids[i] for i in rows_kept], [kinds[i] for i in rows_kept], \
            vectors[rows_kept]
        queries = [QualityQuery(q.group, q.text, q.kinds, q.relevant & keep) for q in queries
                   if q.relevant & keep]
        print(f"\nQuality on a slice of {len(ents):,} entities (see --quality-slice).")
    quality_table(static, full, vectors, ents, ids, kinds, queries)
    if args.large:
        table(f"{args.large:,} generated entities: index and search",
              large_rows(static, args.large, texts))


def encoding_rows(static: Encoder, full: Encoder | None,
                  texts: Sequence[str]) -> list[tuple[str, str]]:
    s50, s95 = ms(encode_latency(static, texts))
    out = [("query encoding, static model (median / p95)", f"{s50:.3f} / {s95:.3f} ms")]
    if full is not None:
        f50, f95 = ms(encode_latency(full, texts))
        out.insert(0, ("query encoding, full MiniLM (median / p95)", f"{f50:.2f} / {f95:.2f} ms"))
        out.append(("static speed-up (median)", f"{f50 / s50:.0f}x"))
    return out


def index_rows(name: str, vectors: F32, kinds: Sequence[Kind], queries: F32,
               sweep: Sequence[int] = (),
               subsets: Sequence[tuple[str, F32]] = ()) -> list[tuple[str, str]]:
    index, seconds = build_index(vectors, kinds)
    out = [(f"{name}: index build", f"{seconds:.1f} s"),
           *search_rows(index, vectors, queries, name)]
    for kind in (Kind.ARTIST, Kind.PODCAST):
        out += search_rows(index, vectors, queries, name, kinds, kind)
    default = index.nprobe
    for nprobe in sweep if default else ():
        index.set_nprobe(nprobe)
        out += search_rows(index, vectors, queries, f"{name}, nprobe {nprobe}")
    index.set_nprobe(default)
    for label, subset in subsets:
        out += search_rows(index, vectors, subset, f"{name}, {label}")
    return out


def large_rows(static: Encoder, n: int, texts: Sequence[str]) -> list[tuple[str, str]]:
    start = time.perf_counter()
    ents = list(synthetic_texts(n))
    vectors = embed_rows(static, ents)
    out = [(f"large: generate + embed {len(ents):,} synthetic entities",
            f"{time.perf_counter() - start:.1f} s")]
    rng = random.Random(11)
    words = sorted({w.lower() for e in rng.sample(ents, 500) for w in e.text.split()})
    phrases = [" ".join(rng.sample(words, rng.randint(1, 3))) for _ in range(200)]
    real = texts[:200]
    queries = static.encode([*real, *phrases])
    kinds = [e.kind for e in ents]
    # The two halves apart too: the real catalog's query texts are far from every synthetic
    # text (best cosine 0.3-0.6), so their top 10 is spread over many cells; phrases from the
    # synthetic vocabulary are what a search of this catalog would look like.
    return out + index_rows("large", vectors, kinds, queries, sweep=(128, 256, 384), subsets=(
        ("vocabulary phrases only", queries[len(real):]),
        ("real-catalog texts only", queries[:len(real)])))


def quality_table(static: Encoder, full: Encoder | None, vectors: F32,
                  ents: Sequence[EntityText], ids: Sequence[str], kinds: Sequence[Kind],
                  queries: Sequence[QualityQuery]) -> None:
    s_top = quality(static, vectors, ids, kinds, queries)
    s_scores = score_lists(queries, s_top)
    f_scores: dict[str, tuple[float, float]] = {}
    overlap: dict[str, list[float]] = defaultdict(list)
    if full is not None:
        f_top = quality(full, cached_vectors(full, ents), ids, kinds, queries)
        f_scores = score_lists(queries, f_top)
        for q, a, b in zip(queries, s_top, f_top, strict=True):
            overlap[q.group].append(len(set(a) & set(b)) / 10)
    print("\n### Static model against full MiniLM, real catalog (exact search)\n")
    print("| queries | n | static hit@10 | static MRR | full hit@10 | full MRR | overlap@10 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    counts: dict[str, int] = defaultdict(int)
    for q in queries:
        counts[q.group] += 1
    for group, (hit, mrr) in s_scores.items():
        fh, fm = f_scores.get(group, (float("nan"), float("nan")))
        ov = statistics.mean(overlap[group]) if overlap[group] else float("nan")
        print(f"| {group} | {counts[group]} | {hit:.3f} | {mrr:.3f} | {fh:.3f} | {fm:.3f} "
              f"| {ov:.2f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
