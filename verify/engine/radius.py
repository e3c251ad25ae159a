"""Minimal distances by radius search on engine verdicts: a validated example at ``d_ub`` and
a proof that nothing closer than ``d_lb`` exists, the gap closed by asking :func:`decide`
about balls of chosen radii.

Every answer of :func:`decide` at radius ``r`` moves one end:

* ``verified`` — no input within ``r`` is adversarial: ``d_lb = r`` (for an integer distance,
  the number of changed pixels, ``d_lb = r + 1``);
* ``counterexample`` — an input within ``r`` is adversarial (already re-checked by the
  caller's ``confirm``, the model's own runtime): it is shrunk (``shrink``, e.g. along its
  ray towards the centre and pixel by pixel), kept if the runtime still agrees, and
  ``d_ub`` becomes its distance;
* anything else (``unknown``, ``time_limit``) — radius ``r`` is *open*: later questions stay
  below it.

Which radius is asked: first just inside the tolerance below ``d_ub`` (``d_ub − 0.9·tol``;
when the example is already minimal, one verdict proves it). The heuristic examples are
usually close to minimal, so while counterexamples bring ``d_ub`` down by less than half of
the gap, the question moves away from ``d_ub`` geometrically (``d_ub − 0.9·tol·8^j``, never
below the midpoint: the midpoint is reached within five such steps at the default
tolerance); a counterexample that closes half the gap starts over at ``j = 0``.
After a ``verified`` the search bisects between ``d_lb`` and ``d_ub`` (every verdict
halves the gap) — unless the gap is already within :data:`NEAR` of ``d_ub``: proofs near
the minimum cost about the same whatever the radius, so the next question is the close one
again. When every radius in reach has been left open only for lack of time, the close
question is asked once more with all the time left. Card: the same with whole pixels (``d_ub − 2^j``). Once a radius is left
open, the search bisects between ``d_lb`` and the lowest open radius to raise the proven
bound with the time left.

Before that, a cheap *seed*: bounds-only verdicts (α-CROWN at the root, no attack, no
branching: :attr:`~verify.engine.decide.EngineOptions.branch` off) bisect between ``d_lb``
and ``d_ub`` (in log scale from ``d_ub / 64``; card: whole pixels) for at most
:data:`SEED_ROUNDS` questions within :data:`SEED_SHARE` of the time (at least
:data:`SEED_MIN_S` seconds, at most half). Every radius they verify is a proven ``d_lb``, so a hard proof near ``d_ub`` that
runs out of time still leaves the bound the relaxation gives (and its intermediate bounds
are cached for the search).

Work is reused between radii: the intermediate bounds of a ball hold for every smaller ball,
so each question gets (as ``initial_bounds``) those of the smallest ball already bounded
that contains it; and a question left open by its time gives its branch-and-bound frontier
to the next question at the same or a smaller radius (:func:`decide`'s ``resume``: what it
proved holds on every smaller ball, so that question continues from the open subdomains
instead of the root — the retried close question continues where the first try stopped); :class:`BoundsCache` can be shared by several searches over the same
balls (every target of ``--all-targets``). A counterexample at ``r`` is one at every larger
radius, so ``d_ub`` only decreases.

The search stops when ``d_ub − d_lb ≤ rel_gap·d_ub + abs_gap`` (status ``optimal``), when no
radius is left to ask (every radius above ``d_lb`` by more than the tolerance is open:
``time_limit`` if some question ran out of its time, else ``unknown``), on the time limit
(``time_limit``) or on a stop request (``interrupted``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..bounds import Bounds
from ..network import Network
from ..regions import Region
from .decide import (COUNTEREXAMPLE, INTERRUPTED, TIME_LIMIT, UNKNOWN, VERIFIED, EngineOptions,
                     EngineResult, decide)
from .spec import Spec

OPTIMAL = "optimal"
#: Fraction of the tolerance below ``d_ub`` at which the first question of each round is asked.
CLOSE = 0.9
#: Growth of the distance below ``d_ub`` after each counterexample that gained little.
GALLOP = 8
#: Relative gap below which a verified radius is followed by the close question again.
NEAR = 0.01
#: Bounds-only questions of the seed (bisection steps) and their share of the time limit
#: (seconds without a limit: :data:`SEED_MAX_S`).
SEED_ROUNDS = 8
SEED_SHARE = 0.1
SEED_MAX_S = 10.0
#: ... at least this many seconds (never more than half the time limit): the first call
#: includes compiling the network's bound programs
SEED_MIN_S = 5.0
#: The seed bisects ``r`` in log scale between ``max(d_lb, d_ub / SEED_SPAN)`` and ``d_ub``.
SEED_SPAN = 64.0
#: α steps of the seed's bounds-only questions.
SEED_STEPS = 20


@dataclass
class BoundsCache:
    """Intermediate bounds of balls already bounded, by radius (a smaller ball may use the
    bounds of any larger one; the smallest containing ball gives the tightest)."""

    entries: dict = field(default_factory=dict)

    def best_for(self, r: float) -> Bounds | None:
        above = [q for q in self.entries if q >= r]
        return self.entries[min(above)] if above else None

    def add(self, r: float, bounds: Bounds | None) -> None:
        if bounds is not None:
            self.entries[float(r)] = bounds


@dataclass
class RadiusResult:
    """The outcome of :func:`min_radius`: ``status`` (``optimal``, ``unknown``,
    ``time_limit``, ``interrupted``), the best example ``x`` (None if none is known) at
    ``d_ub``, the proven lower bound ``d_lb``, and one record per engine call in ``steps``
    (radius, status, stage, subdomains, seconds)."""

    status: str
    x: np.ndarray | None
    d_ub: float
    d_lb: float
    steps: list = field(default_factory=list)

    @property
    def proven(self) -> bool:
        return self.status == OPTIMAL


def min_radius(network: Network, region_at: Callable[[float], Region], spec: Spec,
               distance: Callable[[np.ndarray], float], confirm: Callable[[np.ndarray], bool],
               x_ub: np.ndarray | None, d_ub: float, d_lb: float = 0.0, *,
               integer: bool = False, rel_gap: float = 1e-4, abs_gap: float = 1e-9,
               margin: float = 0.0, shrink: Callable[[np.ndarray], np.ndarray] | None = None,
               time_limit: float | None = None, should_stop: Callable[[], bool] | None = None,
               options: EngineOptions | None = None, cache: BoundsCache | None = None,
               on_step: Callable[[dict], None] | None = None,
               call_share: float = 0.5, seed: bool = True) -> RadiusResult:
    """Close the gap between ``d_lb`` (proven) and ``d_ub`` (the distance of ``x_ub``, a
    confirmed adversarial example) by engine verdicts on ``region_at(r)`` — the inputs
    within distance ``r`` of the centre, nested in ``r``. See the module docstring.

    ``integer``: distances are whole numbers (changed pixels). ``confirm(x)`` must accept an
    engine counterexample (the model's own runtime); ``shrink(x)`` makes it smaller (its
    result is confirmed again, else the unshrunk point is kept). ``time_limit`` covers the
    whole search; each call gets ``call_share`` of what is left once a radius is open (the
    first question of a round gets it too, so that a hard one leaves time to raise the
    bound). ``on_step`` receives each step's record. ``seed``: the bounds-only bisection
    first (see the module docstring).
    """
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + float(time_limit)
    cache = cache if cache is not None else BoundsCache()
    steps: list = []
    best, d_ub, d_lb = x_ub, float(d_ub), float(d_lb)
    open_at = np.inf            # lowest radius whose question was left open
    gallop = 0                  # ≥ 0: ask d_ub − 0.9·tol·GALLOP^gallop; −1: bisect
    timed_out = False           # a question was left open by its share of the time
    retried = False             # the last close question with all the time left was asked
    share = call_share
    frontier_at, frontier = np.inf, None     # the open subdomains of the radius left open

    def left() -> float | None:
        return None if deadline is None else deadline - time.perf_counter()

    def record(step: dict) -> None:
        steps.append(step)
        if on_step is not None:
            on_step(step)

    if seed and np.isfinite(d_ub):
        seed_budget = SEED_MAX_S if time_limit is None else min(
            max(SEED_SHARE * float(time_limit), SEED_MIN_S), 0.5 * float(time_limit))
        d_lb = _seed_lower(network, region_at, spec, d_lb, d_ub, integer, margin, should_stop,
                           options, cache, record, time.perf_counter() + seed_budget)

    def tolerance() -> float:
        return 0.0 if integer else rel_gap * max(abs(d_ub), 1e-12) + abs_gap

    def done(status: str) -> RadiusResult:
        return RadiusResult(status, best, d_ub, min(d_lb, d_ub), steps)

    while True:
        if integer and d_lb >= d_ub or not integer and d_ub - d_lb <= tolerance():
            return done(OPTIMAL if best is not None else UNKNOWN)
        if should_stop is not None and should_stop():
            return done(INTERRUPTED)
        remaining = left()
        if remaining is not None and remaining <= 0:
            return done(TIME_LIMIT)
        # the radius to ask about
        top = min(d_ub, open_at)
        stuck = top - 1 < d_lb if integer else top - d_lb <= tolerance()
        if stuck and timed_out and not retried and remaining is not None and remaining > 1.0:
            open_at, gallop, share, retried = np.inf, 0, 1.0, True
            top = d_ub
        if integer:
            if top - 1 < d_lb:            # every radius in reach is open
                return done(TIME_LIMIT if timed_out else UNKNOWN)
            if open_at > d_ub - 1:
                mid = np.floor((d_lb + d_ub - 1) / 2)
                r = max(d_ub - 2 ** gallop, mid) if gallop >= 0 else mid
            else:
                r = np.floor((d_lb + open_at - 1) / 2)
            r = float(max(d_lb, r))
        else:
            if top - d_lb <= tolerance():
                return done(TIME_LIMIT if timed_out else UNKNOWN)
            if open_at >= d_ub:
                mid = 0.5 * (d_lb + d_ub)
                r = max(d_ub - CLOSE * tolerance() * GALLOP ** gallop, mid) if gallop >= 0 else mid
            else:
                r = 0.5 * (d_lb + open_at)
            r = max(r, d_lb)
        limit = None
        if remaining is not None:
            limit = remaining * (share if remaining > 1.0 else 1.0)
        t = time.perf_counter()
        res: EngineResult = decide(network, region_at(r), spec, time_limit=limit, margin=margin,
                                   should_stop=should_stop, confirm=confirm, options=options,
                                   initial_bounds=cache.best_for(r),
                                   resume=frontier if r <= frontier_at else None)
        cache.add(r, res.bounds)
        if res.frontier is not None and r <= frontier_at:
            frontier_at, frontier = r, res.frontier
        step = {"radius": r, "status": res.status, "stage": res.stage,
                "subdomains": res.subdomains, "time_s": round(time.perf_counter() - t, 4)}
        if res.status == VERIFIED:
            d_lb = max(d_lb, r + 1 if integer else r)
            gallop = 0 if (d_ub - d_lb) <= NEAR * max(abs(d_ub), 1e-12) else -1
        elif res.status == COUNTEREXAMPLE and res.x is not None:
            x = np.asarray(res.x, dtype=np.float64)
            if shrink is not None:
                small = shrink(x)
                if small is not None and distance(small) < distance(x) and confirm(small):
                    x = small
            d = distance(x)
            step["distance"] = d
            if d < d_ub:
                if d_ub - d >= 0.5 * (d_ub - d_lb):
                    gallop = 0
                elif gallop >= 0:
                    gallop += 1
                best, d_ub = x, d
            else:                      # nothing smaller than the best: ask below it
                open_at = min(open_at, r)
        elif res.status == INTERRUPTED:
            record(step)
            return done(INTERRUPTED)
        else:
            open_at = min(open_at, r)
            timed_out = timed_out or res.status == TIME_LIMIT
        record(step)
        rest = left()
        if res.status == TIME_LIMIT and rest is not None and rest <= 0:
            return done(TIME_LIMIT)


def _seed_lower(network: Network, region_at: Callable[[float], Region], spec: Spec,
                d_lb: float, d_ub: float, integer: bool, margin: float,
                should_stop: Callable[[], bool] | None, options: EngineOptions | None,
                cache: BoundsCache, record: Callable[[dict], None], deadline: float) -> float:
    """The largest radius below ``d_ub`` that bounds alone verify, by bisection (at most
    :data:`SEED_ROUNDS` questions, until ``deadline``): the new proven ``d_lb``. A radius the
    bounds leave open proves nothing; it only moves the bisection down."""
    quick = replace(options or EngineOptions(), attack_restarts=0, branch=False,
                    root_steps=SEED_STEPS)
    lo, hi = d_lb, d_ub
    for _ in range(SEED_ROUNDS):
        if integer:
            r = np.floor((lo + hi - 1) / 2)
        else:           # in log scale: the radius bounds prove is often far below d_ub
            r = float(np.sqrt(max(lo, hi / SEED_SPAN) * hi))
        if (integer and r < lo) or (not integer and hi - lo <= 1e-3 * hi):
            break
        remaining = deadline - time.perf_counter()
        if remaining <= 0 or (should_stop is not None and should_stop()):
            break
        t = time.perf_counter()
        res = decide(network, region_at(float(r)), spec, time_limit=remaining, margin=margin,
                     should_stop=should_stop, options=quick, initial_bounds=cache.best_for(r))
        cache.add(r, res.bounds)
        record({"radius": float(r), "status": res.status, "stage": res.stage or "bounds",
                "subdomains": 0, "time_s": round(time.perf_counter() - t, 4), "seed": True})
        if res.status == VERIFIED:
            lo = r + 1 if integer else r
        elif res.status == UNKNOWN:
            hi = r
        else:                                    # out of time or stopped
            break
    return float(max(d_lb, lo))


__all__ = ["BoundsCache", "RadiusResult", "min_radius", "OPTIMAL", "UNKNOWN", "TIME_LIMIT",
           "INTERRUPTED"]
