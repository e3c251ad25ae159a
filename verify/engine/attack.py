"""Projected gradient descent on a spec's violation, batched over starting points (JAX).

The violation of an input ``x`` is ``min_k max_i (A_k f(x) − b_k + margin)_i``: it is ≤ 0
exactly when ``f(x)`` satisfies some disjunct of the spec with the margin. Each step moves
every start against the (sub)gradient — the sign of the gradient scaled to the box width for
boxes and L0 (then the k largest changes are kept), the normalised gradient for L2, the
largest few coordinates for L1 — and projects back into the region
(:func:`verify.engine.concretize.project`); the step shrinks linearly. The best point of each
start is returned; nothing here is a proof, and every candidate is re-checked on the float64
IR by the caller.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .concretize import project
from .model import Plan, forward


def _violation(plan, arrays, G, thr, D, x):
    y = forward(plan, arrays, x)                       # (S, n_out)
    rows = y @ G.T - thr                               # (S, R)
    per = jnp.max(jnp.where(D[None], rows[:, None, :], -jnp.inf), axis=-1)   # (S, K)
    per = jnp.where(jnp.any(D, axis=1)[None], per, jnp.inf)                   # padding disjuncts
    return jnp.min(per, axis=-1)


@partial(jax.jit, static_argnames=("plan", "rkind"))
def pgd(plan: Plan, rkind: str, arrays, reg, G, thr, D, x0, steps):
    """Best points (S, n) and violations (S,) of PGD from the starts ``x0`` (S, n).

    ``G`` (R, n_out) and ``thr`` (R,) are all rows of all disjuncts (thresholds with the
    margin), ``D`` (K, R) says which rows belong to which disjunct."""
    center, lo, hi, free, eps, k = reg
    width = hi - lo
    n = x0.shape[-1]

    def total(x):
        v = _violation(plan, arrays, G, thr, D, x)
        return jnp.sum(v), v

    grad = jax.grad(total, has_aux=True)
    x0 = project(rkind, reg, x0)

    def cond(state):
        t, _, _, best_v = state
        return (t < steps) & (jnp.min(best_v) > 0)

    def body(state):
        t, x, best_x, best_v = state
        g, v = grad(x)
        better = v < best_v
        best_x = jnp.where(better[:, None], x, best_x)
        best_v = jnp.minimum(v, best_v)
        frac = 1.0 - t.astype(x.dtype) / steps
        size = 0.25 * frac + 0.01
        g = g * free
        if rkind == "l2":
            norm = jnp.sqrt(jnp.sum(g * g, axis=-1, keepdims=True)) + 1e-30
            step = size * eps * g / norm
        elif rkind == "l1":
            few = max(1, min(10, n))
            kth = -jnp.sort(-jnp.abs(g), axis=-1)[:, few - 1:few]
            top = (jnp.abs(g) >= kth) & (jnp.abs(g) > 0)
            step = size * eps * jnp.sign(g) * top / few
        else:
            step = size * width * jnp.sign(g)
        x = project(rkind, reg, x - step)
        return t + 1, x, best_x, best_v

    v0 = _violation(plan, arrays, G, thr, D, x0)
    state = (jnp.asarray(0), x0, x0, v0)
    _, x, best_x, best_v = jax.lax.while_loop(cond, body, state)
    v = _violation(plan, arrays, G, thr, D, x)
    better = v < best_v
    return jnp.where(better[:, None], x, best_x), jnp.minimum(v, best_v)


def _padded(count: int, least: int) -> int:
    size = least
    while size < count:
        size *= 2
    return size


def spec_rows(disjuncts, margin: float, pad: bool = False):
    """``(G, thr, D)`` for :func:`pgd`: all rows stacked, thresholds ``b − margin``, and the
    disjunct membership mask (disjuncts without rows are never passed here). With ``pad``,
    rows and disjuncts are padded to powers of two (zero rows that belong to no disjunct,
    disjuncts without rows, which never hold) so that fewer shapes are compiled."""
    G = np.vstack([A for A, _ in disjuncts])
    thr = np.concatenate([b for _, b in disjuncts]) - margin
    R, K = G.shape[0], len(disjuncts)
    if pad:
        R, K = _padded(R, 4), _padded(K, 2)
        G = np.vstack([G, np.zeros((R - G.shape[0], G.shape[1]))])
        thr = np.concatenate([thr, np.full(R - thr.size, np.inf)])
    D = np.zeros((K, R), dtype=bool)
    at = 0
    for k, (A, _) in enumerate(disjuncts):
        D[k, at:at + A.shape[0]] = True
        at += A.shape[0]
    return G, thr, D


def greedy_pixels(network, region, violation, max_steps: int | None = None) -> np.ndarray:
    """Greedy search for "at most k changed pixels" regions: from the centre, repeatedly move
    the single pixel (to either end of its box) that lowers ``violation`` (a function of a
    batch of logits, see :meth:`verify.engine.spec.Spec.violation`) the most, evaluated exactly
    on the float64 IR, until ``k`` pixels are changed or the violation is ≤ 0. Returns the best
    point found (never None; the caller checks it).

    A dense first affine layer makes each candidate a rank-one update of its output, so one
    step costs one batched forward pass of the rest of the network over all candidates."""
    from ..network import Affine

    x = region.center.copy()
    first = network.layers[0] if network.layers and isinstance(network.layers[0], Affine) else None
    W = first.dense_weight() if first is not None else None
    best_x, best_v = x.copy(), float(violation(network.forward(x[None]))[0])
    steps = region.k if max_steps is None else min(region.k, max_steps)
    for _ in range(steps):
        if best_v <= 0:
            break
        cand = np.flatnonzero(region.free & (x == region.center))
        if cand.size == 0:
            break
        values = np.concatenate([region.lo[cand], region.hi[cand]])
        cols = np.tile(cand, 2)
        if W is None:
            batch = np.repeat(x[None], cols.size, axis=0)
            batch[np.arange(cols.size), cols] = values
            logits = network.forward(batch)
        else:
            base = first.forward(x[None])[0]
            pre = base[None, :] + (values - x[cols])[:, None] * W[:, cols].T
            logits = network.forward_from(1, pre)
        v = violation(logits)
        i = int(np.argmin(v))
        x = x.copy()
        x[cols[i]] = values[i]
        if v[i] < best_v:
            best_x, best_v = x.copy(), float(v[i])
    return best_x
