"""Provably minimal adversarial examples: changed pixels (card), L1, L2 (sum of squares), L∞.

How one query is answered (DESIGN.md, "what makes exact solving fast"):

1. **Heuristic upper bound.** Greedy pixel changes (card) and projected-gradient searches
   with line search (L1/L2/L∞) find an adversarial example at distance ``d_ub``.
2. **Region restricted to it.** The optimum lies within ``d_ub``, so bounds are computed on
   that region only. Card descends: a feasibility MIP over "at most ``d_ub − 1`` changed
   pixels" — infeasible *proves* ``d_ub`` minimal, a solution is pruned and becomes the new
   ``d_ub``. L1/L2/L∞ solve over the ball of radius ``d_ub`` with ``d_ub`` as cutoff.
3. **Bounds, progressively** (interval → symbolic → LP); stable ReLUs get no binary.
4. **MIP/MIQP** with the heuristic's distance as cutoff.
5. **Validation.** The answer is re-checked by the Keras model in float32; pixels the solver
   left unchanged up to its tolerance are set exactly to the original. An example that does
   not change the label is never returned.

**The bound engine** (``engine``, see :mod:`verify.tasks.engine_stage`): with ``"bab"``
steps 2–4 are a radius search on engine verdicts (:func:`verify.engine.radius.min_radius`):
each ball (card: each "at most k − 1 changed pixels") is decided by attack, α-CROWN and
branch and bound; "verified at r" raises the proven bound to r (card: k − 1 verified proves
k minimal), a counterexample (re-checked by the model, then shrunk along its ray and pixel
by pixel, card: pruned) lowers ``d_ub``, until ``d_ub − d_lb ≤ rel_gap·d_ub`` (relative
1e-4 by default, plus 1e-9 absolute). Intermediate bounds of a ball are reused for every
smaller ball (and, with ``target="all"``, shared by all targets). With ``"auto"`` (default)
the MIP path runs when the search region's interval / symbolic bounds leave at most
:data:`~verify.tasks.engine_stage.SMALL_MIP_RELUS` ReLUs unstable (seed-size networks,
where the MIP is faster), or with ``pixel_levels``; otherwise the engine gets
:data:`~verify.tasks.engine_stage.ENGINE_SHARE_LARGE` of the time for the norms of
:data:`ENGINE_FIRST_NORMS`, :data:`~verify.tasks.engine_stage.ENGINE_SHARE` for L1, and the
MIP takes over what it leaves open (from the engine's best example, keeping its proven
bound). ``"mip"``: the MIP
path only. Results say which in ``stats["engine"]`` and ``stats["settled_by"]``.

Only a status ``optimal`` is a proof of minimality. On a time limit the best validated
example and the proven lower bound are returned with status ``time_limit``; on Ctrl-C or
SIGTERM (:mod:`verify.interrupts`) the same, with status ``interrupted``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import interrupts
from ..attacks.search import (distance, greedy_pixels, min_norm_search, prune_changes,
                              shrink_along_ray, shrink_pixels)
from ..backends import Backend, SolveOptions, Status, get_backend
from ..bounds import STAGES
from ..budget import Deadline, part_limit
from ..vocabulary import normalise_norm
from ..encodings.properties import DEFAULT_MARGIN, check_labels
from ..encodings.query import Query, build_query
from ..errors import InvalidInputError
from ..progress import describe_query, report, seconds
from ..regions import Box, L0Ball, L1Ball, L2Ball, LinfBall, Region
from ..results import AdversarialResult, Outcome, outcome_of
from ..validate import check
from .bnn import BnnTask, bnn_min_flips
from .bnn_int import is_integer_bnn, min_adversarial_integer
from .common import bound_budget, is_adversarial, repair, round_away, snap
from .context import TaskContext, prepare
from .engine_stage import (SMALL_MIP_RELUS, STALL_CAP_S, cheap_bounds, check_engine,
                           engine_time)

__all__ = ["DEFAULT_GAP", "min_adversarial"]

DEFAULT_GAP = 1e-4
#: Norms whose radius search ``auto`` leaves to the engine for most of the time. Measured on
#: multiclass-large (benchmarks/results/min_adv.md, min_adv-mcl-fast.md; 60 s, the engine in
#: half of it): the MIP that took over finished 0 of the 40 card, L∞ and L2 searches the
#: engine left open, but 13 of 30 L1 ones (the L1 ball and objective are linear: its LP
#: relaxation is strong).
ENGINE_FIRST_NORMS = ("card", "linf", "l2")


@interrupts.scoped
def min_adversarial(model: Any, image: np.ndarray, norm: str = "card", target: int | str | None = None,
                    backend: str | None = None, time_limit: float | None = None,
                    margin: float = DEFAULT_MARGIN, pixel_levels: int | None = None,
                    threads: int | None = None, rel_gap: float = DEFAULT_GAP,
                    region: Region | None = None, bound_stages=STAGES,
                    use_heuristic: bool = True, encoding: str | None = None,
                    total_time_limit: float | None = None, engine: str | None = None,
                    on_result: Callable[[AdversarialResult], None] | None = None
                    ) -> AdversarialResult | list[AdversarialResult]:
    """The provably smallest change to ``image`` that changes ``model``'s label.

    ``model``: a bundled name, a path, a Keras model or a :class:`LoadedModel`. ``norm``:
    ``"card"`` (changed pixels), ``"l1"``, ``"l2"`` (sum of squared changes; needs an MIQP
    backend, default ``scip``) or ``"linf"``. ``target``: ``None`` (any other label), a label,
    or ``"all"`` for one result per other label. ``pixel_levels=256`` restricts changed pixels
    to 8-bit values. ``region`` restricts the search (default: all of [0, 1]^n).
    ``use_heuristic=False`` gives the plain formulation (bounds over the whole region, no
    heuristic bound, no cutoff) for comparison. ``engine``: ``"auto"`` (default), ``"bab"``
    (radius search on the bound engine alone) or ``"mip"`` (see the module docstring).

    On a binarized network (BNN) only ``norm="card"`` applies: the smallest number of
    flipped input bits, with ``encoding`` ``"cnf"`` (default), ``"mip"`` or ``"ip"`` (see
    :mod:`verify.tasks.bnn`).

    With ``target="all"``, ``time_limit`` applies to each target, and ``total_time_limit``
    (seconds) bounds them all together: each target gets at most an even split of what is
    left of it (time a target did not use passes on to the next ones); the targets share the
    bound engine's intermediate bounds of every ball (they do not depend on the target), and
    ``on_result`` (if given) receives each target's result as it finishes. Progress goes to
    :func:`verify.progress.report`.

    Ctrl-C (see :mod:`verify.interrupts`) returns the best example so far and the proven
    lower bound with status ``interrupted``; with ``target="all"`` the list then ends with
    the interrupted target.
    """
    check(total_time_limit=total_time_limit, rel_gap=rel_gap)
    ctx = prepare(model, image, backend=backend, time_limit=time_limit, threads=threads,
                  margin=margin, levels=pixel_levels, encoding=encoding,
                  engine=check_engine(engine))
    norm = normalise_norm(norm)
    if ctx.options.engine == "bab" and pixel_levels is not None:
        raise InvalidInputError("the bound engine searches continuous pixel values: with "
                                "pixel_levels use engine 'mip' (or 'auto')")
    search = _Search(norm, None, rel_gap, region, tuple(bound_stages), use_heuristic)
    if isinstance(target, str):
        if target != "all":
            raise InvalidInputError(f"target must be a label, None or 'all', not {target!r}")
        label = ctx.label
        others = [t for t in range(ctx.model.network.num_classes) if t != label]
        total = Deadline(total_time_limit)
        results = []
        shared = _Shared()            # the engine's bounds per ball, for every target
        for i, t in enumerate(others):
            limit = part_limit(time_limit, total, len(others) - i)
            report(f"[{i + 1}/{len(others)}] target {ctx.model.class_name(t)}"
                   + ("" if limit is None else f", time limit {limit:.1f} s") + " ...")
            results.append(_min_adversarial(ctx.with_options(time_limit=limit),
                                            replace(search, target=t), shared))
            if on_result is not None:
                on_result(results[-1])
            if interrupts.stop_requested():
                break                  # the targets done so far, and the interrupted one
        return results
    if target is not None:
        check_labels(ctx.model.network.num_classes, ctx.label,
                     int(target) if isinstance(target, (int, np.integer)) else target)
        search = replace(search, target=int(target))
    return _min_adversarial(ctx, search)


@dataclass(frozen=True)
class _Search:
    """The question of one :func:`min_adversarial` call besides its context: the norm, the
    target (None: any other label), and how to search."""

    norm: str
    target: int | None
    rel_gap: float
    region: Region | None          # None: the whole box [0, 1]^n
    bound_stages: tuple
    use_heuristic: bool


@dataclass
class _Shared:
    """Work the targets of one ``target="all"`` call share: the engine's intermediate bounds
    per norm and radius (bounds of a ball do not depend on the target)."""

    caches: dict = field(default_factory=dict)

    def cache(self, norm: str):
        from ..engine.radius import BoundsCache

        return self.caches.setdefault(norm, BoundsCache())


def _min_adversarial(ctx: TaskContext, search: _Search, shared: _Shared | None = None
                     ) -> AdversarialResult:
    """One target: the BNN path (flips), or the ReLU path with its solver checked first."""
    if ctx.binarized and is_integer_bnn(ctx.model.network):
        return min_adversarial_integer(ctx, search.norm, search.target, search.region)
    if ctx.binarized:
        if search.norm != "card" or ctx.options.levels is not None or search.region is not None:
            raise InvalidInputError("a BNN sees each pixel as one bit: only norm='card' (flipped "
                                    "pixels) applies, without pixel_levels or region")
        return bnn_min_flips(BnnTask.from_context(ctx, search.target), ctx.started)
    solver = get_backend(ctx.options.backend or ("scip" if search.norm == "l2" else "highs"))
    if ctx.options.engine != "bab":
        solver.check_kind("miqp" if search.norm == "l2" else "milp")
    return _Run(ctx, search, solver, shared or _Shared()).solve()


def _restricted_region(norm: str, center, d_ub: float, base: Region) -> Region:
    """The ball of radius ``d_ub`` (L2: √d_ub) around ``center`` within ``base``."""
    free = base.free
    region: Region
    if norm == "linf":
        region = LinfBall(center, d_ub, free)
    elif norm == "l1":
        region = L1Ball(center, d_ub, free)
    else:
        region = L2Ball(center, float(np.sqrt(d_ub)), free)
    region.lo, region.hi = np.maximum(region.lo, base.lo), np.minimum(region.hi, base.hi)
    return region


def _unfinished(solver_status: str) -> Outcome:
    """The outcome of a result the solver did not prove: ``interrupted`` after a stop request
    (Ctrl-C, SIGTERM), else the solver's status through the one mapping
    (:func:`verify.status.outcome_of`, unsettled: ``time_limit``, ``interrupted``, ``error``,
    or ``unknown`` for a solver proof the task could not use) -- never a bare solver word."""
    if interrupts.stop_requested():
        return Outcome.INTERRUPTED
    return outcome_of(solver_status, settled=False)


class _Run:
    """One minimal-adversarial search on the ReLU path: the context (model, input, label,
    options), the question (:class:`_Search`), the solver, the merged network, the
    statistics gathered so far, and the clock of this target's time limit (from the start
    of the run, after the model was loaded)."""

    def __init__(self, ctx: TaskContext, search: _Search, solver: Backend,
                 shared: _Shared | None = None):
        self.ctx, self.search, self.solver = ctx, search, solver
        self.shared = shared or _Shared()
        self.engine = ctx.options.engine
        self.t0 = time.perf_counter()
        self.model, self.center, self.label = ctx.model, ctx.image, ctx.label
        self.norm, self.target = search.norm, search.target
        self.levels, self.margin = ctx.options.levels, ctx.options.margin
        self.time_limit = ctx.options.time_limit
        self.base_region = search.region or Box(ctx.image)
        self.net = ctx.model.network.merged_affine()
        self.stats: dict = {"pixel_levels": self.levels, "time_limit": self.time_limit,
                            "engine": self.engine}

    # -- helpers ---------------------------------------------------------------------------
    def remaining(self) -> float | None:
        return None if self.time_limit is None else \
            max(0.0, self.time_limit - (time.perf_counter() - self.t0))

    def query(self, norm: str | None, region: Region) -> Query:
        return build_query(self.net, self.center, norm, self.target, self.label, region,
                           self.margin, self.search.bound_stages, pixel_levels=self.levels,
                           bound_time_limit=bound_budget(self.time_limit, self.t0))

    def adversarial(self, x: np.ndarray) -> bool:
        return is_adversarial(self.model, x, self.label, self.target)[0]

    def candidate(self, query: Query, x: np.ndarray) -> np.ndarray | None:
        """The solver's point snapped to the original (and to the pixel levels), pushed a
        little further if the model's runtime does not agree yet; None if it never does."""
        snapped = snap(query.decode(x), self.center, self.levels)
        if self.adversarial(snapped):
            return snapped
        candidate = repair(self.model, snapped, self.center, self.label, self.target, self.levels)
        self.stats["repaired"] = candidate is not None
        return candidate

    def finish(self, status: Outcome, example: np.ndarray | None, bound: float | None,
               extra: dict | None = None) -> AdversarialResult:
        backend = "engine" if self.engine == "bab" else self.solver.name
        return _result(self.model, self.center, self.norm, self.label, self.target,
                       backend, status, example, bound, time.perf_counter() - self.t0,
                       self.margin, {**self.stats, **(extra or {})}, self.levels)

    def heuristic(self) -> np.ndarray | None:
        """A validated adversarial example from the fast searches, or None."""
        lo, hi = self.base_region.lo, self.base_region.hi
        greedy = greedy_pixels(self.net, self.center, self.label, self.target, self.margin, lo, hi)
        best = greedy if self.norm == "card" else min_norm_search(
            self.net, self.center, self.norm, self.label, self.target, self.margin, lo, hi,
            seeds=[greedy])  # type: ignore[list-item]  # a None seed is skipped
        if best is None:
            return None
        if self.levels:
            best = round_away(best, self.center, self.levels)
        return best if self.adversarial(best) else None

    # -- the search ------------------------------------------------------------------------
    def solve(self) -> AdversarialResult:
        norm, center, stats = self.norm, self.center, self.stats
        heuristic = self.heuristic() if self.search.use_heuristic else None
        d_ub = distance(heuristic, center, norm) if heuristic is not None else None
        stats["heuristic_objective"] = d_ub
        stats["heuristic_time_s"] = round(time.perf_counter() - self.t0, 4)
        report(f"min-adv-{norm}: heuristic: " + ("no example" if d_ub is None else f"example at {d_ub:.6g}")
               + f" ({stats['heuristic_time_s']:.1f} s)")
        if d_ub is not None and norm == "card" and d_ub <= 1:
            return self.finish(Outcome.OPTIMAL, heuristic, 1.0, {"settled_by": "heuristic (one pixel)"})
        if interrupts.stop_requested():
            return self.finish(Outcome.INTERRUPTED, heuristic, 1.0 if norm == "card" else None)
        if self.use_engine(d_ub):
            return self.engine_search(heuristic, d_ub)
        return self.mip_search(heuristic, d_ub)

    def mip_search(self, heuristic: np.ndarray | None, d_ub: float | None,
                   lower: float | None = None) -> AdversarialResult:
        """The MIP path from the best example known (``heuristic`` at ``d_ub``; None: no
        example), keeping a lower bound ``lower`` proven already (e.g. by the engine)."""
        norm, center, stats = self.norm, self.center, self.stats
        if heuristic is not None and norm == "card":
            return self.card_descent(heuristic, lower or 1.0)
        base_region = self.base_region
        region = _restricted_region(norm, center, d_ub, base_region) if d_ub is not None else base_region
        report(f"min-adv-{norm}: bounds over the search region ...")
        query = self.query(norm, region)
        stats.update({"region": base_region.describe(), "search_region": region.describe(),
                      "bounds": query.bounds.report(), "problem": query.problem.summary()})
        report(f"min-adv-{norm}: {describe_query(query)}")
        if query.property.proven_infeasible:
            if heuristic is not None:
                return self.finish(Outcome.OPTIMAL, heuristic, d_ub, {"settled_by": "bounds"})
            return self.finish(Outcome.INFEASIBLE, None, None, {"settled_by": "bounds"})
        if interrupts.stop_requested():
            return self.finish(Outcome.INTERRUPTED, heuristic, lower if lower is not None else
                               (1.0 if norm == "card" else None))
        remaining = self.remaining()
        cutoff = None
        if d_ub is not None and norm != "card":
            cutoff = d_ub * (1 + 1e-9) + 1e-12
        rel_gap = self.search.rel_gap
        options = SolveOptions(time_limit=remaining, threads=self.ctx.options.threads,
                               rel_gap=rel_gap, cutoff=cutoff)
        report(f"min-adv-{norm}: solver {self.solver.name} (best known "
               f"{'none' if d_ub is None else f'{d_ub:.6g}'}, time left {seconds(remaining)}) ...")
        res = self.solver.solve(query.problem, options)
        stats.update({"solver_status": res.status, "solver_time_s": round(res.time_s, 4),
                      "settled_by": "solver"})
        proven = res.status in (Status.OPTIMAL, Status.INFEASIBLE, Status.CUTOFF)
        candidate = self.candidate(query, res.x) if res.x is not None else None
        # the proven lower bound over the whole base region
        if res.status in (Status.INFEASIBLE, Status.CUTOFF):
            bound = d_ub
        elif res.bound is not None:
            bound = res.bound if d_ub is None else min(res.bound, d_ub)
        else:
            bound = None
        if norm == "card" and bound is not None:
            bound = float(np.ceil(bound - 1e-6))
        if lower is not None:
            bound = lower if bound is None else max(bound, lower)
        best = min((e for e in (candidate, heuristic) if e is not None),
                   key=lambda e: distance(e, center, norm), default=None)
        if best is None:
            status = Outcome.INFEASIBLE if res.status == Status.INFEASIBLE else _unfinished(res.status)
            return self.finish(status, None, bound)
        objective = distance(best, center, norm)
        if bound is not None:
            bound = min(bound, objective)
        if proven and bound is not None and objective - bound <= rel_gap * max(abs(objective), 1e-12) + 1e-9:
            return self.finish(Outcome.OPTIMAL, best, bound)
        return self.finish(_unfinished(res.status), best, bound)

    # -- the bound engine ------------------------------------------------------------------
    def region_at(self, r: float) -> Region:
        """The inputs within distance ``r`` of the centre inside the base region (card: at
        most ``r`` changed pixels)."""
        base = self.base_region
        if self.norm == "card":
            return L0Ball(self.center, int(round(r)), base.lo, base.hi, base.free)
        return _restricted_region(self.norm, self.center, r, base)

    def use_engine(self, d_ub: float | None) -> bool:
        """Whether the engine searches: always under ``bab``, never under ``mip`` (nor for the
        plain formulation or with pixel levels); under ``auto`` when the interval / symbolic
        bounds of the search region leave more than
        :data:`~verify.tasks.engine_stage.SMALL_MIP_RELUS` ReLUs unstable."""
        if self.engine == "bab":
            return True
        if self.engine == "mip" or not self.search.use_heuristic or self.levels:
            return False
        if d_ub is None:
            region = self.base_region
        else:
            region = self.region_at(d_ub - 1 if self.norm == "card" else d_ub)
        unstable = cheap_bounds(self.net, region).unstable(self.net)
        self.stats["unstable_relus_cheap"] = int(unstable)
        return unstable > SMALL_MIP_RELUS

    def confirm(self, x: np.ndarray) -> bool:
        """An engine counterexample counts once the model's own runtime agrees."""
        return bool(np.all(x >= self.base_region.lo) and np.all(x <= self.base_region.hi)) \
            and self.adversarial(x)

    def shrink(self, x: np.ndarray) -> np.ndarray:
        """A smaller adversarial example from ``x`` on the network IR (card: changes pruned;
        else along the ray towards the centre, then pixel by pixel); the caller re-checks it."""
        args = (self.net, snap(x, self.center, None), self.center, self.label, self.target,
                self.margin)
        if self.norm == "card":
            return prune_changes(*args)
        x = shrink_along_ray(*args)
        if self.norm != "linf":
            x = shrink_pixels(self.net, x, self.center, self.label, self.target, self.margin)
        return x

    def engine_search(self, heuristic: np.ndarray | None, d_ub: float | None) -> AdversarialResult:
        """Radius search on engine verdicts (:func:`verify.engine.radius.min_radius`) from the
        heuristic's example; under ``auto`` the MIP path takes over what it leaves open."""
        from ..engine import Spec, decide
        from ..engine.radius import OPTIMAL, min_radius
        from .engine_stage import progress_reporter

        norm, center, stats = self.norm, self.center, self.stats
        spec = Spec.label_change(self.net.num_outputs, self.label, self.target)
        probe = self.region_at(d_ub if d_ub is not None else 1.0)
        budget = engine_time(self.engine, self.time_limit, self.t0, self.net, probe,
                             engine_first=norm in ENGINE_FIRST_NORMS)
        if self.engine == "auto" and budget is None:
            budget = STALL_CAP_S      # no time limit: the MIP still gets its turn
        t_engine = time.perf_counter()
        lower = 1.0 if norm == "card" else 0.0
        if heuristic is None:
            # no example yet: the whole region first (verified: none exists)
            report(f"min-adv-{norm}: no heuristic example; bound engine over the whole region ...")
            r = decide(self.net, self.base_region, spec, time_limit=budget, margin=self.margin,
                       should_stop=interrupts.stop_requested, confirm=self.confirm,
                       on_progress=progress_reporter(f"min-adv-{norm}"))
            stats["engine_whole_region"] = {"status": r.status, "stage": r.stage}
            if r.status == "verified":
                stats["settled_by"] = "engine"
                return self.finish(Outcome.INFEASIBLE, None, None, {"settled_by": "engine"})
            if r.status == "counterexample" and r.x is not None:
                x = np.asarray(r.x, dtype=np.float64)
                small = self.shrink(x)
                heuristic = small if self.confirm(small) else x
                d_ub = distance(heuristic, center, norm)
            else:
                return self._engine_open(None, None, None, r.status)
        if d_ub is None:              # (never: set with the example above)
            return self._engine_open(heuristic, None, None, "unknown")
        report(f"min-adv-{norm}: bound engine radius search from {d_ub:.6g}, time "
               f"{seconds(budget)} ...")

        def on_step(step: dict) -> None:
            report(f"min-adv-{norm}: radius {step['radius']:.6g}: {step['status']}"
                   + (f" by {step['stage']}" if step["stage"] else "")
                   + (f", example at {step['distance']:.6g}" if "distance" in step else "")
                   + f" ({step['time_s']:.2f} s, {step['subdomains']} subdomains)")

        left = None if budget is None else max(0.0, budget - (time.perf_counter() - t_engine))
        rr = min_radius(self.net, self.region_at, spec, lambda x: distance(x, center, norm),
                        self.confirm, heuristic, float(d_ub), lower, integer=norm == "card",
                        rel_gap=self.search.rel_gap, margin=self.margin, shrink=self.shrink,
                        time_limit=left, should_stop=interrupts.stop_requested,
                        cache=self.shared.cache(norm), on_step=on_step)
        stats["engine_radius"] = {"status": rr.status, "steps": rr.steps, "d_lb": rr.d_lb,
                                  "d_ub": rr.d_ub,
                                  "time_s": round(time.perf_counter() - t_engine, 4)}
        if rr.status == OPTIMAL:
            return self.finish(Outcome.OPTIMAL, rr.x, rr.d_lb, {"settled_by": "engine"})
        return self._engine_open(rr.x, rr.d_ub, rr.d_lb, rr.status)

    def _engine_open(self, best: np.ndarray | None, d_ub: float | None,
                     d_lb: float | None, why: str) -> AdversarialResult:
        """The engine left the gap open: under ``auto`` (with time left) the MIP path from the
        engine's best example, keeping its proven bound; else the best example and bound."""
        stopped = interrupts.stop_requested()
        time_left = self.remaining()
        if self.engine == "auto" and not stopped and (time_left is None or time_left > 0):
            report(f"min-adv-{self.norm}: the engine left the gap open; the MIP takes over ...")
            self.stats["engine_fallback"] = "mip"
            return self.mip_search(best, d_ub, d_lb)
        if stopped or why == "interrupted":
            status = Outcome.INTERRUPTED
        elif why == "time_limit" or (time_left is not None and time_left <= 0):
            status = Outcome.TIME_LIMIT
        else:
            status = Outcome.UNKNOWN
        if best is None and d_lb is None:
            d_lb = 1.0 if self.norm == "card" else None
        return self.finish(status, best, d_lb, {"settled_by": ""})

    def card_descent(self, best: np.ndarray, proven_below: float = 1.0) -> AdversarialResult:
        """Minimal changed pixels by descent from a known example with ``k`` changes: ask the
        solver for *any* adversarial example with at most ``k − 1`` changes (a feasibility MIP
        over the smaller L0 region, with bounds computed for it). Infeasible proves ``k``
        minimal; a solution is pruned greedily and becomes the next ``k``."""
        center, base_region, stats = self.center, self.base_region, self.stats
        k = int(distance(best, center, "card"))
        proven_below = max(1.0, proven_below)  # 0 changes never flip the label
        rounds: list[dict] = []
        while True:
            if interrupts.stop_requested():
                return self.finish(Outcome.INTERRUPTED, best, proven_below)
            region = L0Ball(center, k - 1, base_region.lo, base_region.hi, base_region.free)
            report(f"min-adv-card: descent round {len(rounds) + 1}: best {k} changed pixels, proven ≥ "
                   f"{proven_below:g}; bounds for at most {k - 1} ...")
            query = self.query(None, region)
            rounds.append({"at_most": k - 1, "bounds": query.bounds.report()})
            # the region searched is the base region; each descent round asks for fewer changes
            stats.update({"region": base_region.describe(), "bounds": query.bounds.report(),
                          "problem": query.problem.summary(), "descent": rounds})
            if query.property.proven_infeasible:
                return self.finish(Outcome.OPTIMAL, best, float(k), {"settled_by": "bounds"})
            if interrupts.stop_requested():
                return self.finish(Outcome.INTERRUPTED, best, proven_below)
            remaining = self.remaining()
            report(f"min-adv-card: {describe_query(query)}; solver {self.solver.name}, "
                   f"time left {seconds(remaining)} ...")
            res = self.solver.solve(query.problem, SolveOptions(
                time_limit=remaining, threads=self.ctx.options.threads, primal_heuristics=False))
            rounds[-1].update(status=res.status, time_s=round(res.time_s, 4))
            report(f"min-adv-card: round {len(rounds)}: solver {res.status} ({res.time_s:.1f} s)")
            stats.update({"solver_status": res.status, "settled_by": "solver",
                          "solver_time_s": round(sum(r.get("time_s", 0) for r in rounds), 4)})
            if res.status == Status.INFEASIBLE:
                return self.finish(Outcome.OPTIMAL, best, float(k))
            candidate = None
            if res.x is not None:
                candidate = snap(query.decode(res.x), center, self.levels)
                if not self.adversarial(candidate):
                    candidate = repair(self.model, candidate, center, self.label, self.target,
                                       self.levels)
            if candidate is None or distance(candidate, center, "card") >= k:
                stopped = interrupts.stop_requested() or res.status == Status.INTERRUPTED
                return self.finish(Outcome.INTERRUPTED if stopped else Outcome.TIME_LIMIT, best,
                                   proven_below)
            pruned = prune_changes(self.net, candidate, center, self.label, self.target, self.margin)
            if self.adversarial(pruned):
                candidate = pruned
            best, k = candidate, int(distance(candidate, center, "card"))
            if k <= 1:
                return self.finish(Outcome.OPTIMAL, best, 1.0)


def _result(model, center, norm, label, target, backend, status, example, bound, elapsed, margin,
            stats, levels) -> AdversarialResult:
    shape = tuple(model.input_shape)
    adv_label = None
    if example is not None:
        ok, adv_label = is_adversarial(model, example, label, target)
        if not ok:       # never report a non-flipping image
            example, adv_label = None, None
            status = Outcome.INTERRUPTED if status == Outcome.INTERRUPTED else Outcome.TIME_LIMIT
    if example is not None and not levels:
        rounded = np.round(example * 255) / 255
        stats["rounded_8bit_adversarial"] = is_adversarial(model, rounded, label, target)[0]
    objective = distance(example, center, norm) if example is not None else None
    if bound is not None:      # distances are ≥ 0: a solver's bound of −3e-05 proves only 0
        bound = max(0.0, float(bound))
    return AdversarialResult(
        task=f"min-adv-{norm}", model=model.name, norm=norm, backend=backend, status=status,
        objective=objective, bound=bound, original_label=label, adversarial_label=adv_label,
        target=target, time_s=elapsed, image=center.reshape(shape),
        adversarial=None if example is None else example.astype(np.float64).reshape(shape),
        margin=margin, classes=list(model.classes), stats=stats)
