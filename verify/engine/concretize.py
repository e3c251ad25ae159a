"""Concretisation: the minimum of a linear function ``aᵀx + c`` over an input region.

Each :class:`verify.regions.Region` is described to JAX by a kind and six arrays
(:func:`region_arrays`): ``center``, ``lo``, ``hi``, ``free`` (1.0 where a pixel may change),
``eps`` and ``k``. For coefficients ``a`` (one row per bound) the minimum is

* ``box`` (Box, InputBox, L∞ ball — the ball within [0, 1] *is* a box): coordinatewise,
  ``Σ max(a_i, 0)·lo_i + min(a_i, 0)·hi_i`` — exact;
* ``l1`` (``Σ|x_i − c_i| ≤ ε`` within the box): ``aᵀc`` minus the fractional knapsack
  ``max Σ |a_i| t_i`` s.t. ``0 ≤ t_i ≤ cap_i`` (how far pixel i may move in the decreasing
  direction inside its box) and ``Σ t_i ≤ ε``, by its LP dual at the threshold rate found by
  bisection (:func:`verify.regions.knapsack_gain`) — exact up to the bisection's resolution;
* ``l2`` (``‖x − c‖₂ ≤ ε`` within the box): ``aᵀc`` minus ``max Σ |a_i| t_i`` s.t.
  ``0 ≤ t_i ≤ cap_i`` (as for ``l1``) and ``Σ t_i² ≤ ε²``, the Lagrangian bound at the
  multiplier found by an active-set iteration (:func:`verify.regions.l2_box_gain`) — exact
  once converged;
* ``l0`` (at most ``k`` pixels differ from ``c``): ``aᵀc`` minus the sum of the ``k`` largest
  single-pixel decreases ``max(a_i(c_i − lo_i), a_i(c_i − hi_i), 0)``, the knapsack above
  with caps 1 and budget ``k`` — exact.

Neither needs a sort (slow on a CPU, and slower still to differentiate): both are dual
bounds, valid at *any* multiplier, so a multiplier found to finite precision (held constant
under differentiation: by the envelope theorem the gradient needs none through it) can only
loosen the bound, never make it unsound.

Fixed pixels (``lo = hi = c``) contribute constants in every case. Besides the bound, each
function returns a *magnitude* ``Σ|a_i|·max(|lo_i|, |hi_i|)``: float round-off in the bound is
a tiny multiple of it (see :mod:`verify.engine.crown` for the safety margin).

:func:`minimizer` gives, on the host, a point of the region attaining the bound (for the L2
ball, within a relative 1e-9 of it): the candidate counterexample of a subdomain.
:func:`project` maps points back into the region (attacks), :func:`contains` checks membership
exactly.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InvalidInputError
from ..regions import (L0Ball, L1Ball, L2Ball, Region, bisect_threshold, knapsack_gain,
                       l2_box_gain)

#: Active-set steps of the L2 multiplier and bisection steps of the knapsack threshold
#: (float32 search: further steps change nothing; an unconverged one only loosens a bound).
L2_STEPS = 16
BISECTIONS = 40

#: Radius fraction the attack projects onto, so float round-off never leaves the ball.
INSIDE = 1.0 - 1e-9


def region_kind(region: Region) -> str:
    """``"box"``, ``"l1"``, ``"l2"`` or ``"l0"``; InvalidInputError for an unknown region."""
    if isinstance(region, L1Ball):
        return "l1"
    if isinstance(region, L2Ball):
        return "l2"
    if isinstance(region, L0Ball):
        return "l0"
    if type(region).linear_bounds is Region.linear_bounds:
        return "box"
    raise InvalidInputError(f"the bound engine has no rule for regions of type {type(region).__name__}")


def region_arrays(region: Region) -> tuple:
    """``(center, lo, hi, free, eps, k)`` as float64 JAX arrays (call under x64)."""
    free = (region.hi > region.lo).astype(np.float64)
    eps = float(getattr(region, "eps", 0.0))
    k = float(getattr(region, "k", 0))
    return (jnp.asarray(region.center), jnp.asarray(region.lo), jnp.asarray(region.hi),
            jnp.asarray(free), jnp.asarray(eps), jnp.asarray(k))


def _safe_sqrt(s):
    positive = s > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, s, 1.0)), 0.0)


def concretize(kind: str, reg: tuple, A, c):
    """Minimum over the region of ``A x + c`` per row (A: (..., n), c: (...)) and its
    round-off magnitude. Differentiable (almost everywhere) in A and c."""
    center, lo, hi, free, eps, k = reg
    pos, neg = jnp.maximum(A, 0.0), jnp.minimum(A, 0.0)
    box = c + jnp.sum(pos * lo + neg * hi, axis=-1)
    mag = jnp.sum(jnp.abs(A) * jnp.maximum(jnp.abs(lo), jnp.abs(hi)), axis=-1)
    if kind == "box":
        return box, mag
    base = c + jnp.sum(A * center, axis=-1)
    rate = jnp.abs(A)
    cap = jnp.where(A >= 0, center - lo, hi - center)      # room in the falling direction
    freeze = jax.lax.stop_gradient
    if kind == "l2":
        return base - l2_box_gain(rate, cap, eps, jnp, L2_STEPS, freeze)[0], mag
    if kind == "l1":
        return base - knapsack_gain(rate, cap, eps, jnp, BISECTIONS, freeze), mag
    if kind == "l0":
        drop = -jnp.minimum(A * (hi - center), A * (lo - center))       # ≥ 0
        return base - knapsack_gain(drop, 1.0, k, jnp, BISECTIONS, freeze), mag
    raise InvalidInputError(f"unknown region kind {kind!r}")


# -- host-side helpers (numpy) ----------------------------------------------------------------

def minimizer(kind: str, region: Region, A: np.ndarray) -> np.ndarray:
    """For each row a of ``A`` (rows, n): a point of the region minimising ``aᵀx`` (for the L2
    ball: of the bound :func:`concretize` used). Shape (rows, n)."""
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    c, lo, hi = region.center, region.lo, region.hi
    box_point = np.where(A > 0, lo, np.where(A < 0, hi, c))
    if kind == "box":
        return box_point
    if kind == "l2":
        rate, cap = np.abs(A), np.where(A >= 0, c - lo, hi - c)
        lam = l2_box_gain(rate, cap, region.eps)[1]
        t = np.minimum(cap, lam[:, None] * rate) * INSIDE
        return np.clip(c - np.sign(A) * t, lo, hi)
    x = np.tile(c, (A.shape[0], 1))
    if kind == "l1":
        cap = np.where(A >= 0, c - lo, hi - c)
        order = np.argsort(-np.abs(A), axis=1)
        for row in range(A.shape[0]):
            budget = region.eps * INSIDE
            for i in order[row]:
                if budget <= 0 or A[row, i] == 0:
                    break
                t = min(cap[row, i], budget)
                x[row, i] -= np.sign(A[row, i]) * t
                budget -= t
        return np.clip(x, lo, hi)
    if kind == "l0":
        drop_hi, drop_lo = -A * (hi - c), -A * (lo - c)
        drop = np.maximum(np.maximum(drop_hi, drop_lo), 0.0)
        for row in range(A.shape[0]):
            top = np.argsort(-drop[row])[: region.k]
            top = top[drop[row, top] > 0]
            x[row, top] = np.where(drop_hi[row, top] >= drop_lo[row, top], hi[top], lo[top])
        return x
    raise InvalidInputError(f"unknown region kind {kind!r}")


def contains(region: Region, x: np.ndarray) -> bool:
    """Whether the point ``x`` lies in the region (exact float64 comparisons)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size != region.size or not np.all(np.isfinite(x)):
        return False
    if np.any(x < region.lo) or np.any(x > region.hi):
        return False
    d = x - region.center
    if isinstance(region, L1Ball):
        return float(np.abs(d).sum()) <= region.eps
    if isinstance(region, L2Ball):
        return float(np.sqrt(d @ d)) <= region.eps
    if isinstance(region, L0Ball):
        return int(np.count_nonzero(d)) <= region.k
    return True


def project(kind: str, reg: tuple, x):
    """Map a batch of points ``x`` (batch, n) into the region (JAX; a feasible point, the
    exact Euclidean projection for box and L2 balls within the box's centre)."""
    center, lo, hi, free, eps, k = reg
    if kind == "box":
        return jnp.clip(x, lo, hi)
    d = (x - center) * free
    if kind == "l2":
        norm = _safe_sqrt(jnp.sum(d * d, axis=-1, keepdims=True))
        d = d * jnp.minimum(1.0, eps * INSIDE / jnp.where(norm > 0, norm, 1.0))
    elif kind == "l1":
        d = _project_l1(d, eps * INSIDE)
    elif kind == "l0":              # keep the k largest changes (ties by index)
        order = jnp.argsort(-jnp.abs(d), axis=-1)
        keep = jnp.arange(d.shape[-1]) < k
        d = jnp.zeros_like(d).at[jnp.arange(d.shape[0])[:, None], order].set(
            jnp.where(keep, jnp.take_along_axis(d, order, axis=-1), 0.0))
    # clipping moves every coordinate towards the centre: the budget still holds
    return jnp.clip(center + d, lo, hi)


def _project_l1(d, radius):
    """Projection of each row of ``d`` onto the L1 ball of ``radius``: soft thresholding
    ``sign(d)·max(|d| − θ, 0)`` at the ``θ`` where the row's L1 norm meets the radius, found
    by :data:`BISECTIONS` steps on ``[0, max|d|]`` (no sort). The upper end is kept, so the
    result lies inside the ball (at most the bisection's resolution short of the exact
    projection)."""
    a = jnp.abs(d)
    _, hi = bisect_threshold(
        jnp.max(a, axis=-1, keepdims=True),
        lambda t: jnp.sum(jnp.maximum(a - t, 0.0), axis=-1, keepdims=True) > radius,
        BISECTIONS, jnp)
    inside = jnp.sum(a, axis=-1, keepdims=True) <= radius
    return jnp.where(inside, d, jnp.sign(d) * jnp.maximum(a - hi, 0.0))
