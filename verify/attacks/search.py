"""Fast heuristic searches for adversarial examples, used as upper bounds by the exact tasks.

Every function works on the network IR within a per-pixel box ``[lo, hi]`` (pixels with
``lo = hi`` are fixed), asks for a margin (the adversarial label must win by at least
``margin``), and returns an adversarial input or ``None``. None of them proves anything.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..budget import Deadline, expired
from ..network import Affine, Network
from .gradients import margin_and_gradient, margins, margins_of_logits


def distance(x: np.ndarray, center: np.ndarray, norm: str) -> float:
    """Distance in the unit the exact tasks minimise: changed pixels, L1, *squared* L2, L∞."""
    d = np.asarray(x, dtype=np.float64).ravel() - np.asarray(center, dtype=np.float64).ravel()
    if norm == "card":
        return float(np.count_nonzero(d))
    if norm == "l1":
        return float(np.abs(d).sum())
    if norm == "l2":
        return float(d @ d)
    return float(np.abs(d).max(initial=0.0))


def single_pixel_moves(network: Network, x: np.ndarray, cand: np.ndarray, lo: np.ndarray,
                       hi: np.ndarray, label: int, target: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Margins of ``x`` with one pixel of ``cand`` moved to its box end, for every pixel and
    both ends at once. Returns ``(margins, pixels, values)``, each of length ``2·len(cand)``.

    A one-pixel change moves the first affine layer's output by a multiple of one weight
    column, so a dense first layer costs a rank-one update per candidate, not a forward pass."""

    cand = np.asarray(cand, dtype=np.int64)
    values = np.concatenate([lo[cand], hi[cand]])
    cols = np.tile(cand, 2)
    first = network.layers[0] if network.layers and isinstance(network.layers[0], Affine) else None
    if first is None:
        batch = np.repeat(x[None], cols.size, axis=0)
        batch[np.arange(cols.size), cols] = values
        logits = network.forward(batch)
    else:
        base = first.forward(x[None])[0]
        pre = base[None, :] + (values - x[cols])[:, None] * _columns(first, cols).T
        logits = network.forward_from(1, pre)
    return margins_of_logits(logits, label, target), cols, values


def _columns(layer: Affine, cols: np.ndarray) -> np.ndarray:
    """The weight columns of ``cols`` (dense), for updating a layer's output when only
    those inputs change."""
    W = layer.weight[:, cols]
    return W.toarray() if sp.issparse(W) else np.asarray(W)


def greedy_pixels(network: Network, center: np.ndarray, label: int, target: int | None,
                  margin: float, lo: np.ndarray, hi: np.ndarray, max_pixels: int = 100,
                  deadline: Deadline | None = None) -> np.ndarray | None:
    """Change one pixel at a time (to its box end that raises the margin most, by exact forward
    passes over all candidates, see :func:`single_pixel_moves`), then drop every change that
    is not needed. None if no example is found within ``max_pixels`` (or the deadline)."""
    x = center.copy()
    free = np.flatnonzero(hi > lo)
    for _ in range(max_pixels):
        if margins(network, x, label, target)[0] >= margin:
            break
        if expired(deadline):
            return None
        cand = free[x[free] == center[free]]
        if cand.size == 0:
            return None
        scores, cols, values = single_pixel_moves(network, x, cand, lo, hi, label, target)
        best = int(np.argmax(scores))
        x = x.copy()
        x[cols[best]] = values[best]
    if margins(network, x, label, target)[0] < margin:
        return None
    return prune_changes(network, x, center, label, target, margin)


#: Pixels :func:`prune_changes` looks ahead in one batched pass.
PRUNE_LOOKAHEAD = 32


def prune_changes(network: Network, x: np.ndarray, center: np.ndarray, label: int,
                  target: int | None, margin: float) -> np.ndarray:
    """Restore changed pixels to the centre, smallest change first, while still adversarial.

    One pixel at a time in that order: a pixel is restored when the input stays adversarial
    with it restored (and every earlier restoration kept). When the network starts with an
    affine layer the tries are batched without changing that rule (see
    :func:`_prune_batched`); the answer is re-checked by a full forward pass, and recomputed
    one pixel at a time should round-off ever make it miss the margin."""
    changed = np.flatnonzero(x != center)
    order = changed[np.argsort(np.abs(x[changed] - center[changed]))]
    first = network.layers[0] if network.layers else None
    if isinstance(first, Affine):
        pruned = _prune_batched(network, first, x, center, order, label, target, margin)
        if margins(network, pruned, label, target)[0] >= margin:
            return pruned
    x = x.copy()
    for i in order:
        trial = x.copy()
        trial[i] = center[i]
        if margins(network, trial, label, target)[0] >= margin:
            x = trial
    return x


def _prune_batched(network: Network, first: Affine, x: np.ndarray, center: np.ndarray,
                   order: np.ndarray, label: int, target: int | None, margin: float) -> np.ndarray:
    """:func:`prune_changes`'s rule, :data:`PRUNE_LOOKAHEAD` pixels per forward pass. For the
    next pixels ``p_0, p_1, …`` one pass evaluates, from the current input, each restored
    alone and the cumulative restorations ``p_0..p_k``. If ``p_0`` can be restored, the
    cumulative rows give the run of pixels restored one after another up to the first that
    cannot; otherwise the single rows give the pixels that fail on this same input up to
    the first that can be restored. Either way the outcome is the one-at-a-time outcome.
    The first layer's output is updated by the restored pixels' columns, not recomputed."""
    x = x.copy()
    hidden = first.forward(x[None, :])[0]
    start = 0
    while start < order.size:
        block = order[start:start + PRUNE_LOOKAHEAD]
        steps = (_columns(first, block) * (center[block] - x[block])).T           # row k: restoring p_k alone
        trials = hidden[None, :] + np.concatenate([steps, np.cumsum(steps, axis=0)])
        logits = network.forward_from(1, trials)
        ok = margins_of_logits(logits, label, target) >= margin
        alone, together = ok[:block.size], ok[block.size:]
        if together[0]:
            run = block.size if together.all() else int(np.argmin(together))
            x[block[:run]] = center[block[:run]]
            hidden = trials[block.size + run - 1]
            start += run + (run < block.size)          # the first that failed stays changed
        elif alone.any():
            k = int(np.argmax(alone))                  # p_0..p_{k-1} fail on this input
            x[block[k]] = center[block[k]]
            hidden = trials[k]
            start += k + 1
        else:
            start += block.size
    return x


def shrink_along_ray(network: Network, x: np.ndarray, center: np.ndarray, label: int,
                     target: int | None, margin: float, steps: int = 30) -> np.ndarray:
    """Smallest ``t ∈ [0, 1]`` with ``center + t·(x − center)`` still adversarial (bisection)."""
    lo_t, hi_t = 0.0, 1.0
    for _ in range(steps):
        mid = 0.5 * (lo_t + hi_t)
        if margins(network, center + mid * (x - center), label, target)[0] >= margin:
            hi_t = mid
        else:
            lo_t = mid
    return center + hi_t * (x - center)


def shrink_pixels(network: Network, x: np.ndarray, center: np.ndarray, label: int,
                  target: int | None, margin: float, steps: int = 12) -> np.ndarray:
    """Per changed pixel (largest first), bisect how much of its change is really needed."""
    x = x.copy()
    changed = np.flatnonzero(x != center)
    for i in changed[np.argsort(-np.abs(x[changed] - center[changed]))]:
        lo_t, hi_t = 0.0, 1.0
        full = x[i]
        for _ in range(steps):
            mid = 0.5 * (lo_t + hi_t)
            x[i] = center[i] + mid * (full - center[i])
            if margins(network, x, label, target)[0] >= margin:
                hi_t = mid
            else:
                lo_t = mid
        x[i] = center[i] + hi_t * (full - center[i])
    return x


def _project(delta: np.ndarray, norm: str, eps: float) -> np.ndarray:
    if norm == "linf":
        return np.clip(delta, -eps, eps)
    if norm == "l2":
        n = np.linalg.norm(delta)
        return delta if n <= eps else delta * (eps / n)
    # l1: projection onto the L1 ball (sort-based)
    a = np.abs(delta)
    if a.sum() <= eps:
        return delta
    u = np.sort(a)[::-1]
    css = np.cumsum(u)
    k = np.flatnonzero(u * np.arange(1, u.size + 1) > css - eps)[-1]
    theta = (css[k] - eps) / (k + 1)
    return np.sign(delta) * np.maximum(a - theta, 0)


def pgd(network: Network, center: np.ndarray, norm: str, eps: float, label: int,
        target: int | None, margin: float, lo: np.ndarray, hi: np.ndarray,
        steps: int = 60, restarts: int = 1, seed: int = 0) -> np.ndarray | None:
    """Projected gradient ascent on the margin within the ``norm`` ball of radius ``eps``
    (L2: the plain radius) intersected with the box. Returns the first adversarial point."""
    rng = np.random.default_rng(seed)
    for r in range(restarts):
        delta = np.zeros_like(center) if r == 0 else _project(rng.uniform(-eps, eps, center.size), norm, eps)
        for step in range(steps):
            x = np.clip(center + delta, lo, hi)
            m, g = margin_and_gradient(network, x, label, target)
            if m[0] >= margin:
                return x
            g = g[0]
            size = eps * (0.1 + 0.9 * (1 - step / steps)) / 4
            if norm == "linf":
                direction = np.sign(g)
            elif norm == "l2":
                direction = g / (np.linalg.norm(g) + 1e-12)
            else:   # l1: steepest ascent on the few largest coordinates
                direction = np.zeros_like(g)
                top = np.argsort(-np.abs(g))[:10]
                direction[top] = np.sign(g[top]) / 10
            delta = _project(np.clip(center + delta + size * direction, lo, hi) - center, norm, eps)
        x = np.clip(center + delta, lo, hi)
        if margins(network, x, label, target)[0] >= margin:
            return x
    return None


def min_norm_search(network: Network, center: np.ndarray, norm: str, label: int,
                    target: int | None, margin: float, lo: np.ndarray, hi: np.ndarray,
                    seeds: list[np.ndarray] = (), deadline: Deadline | None = None
                    ) -> np.ndarray | None:
    """The smallest adversarial input this heuristic finds in ``norm``: PGD with a bisection
    on the radius, plus any ``seeds`` (other adversarial inputs), each shrunk along its ray
    and per pixel. Returns the best by ``distance(·, norm)``. Past ``deadline`` no further
    PGD run starts (what was found is still shrunk and returned)."""
    found = [s for s in seeds if s is not None]
    radius_max = {"linf": 1.0, "l2": float(np.sqrt(center.size)), "l1": float(center.size)}[norm]
    eps = {"linf": 0.02, "l2": 0.5, "l1": 2.0}[norm]
    best = None
    while eps <= radius_max and best is None and not expired(deadline):
        best = pgd(network, center, norm, eps, label, target, margin, lo, hi)
        if best is None:
            eps *= 2
    if best is not None:
        found.append(best)
        lo_e, hi_e = 0.0, eps
        for _ in range(8):
            if expired(deadline):
                break
            mid = 0.5 * (lo_e + hi_e)
            x = pgd(network, center, norm, mid, label, target, margin, lo, hi)
            if x is not None:
                hi_e = mid
                found.append(x)
            else:
                lo_e = mid
    if not found:
        return None
    refined = []
    for x in found:
        x = shrink_along_ray(network, x, center, label, target, margin)
        if norm != "linf":
            x = shrink_pixels(network, x, center, label, target, margin)
        refined.append(x)
    return min(refined, key=lambda x: distance(x, center, norm))
