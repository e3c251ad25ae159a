"""Attacks on a spec's violation: batched APGD-style projected gradient descent (JAX).

The violation of an input ``x`` is ``min_k max_i (A_k f(x) − b_k + margin)_i``: it is ≤ 0
exactly when ``f(x)`` satisfies some disjunct of the spec with the margin. :func:`apgd` runs
a batch of starts, each on the minimum over its own set of disjuncts (all: *untargeted*; one:
*targeted*, which finds counterexamples the minimum's gradient walks past). Each step moves
against the (sub)gradient — its sign scaled to the box width for boxes and L0 (then the k
largest changes are kept), the normalised gradient for L2, the largest few coordinates for
L1 — with momentum, projects back into the region
(:func:`verify.engine.concretize.project`), and halves a start's step size when its progress
stalls (as APGD does). :class:`Attack` drives it within time budgets (in float32 by default)
and hands every candidate, moved into the region in float64, to the caller's exact check;
nothing here is a proof.
"""
from __future__ import annotations

import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..regions import bisect_threshold
from .concretize import project
from .model import Plan, forward


def _violation_of(plan, arrays, G, thr, D, W, x):
    """Per start: ``min`` over the disjuncts that ``W`` (S, K) allows of ``max`` over their rows."""
    y = forward(plan, arrays, x)                       # (S, n_out)
    rows = y @ G.T - thr                               # (S, R)
    per = jnp.max(jnp.where(D[None], rows[:, None, :], -jnp.inf), axis=-1)   # (S, K)
    per = jnp.where(jnp.any(D, axis=1)[None] & W, per, jnp.inf)
    return jnp.min(per, axis=-1)


def _largest(a, few: int):
    """Mask of the ``few`` largest entries of each row of ``a`` (≥ 0; ties within the
    bisection's resolution may add a few more; rows with fewer non-zero entries: all of
    them), by bisection on the threshold — a sort or ``top_k`` costs ten times as much on a
    CPU."""
    lo, _ = bisect_threshold(jnp.max(a, axis=-1, keepdims=True),
                             lambda t: jnp.sum(a > t, axis=-1, keepdims=True) >= few, 30, jnp)
    return a > lo


@partial(jax.jit, static_argnames=("plan", "rkind"))
def apgd(plan: Plan, rkind: str, arrays, reg, G, thr, D, W, x0, steps, goal):
    """Best points (S, n) and violations (S,) of an APGD-style search from the starts ``x0``.

    Each start s minimises its own violation: the minimum over the disjuncts ``W[s]`` (S, K)
    allows (all of them: untargeted; one: targeted at that disjunct). A step moves against
    the gradient direction of the region kind (sign for boxes and pixel budgets, normalised
    for L2, the largest few coordinates for L1), scaled by the start's step size ``η`` (a
    fraction of the box width or of ε), with momentum 0.75, and projects back into the
    region. At checkpoints (APGD's shrinking periods) a start whose loss fell in fewer than
    3/4 of the steps since the last checkpoint, or whose best did not improve, halves ``η``
    and restarts from its best point. The search stops after ``steps`` steps or when some
    start reaches a violation ≤ ``goal``."""
    center, lo, hi, free, eps, k = reg
    width = hi - lo
    n = x0.shape[-1]
    S = x0.shape[0]
    dt = x0.dtype

    def total(x):
        v = _violation_of(plan, arrays, G, thr, D, W, x)
        return jnp.sum(jnp.where(jnp.isfinite(v), v, 0.0)), v

    grad = jax.grad(total, has_aux=True)

    def direction(g):
        g = g * free
        if rkind == "l2":
            norm = jnp.sqrt(jnp.sum(g * g, axis=-1, keepdims=True)) + 1e-30
            return eps * g / norm
        if rkind == "l1":
            few = max(1, min(10, n))
            return eps * jnp.sign(g) * _largest(jnp.abs(g), few) / few
        return width * jnp.sign(g)

    steps_f = jnp.maximum(steps, 1).astype(dt)
    first = jnp.maximum(jnp.ceil(0.22 * steps_f), 1.0)

    def cond(state):
        t, best_v = state[0], state[6]
        return (t < steps) & (jnp.min(best_v) > goal)

    def body(state):
        (t, x, x_prev, g, v, best_x, best_v, best_g, eta, succ, last_ck, period, best_ck,
         cut) = state
        # an APGD step: z = P(x − η d), x' = P(x + 0.75 (z − x) + 0.25 (x − x_prev))
        z = project(rkind, reg, x - eta[:, None] * direction(g))
        mom = jnp.where(t == 0, 1.0, 0.75).astype(dt)
        x_new = project(rkind, reg, x + mom * (z - x) + (1.0 - mom) * (x - x_prev))
        g_new, v_new = grad(x_new)
        succ = succ + (v_new < v).astype(dt)
        better = v_new < best_v
        best_x = jnp.where(better[:, None], x_new, best_x)
        best_g = jnp.where(better[:, None], g_new, best_g)
        best_v = jnp.minimum(v_new, best_v)
        t1 = t + 1
        at_ck = (t1.astype(dt) - last_ck) >= period
        stalled = (succ < 0.75 * period) | ((~cut) & (best_v >= best_ck))
        halve = at_ck & stalled
        eta = jnp.where(halve, eta * 0.5, eta)
        # a halving start restarts from its best point (momentum reset)
        x_prev = jnp.where(halve[:, None], best_x, x)
        x_new = jnp.where(halve[:, None], best_x, x_new)
        g_new = jnp.where(halve[:, None], best_g, g_new)
        v_new = jnp.where(halve, best_v, v_new)
        succ = jnp.where(at_ck, 0.0, succ)
        best_ck = jnp.where(at_ck, best_v, best_ck)
        cut = jnp.where(at_ck, halve, cut)
        last_ck = jnp.where(at_ck, t1.astype(dt), last_ck)
        period = jnp.where(at_ck, jnp.maximum(period * 0.8, jnp.maximum(0.06 * steps_f, 2.0)),
                           period)
        return (t1, x_new, x_prev, g_new, v_new, best_x, best_v, best_g, eta, succ, last_ck,
                period, best_ck, cut)

    x0 = project(rkind, reg, x0)
    g0, v0 = grad(x0)
    eta0 = jnp.full((S,), 0.5 if rkind in ("box", "l0") else 1.0, dtype=dt)
    state = (jnp.asarray(0), x0, x0, g0, v0, x0, v0, g0, eta0, jnp.zeros((S,), dt),
             jnp.asarray(0.0, dt), first, v0, jnp.zeros((S,), bool))
    out = jax.lax.while_loop(cond, body, state)
    return out[5], out[6]


def _padded(count: int, least: int) -> int:
    size = least
    while size < count:
        size *= 2
    return size


def spec_rows(disjuncts, margin: float, pad: bool = False):
    """``(G, thr, D)`` for :func:`apgd`: all rows stacked, thresholds ``b − margin``, and the
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


def into_region(region, x: np.ndarray) -> np.ndarray:
    """``x`` (n,) moved into ``region`` in float64 (a search in float32 may leave it by
    round-off): clipped to the box, an L1 / L2 deviation scaled back inside the ball, an L0
    deviation cut to its ``k`` largest pixels."""
    from ..regions import L0Ball, L1Ball, L2Ball

    x = np.clip(np.asarray(x, dtype=np.float64).ravel(), region.lo, region.hi)
    d = x - region.center
    if isinstance(region, (L1Ball, L2Ball)):
        norm = float(np.abs(d).sum()) if isinstance(region, L1Ball) else float(np.sqrt(d @ d))
        if norm > region.eps:
            d = d * (region.eps * (1.0 - 1e-9) / norm)
            x = np.clip(region.center + d, region.lo, region.hi)
    elif isinstance(region, L0Ball) and np.count_nonzero(d) > region.k:
        keep = np.argsort(-np.abs(d))[: region.k]
        x = region.center.copy()
        x[keep] += d[keep]
    return x


class Attack:
    """Batched APGD (:func:`apgd`) on a spec, with candidate checking and time budgets.

    Every call runs padded batches of ``batch`` starts (one compiled shape per network and
    region kind). Each start has a *target*: a disjunct index (targeted: only that disjunct's
    rows count) or −1 (untargeted: the minimum over all disjuncts). A start whose violation
    reaches ≤ 0 is moved into the region in float64 (:func:`into_region`) and handed to
    ``check`` (the caller's exact float64 check and confirmation); the first accepted point
    is returned. With ``float32`` the search runs in float32 (about twice as fast on CPUs;
    every candidate is still checked in float64)."""

    def __init__(self, plan, rkind: str, arrays, reg, disjuncts, margin: float, region,
                 check, rng: np.random.Generator, batch: int = 32, float32: bool = True):
        from .crown import as_dtype

        self.plan, self.rkind, self.region = plan, rkind, region
        self.check, self.rng = check, rng
        self.S = max(2, int(batch))
        G, thr, D = spec_rows(disjuncts, margin, pad=True)
        self.K = len(disjuncts)
        self.Kp = D.shape[0]
        dt = jnp.float32 if float32 else jnp.float64
        self.dt = dt
        self.arrays = as_dtype(arrays, dt)
        self.reg = as_dtype(reg, dt)
        self.G = jnp.asarray(G, dtype=dt)
        self.thr = jnp.asarray(thr, dtype=dt)
        self.D = jnp.asarray(D)
        self.goal = -1e-4
        self.stats = {"attack_batches": 0, "attack_starts": 0, "attack_checks": 0}
        self.step_s: float | None = None      # seconds per step of one batch (measured)
        self.best = np.inf                    # lowest violation any start reached

    def run(self, starts: np.ndarray, targets: np.ndarray, steps: int,
            stop=None) -> np.ndarray | None:
        """APGD from ``starts`` (P, n) with ``targets`` (P,) for ``steps`` steps, in batches;
        ``stop()`` (optional) is polled between batches. Returns an accepted point or None."""
        starts = np.atleast_2d(np.asarray(starts, dtype=np.float64))
        targets = np.asarray(targets, dtype=int).ravel()
        S = self.S
        for s in range(0, len(starts), S):
            if s > 0 and stop is not None and stop():
                return None
            part, tg = starts[s:s + S], targets[s:s + S]
            pad = S - len(part)
            part = np.vstack([part, np.repeat(part[:1], pad, axis=0)])
            tg = np.concatenate([tg, np.repeat(tg[:1], pad)])
            W = np.zeros((S, self.Kp), dtype=bool)
            W[tg < 0, : self.K] = True
            W[np.flatnonzero(tg >= 0), tg[tg >= 0]] = True
            t = time.perf_counter()
            best_x, best_v = apgd(self.plan, self.rkind, self.arrays, self.reg, self.G,
                                  self.thr, self.D, jnp.asarray(W),
                                  jnp.asarray(part, dtype=self.dt), int(steps), self.goal)
            best_x = np.asarray(best_x, dtype=np.float64)
            best_v = np.asarray(best_v, dtype=np.float64)
            if self.stats["attack_batches"] > 0:      # the first call includes the compilation
                self.step_s = (time.perf_counter() - t) / max(1, int(steps))
            self.stats["attack_batches"] += 1
            self.best = min(self.best, float(np.min(best_v[: S - pad])))
            self.stats["attack_starts"] += S - pad
            for i in np.argsort(best_v):
                if not best_v[i] <= 1e-6:
                    break
                self.stats["attack_checks"] += 1
                x = into_region(self.region, best_x[i])
                if self.check(x):
                    return x
        return None

    def random_starts(self, count: int) -> np.ndarray:
        """``count`` random points of the region: a quarter corners of its box (pixel budgets:
        the region's own sampler), the rest uniform."""
        return self.region.sample(self.rng, count)

    def campaign(self, ranked: list, points: dict, budget_s: float, steps: int,
                 max_steps: int, stop=None, rounds: int = 12) -> np.ndarray | None:
        """Targeted APGD on the disjuncts ``ranked`` (most promising first) for about
        ``budget_s`` seconds: rounds of one batch each, alternating between the two best
        disjuncts and all of them (round-robin), from the centre, ``points[k]`` (e.g. the
        points where the bound of disjunct ``k`` is lowest) and random points; the number of
        steps doubles every four rounds up to ``max_steps``; at most ``rounds`` rounds (small
        networks finish them in milliseconds, large ones meet the time budget first). It stops
        early when four rounds in a row lowered the best violation by less than 1 %: the
        starts keep ending in the same local minima."""
        if not ranked or budget_s <= 0:
            return None
        t_end = time.perf_counter() + budget_s
        S = self.S
        r = 0
        used: dict = {}
        history = [self.best]
        while True:
            if r % 2 == 0:
                pick = ranked[:2]
            else:
                pick = ranked
            targets = np.array([pick[i % len(pick)] for i in range(S)])
            starts = self.random_starts(S)
            for i, k in enumerate(targets):
                seen = used.get(k, 0)
                used[k] = seen + 1
                if seen == 0:
                    starts[i] = self.region.center
                elif seen <= len(points.get(k, ())):
                    starts[i] = points[k][seen - 1]
            run_steps = steps
            if self.step_s is not None:          # the batch fits in what is left of the budget
                run_steps = min(steps, int((t_end - time.perf_counter()) / self.step_s))
                if run_steps < min(steps, 20):
                    return None
            x = self.run(starts, targets, run_steps, stop)
            if x is not None:
                return x
            r += 1
            history.append(self.best)
            if r >= rounds:
                return None
            if (r >= 4 and np.isfinite(history[-5])
                    and history[-5] - history[-1] <= 0.01 * abs(history[-5])):
                return None
            if r % 4 == 0:
                steps = min(max_steps, 2 * steps)
            if time.perf_counter() >= t_end or (stop is not None and stop()):
                return None
