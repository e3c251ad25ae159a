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
   maximise its input over the LP relaxation of the MIP encoding (HiGHS); after each layer
   the later layers' symbolic bounds are recomputed with the improved ones. A neuron whose
   minimum is already ≥ 0 is not maximised.

``values`` index ``i`` is the input to ``network.layers[i]`` (``0`` = the input image,
``len(layers)`` = the logits).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .errors import InvalidInputError
from .network import Affine, MaxPool, Network, ReLU
from .regions import Region

STAGES = ("interval", "symbolic", "lp")
#: Slack added to LP optima so float round-off in the LP solver can never make a bound unsound.
LP_SAFETY = 1e-6


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
        """Number of ReLUs whose input may be either sign."""
        return sum(int(np.sum((self.lower[i] < 0) & (self.upper[i] > 0)))
                   for i in self.relu_inputs(network))

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


def compute_bounds(network: Network, region: Region, stages=STAGES,
                   time_limit: float | None = None) -> Bounds:
    """Bounds of every value of ``network`` over ``region``, through the given stages."""
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise InvalidInputError(f"unknown bound stage(s) {unknown}; choose from {STAGES}")
    if region.size != network.num_inputs:
        raise InvalidInputError(
            f"region has {region.size} pixels, network {network.name} takes {network.num_inputs}")
    start = time.perf_counter()
    bounds = Bounds([region.lo.copy()], [region.hi.copy()])
    interval_pass(network, region, bounds, fresh=True)
    bounds.stages.append(StageReport("interval", bounds.unstable(network), network.num_relus,
                                     time.perf_counter() - start))
    if "symbolic" in stages or "lp" in stages:
        t = time.perf_counter()
        symbolic_pass(network, region, bounds)
        bounds.stages.append(StageReport("symbolic", bounds.unstable(network), network.num_relus,
                                         time.perf_counter() - t))
    if "lp" in stages:
        t = time.perf_counter()
        deadline = None if time_limit is None else start + time_limit
        solves = lp_pass(network, region, bounds, deadline)
        bounds.stages.append(StageReport("lp", bounds.unstable(network), network.num_relus,
                                         time.perf_counter() - t, solves))
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

def _relu_relaxation(lo, hi):
    """Slopes/intercepts of the linear bounds s_l·z ≤ relu(z) ≤ s_u·z + t_u on [lo, hi]."""
    active, unstable = lo >= 0, (lo < 0) & (hi > 0)
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
    layer = network.layers[k]
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
            s_l, s_u, t_u = _relu_relaxation(lo, hi)
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


# -- LP ---------------------------------------------------------------------------------------------

#: Dual simplex iterations allowed per LP bound, per row and column of the LP (see _lp_optimum).
LP_ITERATIONS_PER_SIZE = 4


def lp_pass(network: Network, region: Region, bounds: Bounds, deadline: float | None = None) -> int:
    """LP-tighten the input of every unstable ReLU, layer by layer. Returns the LP count."""
    import highspy

    from .backends.highs import highs_from_problem
    from .encodings.relu import encode_network
    from .problem import ProblemBuilder

    solves = 0
    for k, layer in enumerate(network.layers):
        if not isinstance(layer, ReLU):
            continue
        lo, hi = bounds.lower[k], bounds.upper[k]
        todo = np.flatnonzero((lo < 0) & (hi > 0))
        if todo.size == 0 or (k == 1 and isinstance(network.layers[0], Affine)):
            # the first affine layer's bounds are already exact over the region (or, for an
            # L2 ball, tighter than the LP over its box could make them)
            continue
        builder = ProblemBuilder("lp-bounds")
        enc = encode_network(builder, network, region, bounds, upto=k)
        problem = builder.build()
        problem.integrality[:] = False
        h = highs_from_problem(problem)
        h.setOptionValue("simplex_iteration_limit",
                         LP_ITERATIONS_PER_SIZE * (problem.num_rows + problem.num_cols))
        cols = enc.values[k].cols
        for i in todo:
            if deadline is not None and time.perf_counter() > deadline:
                return solves
            col = int(cols[i])
            if col < 0:
                continue
            new_lo = _lp_optimum(h, highspy, col, 1.0)
            solves += 1
            if new_lo is not None:
                bounds.lower[k][i] = max(bounds.lower[k][i], new_lo - LP_SAFETY * (1 + abs(new_lo)))
            if bounds.lower[k][i] >= 0:
                continue
            new_hi = _lp_optimum(h, highspy, col, -1.0)
            solves += 1
            if new_hi is not None:
                bounds.upper[k][i] = min(bounds.upper[k][i], -new_hi + LP_SAFETY * (1 + abs(new_hi)))
            if bounds.lower[k][i] > bounds.upper[k][i]:
                bounds.tighten(k, bounds.lower[k], bounds.upper[k])
        # later layers profit at once from the tightened ones
        interval_pass(network, region, bounds, start=k)
        symbolic_pass(network, region, bounds, start=k + 1)
    return solves


def _lp_optimum(h, highspy, col: int, sign: float) -> float | None:
    """min sign·x[col] over the LP in ``h`` (None if the LP did not solve to optimality).

    Each solve starts from the previous basis, which is usually a few dozen dual simplex
    iterations; but on some LPs with tiny coefficients the warm start stalls for hundreds of
    thousands of iterations (measured: 232,220 iterations and 50 s, against 1,097 iterations
    and 0.1 s from scratch). So the iterations are capped (:data:`LP_ITERATIONS_PER_SIZE`
    times the LP's size) and a stalled solve is restarted once from scratch."""
    h.changeColCost(col, sign)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kIterationLimit:
        h.clearSolver()
        h.run()
    ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    value = h.getInfo().objective_function_value if ok else None
    h.changeColCost(col, 0.0)
    return value
