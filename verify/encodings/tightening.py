"""Bounds through all three stages, the LP stage included (see :mod:`verify.bounds`).

The interval and symbolic stages (:mod:`verify.bounds`) need only the network and the
region. The LP stage minimises and maximises each unstable ReLU's input over the LP
relaxation of the MIP encoding (:func:`~verify.encodings.relu.encode_network` with
integrality dropped), so it sits here, above the encoding, and takes its LP solver from the
backend layer through the common contract (:meth:`verify.backends.Backend.lp_session`: one
LP per layer, warm-started between its columns; HiGHS by default). :func:`compute_bounds` is :func:`verify.bounds.compute_bounds` with
this stage passed in; use it wherever the ``lp`` stage may be asked for.
"""
from __future__ import annotations

import time

import numpy as np

from ..backends import get_backend
from ..bounds import STAGES, Bounds, interval_pass, symbolic_pass
from ..bounds import compute_bounds as _relaxation_bounds
from ..interrupts import stop_requested
from ..network import Affine, Network, ReLU
from ..problem import ProblemBuilder
from ..regions import Region
from .relu import encode_network

#: Slack added to LP optima so float round-off in the LP solver can never make a bound unsound.
LP_SAFETY = 1e-6


def compute_bounds(network: Network, region: Region, stages=STAGES,
                   time_limit: float | None = None) -> Bounds:
    """Bounds of every value of ``network`` over ``region``, through the given stages
    (``interval``, ``symbolic``, ``lp``; default all three). ``time_limit`` caps the LP stage
    (seconds from the start; the bounds stay sound, only looser)."""
    return _relaxation_bounds(network, region, stages, time_limit, lp=lp_pass)


#: The backend whose LP sessions the LP stage uses.
LP_BACKEND = "highs"


def lp_pass(network: Network, region: Region, bounds: Bounds, deadline: float | None = None) -> int:
    """LP-tighten the input of every unstable ReLU, layer by layer. Returns the LP count."""
    backend = get_backend(LP_BACKEND)
    solves = 0
    for k, layer in enumerate(network.layers):
        if not isinstance(layer, ReLU):
            continue
        lo, hi = bounds.lower[k], bounds.upper[k]
        todo = np.flatnonzero((lo < 0) & (hi > 0) & layer.relu_entries())
        if todo.size == 0 or (k == 1 and isinstance(network.layers[0], Affine)):
            # the first affine layer's bounds are already exact over the region (or, for an
            # L2 ball, tighter than the LP over its box could make them)
            continue
        builder = ProblemBuilder("lp-bounds")
        enc = encode_network(builder, network, region, bounds, upto=k)
        lp = backend.lp_session(builder.build())
        cols = enc.values[k].cols
        for i in todo:
            if (deadline is not None and time.perf_counter() > deadline) or stop_requested():
                return solves       # the bounds so far are sound, only looser
            col = int(cols[i])
            if col < 0:
                continue
            new_lo = lp.optimum(col, 1.0, _left(deadline))
            solves += 1
            if new_lo is not None:
                bounds.lower[k][i] = max(bounds.lower[k][i], new_lo - LP_SAFETY * (1 + abs(new_lo)))
            if bounds.lower[k][i] >= 0:
                continue
            new_hi = lp.optimum(col, -1.0, _left(deadline))
            solves += 1
            if new_hi is not None:
                bounds.upper[k][i] = min(bounds.upper[k][i], -new_hi + LP_SAFETY * (1 + abs(new_hi)))
            if bounds.lower[k][i] > bounds.upper[k][i]:
                bounds.tighten(k, bounds.lower[k], bounds.upper[k])
        # later layers profit at once from the tightened ones
        interval_pass(network, region, bounds, start=k)
        symbolic_pass(network, region, bounds, start=k + 1)
    return solves


def _left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (None: no limit), so that one LP cannot overrun it."""
    return None if deadline is None else max(0.0, deadline - time.perf_counter())
