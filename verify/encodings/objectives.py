"""Distance objectives between the encoded input ``x`` and the region's centre ``c``
(over the free pixels only; fixed pixels do not move):

* ``card`` (L0): number of changed pixels — a binary per pixel with
  ``c − (c − lo)·d ≤ x ≤ c + (hi − c)·d``, minimise ``Σ d``. Reuses the region's indicators
  when the region is an L0 ball.
* ``l1``: ``Σ t`` with ``t ≥ |x − c|`` (reuses an L1 region's columns).
* ``linf``: ``t`` with ``t ≥ |x_i − c_i|`` for every pixel.
* ``l2``: ``Σ (x − c)²`` — the sum of squared changes (no square root), a convex quadratic
  objective, so the problem is an MIQP (SCIP, CPLEX; not HiGHS).
"""
from __future__ import annotations

import numpy as np

from ..problem import ProblemBuilder
from ..regions import add_abs_deviation, add_change_indicators
from ..vocabulary import NORM_ALIASES, NORMS, normalise_norm  # noqa: F401  (re-exported)
from .relu import NetworkEncoding


def add_distance_objective(builder: ProblemBuilder, enc: NetworkEncoding, norm: str) -> np.ndarray:
    """Set the objective to the distance of ``norm``; returns the columns it sums (t, d, ...)."""
    norm = normalise_norm(norm)
    region, cols = enc.region, enc.input_cols
    center = region.center[enc.free_idx]
    if norm == "card":
        d = enc.aux.get("changed")
        if d is None:
            d = add_change_indicators(builder, cols, center, region.lo[enc.free_idx],
                                      region.hi[enc.free_idx], "objective.changed")
        builder.set_cost(d, 1.0)
        return d
    if norm == "l1":
        t = enc.aux.get("abs_change")
        if t is None:
            t = add_abs_deviation(builder, cols, center, "objective.abs_change")
        builder.set_cost(t, 1.0)
        return t
    if norm == "linf":
        n = cols.size
        t = builder.add_vars("objective.max_change", 1, 0.0, np.inf, cost=1.0)
        r = np.arange(n)
        tt = np.full(n, t[0])
        # t - x ≥ -c   and   t + x ≥ c
        builder.add_rows(np.r_[r, r], np.r_[tt, cols], np.r_[np.ones(n), -np.ones(n)], -center, np.inf, count=n)
        builder.add_rows(np.r_[r, r], np.r_[tt, cols], np.ones(2 * n), center, np.inf, count=n)
        return t
    # l2: Σ (x − c)² = Σ x² − 2 c x + c²  →  P = 2I (objective ½ xᵀPx), linear −2c, offset Σc²
    builder.add_quadratic(cols, cols, np.full(cols.size, 2.0))
    builder.set_cost(cols, -2.0 * center)
    builder.offset += float(center @ center)
    return cols
