"""Gradient and saliency attacks on the network IR, batched and deterministic under a seed.

Every attack here works on a batch ``x`` of flat clean inputs (``(batch, n)``, float64, in
``[lo, hi]``, by default ``[0, 1]``) with one clean label per row (``labels``) and an optional
target (one for all rows or one per row), and returns a batch of the same shape: per row the
adversarial point it found, or its last attempt where it failed. Gradients are exact gradients
of the IR's logits (:mod:`verify.attacks.gradients`), so the attacked function is the model.
Nothing here is re-checked by Keras or called a success: :mod:`verify.attacks.api` does that.

Fixed-ε attacks (stay in the ball of radius ``eps`` around each input, intersected with the box):

* :func:`fgsm` — one signed-gradient step of size ε on the cross-entropy (Goodfellow et al. 2015).
* :func:`pgd` — projected gradient ascent (Madry et al. 2018) for ``linf`` (signed steps),
  ``l2`` (normalised steps) and ``l1`` (steps on the few coordinates with the largest gradient
  that can still move, as in Tramèr & Boneh's sparse L1 descent), with a seeded random start.

Minimum-norm attacks (look for a small distance, no ε):

* :func:`carlini_wagner` — C&W L2 (Carlini & Wagner 2017): Adam on the tanh-reparametrised
  input, minimising ``‖δ‖² + c·max(−margin, −κ)``, with a binary search on ``c`` per image.
* :func:`deepfool` — DeepFool (Moosavi-Dezfooli et al. 2016) for ``l2`` and ``linf``: step to
  the nearest linearised decision boundary, repeated until the label changes.
* :func:`jsma` — a JSMA-style L0 attack: set the single pixel with the largest gradient gain
  (gradient × room to move) to its box end, repeat, then undo unneeded changes.
* :func:`greedy` — the exact greedy L0 search the exact card task starts from: each step
  changes the one pixel whose change (by exact forward passes over all candidates) raises the
  margin most.

*Margin* (see :mod:`verify.attacks.gradients`): positive when the adversarial label wins.

*Time limits*: every iterative attack takes an optional ``deadline``
(:class:`verify.budget.Deadline`), checks it between its steps and, once it has passed,
returns what it has (per row the best point so far, or the current iterate).
"""
from __future__ import annotations

import time

import numpy as np

from ..budget import Deadline, expired
from ..vocabulary import DEFAULT_MARGIN
from ..network import Network
from ..progress import items_left, report
from .gradients import (logit_form_and_gradient, margin_and_gradient, margin_coefficients, margins,
                        margins_of_logits)
from .search import greedy_pixels, prune_changes

#: A point counts as adversarial on the IR when its margin is at least this, the margin the
#: exact tasks ask for (Keras decides later).
SUCCESS_MARGIN = DEFAULT_MARGIN


def _rows(value, batch: int, dtype=np.float64) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=dtype), (batch,)).copy()


def cross_entropy_gradient(network: Network, x: np.ndarray, labels: np.ndarray,
                           target=None) -> tuple[np.ndarray, np.ndarray]:
    """Per row the margin and the input gradient of the cross-entropy the attack ascends:
    the clean label's loss (untargeted) or minus the target's loss (targeted)."""
    values = network.forward_all(x)
    logits = values[-1]
    batch = len(x)
    if logits.shape[1] == 1:     # one logit: p = sigmoid(z) is the probability of class 1
        p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        wanted = 1.0 - _rows(labels, batch) if target is None else _rows(target, batch)
        coef = (wanted - p)[:, None]
    else:
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        onehot = np.zeros_like(p)
        if target is None:
            onehot[np.arange(batch), _rows(labels, batch, np.int64)] = 1.0
            coef = p - onehot
        else:
            onehot[np.arange(batch), _rows(target, batch, np.int64)] = 1.0
            coef = onehot - p
    _, grad = logit_form_and_gradient(network, values, coef)
    margin = margins_of_logits(logits, labels, target)
    return margin, grad


def _loss_gradient(network, x, labels, target, loss: str):
    if loss == "ce":
        return cross_entropy_gradient(network, x, labels, target)
    return margin_and_gradient(network, x, labels, target)


def fgsm(network: Network, x: np.ndarray, labels: np.ndarray, eps, target=None,
         lo: float | np.ndarray = 0.0, hi: float | np.ndarray = 1.0, loss: str = "ce") -> np.ndarray:
    """One step ``x + ε·sign(∇loss)``, clipped to the box (``eps``: one or one per row)."""
    eps = _rows(eps, len(x))[:, None]
    _, grad = _loss_gradient(network, x, labels, target, loss)
    return np.clip(x + eps * np.sign(grad), lo, hi)


def project(delta: np.ndarray, norm: str, eps: np.ndarray) -> np.ndarray:
    """Rows of ``delta`` projected onto the ``norm`` ball of radius ``eps`` (one per row)."""
    eps = eps[:, None]
    if norm == "linf":
        return np.clip(delta, -eps, eps)
    if norm == "l2":
        size = np.linalg.norm(delta, axis=1, keepdims=True)
        return delta * np.minimum(1.0, eps / np.maximum(size, 1e-300))
    a = np.abs(delta)                      # l1: sort-based projection, per row
    inside = a.sum(axis=1, keepdims=True) <= eps
    u = -np.sort(-a, axis=1)
    css = np.cumsum(u, axis=1)
    ks = np.arange(1, a.shape[1] + 1)
    last = np.sum(u * ks > css - eps, axis=1, keepdims=True) - 1
    theta = (np.take_along_axis(css, np.maximum(last, 0), axis=1) - eps) / (last + 1)
    return np.where(inside, delta, np.sign(delta) * np.maximum(a - np.maximum(theta, 0), 0))


def _random_start(rng, shape, norm: str, eps: np.ndarray) -> np.ndarray:
    if norm == "linf":
        return rng.uniform(-1, 1, shape) * eps[:, None]
    direction = rng.laplace(size=shape) if norm == "l1" else rng.normal(size=shape)
    scale = np.abs(direction).sum(1) if norm == "l1" else np.linalg.norm(direction, axis=1)
    return direction / scale[:, None] * (eps * rng.uniform(0, 1, len(eps)))[:, None]


def pgd(network: Network, x: np.ndarray, labels: np.ndarray, norm: str, eps, target=None,
        steps: int = 50, step_size: float | None = None, restarts: int = 1,
        random_start: bool = False, seed: int = 0, loss: str = "margin", l1_coordinates: int = 10,
        lo: float | np.ndarray = 0.0, hi: float | np.ndarray = 1.0,
        deadline: Deadline | None = None) -> np.ndarray:
    """Projected gradient ascent within the ``norm`` ball (radius ``eps``, one or one per row;
    L2: the Euclidean radius) and the box. Steps of ``step_size · eps`` (default 2.5/steps).
    Restarts after the first start at seeded random points in the ball (the first too with
    ``random_start``, as in Madry et al.); each row keeps the first adversarial point found."""
    rng = np.random.default_rng(seed)
    batch = len(x)
    eps = _rows(eps, batch)
    alpha = (2.5 / steps if step_size is None else step_size) * eps[:, None]
    best = x.copy()
    done = np.zeros(batch, dtype=bool)
    for r in range(restarts):
        todo = np.flatnonzero(~done)
        if todo.size == 0 or (r > 0 and expired(deadline)):
            break
        xs, ys = x[todo], _rows(labels, batch, np.int64)[todo]
        ts = None if target is None else _rows(target, batch, np.int64)[todo]
        start = r > 0 or random_start
        delta = _random_start(rng, xs.shape, norm, eps[todo]) if start else np.zeros_like(xs)
        active = np.ones(todo.size, dtype=bool)
        for step in range(steps + 1):
            adv = np.clip(xs + delta, lo, hi)
            m, g = _loss_gradient(network, adv, ys, ts, loss)
            hit = active & (margins(network, adv, ys, ts) >= SUCCESS_MARGIN if loss == "ce"
                            else m >= SUCCESS_MARGIN)
            best[todo[hit]] = adv[hit]
            done[todo[hit]] = True
            active &= ~hit
            if step == steps or not active.any() or expired(deadline):
                break
            delta = delta + alpha[todo] * _ascent_direction(g, norm, adv, lo, hi, l1_coordinates)
            delta = np.clip(xs + project(delta, norm, eps[todo]), lo, hi) - xs
        best[todo[active]] = np.clip(xs + delta, lo, hi)[active]
    return best


def _ascent_direction(g: np.ndarray, norm: str, adv: np.ndarray, lo, hi, k: int) -> np.ndarray:
    if norm == "linf":
        return np.sign(g)
    if norm == "l2":
        return g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-300)
    movable = np.where(g > 0, adv < hi, adv > lo)   # l1: only coordinates that can still move
    score = np.where(movable, np.abs(g), 0.0)
    top = np.argsort(-score, axis=1)[:, :k]
    direction = np.zeros_like(g)
    np.put_along_axis(direction, top, np.sign(np.take_along_axis(g, top, axis=1)) / k, axis=1)
    return direction


def carlini_wagner(network: Network, x: np.ndarray, labels: np.ndarray, target=None,
                   steps: int = 100, search_steps: int = 7, initial_const: float = 0.1,
                   learning_rate: float = 0.05, kappa: float = 1e-3,
                   deadline: Deadline | None = None) -> np.ndarray:
    """C&W L2: per image the smallest-L2 adversarial point found over a binary search on the
    constant ``c`` (×10 until an attack succeeds, then bisection). Deterministic (no
    randomness). Rows where no ``c`` succeeded get their last attempt."""
    batch = len(x)
    const = np.full(batch, initial_const)
    c_lo, c_hi = np.zeros(batch), np.full(batch, np.inf)
    best, best_dist = x.copy(), np.full(batch, np.inf)
    last = x.copy()
    squash = 1 - 1e-6
    w0 = np.arctanh(squash * (2 * x - 1))
    for _ in range(search_steps):
        if expired(deadline):
            break
        w = w0.copy()
        m1, m2 = np.zeros_like(w), np.zeros_like(w)
        succeeded = np.zeros(batch, dtype=bool)
        for t in range(1, steps + 1):
            adv = (np.tanh(w) * squash + 1) / 2
            m, g = margin_and_gradient(network, adv, labels, target)
            d = adv - x
            dist = np.sum(d * d, axis=1)
            hit = (m >= SUCCESS_MARGIN) & (dist < best_dist)
            best[hit], best_dist[hit] = adv[hit], dist[hit]
            succeeded |= m >= SUCCESS_MARGIN
            grad_adv = 2 * d - const[:, None] * g * (-m > -kappa)[:, None]
            grad_w = grad_adv * (1 - np.tanh(w) ** 2) * squash / 2
            m1 = 0.9 * m1 + 0.1 * grad_w
            m2 = 0.999 * m2 + 0.001 * grad_w ** 2
            w = w - learning_rate * (m1 / (1 - 0.9 ** t)) / (np.sqrt(m2 / (1 - 0.999 ** t)) + 1e-8)
            if expired(deadline):
                break
        last = (np.tanh(w) * squash + 1) / 2
        c_hi = np.where(succeeded, np.minimum(c_hi, const), c_hi)
        c_lo = np.where(succeeded, c_lo, np.maximum(c_lo, const))
        const = np.where(np.isfinite(c_hi), (c_lo + c_hi) / 2, const * 10)
    return np.where(np.isfinite(best_dist)[:, None], best, last)


def deepfool(network: Network, x: np.ndarray, labels: np.ndarray, norm: str = "l2", target=None,
             steps: int = 50, overshoot: float = 0.02,
             lo: float | np.ndarray = 0.0, hi: float | np.ndarray = 1.0,
             deadline: Deadline | None = None) -> np.ndarray:
    """DeepFool for ``l2`` or ``linf``: per row, step to the closest boundary of the linearised
    network (``|f_k| / ‖∇f_k‖_dual`` over the other classes ``k``, or the target only), scaled
    by ``1 + overshoot``, until the label changes."""
    batch = len(x)
    labels = _rows(labels, batch, np.int64)
    n_out = network.num_outputs
    total = np.zeros_like(x)
    adv = x.copy()
    active = np.ones(batch, dtype=bool)
    for _ in range(steps):
        active &= margins(network, adv, labels, target) < SUCCESS_MARGIN
        if not active.any() or expired(deadline):
            break
        idx = np.flatnonzero(active)
        values = network.forward_all(adv[idx])
        best_gap, best_step = np.full(idx.size, np.inf), np.zeros((idx.size, x.shape[1]))
        for coef in _boundary_forms(values[-1], labels[idx], target, n_out):
            f, w = logit_form_and_gradient(network, values, coef)
            if norm == "l2":
                size = np.sum(w * w, axis=1)
                gap = np.abs(f) / np.sqrt(np.maximum(size, 1e-300))
                step = (np.abs(f) + 1e-4)[:, None] / np.maximum(size, 1e-300)[:, None] * w
            else:
                size = np.abs(w).sum(axis=1)
                gap = np.abs(f) / np.maximum(size, 1e-300)
                step = (np.abs(f) + 1e-4)[:, None] / np.maximum(size, 1e-300)[:, None] * np.sign(w)
            better = (gap < best_gap) & np.any(coef != 0, axis=1)
            best_gap[better], best_step[better] = gap[better], step[better]
        total[idx] += best_step
        adv[idx] = np.clip(x[idx] + (1 + overshoot) * total[idx], lo, hi)
    return adv


def _boundary_forms(logits: np.ndarray, labels: np.ndarray, target, n_out: int):
    """Coefficient rows of ``z_k − z_label`` per candidate class ``k`` (DeepFool)."""
    if n_out == 1 or target is not None:
        yield margin_coefficients(logits, labels, target)
        return
    for k in range(n_out):
        coef = np.zeros_like(logits)
        coef[:, k] += 1.0
        coef[np.arange(len(labels)), labels] -= 1.0
        coef[labels == k] = 0.0
        yield coef


def jsma(network: Network, x: np.ndarray, labels: np.ndarray, target=None, max_pixels: int = 100,
         lo: float | np.ndarray = 0.0, hi: float | np.ndarray = 1.0,
         deadline: Deadline | None = None) -> np.ndarray:
    """JSMA-style L0 attack: per step, per row, move the unchanged pixel with the largest
    first-order gain ``max(g·(hi − x), g·(lo − x))`` to that end; then undo every change not
    needed (largest margin kept). Rows that need more than ``max_pixels`` fail."""
    batch = len(x)
    labels = _rows(labels, batch, np.int64)
    targets = None if target is None else _rows(target, batch, np.int64)
    lo_b, hi_b = np.broadcast_to(lo, x.shape), np.broadcast_to(hi, x.shape)
    adv = x.copy()
    changed = np.zeros_like(x, dtype=bool)
    for _ in range(max_pixels):
        m, g = margin_and_gradient(network, adv, labels, targets)
        active = m < SUCCESS_MARGIN
        if not active.any() or expired(deadline):
            break
        up, down = g * (hi_b - adv), g * (lo_b - adv)
        gain = np.where(changed, -np.inf, np.maximum(up, down))
        pick = np.argmax(gain, axis=1)
        rows = np.flatnonzero(active & np.isfinite(gain[np.arange(batch), pick]))
        cols = pick[rows]
        adv[rows, cols] = np.where(up[rows, cols] >= down[rows, cols], hi_b[rows, cols], lo_b[rows, cols])
        changed[rows, cols] = True
    ok = margins(network, adv, labels, targets) >= SUCCESS_MARGIN
    for i in np.flatnonzero(ok):
        adv[i] = prune_changes(network, adv[i], x[i], int(labels[i]),
                               None if targets is None else int(targets[i]), SUCCESS_MARGIN)
    return adv


def greedy(network: Network, x: np.ndarray, labels: np.ndarray, target=None, max_pixels: int = 100,
           lo: float | np.ndarray = 0.0, hi: float | np.ndarray = 1.0,
           deadline: Deadline | None = None) -> np.ndarray:
    """The exact greedy L0 search (:func:`verify.attacks.search.greedy_pixels`) per row
    (rows not finished by the deadline keep their clean input)."""
    batch = len(x)
    labels = _rows(labels, batch, np.int64)
    targets = None if target is None else _rows(target, batch, np.int64)
    lo_b, hi_b = np.broadcast_to(lo, x.shape), np.broadcast_to(hi, x.shape)
    out = x.copy()
    t0 = time.perf_counter()
    for i in range(batch):
        if expired(deadline):
            break
        if i and batch > 1:
            report(f"greedy: image {items_left(i, batch, time.perf_counter() - t0)}")
        found = greedy_pixels(network, x[i], int(labels[i]), None if targets is None else int(targets[i]),
                              SUCCESS_MARGIN, lo_b[i].astype(np.float64), hi_b[i].astype(np.float64),
                              max_pixels, deadline=deadline)
        if found is not None:
            out[i] = found
    return out
