"""Typed results of the exact tasks, and their JSON form (the output contract of the CLI).

A result keeps *why the solver stopped* (``status``) apart from *how good the answer is*
(``objective`` of the returned example, proven lower ``bound``). Only a proven answer has
status ``optimal`` (or ``verified``); distances are in the unit that was minimised:
changed pixels (card), L1, squared L2 (the sum of squared changes), L∞.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class Outcome:
    """Statuses of the exact tasks (beside the backends' own, see :class:`verify.backends.Status`)."""

    OPTIMAL = "optimal"          # proven minimal (within the relative gap asked for)
    INFEASIBLE = "infeasible"    # proven: no adversarial example exists in the region
    TIME_LIMIT = "time_limit"    # stopped by the time limit: best example found + proven bound
    VERIFIED = "verified"        # certify: proven robust
    COUNTEREXAMPLE = "counterexample"
    UNKNOWN = "unknown"          # certify: undecided within the time limit


def _num(v):
    if v is None:
        return None
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, (np.integer, int)):
        return int(v)
    return v


@dataclass
class AdversarialResult:
    task: str                     # "min-adv-card", "min-adv-l1", "min-adv-l2", "min-adv-linf"
    model: str
    norm: str
    backend: str
    status: str
    objective: float | None       # distance of `adversarial` (None if none was found)
    bound: float | None           # proven lower bound on the minimal distance
    original_label: int
    adversarial_label: int | None
    target: int | None
    time_s: float
    image: np.ndarray             # the input, in the model's input shape
    adversarial: np.ndarray | None
    margin: float
    classes: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def minimal(self) -> bool:
        """True only when the solver proved that no smaller adversarial example exists."""
        return self.status == Outcome.OPTIMAL

    @property
    def perturbation(self) -> np.ndarray | None:
        return None if self.adversarial is None else self.adversarial - self.image

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        return max(0.0, self.objective - self.bound) / max(abs(self.objective), 1e-12)

    def to_dict(self) -> dict:
        out = {
            "task": self.task, "model": self.model, "norm": self.norm, "backend": self.backend,
            "status": self.status, "minimal": self.minimal, "objective": _num(self.objective),
            "bound": _num(self.bound), "gap": _num(self.gap),
            "original_label": _num(self.original_label),
            "adversarial_label": _num(self.adversarial_label), "target": _num(self.target),
            "time_s": round(float(self.time_s), 4), "margin": self.margin,
        }
        if self.adversarial is not None:
            delta = self.perturbation.ravel()
            out["changed_pixels"] = np.flatnonzero(delta).tolist()
        out.update({k: _num(v) if not isinstance(v, (dict, list)) else v for k, v in self.stats.items()})
        return out


@dataclass
class CertifyResult:
    task: str
    model: str
    region: str
    backend: str
    status: str                   # verified | counterexample | unknown
    method: str                   # what settled it: "bounds", "attack", "solver", or "" (unknown)
    original_label: int
    adversarial_label: int | None
    time_s: float
    image: np.ndarray
    counterexample: np.ndarray | None = None
    classes: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"task": self.task, "model": self.model, "region": self.region,
                "backend": self.backend, "status": self.status, "method": self.method,
                "original_label": _num(self.original_label),
                "adversarial_label": _num(self.adversarial_label),
                "time_s": round(float(self.time_s), 4), **self.stats}
