"""The contextual bandit that decides which sources run for a query and with how many candidates.

Pure: numbers and strings in, numbers out. It imports nothing else of TuneGraph and knows
sources only by name (`SourceSpec` in an `ActionSpace`, which the API builds from the
retrievers it composed).

How the API uses it, per search:

    space = ActionSpace(sources=(SourceSpec("fuzzy"), ..., SourceSpec("related", "second")),
                        budget=60, step=10)
    policy = create("semibandit", space, seed=pid)   # or load(state) from the graph store
    ctx = Context(query_chars=10, tokens=("tayler", "love"), exact_name=False,
                  interpretations=(Interpretation("artist+song", 0.7),), memory_hits=3,
                  user_history=41, hour=21, weekday=4,
                  sources=(SourceFeatures("fuzzy", hit_rate=0.6, n_results=12,
                                          top_score=0.8, score_gap=0.1), ...))
    plan = policy.choose(ctx)        # plan.k("fuzzy"), plan.merge, plan.propensity
    ...run each source with k = plan.k(name); note the ones that errored or timed out...
    plan = plan.with_unavailable(failed)     # also an expander left without any seed
    log(Decision(search_id, now, ctx, plan, candidates={"fuzzy": ("so:1", ...), ...}))

With `plan.merge == "rrf"` fuse the lists by RRF and keep the top `plan.budget`; with "union"
keep them all (their sum is within the budget). Per-source features the API does not know stay
at their defaults (zeros read as "unknown").

and when the feedback window closes (or at once, with `reward.credit`):

    outcome = outcome_for(decision, feedbacks, now)  # None while the window is open
    policy.update(outcome.context, outcome.plan, outcome.reward)
    log(outcome)

Several API processes learn together by applying the same outcomes in the same (log) order:
`replay(new_records, policy)`; parameters then agree bit for bit, and `policy.state()` (JSON)
taken at a log position is a snapshot to start new processes from. A policy object is not
thread-safe: one per worker, or a lock around choose/update.

Offline (`tunegraph evaluate-policy`):

    data = ope.samples(decode_lines(log_bytes), metric="value")   # or "hit": candidate recall
    report = ope.evaluate(data, load(candidate_state))
    print(ope.format_report(report, "candidate", logged="logging policy"))

Modules: `context` (Context, Featurizer), `plan` (ActionSpace, Plan, menu, budget rules),
`reward` (Feedback, credit, settle), `log` (records, replay), `policies` (the policies and
`load`), `ope` (IPS, SNIPS, DR), `linear` (the ridge models), `synthetic` (a rigged environment
for tests and benchmarks).
"""

from bandit.context import Context, Featurizer, Interpretation, SourceFeatures
from bandit.log import (
    Decision,
    Outcome,
    decode,
    decode_lines,
    encode,
    encode_lines,
    outcome_for,
    replay,
    settle_log,
)
from bandit.plan import ActionSpace, Plan, SourceSpec, default_menu
from bandit.policies import (
    EpsilonGreedy,
    Fixed,
    LinTS,
    LinUCB,
    Policy,
    SemiBandit,
    create,
    load,
)
from bandit.reward import Feedback, Reward, RewardConfig, SourceOutcome, credit, settle

__all__ = [
    "ActionSpace", "Context", "Decision", "EpsilonGreedy", "Featurizer", "Feedback", "Fixed",
    "Interpretation", "LinTS", "LinUCB", "Outcome", "Plan", "Policy", "Reward", "RewardConfig",
    "SemiBandit", "SourceFeatures", "SourceOutcome", "SourceSpec", "create", "credit", "decode",
    "decode_lines", "default_menu", "encode", "encode_lines", "load", "outcome_for", "replay",
    "settle", "settle_log",
]
