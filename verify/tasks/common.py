"""Helpers that several exact tasks share: checking a candidate with the model's own runtime,
snapping and rounding solver points, repairing boundary points, and the bounds' time budget.

They used to live in :mod:`verify.tasks.adversarial`, which the other tasks imported as a
helper library; that module still re-exports them under their old names.
"""
from __future__ import annotations

import time

import numpy as np

from ..models import LoadedModel

#: Pixels whose solver value is this close to the original are set exactly to it.
SNAP_TOL = 1e-6
#: Logit margin used when *proving* robustness (certify, explain): other labels must stay
#: this far below.
VERIFY_MARGIN = 1e-6


def bound_budget(time_limit: float | None, t0: float) -> float | None:
    """Seconds the LP stage of the bounds may take: half of what is left of ``time_limit``
    (counted from ``t0``, a :func:`time.perf_counter` reading), so that the solver keeps the
    other half; None without a limit."""
    if time_limit is None:
        return None
    return max(0.0, 0.5 * (time_limit - (time.perf_counter() - t0)))


def is_adversarial(model: LoadedModel, x: np.ndarray, label: int, target: int | None) -> tuple[bool, int]:
    """Whether the model's own runtime (float32) labels ``x`` as wanted, and the label it gives."""
    got = int(model.reference_labels(x)[0])
    return (got == target) if target is not None else (got != label), got


def snap(x: np.ndarray, center: np.ndarray, levels: int | None) -> np.ndarray:
    """Set pixels within the solver's tolerance of the original exactly to it; with
    ``levels``, round the others to the nearest level."""
    x = x.copy()
    x[np.abs(x - center) <= SNAP_TOL] = center[np.abs(x - center) <= SNAP_TOL]
    if levels:
        moved = x != center
        x[moved] = np.round(x[moved] * (levels - 1)) / (levels - 1)
    return np.clip(x, 0.0, 1.0)


def round_away(x: np.ndarray, center: np.ndarray, levels: int) -> np.ndarray:
    """Round changed pixels to the level on the far side from the original (keeps the change)."""
    s = levels - 1
    out = x.copy()
    up, down = x > center, x < center
    out[up] = np.ceil(x[up] * s - 1e-9) / s
    out[down] = np.floor(x[down] * s + 1e-9) / s
    return np.clip(out, 0.0, 1.0)


def repair(model: LoadedModel, x: np.ndarray, center: np.ndarray, label: int,
           target: int | None, levels: int | None) -> np.ndarray | None:
    """Push a boundary point slightly further along its change until the model's runtime
    agrees it is adversarial; None if no push does."""
    delta = x - center
    for factor in (1.0005, 1.002, 1.01, 1.05):
        trial = np.clip(center + factor * delta, 0.0, 1.0)
        if levels:
            trial = round_away(trial, center, levels)
        if is_adversarial(model, trial, label, target)[0]:
            return trial
    return None
