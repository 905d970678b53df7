"""Learning from reformulations: does one user's retry teach the service a variant for everyone?

Held-out set: misspelled, respelled and re-spaced forms of the names of the 3,000 Last.fm artists
with most listeners, made by the development set's user models (bench/devset_variants.py: one
or two keyboard slips, respellings by ear, a respelling plus a slip, words run together or
split), judged as the development set judges them (bench/devset.py: none an exact name or alias
of any entity, none folding to the name of another entity), together with the development set's
own artist-variant queries; kept where neither lexical source finds the artist: no relevant id
in the fuzzy top 10 nor in the full-text top 10. The generators read no retriever; only the
last filter does, and it is the definition of the set.

For each variant, on a running service:

1. before: a user searches the variant; is the artist on the page (top 10, top 1)?
2. one reformulation: another user searches the variant and takes nothing, 20 s later searches
   the right name (the Last.fm spelling the variant was made from) and plays the artist from
   that page (when it is there: otherwise the variant is counted as not taught);
3. after: a third user searches the variant (top 10, top 1).

Users are distinct and the clock moves past the reformulation window between variants, so
each variant is taught by exactly one reformulation. Control: other development queries
(known items, partial names, artist + song, playlists, artist variants the lexical sources do
find) searched by fresh users before and after all the reformulations: hit@1 and hit@10 must
not drop.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from api.feedback import handle_feedback
from api.schemas import FeedbackIn
from bench.devset import Catalog, DevQuery
from bench.devset_variants import Generator, casing, fold, soundalike, spacing, typo
from bench.sim_run import Runner
from ingest.adapters.common import artist_id
from retrievers.base import Query

CUT: Final = 10
CONTROL_CLASSES: Final = ("known_item", "partial", "artist_song", "playlist", "artist_variant")
RETRY_S: Final = 20.0
TOP_ARTISTS: Final = 3_000
PER_ARTIST: Final = 8  # variants drawn per artist (before the fairness and lexical filters)
MAX_HELDOUT: Final = 400


def _sound_then_slip(text: str, rng: random.Random) -> tuple[str, str] | None:
    first = soundalike(text, rng)
    if first is None:
        return None
    second = typo(1, 5)(first[0], rng)
    return None if second is None else (second[0], f"{first[1]}; {second[1]}")


GENERATORS: Final[dict[str, Generator]] = {
    "typo1": typo(1, 3), "typo2": typo(2, 8), "soundalike": soundalike,
    "sound+typo": _sound_then_slip, "spacing": spacing}


def _fair(cat: Catalog, query: str, relevant: set[str]) -> bool:
    """The development set's rule: no exact name or alias of any entity (case aside), no fold
    to the name of an entity outside the relevant set, three letters or more."""
    f = fold(query)
    return (len(f) >= 3 and " ".join(query.casefold().split()) not in cat.exact
            and cat.by_fold.get(f, set()) <= relevant)


def generated_variants(cat: Catalog, top: Sequence[str], seed: int,
                       per_artist: int = PER_ARTIST) -> list[DevQuery]:
    """Seeded variants of the Last.fm names in `top` (see the module docstring)."""
    rng = random.Random(f"reform:{seed}")
    names = sorted(GENERATORS)
    out: dict[str, DevQuery] = {}
    for base in top:
        eid = artist_id(base)
        if eid not in cat.kind:
            continue
        relevant = cat.same_name(eid, [base])
        for _ in range(per_artist):
            gen = rng.choice(names)
            got = GENERATORS[gen](base, rng)
            if got is None:
                continue
            query = casing(got[0], rng)
            key = " ".join(query.casefold().split())
            if key not in out and _fair(cat, query, relevant):
                out[key] = DevQuery(qid=f"reform-{len(out):05d}", query=query,
                                    cls="artist_variant", generator=gen, how=got[1], base=base,
                                    target=eid, relevant=sorted(relevant), split="reform")
    return list(out.values())


@dataclass(frozen=True, slots=True)
class Hits:
    n: int
    top1: float
    top10: float

    def line(self, label: str) -> str:
        return f"| {label} | {self.n} | {self.top1:.3f} | {self.top10:.3f} |"


@dataclass(frozen=True, slots=True)
class ReformReport:
    heldout: int  # variants the lexical sources miss (at most MAX_HELDOUT of them)
    taught: int  # of those, with a take on the right name's page
    before: Hits
    after: Hits
    after_taught: Hits  # the variants whose reformulation ended with a take
    control_before: Hits
    control_after: Hits

    def table(self) -> str:
        return "\n".join([
            f"Held-out variants the lexical sources miss (fuzzy and full text, top {CUT}): "
            f"{self.heldout}; reformulations that ended with a take: {self.taught}.",
            "", "| searches by other users | n | top 1 | top 10 |", "|---|---:|---:|---:|",
            self.before.line("variant, before any reformulation"),
            self.after.line("variant, after one reformulation (all held-out)"),
            self.after_taught.line("variant, after one reformulation (taught ones)"),
            self.control_before.line("control queries, before"),
            self.control_after.line("control queries, after")])


def rank_of(ids: Sequence[str], relevant: set[str]) -> int | None:
    return next((i for i, e in enumerate(ids[:CUT]) if e in relevant), None)


def hits(ranks: Sequence[int | None]) -> Hits:
    n = max(len(ranks), 1)
    return Hits(len(ranks), sum(r == 0 for r in ranks) / n,
                sum(r is not None for r in ranks) / n)


def lexical_misses(runner: Runner, queries: Sequence[DevQuery]) -> list[DevQuery]:
    """The queries whose relevant ids neither fuzzy nor full text has in its top 10 (full text,
    a store round trip, only asked when fuzzy missed)."""
    idx = runner.service.indexes
    out = []
    for q in queries:
        rel = set(q.relevant)
        if any(c.entity_id in rel for name in ("fuzzy", "fulltext") if name in idx.retrievers
               for c in idx.retrievers[name].retrieve(Query(q.query), CUT)):
            continue
        out.append(q)
    return out


def controls(queries: Sequence[DevQuery], misses: Sequence[DevQuery], n: int,
             seed: int) -> list[DevQuery]:
    missed = {q.qid for q in misses}
    pool = [q for q in queries if q.split == "test" and q.cls in CONTROL_CLASSES
            and q.qid not in missed]
    return random.Random(f"control:{seed}").sample(pool, min(n, len(pool)))


class Reformulations:
    """Runs the protocol of the module docstring on a started service (through `Runner`)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.window = runner.service.settings.reformulation_window_s

    def probe(self, text: str, user: str, relevant: set[str]) -> int | None:
        self.runner.clock.now += 1.0
        return rank_of(self.runner.search(text, user).record.page, relevant)

    def teach(self, q: DevQuery, user: str) -> bool:
        """A search for the variant with no take, then the right name and a play."""
        runner = self.runner
        runner.clock.now += self.window + 5.0  # no earlier search of anyone counts
        runner.search(q.query, user)
        runner.clock.now += RETRY_S
        record = runner.search(q.base, user).record
        pos = rank_of(record.page, set(q.relevant))
        if pos is None:
            return False
        runner.clock.now += 3.0
        handle_feedback(runner.service, FeedbackIn(record.search_id, record.page[pos], "play",
                                                   pos))
        return True

    def control(self, queries: Sequence[DevQuery], tag: str) -> Hits:
        return hits([self.probe(q.query, f"{tag}-{i}", set(q.relevant))
                     for i, q in enumerate(queries)])

    def run(self, variants: Sequence[DevQuery], control_pool: Sequence[DevQuery],
            n_control: int = 300, seed: int = 0,
            max_heldout: int = MAX_HELDOUT) -> ReformReport:
        missed = lexical_misses(self.runner, variants)
        held = random.Random(f"heldout:{seed}").sample(missed, min(max_heldout, len(missed)))
        ctl = controls(control_pool, held, n_control, seed)
        control_before = self.control(ctl, "ctl-before")
        before = [self.probe(q.query, f"before-{i}", set(q.relevant))
                  for i, q in enumerate(held)]
        taught = [self.teach(q, f"teacher-{i}") for i, q in enumerate(held)]
        self.runner.learner.sync()
        self.runner.service.indexes.memory.refresh()
        self.runner.clock.now += self.window + 5.0
        after = [self.probe(q.query, f"after-{i}", set(q.relevant)) for i, q in enumerate(held)]
        control_after = self.control(ctl, "ctl-after")
        return ReformReport(len(held), sum(taught), hits(before), hits(after),
                            hits([r for r, t in zip(after, taught, strict=True) if t]),
                            control_before, control_after)
