"""Vowpal Wabbit `--cb_explore_adf` over the menu, behind the same Policy protocol (the peer).

Each search is one multi-line ADF example: a shared line (namespace S: the shared features) and
one line per feasible plan (namespace A: the plan's id, each source's share k / budget, each of
its sources' features weighted by that share, RRF or union), with `-q SA` crossing them. VW
returns a PMF over the lines; we draw from it with our own seeded RNG, so the propensity is
VW's exact probability. Learning labels the chosen line `0:cost:p` with cost = -target (VW
minimises cost), the target being `reward.hit` or `reward.value` as for the other menu
policies, and skips outcomes whose plan had a source fail. The model's bytes (VW's own save
format, base64, which keeps the learning-rate state) are the parameters; VW learns
deterministically, so a replay gives the same weights (`weights()`), and a model loaded from
the state goes on learning exactly as the original.

Exploration is SquareCB (`--squarecb`), the best of the settings tried on the benchmark's
traffic (last-1,000 recall over two seeds: squarecb 0.72, squarecb with gamma_scale 50 0.71,
epsilon 0.02 0.69, epsilon 0.05 0.68, epsilon 0.05 with `--cb_type dr` 0.48).
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Sequence
from typing import Any, Self

import msgspec
import numpy as np
from vowpalwabbit import Workspace

from bandit.context import HASH_DIM, SOURCE_FEATURES, Context, Featurizer
from bandit.linear import Array
from bandit.plan import ActionSpace, Plan, default_menu
from bandit.policies.base import PolicyBase, plain, space_from
from bandit.policies.menu import Target, pick
from bandit.reward import Reward

DEFAULT_ARGS = "--cb_explore_adf --squarecb -q SA -b 18"


class VWPolicy(PolicyBase):
    kind = "vw"

    def __init__(self, space: ActionSpace, *, args: str = DEFAULT_ARGS,
                 menu: Sequence[Plan] | None = None, hash_dim: int = HASH_DIM,
                 target: Target = "hit", seed: int = 0, _model: bytes | None = None) -> None:
        super().__init__(space, seed)
        self.args = args
        self.menu = tuple(menu) if menu else default_menu(space)
        self.arms = {p.key: i for i, p in enumerate(self.menu)}
        self.featurizer = Featurizer(hash_dim)
        self.target = target
        self.action_lines = [self._action_line(i, p) for i, p in enumerate(self.menu)]
        self.updates = 0
        self.vw = self._workspace(_model)

    def _workspace(self, model: bytes | None) -> Workspace:
        base = f"{self.args} --quiet --random_seed {self.seed}"
        if model is None:
            return Workspace(base)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.vw")
            with open(path, "wb") as f:
                f.write(model)
            return Workspace(f"{base} -i {path}")

    def model_bytes(self) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.vw")
            self.vw.save(path)
            with open(path, "rb") as f:
                return f.read()

    def weights(self) -> str:
        """The learnt weights (VW's JSON dump): what a replay reproduces exactly. The saved
        model bytes also hold example counters, which count predictions as well as updates."""
        return str(self.vw.json_weights())

    def _action_line(self, i: int, plan: Plan) -> str:
        parts = [f"|A arm{i}", f"merge_{plan.merge}"]
        parts += [f"k_{name}:{k / plan.budget:.4f}" for name, k in plan.ks]
        return " ".join(parts)

    def _lines(self, context: Context) -> tuple[list[int], list[str]]:
        down = context.unavailable()
        shared = self.featurizer.shared(context)
        feats = " ".join(f"f{j}:{v:.5g}" for j, v in enumerate(shared.tolist()) if v)
        per_source = self.featurizer.sources(context, self.space.names)
        by_name = dict(zip(self.space.names, per_source.tolist(), strict=True))
        arms = [i for i, p in enumerate(self.menu) if not down & set(p.sources)]
        lines = [f"shared |S {feats}"]
        for i in arms:
            plan = self.menu[i]
            extra = [f"{name}_{f}:{v * k / plan.budget:.5g}"
                     for name, k in plan.ks
                     for f, v in zip(SOURCE_FEATURES, by_name[name], strict=True) if v]
            lines.append(" ".join([self.action_lines[i], *extra]))
        return arms, lines

    def _pmf(self, context: Context) -> tuple[list[int], list[str], Array]:
        arms, lines = self._lines(context)
        if not arms:
            return arms, lines, np.zeros(0)
        p = np.asarray(self.vw.predict(lines), dtype=np.float64)
        return arms, lines, p / p.sum()

    def _choose(self, context: Context, rng: np.random.Generator) -> Plan:
        arms, _, p = self._pmf(context)
        if not arms:
            return self.fallback(context)
        j = pick(p, rng)
        return self.menu[arms[j]].chosen(max(float(p[j]), 1e-12), self.kind)

    def probability(self, context: Context, plan: Plan) -> float:
        arms, _, p = self._pmf(context)
        if not arms:
            return 1.0 if plan.key == self.fallback(context).key else 0.0
        i = self.arms.get(plan.key)
        return float(p[arms.index(i)]) if i in arms else 0.0

    def update(self, context: Context, plan: Plan, reward: Reward) -> None:
        i = self.arms.get(plan.key)
        if i is None or plan.unavailable:
            return
        arms, lines = self._lines(context)
        if i not in arms:
            return
        y = float(reward.hit) if self.target == "hit" else reward.value
        y -= self.space.latency(plan)
        j = arms.index(i) + 1
        lines[j] = f"0:{-y:.6g}:{plan.propensity:.6g} {lines[j]}"
        self.vw.learn(lines)
        self.updates += 1

    def config(self) -> dict[str, Any]:
        return super().config() | {
            "args": self.args, "menu": [plain(p) for p in self.menu],
            "hash_dim": self.featurizer.hash_dim, "target": self.target,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(space_from(config), args=config["args"],
                   menu=[msgspec.convert(p, Plan) for p in config["menu"]],
                   hash_dim=config["hash_dim"], target=config["target"], seed=config["seed"])

    def params(self) -> dict[str, Any]:
        return {"model": base64.b64encode(self.model_bytes()).decode("ascii"),
                "updates": self.updates}

    def load_params(self, params: dict[str, Any]) -> None:
        self.vw.finish()
        self.vw = self._workspace(base64.b64decode(params["model"]))
        self.updates = int(params["updates"])
