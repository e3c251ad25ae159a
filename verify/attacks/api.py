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
* ``time_limit`` (seconds, optional) bounds the search: every method checks the clock between
  its steps (PGD and MinMax iterations, C&W optimisation steps, DeepFool steps, JSMA and greedy
  pixels, images of a batch, trials of the ε search) and stops at the first check past the
  limit, keeping the best points found so far. The limit counts from the start of the search
  (after the model is loaded) and may be exceeded by one step plus the final re-check of the
  candidates by the model's runtime. A result cut short has ``status == "time_limit"``; one
  that finished has ``status == "complete"``.
* Progress (each ε trial, images of a batch) goes to :func:`verify.progress.report`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..vocabulary import DEFAULT_MARGIN
from ..errors import InvalidInputError
from ..models import LoadedModel, load_model
from ..network import Network
from ..budget import Deadline, expired
from ..progress import items_left, report, seconds
from ..results import Result
from . import methods
from .catalog import CATALOG, COMPARE_METHODS  # noqa: F401  (COMPARE_METHODS: re-exported)
from .gradients import margins
from .search import distance


@dataclass(frozen=True)
class Method:
    name: str
    kind: str                    # "fixed-eps" or "minimum-norm"
    norms: tuple
    #: (network, x, labels, norm, eps | None, target, seed, options, deadline) -> batch
    run: Callable
    summary: str


def _minmax(variant: str):
    def run(net, x, labels, norm, eps, target, seed, options, deadline):
        from .minmax import minmax
        out = x.copy()
        for value in np.unique(eps):          # the MinMax solver takes one ε per call
            rows = np.flatnonzero(eps == value)
            out[rows] = minmax(net, x[rows], labels[rows], float(value),
                               target=None if target is None else np.asarray(target)[rows]
                               if np.ndim(target) else target,
                               seed=seed, variant=variant, deadline=deadline, **options)
            if expired(deadline):
                break
        return out
    return run


_RUN: dict[str, Callable] = {
    "fgsm": lambda net, x, y, norm, eps, t, seed, o, d: methods.fgsm(net, x, y, eps, t, **o),
    "pgd": lambda net, x, y, norm, eps, t, seed, o, d: methods.pgd(net, x, y, norm, eps, t, seed=seed,
                                                                   deadline=d, **o),
    "minmax": _minmax("minmax"),
    "minmax-penalty": _minmax("penalty"),
    "cw": lambda net, x, y, norm, eps, t, seed, o, d: methods.carlini_wagner(net, x, y, t, deadline=d, **o),
    "deepfool": lambda net, x, y, norm, eps, t, seed, o, d: methods.deepfool(net, x, y, norm, t,
                                                                             deadline=d, **o),
    "jsma": lambda net, x, y, norm, eps, t, seed, o, d: methods.jsma(net, x, y, t, deadline=d, **o),
    "greedy": lambda net, x, y, norm, eps, t, seed, o, d: methods.greedy(net, x, y, t, deadline=d, **o),
}

METHODS: dict[str, Method] = {name: Method(info.name, info.kind, info.norms, _RUN[name], info.summary)
                              for name, info in CATALOG.items()}

#: Where the ε search of a fixed-ε attack starts, and the largest radius it tries.
EPS_START = {"linf": 1 / 64, "l2": 0.5, "l1": 4.0}
BISECTION_STEPS = 8


@dataclass
class AttackResult(Result):
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
    time_limit: float | None = None   # seconds the search was given (None: no limit)
    status: str = "complete"          # "complete", or "time_limit" when the limit cut it short

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
                "time_limit": self.time_limit, "status": self.status, "options": self.options}


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
           margin: float = DEFAULT_MARGIN, time_limit: float | None = None, **options) -> AttackResult:
    """Run one attack on one image or a batch; see the module docstring for the conventions.

    ``method``: ``fgsm``, ``pgd``, ``minmax``, ``minmax-penalty`` (fixed ε), ``cw``,
    ``deepfool``, ``jsma``, ``greedy`` (minimum norm). ``norm``: ``card``, ``l1``, ``l2`` or
    ``linf`` (each method lists the ones it works in). ``time_limit``: seconds for the search
    (None: none); on the limit the best points so far are returned with ``status`` ``"time_limit"``.
    ``options`` go to the method (e.g. ``steps=100`` for pgd; see :mod:`verify.attacks.methods`)."""
    t0 = time.perf_counter()
    model = model if isinstance(model, LoadedModel) else load_model(model)
    from ..vocabulary import normalise_norm
    norm = normalise_norm(norm)
    m = _check_method(model, method, norm)
    from ..validate import check, check_eps, check_options
    check(seed=seed, margin=margin, time_limit=time_limit)
    check_eps(eps, norm)
    check_options(options)
    deadline = Deadline(time_limit)     # the search's clock starts here
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
    report(f"attack {method} ({norm}) on {len(x)} image(s)"
           + ("" if time_limit is None else f", time limit {seconds(deadline.seconds)}"))
    if net.is_binarized:
        candidates = [[a] for a in _bnn_greedy(model, x, labels, target, seed, deadline, **options)]
    elif m.kind == "fixed-eps" and eps is None:
        candidates = _smallest_eps(m, net, x, labels, norm, target, seed, options, deadline)
    else:
        radii = np.full(len(x), np.inf if eps is None else float(eps))
        adv = m.run(net, x, labels, norm, radii, target, seed, options, deadline)
        candidates = [[a] for a in adv]
    status = "time_limit" if deadline.cut else "complete"
    adv, ok, adv_labels = _validated(model, x, labels, target, norm, candidates, margin,
                                     None if m.kind == "fixed-eps" else eps)
    dist = np.array([distance(a, c, norm) if s else np.inf for a, c, s in zip(adv, x, ok)])
    shape = (len(x),) + tuple(model.input_shape)
    elapsed = time.perf_counter() - t0
    report(f"attack {method} ({norm}): {int(ok.sum())}/{len(x)} adversarial"
           + (", stopped by the time limit" if status == "time_limit" else "") + f" ({elapsed:.1f} s)")
    return AttackResult(method, norm, m.kind, model.name, eps, target, x.reshape(shape),
                        adv.reshape(shape), labels, adv_labels, ok, dist,
                        elapsed, list(model.classes), dict(options, seed=seed),
                        deadline.seconds, status)


def _bnn_greedy(model: LoadedModel, x, labels, target, seed: int, deadline: Deadline | None = None,
                max_flips: int = 100) -> np.ndarray:
    """Greedy on a binarized network, as the BNN tasks search for their first example: the
    directed searches on the network's smooth stand-in (:func:`~verify.attacks.flips.directed_flips`,
    one per label the image may reach, pruned), else the plain flip search (every single flip
    scored at once, random tie-breaks among equal integer margins), then unneeded flips undone.
    Images not reached before the deadline keep their clean input (they fail)."""
    from .flips import FlipSearch, directed_flips, greedy_flips, prune_flips

    out = x.copy()
    t0 = time.perf_counter()
    for i in range(len(x)):
        if expired(deadline):
            break
        if i and len(x) > 1:
            report(f"greedy flips: image {items_left(i, len(x), time.perf_counter() - t0)}")
        task = FlipSearch.create(model.network, x[i], int(labels[i]), target)
        bits = directed_flips(task, max_flips, deadline=None if deadline is None else deadline.at)
        if bits is None and not expired(deadline):          # (directed results come pruned)
            bits = greedy_flips(task, max_flips, seed=seed)
            bits = None if bits is None else prune_flips(task, bits)
        if bits is not None:
            out[i] = task.image(bits)
    return out


def _ir_success(net: Network, adv: np.ndarray, labels, target, margin: float) -> np.ndarray:
    return margins(net, adv, labels, target) >= margin


def _smallest_eps(m: Method, net: Network, x, labels, norm, target, seed, options,
                  deadline: Deadline | None = None) -> list[list]:
    """A fixed-ε attack made minimum-norm: ε doubles from :data:`EPS_START` until the attack
    succeeds on the IR (up to the largest possible distance), then :data:`BISECTION_STEPS`
    bisections. Per image, every point that succeeded on the IR is a candidate. Past the
    deadline no further trial starts (the one running stops at its next step)."""
    batch = len(x)
    largest = {"linf": 1.0, "l2": float(np.sqrt(x.shape[1])), "l1": float(x.shape[1])}[norm]
    candidates: list[list] = [[] for _ in range(batch)]
    lo, hi = np.zeros(batch), np.full(batch, np.inf)
    eps = np.full(batch, EPS_START[norm])

    trials = [0]

    def trial(rows, radii):
        adv = m.run(net, x[rows], labels[rows], norm, radii, target, seed, options, deadline)
        ok = _ir_success(net, adv, labels[rows], target, methods.SUCCESS_MARGIN)
        for i, a, good in zip(rows, adv, ok):
            if good:
                candidates[i].append(a)
        trials[0] += 1
        found = np.isfinite(hi) | np.isin(np.arange(batch), rows[ok])
        report(f"{m.name} ε search, trial {trials[0]}: ε = {float(np.max(radii)):.4g}"
               + (f" (largest of {rows.size})" if rows.size > 1 else "")
               + f", {int(found.sum())}/{batch} image(s) adversarial so far")
        return ok

    rows = np.arange(batch)
    while rows.size and not expired(deadline):
        ok = trial(rows, eps[rows])
        hi[rows[ok]] = eps[rows[ok]]
        lo[rows[~ok]] = eps[rows[~ok]]
        grow = rows[~ok]
        rows = grow[eps[grow] < largest]
        eps[rows] = np.minimum(2 * eps[rows], largest)
    for _ in range(BISECTION_STEPS):
        rows = np.flatnonzero(np.isfinite(hi))
        if rows.size == 0 or expired(deadline):
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
