"""One label-change encoding, reused over many sub-regions by changing bounds only.

Tasks that ask hundreds of related questions — "with these pixels free, can the label
change?" for a growing set of free pixels (minimal explanations) — should not rebuild the
MIP each time. :class:`NarrowableQuery` encodes the feasibility question once over the
*widest* region the questions will use; :meth:`NarrowableQuery.narrow` turns it into the
same question over any sub-region by changing

* the input columns' bounds (a fixed pixel is a column with ``lb = ub``),
* every neuron column's bounds, to the sub-region's bounds,
* each big-M ReLU's binary: fixed when the neuron is stable over the sub-region, otherwise
  its big-M coefficients ``−l``, ``−u`` and the right-hand side ``−l`` set to the
  sub-region's (tighter) bounds,

and nothing else: the matrix keeps its sparsity pattern, the label-change rows stay as
built (they hold for every sub-region, since the wide region's bounds are looser). A
sub-region must lie inside the wide region; :meth:`narrow` checks that.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from ..bounds import Bounds, compute_bounds
from ..errors import InvalidInputError
from ..network import Network
from ..problem import Problem
from ..regions import Region
from .properties import DEFAULT_MARGIN, bounds_exclude_label_change
from .query import Query, build_query

#: Bound stages computed for each narrowed region (cheap; the wide region also gets the LP).
NARROW_STAGES = ("interval", "symbolic")


class NarrowableQuery:
    """"Some x in the region gives another label (the target) a lead of ``margin``", as a
    feasibility MIP over ``wide``, ready to be narrowed to sub-regions."""

    def __init__(self, network: Network, wide: Region, label: int, target: int | None = None,
                 margin: float = DEFAULT_MARGIN, stages=NARROW_STAGES):
        self.network = network.merged_affine()
        self.wide = wide
        self.label, self.target, self.margin = label, target, margin
        bounds = compute_bounds(self.network, wide, stages)
        self.query: Query = build_query(self.network, wide.center, None, target, label, wide,
                                        margin=margin, bounds=bounds)
        problem = self.query.problem
        A = sp.csr_matrix(problem.A)
        A.sum_duplicates()
        A.sort_indices()
        self._A = A
        enc = self.query.encoding
        self._values = [(k, np.flatnonzero(v.is_var), v.cols[v.is_var])
                        for k, v in enumerate(enc.values) if k > 0]
        self._relus = []
        for k, v in enumerate(enc.values):
            if v.relu is not None:     # values[k] = ReLU(values[k − 1])
                r = v.relu
                self._relus.append((k - 1, r, self._positions(r.chord_rows, r.a),
                                    self._positions(r.cap_rows, r.a)))

    @property
    def proven_infeasible(self) -> bool:
        """The wide region's bounds already exclude a label change (so does every sub-region)."""
        return self.query.property.proven_infeasible

    def _positions(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Index into ``A.data`` of each entry (rows[i], cols[i])."""
        A = self._A
        pos = np.empty(rows.size, dtype=np.int64)
        for i, (r, c) in enumerate(zip(rows, cols)):
            start, stop = A.indptr[r], A.indptr[r + 1]
            pos[i] = start + np.searchsorted(A.indices[start:stop], c)
        return pos

    def bounds(self, region: Region) -> Bounds:
        """Bounds of every neuron over ``region`` (a sub-region of the wide one)."""
        if region.size != self.wide.size or np.any(region.lo < self.wide.lo - 1e-12) \
                or np.any(region.hi > self.wide.hi + 1e-12):
            raise InvalidInputError("the narrowed region must lie inside the wide region")
        return compute_bounds(self.network, region, NARROW_STAGES)

    def excluded_by_bounds(self, region: Region, bounds: Bounds) -> bool:
        """Whether the bounds alone prove no label change over ``region``."""
        return self.proven_infeasible or bounds_exclude_label_change(
            self.network, region, bounds, self.label, self.target, self.margin)

    def narrow(self, region: Region, bounds: Bounds) -> Problem:
        """The same query over ``region``, from the built one by bound and coefficient changes."""
        problem, enc = self.query.problem, self.query.encoding
        lb, ub = problem.lb.copy(), problem.ub.copy()
        lb[enc.input_cols] = region.lo[enc.free_idx]
        ub[enc.input_cols] = region.hi[enc.free_idx]
        for k, idx, cols in self._values:
            lb[cols] = np.maximum(lb[cols], bounds.lower[k][idx])
            ub[cols] = np.minimum(ub[cols], bounds.upper[k][idx])
        ub = np.maximum(ub, lb)          # round-off between stages must not empty a column
        data, row_ub = self._A.data.copy(), problem.row_ub.copy()
        for k, relu, chord_pos, cap_pos in self._relus:
            l, u = bounds.lower[k][relu.neurons], bounds.upper[k][relu.neurons]
            lb[relu.a[l >= 0]] = 1.0
            ub[relu.a[u <= 0]] = 0.0
            open_ = (l < 0) & (u > 0)
            data[chord_pos[open_]] = -l[open_]
            row_ub[relu.chord_rows[open_]] = -l[open_]
            data[cap_pos[open_]] = -u[open_]
        A = sp.csr_matrix((data, self._A.indices, self._A.indptr), shape=self._A.shape)
        return replace(problem, A=A, lb=lb, ub=ub, row_ub=row_ub)

    def decode(self, x: np.ndarray, region: Region) -> np.ndarray:
        """The input image of a solution of a narrowed problem (flat, inside ``region``)."""
        return np.clip(self.query.decode(x), region.lo, region.hi)
