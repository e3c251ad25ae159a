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

Only a status ``optimal`` is a proof of minimality. On a time limit the best validated
example and the proven lower bound are returned with status ``time_limit``; on Ctrl-C or
SIGTERM (:mod:`verify.interrupts`) the same, with status ``interrupted``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .. import interrupts
from ..attacks.search import distance, greedy_pixels, min_norm_search, prune_changes
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
from .common import bound_budget, is_adversarial, repair, round_away, snap
from .context import TaskContext, prepare

__all__ = ["DEFAULT_GAP", "min_adversarial"]

DEFAULT_GAP = 1e-4


@interrupts.scoped
def min_adversarial(model: Any, image: np.ndarray, norm: str = "card", target: int | str | None = None,
                    backend: str | None = None, time_limit: float | None = None,
                    margin: float = DEFAULT_MARGIN, pixel_levels: int | None = None,
                    threads: int | None = None, rel_gap: float = DEFAULT_GAP,
                    region: Region | None = None, bound_stages=STAGES,
                    use_heuristic: bool = True, encoding: str | None = None,
                    total_time_limit: float | None = None
                    ) -> AdversarialResult | list[AdversarialResult]:
    """The provably smallest change to ``image`` that changes ``model``'s label.

    ``model``: a bundled name, a path, a Keras model or a :class:`LoadedModel`. ``norm``:
    ``"card"`` (changed pixels), ``"l1"``, ``"l2"`` (sum of squared changes; needs an MIQP
    backend, default ``scip``) or ``"linf"``. ``target``: ``None`` (any other label), a label,
    or ``"all"`` for one result per other label. ``pixel_levels=256`` restricts changed pixels
    to 8-bit values. ``region`` restricts the search (default: all of [0, 1]^n).
    ``use_heuristic=False`` gives the plain formulation (bounds over the whole region, no
    heuristic bound, no cutoff) for comparison.

    On a binarized network (BNN) only ``norm="card"`` applies: the smallest number of
    flipped input bits, with ``encoding`` ``"cnf"`` (default), ``"mip"`` or ``"ip"`` (see
    :mod:`verify.tasks.bnn`).

    With ``target="all"``, ``time_limit`` applies to each target, and ``total_time_limit``
    (seconds) bounds them all together: each target gets at most an even split of what is
    left of it (time a target did not use passes on to the next ones). Progress goes to
    :func:`verify.progress.report`.

    Ctrl-C (see :mod:`verify.interrupts`) returns the best example so far and the proven
    lower bound with status ``interrupted``; with ``target="all"`` the list then ends with
    the interrupted target.
    """
    check(total_time_limit=total_time_limit, rel_gap=rel_gap)
    ctx = prepare(model, image, backend=backend, time_limit=time_limit, threads=threads,
                  margin=margin, levels=pixel_levels, encoding=encoding)
    norm = normalise_norm(norm)
    search = _Search(norm, None, rel_gap, region, tuple(bound_stages), use_heuristic)
    if isinstance(target, str):
        if target != "all":
            raise InvalidInputError(f"target must be a label, None or 'all', not {target!r}")
        label = ctx.label
        others = [t for t in range(ctx.model.network.num_classes) if t != label]
        total = Deadline(total_time_limit)
        results = []
        for i, t in enumerate(others):
            part = ctx.with_options(time_limit=part_limit(time_limit, total, len(others) - i))
            results.append(_min_adversarial(part, replace(search, target=t)))
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


def _min_adversarial(ctx: TaskContext, search: _Search) -> AdversarialResult:
    """One target: the BNN path (flips), or the ReLU path with its solver checked first."""
    if ctx.binarized:
        if search.norm != "card" or ctx.options.levels is not None or search.region is not None:
            raise InvalidInputError("a BNN sees each pixel as one bit: only norm='card' (flipped "
                                    "pixels) applies, without pixel_levels or region")
        return bnn_min_flips(BnnTask.from_context(ctx, search.target), ctx.started)
    solver = get_backend(ctx.options.backend or ("scip" if search.norm == "l2" else "highs"))
    solver.check_kind("miqp" if search.norm == "l2" else "milp")
    return _Run(ctx, search, solver).solve()


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

    def __init__(self, ctx: TaskContext, search: _Search, solver: Backend):
        self.ctx, self.search, self.solver = ctx, search, solver
        self.t0 = time.perf_counter()
        self.model, self.center, self.label = ctx.model, ctx.image, ctx.label
        self.norm, self.target = search.norm, search.target
        self.levels, self.margin = ctx.options.levels, ctx.options.margin
        self.time_limit = ctx.options.time_limit
        self.base_region = search.region or Box(ctx.image)
        self.net = ctx.model.network.merged_affine()
        self.stats: dict = {"pixel_levels": self.levels, "time_limit": self.time_limit}

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
        return _result(self.model, self.center, self.norm, self.label, self.target,
                       self.solver.name, status, example, bound, time.perf_counter() - self.t0,
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
        if heuristic is not None and norm == "card":
            return self.card_descent(heuristic)
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
            return self.finish(Outcome.INTERRUPTED, heuristic, 1.0 if norm == "card" else None)
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

    def card_descent(self, best: np.ndarray) -> AdversarialResult:
        """Minimal changed pixels by descent from a known example with ``k`` changes: ask the
        solver for *any* adversarial example with at most ``k − 1`` changes (a feasibility MIP
        over the smaller L0 region, with bounds computed for it). Infeasible proves ``k``
        minimal; a solution is pruned greedily and becomes the next ``k``."""
        center, base_region, stats = self.center, self.base_region, self.stats
        k = int(distance(best, center, "card"))
        proven_below = 1.0                     # 0 changes never flip the label
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
