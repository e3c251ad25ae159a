"""Typed results of the exact tasks, and their JSON form (the output contract of the CLI).

A result keeps *why the solver stopped* (``status``) apart from *how good the answer is*
(``objective`` of the returned example, proven lower ``bound``). Only a proven answer has
status ``optimal`` (or ``verified``); distances are in the unit that was minimised:
changed pixels (card), L1, squared L2 (the sum of squared changes), L∞.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from .status import OUTCOME_OF_STATUS, Outcome, Status, outcome_of

__all__ = ["OUTCOME_OF_STATUS", "AdversarialResult", "CertifyResult", "Outcome", "Result",
           "Status", "dumps", "json_default", "json_value", "outcome_of"]


def json_value(v: Any) -> Any:
    """THE JSON sanitiser of every result: numpy scalars and arrays become Python values and
    lists, NaN/inf become None, a bool stays a bool (``True`` is not ``1``), a status enum
    becomes its plain string, dicts/lists/tuples are cleaned recursively and a :class:`Result`
    becomes its :meth:`~Result.to_dict`. Anything else (str, ...) is returned unchanged."""
    if v is None or isinstance(v, str):
        return str(v) if isinstance(v, StrEnum) else v
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, (np.integer, int)):
        return int(v)
    if isinstance(v, np.ndarray):
        return [json_value(e) for e in v.tolist()]
    if isinstance(v, dict):
        return {(str(k) if isinstance(k, StrEnum) else k): json_value(e) for k, e in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_value(e) for e in v]
    if isinstance(v, Result):
        return v.to_dict()
    return v


#: Scalars are cleaned the same way (the name the result classes use).
_num = json_value


def json_default(obj: Any) -> Any:
    """``default=`` for :func:`json.dumps` of anything a command prints: numpy scalars by
    value, arrays as lists, results by :meth:`Result.to_dict`, anything else as ``str``."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Result):
        return obj.to_dict()
    return str(obj)


def dumps(obj: Any, indent: int | None = 2) -> str:
    """The JSON text of ``obj`` as every command writes it (``result.json``, ``--json``)."""
    return json.dumps(obj, indent=indent, default=json_default)


class Result:
    """Base of every task result (adversarial, certify, explanation, VNN-LIB property,
    attack, comparison): :meth:`to_dict` is the JSON form, built with :func:`json_value`
    (its ``status`` an :class:`Outcome` or the task's own verdict word), :meth:`to_json` its
    text."""

    def to_dict(self) -> dict:
        raise NotImplementedError

    def to_json(self, indent: int | None = 2) -> str:
        return dumps(json_value(self.to_dict()), indent=indent)


@dataclass
class AdversarialResult(Result):
    task: str                     # "min-adv-card", "min-adv-l1", "min-adv-l2", "min-adv-linf"
    model: str
    norm: str
    backend: str
    status: Outcome
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
            delta = (self.adversarial - self.image).ravel()
            out["changed_pixels"] = np.flatnonzero(delta).tolist()
        out.update({k: _num(v) if not isinstance(v, (dict, list)) else v for k, v in self.stats.items()})
        return out


@dataclass
class CertifyResult(Result):
    task: str
    model: str
    region: str
    backend: str
    status: Outcome               # verified | counterexample | unknown
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
