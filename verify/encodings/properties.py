"""Output properties: constraints on the logits, as a disjunction of conjunctions of rows.

The general form (:func:`add_output_disjunction`) is the one VNN-LIB properties take: some
case ``k`` holds, ``A_k z ≤ b_k − margin``, with ``z`` the logits. A positive ``margin`` asks
for room to spare (a solution is adversarial even after float round-off, and answers are
minimal *for that margin*); a negative one relaxes the rows, which is what a sound proof of
"no such z" uses. Bounds prune first: a case with a row that cannot hold is dropped, a row
that always holds is left out. One remaining case is added as plain rows; several get one
binary selector each (``Σ s_k = 1``) and big-M rows ``A_k z + (U − rhs)·s_k ≤ U`` with ``U``
an upper bound of ``A_k z``. No case left: the property is proven infeasible by the bounds
and an empty infeasible row keeps the problem well-formed.

"The label changed" (:func:`add_label_change`) is the special case used by every task,
with margin :data:`DEFAULT_MARGIN`:

* untargeted, "label ≠ c": one case per other label ``j``, the row ``z_c − z_j ≤ −margin``;
* targeted, "label = t": one case, the rows ``z_j − z_t ≤ −margin`` for every ``j ≠ t``;
* one-logit (sigmoid) networks: label 1 ⇔ ``z > 0``, so "label ≠ 1" is ``z ≤ −margin`` and
  "label ≠ 0" is ``−z ≤ −margin``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from ..problem import ProblemBuilder
from ..vocabulary import DEFAULT_MARGIN
from .relu import NetworkEncoding


Case = tuple[np.ndarray, np.ndarray]     # (A, b): the rows A z ≤ b (before the margin)


@dataclass
class DisjunctionEncoding:
    kept: list[int]            # indices of the cases the bounds leave possible
    margin: float

    @property
    def proven_infeasible(self) -> bool:
        return not self.kept


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


def case_row_bounds(network, region, bounds, cases: list[Case]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Lower and upper bounds of each case's ``A z`` over the region (one back-substitution)."""
    if not cases:
        return []
    stacked = np.vstack([np.atleast_2d(a) for a, _ in cases])
    lo, hi = difference_bounds(network, region, bounds, stacked)
    splits = np.cumsum([np.atleast_2d(a).shape[0] for a, _ in cases])[:-1]
    return list(zip(np.split(lo, splits), np.split(hi, splits)))


def possible_cases(network, region, bounds, cases: list[Case], margin: float) -> list[int]:
    """Indices of the cases that the bounds do not rule out (``A z ≤ b − margin`` may hold)."""
    return [k for k, ((_, b), (lo, _)) in enumerate(zip(cases, case_row_bounds(network, region, bounds, cases)))
            if not np.any(lo > np.asarray(b, dtype=np.float64) - margin)]


def add_output_disjunction(builder: ProblemBuilder, enc: NetworkEncoding, cases: list[Case],
                           margin: float = 0.0) -> DisjunctionEncoding:
    """Constrain the logits so that some case holds: ``A_k z ≤ b_k − margin`` for some k."""
    logits = enc.logits
    ranges = case_row_bounds(enc.network, enc.region, enc.bounds, cases)
    kept, rows = [], []
    for k, ((a, b), (lo, hi)) in enumerate(zip(cases, ranges)):
        a = np.atleast_2d(np.asarray(a, dtype=np.float64))
        rhs = np.asarray(b, dtype=np.float64) - margin
        if np.any(lo > rhs):
            continue                                  # a row that cannot hold: no such z here
        need = hi > rhs                               # rows the bounds do not already guarantee
        kept.append(k)
        rows.append((a[need], rhs[need], hi[need]))
    if not kept:
        builder.add_rows([], [], [], 1.0, np.inf, count=1)     # 0 ≥ 1: proven infeasible
        return DisjunctionEncoding([], margin)
    var = logits.is_var
    const = logits.const * ~var
    if len(kept) == 1:
        a, rhs, _ = rows[0]
        _add_rows(builder, a, logits, rhs - a @ const)
        return DisjunctionEncoding(kept, margin)
    s = builder.add_vars("property.selector", len(kept), 0.0, 1.0, integer=True)
    builder.add_rows(np.zeros(s.size), s, np.ones(s.size), 1.0, 1.0, count=1)
    for sel, (a, rhs, hi) in zip(s, rows):
        # A z + (U − rhs)·s ≤ U: the rows hold when s = 1 and are implied by the bounds otherwise
        _add_rows(builder, a, logits, hi - a @ const, extra=(np.full(len(rhs), sel), hi - rhs))
    return DisjunctionEncoding(kept, margin)


def _add_rows(builder, a, logits, rhs, extra=None):
    """Rows ``a @ z (+ coef·extra_col) ≤ rhs`` over the variable logits (constants already moved
    into ``rhs``)."""
    var = logits.is_var
    A = a[:, var]
    r, c = np.nonzero(A)
    rows, cols, vals = list(r), list(logits.cols[var][c]), list(A[r, c])
    if extra is not None:
        ecols, ecoef = extra
        rows += list(range(len(ecols)))
        cols += list(ecols)
        vals += list(ecoef)
    builder.add_rows(rows, cols, vals, -np.inf, rhs, count=a.shape[0])


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


def label_change_cases(n_out: int, label: int, target: int | None) -> tuple[list[Case], list[int]]:
    """The label change as cases ``−spec z ≤ 0`` (the margin is applied by the encoder), and the
    label each case stands for (one case per label untargeted; one case for a target)."""
    spec, others = label_change_spec(n_out, label, target)
    if target is None and n_out > 1:
        return [(-spec[i:i + 1], np.zeros(1)) for i in range(len(others))], others
    return [(-spec, np.zeros(spec.shape[0]))], others


def bounds_exclude_label_change(network, region, bounds, label: int, target: int | None = None,
                                margin: float = DEFAULT_MARGIN) -> bool:
    """True when the bounds alone prove that no x in ``region`` gives another label (the
    ``target``) a lead of ``margin`` — a robustness proof without any solver."""
    cases, _ = label_change_cases(network.num_outputs, label, target)
    return not possible_cases(network, region, bounds, cases, margin)


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
    """Constrain the logits so the predicted label is not ``label`` (is ``target``)."""
    cases, labels = label_change_cases(enc.logits.cols.size, label, target)
    disjunction = add_output_disjunction(builder, enc, cases, margin)
    if target is None and len(cases) > 1:
        candidates = [labels[k] for k in disjunction.kept]
    else:
        candidates = labels if disjunction.kept else []
    return PropertyEncoding(label, target, margin, candidates, disjunction.proven_infeasible)
