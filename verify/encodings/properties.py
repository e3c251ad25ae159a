"""Output properties: constraints on the logits that say "the label changed".

A property holds with an explicit ``margin`` (default :data:`DEFAULT_MARGIN`): the winning
logit must beat the others by at least the margin, so a solution is adversarial with room to
spare for float round-off, and the answer is reported as minimal *for that margin*.

* untargeted, "label ≠ c": some ``j ≠ c`` with ``z_j − z_c ≥ margin``. One binary selector per
  candidate ``j`` (``Σ s_j = 1``) with the big-M row ``z_j − z_c ≥ margin − (margin − L_j)(1 − s_j)``,
  ``L_j`` a lower bound of ``z_j − z_c``; candidates whose upper bound is below the margin
  are dropped, and one remaining candidate needs no binary.
* targeted, "label = t": ``z_t − z_j ≥ margin`` for every ``j ≠ t``.
* one-logit (sigmoid) networks: label 1 ⇔ ``z > 0``, so "label ≠ 1" is ``z ≤ −margin`` and
  "label ≠ 0" is ``z ≥ margin``.

If the bounds already show the property cannot hold, the returned :class:`PropertyEncoding`
says so (``proven_infeasible``) and an empty infeasible row is added, so the problem stays
well-formed and any solver reports it infeasible.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from ..problem import ProblemBuilder
from .relu import NetworkEncoding

#: Logit margin by which the adversarial label must win.
DEFAULT_MARGIN = 1e-3


@dataclass
class PropertyEncoding:
    label: int                 # the label to move away from
    target: int | None         # the label to reach (None: any other)
    margin: float
    candidates: list[int]      # labels that may still win according to the bounds
    proven_infeasible: bool


def difference_bounds(network, region, bounds, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``spec @ logits`` over ``region`` by back-substitution (tighter than logit
    intervals)."""
    from ..bounds import back_substitute
    from ..network import Affine

    last = len(network.layers) - 1
    if isinstance(network.layers[last], Affine):
        return back_substitute(network, region, bounds, last, spec=spec)
    lo, hi = bounds.lower[-1], bounds.upper[-1]
    pos, neg = np.maximum(spec, 0), np.minimum(spec, 0)
    return pos @ lo + neg @ hi, pos @ hi + neg @ lo


def label_change_spec(n_out: int, label: int, target: int | None) -> tuple[np.ndarray, list[int]]:
    """Rows ``spec`` over the logits and the labels that may take over. Untargeted: one row
    ``z_j − z_label`` per other label j (one of them must reach the margin); targeted: rows
    ``z_target − z_j`` for every j ≠ target (all must). One logit z (class 1 iff z > 0): the
    single row ``±z``."""
    check_labels(2 if n_out == 1 else n_out, label, target)
    if n_out == 1:
        return np.array([[1.0 if label == 0 else -1.0]]), [1 - label]
    if target is None:
        others = [j for j in range(n_out) if j != label]
        spec = np.zeros((len(others), n_out))
        spec[np.arange(len(others)), others] = 1.0
        spec[:, label] = -1.0
        return spec, others
    rest = [j for j in range(n_out) if j != target]
    spec = np.zeros((len(rest), n_out))
    spec[:, target] = 1.0
    spec[np.arange(len(rest)), rest] = -1.0
    return spec, [target]


def _any_of(n_out: int, target: int | None) -> bool:
    """Whether one spec row reaching the margin suffices (else all must)."""
    return target is None and n_out > 1


def bounds_exclude_label_change(network, region, bounds, label: int, target: int | None = None,
                                margin: float = DEFAULT_MARGIN) -> bool:
    """True when the bounds alone prove that no x in ``region`` gives another label (the
    ``target``) a lead of ``margin`` — a robustness proof without any solver."""
    n_out = network.num_outputs
    spec, _ = label_change_spec(n_out, label, target)
    hi = difference_bounds(network, region, bounds, spec)[1]
    return not np.any(hi >= margin) if _any_of(n_out, target) else not np.all(hi >= margin)


def check_labels(num_classes: int, label: int, target: int | None) -> None:
    if not 0 <= label < num_classes:
        raise InvalidInputError(f"label {label} out of range 0..{num_classes - 1}")
    if target is not None:
        if not isinstance(target, (int, np.integer)) or not 0 <= target < num_classes:
            raise InvalidInputError(f"target must be a label in 0..{num_classes - 1}, got {target!r}")
        if target == label:
            raise InvalidInputError(
                f"target {target} is the label the model already predicts; choose another label "
                "(or no target for an untargeted query)")


def add_label_change(builder: ProblemBuilder, enc: NetworkEncoding, label: int,
                     target: int | None = None, margin: float = DEFAULT_MARGIN) -> PropertyEncoding:
    """Constrain the logits so the predicted label is not ``label`` (or is ``target``)."""
    logits = enc.logits
    n_out = logits.cols.size
    spec, others = label_change_spec(n_out, label, target)
    lo, hi = difference_bounds(enc.network, enc.region, enc.bounds, spec)
    if _any_of(n_out, target):
        keep = hi >= margin
        candidates = [j for j, k in zip(others, keep) if k]
        rows_spec, rows_lo = spec[keep], lo[keep]
    else:
        candidates = others if np.all(hi >= margin) else []
        need = lo < margin                      # rows the bounds do not already guarantee
        rows_spec, rows_lo = spec[need], lo[need]
        if not candidates:
            rows_spec = rows_spec[:0]
    prop = PropertyEncoding(label, target, margin, candidates, not candidates)
    if not candidates:
        builder.add_rows([], [], [], 1.0, np.inf, count=1)     # 0 ≥ 1: proven infeasible
        return prop
    var = logits.is_var
    const = logits.const * ~var
    if _any_of(n_out, target) and len(candidates) > 1:
        s = builder.add_vars("property.selector", len(candidates), 0.0, 1.0, integer=True)
        builder.add_rows(np.zeros(s.size), s, np.ones(s.size), 1.0, 1.0, count=1)
        # spec·z − (margin − L)·s ≥ L
        _add_spec_rows(builder, rows_spec, logits, const, rows_lo, extra=(s, -(margin - rows_lo)))
    else:
        _add_spec_rows(builder, rows_spec, logits, const, np.full(len(rows_spec), margin))
    return prop


def _add_spec_rows(builder, spec, logits, const, rhs, extra=None):
    """Rows ``spec @ z (+ coef·extra_col) ≥ rhs`` with constant logits moved to the right."""
    var = logits.is_var
    A = spec[:, var]
    r, c = np.nonzero(A)
    rows, cols, vals = list(r), list(logits.cols[var][c]), list(A[r, c])
    if extra is not None:
        ecols, ecoef = extra
        rows += list(range(len(ecols)))
        cols += list(ecols)
        vals += list(ecoef)
    builder.add_rows(rows, cols, vals, rhs - spec @ const, np.inf, count=spec.shape[0])
