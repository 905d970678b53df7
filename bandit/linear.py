"""Many independent Bayesian ridge regressions kept in stacked arrays, updated in one batch.

Model m has the posterior N(theta_m, A_m^-1) (up to the noise scale) with A_m = l2*I + sum x x^T
and theta_m = A_m^-1 b_m, b_m = sum y x. We keep A^-1 up to date with the Sherman-Morrison
identity and theta with the matching recursive-least-squares step
theta += A^-1 x (y - theta.x) / (1 + x A^-1 x), so an update costs O(d^2) per model and a
prediction needs no solve; b is kept as the sufficient statistic. The arrays are the parameters:
they go into `state()` as exact base64 float64, so a round trip, or replaying the same updates in
the same order, gives bit-identical numbers.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


def encode_array(a: npt.NDArray[Any]) -> dict[str, Any]:
    """An exact, JSON-able form of an array."""
    c = np.ascontiguousarray(a)
    return {"dtype": c.dtype.str, "shape": list(c.shape),
            "data": base64.b64encode(c.tobytes()).decode("ascii")}


def decode_array(d: dict[str, Any]) -> npt.NDArray[Any]:
    raw = base64.b64decode(d["data"])
    return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()


class RidgeBank:
    """`n` ridge regressions over `dim` features."""

    def __init__(self, n: int, dim: int, l2: float = 1.0) -> None:
        if l2 <= 0:
            raise ValueError("l2 must be > 0")
        self.l2 = l2
        self.a_inv: Array = np.tile(np.eye(dim) / l2, (n, 1, 1))
        self.b: Array = np.zeros((n, dim))
        self.theta: Array = np.zeros((n, dim))
        self.count = np.zeros(n, dtype=np.int64)

    @property
    def dim(self) -> int:
        return int(self.b.shape[1])

    def update(self, models: npt.NDArray[np.int64], x: Array, y: Array) -> None:
        """One observation (x[i], y[i]) for each model models[i]; the models must be distinct."""
        a_inv = self.a_inv[models]
        u = np.matmul(a_inv, x[:, :, None])[:, :, 0]
        gain = u / (1.0 + (u * x).sum(axis=1))[:, None]
        theta = self.theta[models]
        theta += gain * (y - (theta * x).sum(axis=1))[:, None]
        a_inv -= np.einsum("mi,mj->mij", gain, u)
        self.a_inv[models] = a_inv
        self.theta[models] = theta
        self.b[models] += y[:, None] * x
        self.count[models] += 1

    def update_one(self, m: int, x: Array, y: float) -> None:
        a_inv = self.a_inv[m]
        u = a_inv @ x
        gain = u / (1.0 + float(u @ x))
        self.theta[m] += gain * (y - float(self.theta[m] @ x))
        a_inv -= np.outer(gain, u)
        self.b[m] += y * x
        self.count[m] += 1

    def mean_var_shared(self, x: Array) -> tuple[Array, Array]:
        """Every model's mean and x^T A^-1 x at one shared x."""
        mean = self.theta @ x
        var = (self.a_inv @ x) @ x
        return mean, np.maximum(var, 0.0)

    def mean_var(self, x: Array) -> tuple[Array, Array]:
        """Model m's mean and x[m]^T A_m^-1 x[m], one row of x per model."""
        mean = (self.theta * x).sum(axis=1)
        var = (np.matmul(self.a_inv, x[:, :, None])[:, :, 0] * x).sum(axis=1)
        return mean, np.maximum(var, 0.0)

    def state(self) -> dict[str, Any]:
        return {"l2": self.l2, "a_inv": encode_array(self.a_inv), "b": encode_array(self.b),
                "theta": encode_array(self.theta), "count": encode_array(self.count)}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> RidgeBank:
        bank = cls.__new__(cls)
        bank.l2 = float(d["l2"])
        bank.a_inv = decode_array(d["a_inv"])
        bank.b = decode_array(d["b"])
        bank.theta = decode_array(d["theta"])
        bank.count = decode_array(d["count"])
        return bank
