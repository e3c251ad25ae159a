"""The public attack API: :func:`attack` on a batch, :func:`compare` beside the exact minimum.

Conventions (as users of Foolbox and ART know them):

* A **fixed-ε attack** (``fgsm``, ``pgd``, ``minmax``, ``minmax-penalty``) called with ``eps``
  returns the adversarial batch and a success mask. Called without ``eps`` it becomes a
  minimum-norm attack: ε doubles until the attack succeeds, then a bisection narrows it, and
  the smallest adversarial point found is kept.
* A **minimum-norm attack** (``cw``, ``deepfool``, ``jsma``, ``greedy``) returns per image the
  smallest distance it found; with ``eps`` a success also needs the distance within ``eps``.
* ``eps`` is a radius in the norm itself (L2: the Euclidean length). **Distances** are in the
  unit the exact tasks minimise: changed pixels (card), L1, the *sum of squares* (L2), L∞.
* **Success** is what the exact tasks call adversarial: the other label (or the target) wins by
  at least the margin (1e-3) on the network IR *and* the Keras model itself, in float32, gives
  that label. Failed images have distance ``inf`` (``None`` in JSON) and are listed in
  :attr:`AttackResult.failed`. Labels are the model's own predictions on the clean images.
* Every attack is deterministic under ``seed``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..encodings.properties import DEFAULT_MARGIN
from ..errors import InvalidInputError
from ..models import LoadedModel, load_model
from ..network import Network
from . import methods
from .gradients import margins
from .search import distance


@dataclass(frozen=True)
class Method:
    name: str
    kind: str                    # "fixed-eps" or "minimum-norm"
    norms: tuple
    run: Callable                # (network, x, labels, norm, eps | None, target, seed, options) -> batch
    summary: str


def _minmax(variant: str):
    def run(net, x, labels, norm, eps, target, seed, options):
        from .minmax import minmax
        out = x.copy()
        for value in np.unique(eps):          # the MinMax solver takes one ε per call
            rows = np.flatnonzero(eps == value)
            out[rows] = minmax(net, x[rows], labels[rows], float(value),
                               target=None if target is None else np.asarray(target)[rows]
                               if np.ndim(target) else target,
                               seed=seed, variant=variant, **options)
        return out
    return run


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("fgsm", "fixed-eps", ("linf",),
           lambda net, x, y, norm, eps, t, seed, o: methods.fgsm(net, x, y, eps, t, **o),
           "one signed-gradient step of the cross-entropy (Goodfellow et al.)"),
    Method("pgd", "fixed-eps", ("linf", "l2", "l1"),
           lambda net, x, y, norm, eps, t, seed, o: methods.pgd(net, x, y, norm, eps, t, seed=seed, **o),
           "projected gradient ascent on the margin (Madry et al.; L1: sparse steps)"),
    Method("minmax", "fixed-eps", ("linf",), _minmax("minmax"),
           "MinMax (Hsu et al. 2022): c·f⁺ − MINE mutual information, c updated by the max player"),
    Method("minmax-penalty", "fixed-eps", ("linf",), _minmax("penalty"),
           "the penalty baseline of MinMax: fixed c, c·f⁺ + ‖δ‖²"),
    Method("cw", "minimum-norm", ("l2",),
           lambda net, x, y, norm, eps, t, seed, o: methods.carlini_wagner(net, x, y, t, **o),
           "Carlini-Wagner L2 with a binary search on the constant"),
    Method("deepfool", "minimum-norm", ("l2", "linf"),
           lambda net, x, y, norm, eps, t, seed, o: methods.deepfool(net, x, y, norm, t, **o),
           "DeepFool: steps to the nearest linearised boundary"),
    Method("jsma", "minimum-norm", ("card",),
           lambda net, x, y, norm, eps, t, seed, o: methods.jsma(net, x, y, t, **o),
           "JSMA-style saliency: one pixel at a time to its box end, by gradient gain"),
    Method("greedy", "minimum-norm", ("card",),
           lambda net, x, y, norm, eps, t, seed, o: methods.greedy(net, x, y, t, **o),
           "greedy exact single-pixel changes (the exact card task's starting point)"),
]}

#: The attacks :func:`compare` runs per norm.
COMPARE_METHODS = {"card": ("jsma", "greedy"), "l1": ("pgd",), "l2": ("pgd", "cw", "deepfool"),
                   "linf": ("fgsm", "pgd", "deepfool", "minmax")}
#: Where the ε search of a fixed-ε attack starts, and the largest radius it tries.
EPS_START = {"linf": 1 / 64, "l2": 0.5, "l1": 4.0}
BISECTION_STEPS = 8


@dataclass
class AttackResult:
    """One attack on a batch. ``success`` is re-checked by the Keras model."""

    method: str
    norm: str
    kind: str                     # "fixed-eps" or "minimum-norm"
    model: str
    eps: float | None             # the radius asked for (None: smallest found)
    target: Any
    images: np.ndarray            # clean batch, model input shape
    adversarial: np.ndarray       # per image the point found (the last attempt where failed)
    labels: np.ndarray            # the model's labels of the clean images
    adversarial_labels: np.ndarray  # Keras labels of `adversarial`
    success: np.ndarray           # bool per image
    distances: np.ndarray         # exact-objective unit; inf where failed
    time_s: float
    classes: list = field(default_factory=list)
    options: dict = field(default_factory=dict)

    @property
    def failed(self) -> np.ndarray:
        """Indices of the images the attack did not fool."""
        return np.flatnonzero(~self.success)

    @property
    def success_rate(self) -> float:
        return float(self.success.mean()) if self.success.size else 0.0

    def to_dict(self) -> dict:
        dist = [float(d) if np.isfinite(d) else None for d in self.distances]
        return {"method": self.method, "norm": self.norm, "kind": self.kind, "model": self.model,
                "eps": self.eps, "target": self.target if self.target is None or np.ndim(self.target)
                else int(self.target),
                "success": self.success.tolist(), "success_rate": self.success_rate,
                "failed": self.failed.tolist(), "distance": dist,
                "labels": self.labels.tolist(), "adversarial_labels": self.adversarial_labels.tolist(),
                "time_s": round(self.time_s, 4), "time_per_image_s": round(self.time_s / max(len(dist), 1), 4),
                "options": self.options}


def radius(x: np.ndarray, center: np.ndarray, norm: str) -> float:
    """The norm itself (L2: Euclidean length, not its square)."""
    d = distance(x, center, norm)
    return float(np.sqrt(d)) if norm == "l2" else d


def _batch(model: LoadedModel, images) -> np.ndarray:
    x = np.asarray(images, dtype=np.float64)
    n = model.network.num_inputs
    if x.size == 0 or x.size % n:
        raise InvalidInputError(f"images hold {x.size} values; model {model.name} takes {n} per "
                                f"image (shape {model.input_shape})")
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise InvalidInputError("image values must lie in [0, 1]")
    return x.reshape(-1, n)


def _check_method(model: LoadedModel, method: str, norm: str) -> Method:
    if method not in METHODS:
        raise InvalidInputError(f"unknown attack {method!r}; choose from {', '.join(METHODS)}")
    m = METHODS[method]
    if norm not in m.norms:
        raise InvalidInputError(f"attack {method!r} works in {', '.join(m.norms)}, not {norm!r}")
    if model.network.is_binarized and method != "greedy":
        raise InvalidInputError(
            f"{model.name} is a binarized network: its gradients are zero almost everywhere, so "
            f"gradient attacks do not apply; use method='greedy' (exact single-pixel flips)")
    return m


def attack(model: Any, images: np.ndarray, method: str = "pgd", norm: str = "linf",
           eps: float | None = None, target: int | None = None, seed: int = 0,
           margin: float = DEFAULT_MARGIN, **options) -> AttackResult:
    """Run one attack on one image or a batch; see the module docstring for the conventions.

    ``method``: ``fgsm``, ``pgd``, ``minmax``, ``minmax-penalty`` (fixed ε), ``cw``,
    ``deepfool``, ``jsma``, ``greedy`` (minimum norm). ``norm``: ``card``, ``l1``, ``l2`` or
    ``linf`` (each method lists the ones it works in). ``options`` go to the method (e.g.
    ``steps=100`` for pgd; see :mod:`verify.attacks.methods`)."""
    t0 = time.perf_counter()
    model = model if isinstance(model, LoadedModel) else load_model(model)
    from ..encodings.objectives import normalise_norm
    norm = normalise_norm(norm)
    m = _check_method(model, method, norm)
    if eps is not None and (not np.isfinite(eps) or eps < 0):
        raise InvalidInputError(f"eps must be a finite number ≥ 0, not {eps}")
    x = _batch(model, images)
    net = model.network
    labels = np.asarray(model.reference_labels(x), dtype=np.int64)
    if target is not None:
        target = int(target)
        if not 0 <= target < net.num_classes:
            raise InvalidInputError(f"target {target} is not a class of {model.name} "
                                    f"(0..{net.num_classes - 1})")
        if np.any(labels == target):
            raise InvalidInputError(f"target {target} is already the label of images "
                                    f"{np.flatnonzero(labels == target).tolist()}")
    if net.is_binarized:
        candidates = [[a] for a in _bnn_greedy(model, x, labels, target, seed, **options)]
    elif m.kind == "fixed-eps" and eps is None:
        candidates = _smallest_eps(m, net, x, labels, norm, target, seed, options)
    else:
        radii = np.full(len(x), np.inf if eps is None else float(eps))
        adv = m.run(net, x, labels, norm, radii, target, seed, options)
        candidates = [[a] for a in adv]
    adv, ok, adv_labels = _validated(model, x, labels, target, norm, candidates, margin,
                                     None if m.kind == "fixed-eps" else eps)
    dist = np.array([distance(a, c, norm) if s else np.inf for a, c, s in zip(adv, x, ok)])
    shape = (len(x),) + tuple(model.input_shape)
    return AttackResult(method, norm, m.kind, model.name, eps, target, x.reshape(shape),
                        adv.reshape(shape), labels, adv_labels, ok, dist,
                        time.perf_counter() - t0, list(model.classes), dict(options, seed=seed))


def _bnn_greedy(model: LoadedModel, x, labels, target, seed: int, max_flips: int = 100) -> np.ndarray:
    """Greedy on a binarized network: the BNN tasks' flip search (every single flip scored at
    once, random tie-breaks among equal integer margins), then unneeded flips undone."""
    from ..tasks.bnn import BnnTask, greedy_flips, prune_flips

    out = x.copy()
    for i in range(len(x)):
        task = BnnTask.create(model, x[i], int(labels[i]), target, "cnf", None, None, None)
        bits = greedy_flips(task, max_flips, seed=seed)
        if bits is not None:
            out[i] = task.image(prune_flips(task, bits))
    return out


def _ir_success(net: Network, adv: np.ndarray, labels, target, margin: float) -> np.ndarray:
    return margins(net, adv, labels, target) >= margin


def _smallest_eps(m: Method, net: Network, x, labels, norm, target, seed, options) -> list[list]:
    """A fixed-ε attack made minimum-norm: ε doubles from :data:`EPS_START` until the attack
    succeeds on the IR (up to the largest possible distance), then :data:`BISECTION_STEPS`
    bisections. Per image, every point that succeeded on the IR is a candidate."""
    batch = len(x)
    largest = {"linf": 1.0, "l2": float(np.sqrt(x.shape[1])), "l1": float(x.shape[1])}[norm]
    candidates: list[list] = [[] for _ in range(batch)]
    lo, hi = np.zeros(batch), np.full(batch, np.inf)
    eps = np.full(batch, EPS_START[norm])

    def trial(rows, radii):
        adv = m.run(net, x[rows], labels[rows], norm, radii, target, seed, options)
        ok = _ir_success(net, adv, labels[rows], target, methods.SUCCESS_MARGIN)
        for i, a, good in zip(rows, adv, ok):
            if good:
                candidates[i].append(a)
        return ok

    rows = np.arange(batch)
    while rows.size:
        ok = trial(rows, eps[rows])
        hi[rows[ok]] = eps[rows[ok]]
        lo[rows[~ok]] = eps[rows[~ok]]
        grow = rows[~ok]
        rows = grow[eps[grow] < largest]
        eps[rows] = np.minimum(2 * eps[rows], largest)
    for _ in range(BISECTION_STEPS):
        rows = np.flatnonzero(np.isfinite(hi))
        if rows.size == 0:
            break
        mid = (lo[rows] + hi[rows]) / 2
        ok = trial(rows, mid)
        hi[rows[ok]] = mid[ok]
        lo[rows[~ok]] = mid[~ok]
    return candidates


def _validated(model: LoadedModel, x, labels, target, norm, candidates, margin, eps):
    """Per image the smallest candidate that the IR (margin) and Keras both call adversarial
    (and within ``eps`` when given); the last candidate where none is."""
    flat = [(i, a) for i, cands in enumerate(candidates) for a in cands]
    adv = x.copy()
    ok = np.zeros(len(x), dtype=bool)
    if not flat:
        return adv, ok, labels.copy()
    rows = np.array([i for i, _ in flat])
    points = np.array([a for _, a in flat])
    got = np.asarray(model.reference_labels(points), dtype=np.int64)
    good = (got == target) if target is not None else (got != labels[rows])
    good &= _ir_success(model.network, points, labels[rows], target, margin)
    if eps is not None:
        good &= np.array([radius(a, x[i], norm) <= eps + 1e-9 for i, a in flat])
    dist = np.array([distance(a, x[i], norm) for i, a in flat])
    adv_labels = labels.copy()
    best = np.full(len(x), np.inf)
    for k, i in enumerate(rows):
        if good[k] and dist[k] < best[i]:
            best[i], adv[i], adv_labels[i], ok[i] = dist[k], points[k], got[k], True
        elif not ok[i]:
            adv[i], adv_labels[i] = points[k], got[k]
    return adv, ok, adv_labels
