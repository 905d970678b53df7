"""The decision log: decision, feedback and outcome records with stable JSON, and replay.

Three records, one JSON object a line, told apart by `"type"`:

- `Decision`: what the API decided and ran for one search: the context, the plan as run (its
  propensity, and which sources failed), each source's candidate ids (best first), the time.
- `Feedback` (`bandit.reward.Feedback`): one user action on the page.
- `Outcome`: the reward the policy learnt from, with the context and plan it applies to, so one
  outcome is one complete `policy.update` and the log of outcomes, in order, is the policy's
  whole training history.

`replay(records, policy)` applies every outcome in log order: a fresh policy replayed from the
start ends with exactly the parameters of the policy that learnt live. Encoding is
deterministic (`"type"` first, then the fields in declaration order, map keys sorted), so the
same record always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from bandit.context import Context
from bandit.plan import Plan
from bandit.policies.base import Policy
from bandit.reward import Feedback, Reward, RewardConfig, settle


class Decision(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="decision"):
    search_id: str
    ts: float
    context: Context
    plan: Plan
    candidates: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)


class Outcome(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="outcome"):
    search_id: str
    ts: float
    context: Context
    plan: Plan
    reward: Reward


Record = Decision | Feedback | Outcome

_ENCODER = msgspec.json.Encoder(order="deterministic")
_DECODER: msgspec.json.Decoder[Record] = msgspec.json.Decoder(Record)


def encode(record: Record) -> bytes:
    return _ENCODER.encode(record)


def decode(line: bytes | str) -> Record:
    return _DECODER.decode(line)


def encode_lines(records: Iterable[Record]) -> bytes:
    return b"".join(encode(r) + b"\n" for r in records)


def decode_lines(data: bytes) -> list[Record]:
    return [decode(line) for line in data.splitlines() if line.strip()]


def outcome_for(decision: Decision, feedbacks: Sequence[Feedback], now: float,
                config: RewardConfig | None = None) -> Outcome | None:
    """The decision's outcome once its feedback window has closed (None before)."""
    reward = settle(decision.plan, decision.candidates, decision.ts, feedbacks, now, config)
    if reward is None:
        return None
    return Outcome(decision.search_id, now, decision.context, decision.plan, reward)


def settle_log(records: Iterable[Record], now: float,
               config: RewardConfig | None = None) -> list[Outcome]:
    """Outcomes for the decisions in `records` that have none yet and whose window has closed,
    in decision order (the API's expiry sweep, and the way to rebuild outcomes from raw logs)."""
    decisions: dict[str, Decision] = {}
    feedback: dict[str, list[Feedback]] = {}
    done: set[str] = set()
    for r in records:
        if isinstance(r, Decision):
            decisions[r.search_id] = r
        elif isinstance(r, Feedback):
            feedback.setdefault(r.search_id, []).append(r)
        else:
            done.add(r.search_id)
    out = []
    for sid, d in decisions.items():
        if sid not in done:
            o = outcome_for(d, feedback.get(sid, []), now, config)
            if o is not None:
                out.append(o)
    return out


def replay(records: Iterable[Record], policy: Policy) -> int:
    """Apply every outcome in `records` to `policy`, in order; returns how many."""
    n = 0
    for r in records:
        if isinstance(r, Outcome):
            policy.update(r.context, r.plan, r.reward)
            n += 1
    return n
