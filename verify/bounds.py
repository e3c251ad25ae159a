"""Bounds on every neuron's value over an input region, tightened progressively.

Stages, cheapest first; each keeps the tighter of its own and the previous bounds, so the
result is always sound and never looser than an earlier stage:

1. ``interval`` — interval arithmetic. The first affine layer is bounded exactly by the
   region itself (a box, the "k largest contributions" rule for L0, a knapsack for L1).
2. ``symbolic`` — back-substitution (DeepPoly/CROWN style): each affine layer's output is
   written as a linear function of the input through linear relaxations of the ReLUs
   (upper: the chord ``u(z − l)/(u − l)``; lower: ``z`` or ``0``, whichever is closer)
   and max-pools, then bounded over the region.
3. ``lp`` — for each ReLU still unstable (``l < 0 < u``), layer by layer, minimise and
   maximise its input over the LP relaxation of the MIP encoding; after each layer the later
   layers' symbolic bounds are recomputed with the improved ones. That stage needs the
   encoding and an LP solver, which sit above this module, so it is passed in (``lp=``):
   :func:`verify.encodings.tightening.compute_bounds` runs all three stages.

``values`` index ``i`` is the input to ``network.layers[i]`` (``0`` = the input image,
``len(layers)`` = the logits).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, cast

import numpy as np
import scipy.sparse as sp

from .errors import InvalidInputError
from .network import Affine, MaxPool, Network, ReLU
from .regions import Region

STAGES = ("interval", "symbolic", "lp")


@dataclass
class StageReport:
    stage: str
    unstable: int          # ReLUs whose input bounds straddle zero after this stage
    relus: int
    time_s: float
    lp_solves: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Bounds:
    """Lower/upper bounds of each value vector of a network over a region."""

    lower: list[np.ndarray]
    upper: list[np.ndarray]
    stages: list[StageReport] = field(default_factory=list)

    def relu_inputs(self, network: Network) -> list[int]:
        return [i for i, layer in enumerate(network.layers) if isinstance(layer, ReLU)]

    def unstable(self, network: Network) -> int:
        """Number of ReLUs whose input may be either sign (pass-through entries of masked
        ReLU layers are identities, never unstable)."""
        return sum(int(np.sum((self.lower[i] < 0) & (self.upper[i] > 0)
                              & cast(ReLU, network.layers[i]).relu_entries()))
                   for i in self.relu_inputs(network))

    def record(self, stage: str, network: Network, started: float, lp_solves: int = 0) -> None:
        """Append the :class:`StageReport` of ``stage``, begun at ``started``
        (``time.perf_counter()``): the ReLUs left unstable and the time it took."""
        self.stages.append(StageReport(stage, self.unstable(network), network.num_relus,
                                       time.perf_counter() - started, lp_solves))

    def tighten(self, i: int, lower: np.ndarray, upper: np.ndarray) -> None:
        self.lower[i] = np.maximum(self.lower[i], lower)
        self.upper[i] = np.minimum(self.upper[i], upper)
        # round-off in different stages must never produce an empty interval
        bad = self.lower[i] > self.upper[i]
        if np.any(bad):
            mid = 0.5 * (self.lower[i][bad] + self.upper[i][bad])
            self.lower[i][bad] = mid
            self.upper[i][bad] = mid

    def contains(self, values: list[np.ndarray], tol: float = 1e-7) -> bool:
        """Whether every value (as from ``Network.forward_all``) lies within the bounds."""
        return all(np.all(v >= lo - tol * (1 + np.abs(lo))) and np.all(v <= hi + tol * (1 + np.abs(hi)))
                   for v, lo, hi in zip(values, self.lower, self.upper))

    def report(self) -> list[dict]:
        return [s.as_dict() for s in self.stages]


#: The LP stage: ``lp(network, region, bounds, deadline)`` tightens ``bounds`` in place and
#: returns the number of LPs solved (:func:`verify.encodings.tightening.lp_pass`).
LpStage = Callable[[Network, Region, Bounds, "float | None"], int]


def compute_bounds(network: Network, region: Region, stages=STAGES,
                   time_limit: float | None = None, lp: LpStage | None = None) -> Bounds:
    """Bounds of every value of ``network`` over ``region``, through the given stages.

    The ``lp`` stage runs ``lp``; without one, ask for ``("interval", "symbolic")`` only, or
    call :func:`verify.encodings.tightening.compute_bounds`, which passes the LP stage."""
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise InvalidInputError(f"unknown bound stage(s) {unknown}; choose from {STAGES}")
    if "lp" in stages and lp is None:
        raise InvalidInputError("the lp bound stage needs an LP stage (lp=); use "
                                "verify.encodings.tightening.compute_bounds")
    if region.size != network.num_inputs:
        raise InvalidInputError(
            f"region has {region.size} pixels, network {network.name} takes {network.num_inputs}")
    start = time.perf_counter()
    bounds = Bounds([region.lo.copy()], [region.hi.copy()])
    interval_pass(network, region, bounds, fresh=True)
    bounds.record("interval", network, start)
    if "symbolic" in stages or "lp" in stages:
        t = time.perf_counter()
        symbolic_pass(network, region, bounds)
        bounds.record("symbolic", network, t)
    if "lp" in stages and lp is not None:
        t = time.perf_counter()
        deadline = None if time_limit is None else start + time_limit
        solves = lp(network, region, bounds, deadline)
        bounds.record("lp", network, t, solves)
    return bounds


# -- interval ---------------------------------------------------------------------------------

def _layer_interval(layer, lo, hi):
    if isinstance(layer, Affine):
        W = layer.weight
        if sp.issparse(W):
            pos, neg = W.maximum(0), W.minimum(0)
        else:
            pos, neg = np.maximum(W, 0), np.minimum(W, 0)
        return pos @ lo + neg @ hi + layer.bias, pos @ hi + neg @ lo + layer.bias
    if isinstance(layer, ReLU):
        if layer.mask is not None:       # pass-through entries are copied
            return np.where(layer.mask, np.maximum(lo, 0), lo), np.where(layer.mask, np.maximum(hi, 0), hi)
        return np.maximum(lo, 0), np.maximum(hi, 0)
    if isinstance(layer, MaxPool):
        return _pool_max(layer, lo), _pool_max(layer, hi)
    raise InvalidInputError(f"no interval rule for {type(layer).__name__}")


def _pool_max(layer: MaxPool, v: np.ndarray) -> np.ndarray:
    padded = np.append(v, -np.inf)
    return padded[layer.index].max(axis=1)


def interval_pass(network: Network, region: Region, bounds: Bounds, start: int = 0,
                  fresh: bool = False) -> None:
    """Propagate intervals from value ``start`` onward (tightening existing bounds)."""
    for i in range(start, len(network.layers)):
        layer = network.layers[i]
        if i == 0 and isinstance(layer, Affine):
            lo, hi = region.linear_bounds(layer.weight, layer.bias)
        else:
            lo, hi = _layer_interval(layer, bounds.lower[i], bounds.upper[i])
        if fresh:
            bounds.lower.append(np.asarray(lo, dtype=np.float64))
            bounds.upper.append(np.asarray(hi, dtype=np.float64))
        else:
            bounds.tighten(i + 1, lo, hi)


# -- symbolic (back-substitution) -----------------------------------------------------------------

def _relu_relaxation(lo, hi, mask=None):
    """Slopes/intercepts of the linear bounds s_l·z ≤ relu(z) ≤ s_u·z + t_u on [lo, hi].

    Entries outside ``mask`` (pass-through entries of a masked ReLU layer) are the identity:
    ``s_l = s_u = 1``, ``t_u = 0`` — the relaxation of an active ReLU."""
    active, unstable = lo >= 0, (lo < 0) & (hi > 0)
    if mask is not None:
        active, unstable = active | ~mask, unstable & mask
    s_u = np.where(active, 1.0, 0.0)
    t_u = np.zeros_like(lo)
    width = np.where(unstable, hi - lo, 1.0)
    s_u = np.where(unstable, hi / width, s_u)
    t_u = np.where(unstable, -hi * lo / width, t_u)
    s_l = np.where(active, 1.0, 0.0)
    s_l = np.where(unstable & (hi >= -lo), 1.0, s_l)
    return s_l, s_u, t_u


def _pool_relaxation(layer: MaxPool, lo, hi):
    """Sparse selections S_l, S_u and constants t_u with S_l z ≤ maxpool(z) ≤ S_u z + t_u."""
    padded_lo = np.append(lo, -np.inf)
    padded_hi = np.append(hi, -np.inf)
    group_lo, group_hi = padded_lo[layer.index], padded_hi[layer.index]
    best = np.argmax(group_lo, axis=1)
    rows = np.arange(layer.n_out)
    winner = layer.index[rows, best]
    others_hi = group_hi.copy()
    others_hi[rows, best] = -np.inf
    dominated = group_lo[rows, best] >= others_hi.max(axis=1)
    S_l = sp.csr_matrix((np.ones(layer.n_out), (rows, winner)), shape=(layer.n_out, layer.n_in))
    S_u = sp.csr_matrix((dominated.astype(float), (rows, winner)), shape=(layer.n_out, layer.n_in))
    t_u = np.where(dominated, 0.0, group_hi.max(axis=1))
    return S_l, S_u, t_u


def _right_multiply(A: np.ndarray, M) -> np.ndarray:
    """A @ M for dense A and dense or sparse M, as a dense array."""
    return np.asarray((M.T @ A.T).T) if sp.issparse(M) else A @ M


def back_substitute(network: Network, region: Region, bounds: Bounds, k: int,
                    spec: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``spec @ values[k+1]`` (default: values[k+1] itself) where layer ``k`` is
    affine, by back-substitution to the input through the current bounds."""
    layer = cast(Affine, network.layers[k])
    A = layer.dense_weight() if spec is None else _right_multiply(spec, layer.weight)
    c = layer.bias.copy() if spec is None else spec @ layer.bias
    A_up, A_lo, c_up, c_lo = A, A.copy(), c, c.copy()
    for j in range(k - 1, -1, -1):
        lay = network.layers[j]
        if isinstance(lay, Affine):
            c_up = c_up + A_up @ lay.bias
            c_lo = c_lo + A_lo @ lay.bias
            A_up, A_lo = _right_multiply(A_up, lay.weight), _right_multiply(A_lo, lay.weight)
            continue
        lo, hi = bounds.lower[j], bounds.upper[j]
        if isinstance(lay, ReLU):
            s_l, s_u, t_u = _relu_relaxation(lo, hi, lay.mask)
            pos, neg = np.maximum(A_up, 0), np.minimum(A_up, 0)
            c_up = c_up + pos @ t_u
            A_up = pos * s_u + neg * s_l
            pos, neg = np.maximum(A_lo, 0), np.minimum(A_lo, 0)
            c_lo = c_lo + neg @ t_u
            A_lo = pos * s_l + neg * s_u
        elif isinstance(lay, MaxPool):
            S_l, S_u, t_u = _pool_relaxation(lay, lo, hi)
            pos, neg = np.maximum(A_up, 0), np.minimum(A_up, 0)
            c_up = c_up + pos @ t_u
            A_up = _right_multiply(pos, S_u) + _right_multiply(neg, S_l)
            pos, neg = np.maximum(A_lo, 0), np.minimum(A_lo, 0)
            c_lo = c_lo + neg @ t_u
            A_lo = _right_multiply(pos, S_l) + _right_multiply(neg, S_u)
    lower = region.linear_bounds(A_lo, c_lo)[0]
    upper = region.linear_bounds(A_up, c_up)[1]
    return lower, upper


def symbolic_pass(network: Network, region: Region, bounds: Bounds, start: int = 1) -> None:
    """Back-substitution bounds for every affine layer from index ``start`` on (the first
    affine layer's interval bounds are already exact), each followed by an interval step."""
    for k in range(start, len(network.layers)):
        layer = network.layers[k]
        if isinstance(layer, Affine):
            bounds.tighten(k + 1, *back_substitute(network, region, bounds, k))
        else:
            bounds.tighten(k + 1, *_layer_interval(layer, bounds.lower[k], bounds.upper[k]))
