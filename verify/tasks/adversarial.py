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
from typing import Any

import numpy as np

from .. import interrupts
from ..attacks.search import distance, greedy_pixels, min_norm_search
from ..backends import SolveOptions, Status, get_backend
from ..bounds import STAGES
from ..budget import Deadline, part_limit
from ..vocabulary import normalise_norm
from ..encodings.properties import DEFAULT_MARGIN, check_labels
from ..encodings.query import build_query
from ..errors import InvalidInputError
from ..models import LoadedModel, load_model
from ..progress import describe_query, report, seconds
from ..regions import Box, L0Ball, L1Ball, L2Ball, LinfBall, Region
from ..results import AdversarialResult, Outcome, outcome_of
from .bnn import BnnTask, bnn_min_flips

#: Pixels whose solver value is this close to the original are set exactly to it.
SNAP_TOL = 1e-6
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
    t0 = time.perf_counter()
    from ..validate import check
    check(time_limit=time_limit, total_time_limit=total_time_limit, threads=threads, margin=margin,
          pixel_levels=pixel_levels, rel_gap=rel_gap)
    model = load_model(model) if not isinstance(model, LoadedModel) else model
    norm = normalise_norm(norm)
    center = _as_input(model, image)
    label = int(model.reference_labels(center)[0])
    n_classes = model.network.num_classes
    if isinstance(target, str):
        if target != "all":
            raise InvalidInputError(f"target must be a label, None or 'all', not {target!r}")
        others, total = [t for t in range(n_classes) if t != label], Deadline(total_time_limit)
        results = []
        for i, t in enumerate(others):
            results.append(min_adversarial(
                model, image, norm, t, backend, part_limit(time_limit, total, len(others) - i),
                margin, pixel_levels, threads, rel_gap, region, bound_stages, use_heuristic, encoding))
            if interrupts.stop_requested():
                break                  # the targets done so far, and the interrupted one
        return results
    if target is not None:
        check_labels(n_classes, label, int(target) if isinstance(target, (int, np.integer)) else target)
        target = int(target)
    if model.network.is_binarized:
        if norm != "card" or pixel_levels is not None or region is not None:
            raise InvalidInputError("a BNN sees each pixel as one bit: only norm='card' (flipped "
                                    "pixels) applies, without pixel_levels or region")
        task = BnnTask.create(model, center, label, target, encoding or "cnf", backend,
                              time_limit, threads)
        return bnn_min_flips(task, t0)
    if encoding not in (None, "mip"):
        raise InvalidInputError(f"encoding {encoding!r} is for binarized networks; "
                                f"{model.name} is encoded as a MIP")
    backend_name = backend or ("scip" if norm == "l2" else "highs")
    solver = get_backend(backend_name)
    solver.check_kind("miqp" if norm == "l2" else "milp")
    if pixel_levels is not None and (int(pixel_levels) != pixel_levels or pixel_levels < 2):
        raise InvalidInputError(f"pixel_levels must be an integer ≥ 2, got {pixel_levels}")
    return _solve(model, center, norm, label, target, solver, time_limit, margin, pixel_levels,
                  threads, rel_gap, region or Box(center), bound_stages, use_heuristic)


def bound_budget(time_limit: float | None, t0: float) -> float | None:
    """Seconds the LP stage of the bounds may take: half of what is left of ``time_limit``
    (counted from ``t0``), so that the solver keeps the other half; None without a limit."""
    if time_limit is None:
        return None
    return max(0.0, 0.5 * (time_limit - (time.perf_counter() - t0)))


def _as_input(model: LoadedModel, image) -> np.ndarray:
    x = np.asarray(image, dtype=np.float64)
    if x.size != model.network.num_inputs:
        raise InvalidInputError(
            f"image has {x.size} values; model {model.name} takes {model.network.num_inputs} "
            f"(shape {model.input_shape})")
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise InvalidInputError("image values must lie in [0, 1]")
    return x.ravel()


def is_adversarial(model: LoadedModel, x: np.ndarray, label: int, target: int | None) -> tuple[bool, int]:
    """Whether the Keras model (float32) labels ``x`` as wanted, and the label it gives."""
    got = int(model.reference_labels(x)[0])
    return (got == target) if target is not None else (got != label), got


def snap(x: np.ndarray, center: np.ndarray, levels: int | None) -> np.ndarray:
    """Set pixels within the solver's tolerance of the original exactly to it; with
    ``levels``, round the others to the nearest level."""
    x = x.copy()
    x[np.abs(x - center) <= SNAP_TOL] = center[np.abs(x - center) <= SNAP_TOL]
    if levels:
        moved = x != center
        x[moved] = np.round(x[moved] * (levels - 1)) / (levels - 1)
    return np.clip(x, 0.0, 1.0)


def round_away(x: np.ndarray, center: np.ndarray, levels: int) -> np.ndarray:
    """Round changed pixels to the level on the far side from the original (keeps the change)."""
    s = levels - 1
    out = x.copy()
    up, down = x > center, x < center
    out[up] = np.ceil(x[up] * s - 1e-9) / s
    out[down] = np.floor(x[down] * s + 1e-9) / s
    return np.clip(out, 0.0, 1.0)


def _heuristic(model, net, center, norm, label, target, margin, region, levels):
    """A validated adversarial example from the fast searches, or None."""
    lo, hi = region.lo, region.hi
    greedy = greedy_pixels(net, center, label, target, margin, lo, hi)
    best = greedy if norm == "card" else min_norm_search(net, center, norm, label, target, margin,
                                                         lo, hi, seeds=[greedy])
    if best is None:
        return None
    if levels:
        best = round_away(best, center, levels)
    ok, _ = is_adversarial(model, best, label, target)
    return best if ok else None


def _restricted_region(norm: str, center, d_ub: float, base: Region) -> Region:
    """The ball of radius ``d_ub`` (L2: √d_ub) around ``center`` within ``base``."""
    free = base.free
    if norm == "linf":
        region = LinfBall(center, d_ub, free)
    elif norm == "l1":
        region = L1Ball(center, d_ub, free)
    else:
        region = L2Ball(center, float(np.sqrt(d_ub)), free)
    region.lo, region.hi = np.maximum(region.lo, base.lo), np.minimum(region.hi, base.hi)
    return region


def _solve(model: LoadedModel, center, norm, label, target, solver, time_limit, margin, levels,
           threads, rel_gap, base_region, bound_stages, use_heuristic) -> AdversarialResult:
    t0 = time.perf_counter()
    net = model.network.merged_affine()
    stats: dict = {"pixel_levels": levels, "time_limit": time_limit}
    heuristic = _heuristic(model, net, center, norm, label, target, margin, base_region, levels) \
        if use_heuristic else None
    d_ub = distance(heuristic, center, norm) if heuristic is not None else None
    stats["heuristic_objective"] = d_ub
    stats["heuristic_time_s"] = round(time.perf_counter() - t0, 4)
    report(f"min-adv-{norm}: heuristic: " + ("no example" if d_ub is None else f"example at {d_ub:.6g}")
           + f" ({stats['heuristic_time_s']:.1f} s)")

    def finish(status, example, bound, extra=None):
        result = _result(model, center, norm, label, target, solver.name, status, example, bound,
                         time.perf_counter() - t0, margin, {**stats, **(extra or {})}, levels)
        return result

    if d_ub is not None and norm == "card" and d_ub <= 1:
        return finish(Outcome.OPTIMAL, heuristic, 1.0, {"settled_by": "heuristic (one pixel)"})
    if interrupts.stop_requested():
        return finish(Outcome.INTERRUPTED, heuristic, 1.0 if norm == "card" else None)
    if d_ub is not None and norm == "card":
        return _card_descent(model, net, center, label, target, solver, time_limit, margin, levels,
                             threads, base_region, bound_stages, heuristic, t0, stats, finish)
    region = _restricted_region(norm, center, d_ub, base_region) if d_ub is not None else base_region
    report(f"min-adv-{norm}: bounds over the search region ...")
    query = build_query(net, center, norm, target, label, region, margin, bound_stages,
                        pixel_levels=levels, bound_time_limit=bound_budget(time_limit, t0))
    stats.update({"region": base_region.describe(), "search_region": region.describe(),
                  "bounds": query.bounds.report(), "problem": query.problem.summary()})
    report(f"min-adv-{norm}: {describe_query(query)}")
    if query.property.proven_infeasible:
        if heuristic is not None:
            return finish(Outcome.OPTIMAL, heuristic, d_ub, {"settled_by": "bounds"})
        return finish(Outcome.INFEASIBLE, None, None, {"settled_by": "bounds"})
    if interrupts.stop_requested():
        return finish(Outcome.INTERRUPTED, heuristic, 1.0 if norm == "card" else None)
    remaining = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - t0))
    cutoff = None
    if d_ub is not None and norm != "card":
        cutoff = d_ub * (1 + 1e-9) + 1e-12
    options = SolveOptions(time_limit=remaining, threads=threads, rel_gap=rel_gap, cutoff=cutoff)
    report(f"min-adv-{norm}: solver {solver.name} (best known {'none' if d_ub is None else f'{d_ub:.6g}'}, "
           f"time left {seconds(remaining)}) ...")
    res = solver.solve(query.problem, options)
    stats.update({"solver_status": res.status, "solver_time_s": round(res.time_s, 4),
                  "settled_by": "solver"})
    proven = res.status in (Status.OPTIMAL, Status.INFEASIBLE, Status.CUTOFF)
    candidate = None
    if res.x is not None:
        candidate = snap(query.decode(res.x), center, levels)
        if not is_adversarial(model, candidate, label, target)[0]:
            candidate = _repair(model, candidate, center, label, target, levels)
            stats["repaired"] = candidate is not None
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
        return finish(status, None, bound)
    objective = distance(best, center, norm)
    if bound is not None:
        bound = min(bound, objective)
    if proven and bound is not None and objective - bound <= rel_gap * max(abs(objective), 1e-12) + 1e-9:
        return finish(Outcome.OPTIMAL, best, bound)
    return finish(_unfinished(res.status), best, bound)


def _unfinished(solver_status: str) -> Outcome:
    """The outcome of a result the solver did not prove: ``interrupted`` after a stop request
    (Ctrl-C, SIGTERM), else the solver's status through the one mapping
    (:func:`verify.status.outcome_of`, unsettled: ``time_limit``, ``interrupted``, ``error``,
    or ``unknown`` for a solver proof the task could not use) -- never a bare solver word."""
    if interrupts.stop_requested():
        return Outcome.INTERRUPTED
    return outcome_of(solver_status, settled=False)


def _card_descent(model, net, center, label, target, solver, time_limit, margin, levels, threads,
                  base_region, bound_stages, best, t0, stats, finish):
    """Minimal changed pixels by descent from a known example with ``k`` changes: ask the
    solver for *any* adversarial example with at most ``k − 1`` changes (a feasibility MIP over
    the smaller L0 region, with bounds computed for it). Infeasible proves ``k`` minimal;
    a solution is pruned greedily and becomes the next ``k``."""
    from ..attacks.search import prune_changes

    k = int(distance(best, center, "card"))
    proven_below = 1.0                     # 0 changes never flip the label
    rounds = []
    while True:
        if interrupts.stop_requested():
            return finish(Outcome.INTERRUPTED, best, proven_below)
        region = L0Ball(center, k - 1, base_region.lo, base_region.hi, base_region.free)
        report(f"min-adv-card: descent round {len(rounds) + 1}: best {k} changed pixels, proven ≥ "
               f"{proven_below:g}; bounds for at most {k - 1} ...")
        query = build_query(net, center, None, target, label, region, margin, bound_stages,
                            pixel_levels=levels, bound_time_limit=bound_budget(time_limit, t0))
        rounds.append({"at_most": k - 1, "bounds": query.bounds.report()})
        # the region searched is the base region; each descent round asks for fewer changes
        stats.update({"region": base_region.describe(), "bounds": query.bounds.report(),
                      "problem": query.problem.summary(), "descent": rounds})
        if query.property.proven_infeasible:
            return finish(Outcome.OPTIMAL, best, float(k), {"settled_by": "bounds"})
        if interrupts.stop_requested():
            return finish(Outcome.INTERRUPTED, best, proven_below)
        remaining = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - t0))
        report(f"min-adv-card: {describe_query(query)}; solver {solver.name}, time left {seconds(remaining)} ...")
        res = solver.solve(query.problem, SolveOptions(time_limit=remaining, threads=threads,
                                                       primal_heuristics=False))
        rounds[-1].update(status=res.status, time_s=round(res.time_s, 4))
        report(f"min-adv-card: round {len(rounds)}: solver {res.status} ({res.time_s:.1f} s)")
        stats.update({"solver_status": res.status, "settled_by": "solver",
                      "solver_time_s": round(sum(r.get("time_s", 0) for r in rounds), 4)})
        if res.status == Status.INFEASIBLE:
            return finish(Outcome.OPTIMAL, best, float(k))
        candidate = None
        if res.x is not None:
            candidate = snap(query.decode(res.x), center, levels)
            if not is_adversarial(model, candidate, label, target)[0]:
                candidate = _repair(model, candidate, center, label, target, levels)
        if candidate is None or distance(candidate, center, "card") >= k:
            stopped = interrupts.stop_requested() or res.status == Status.INTERRUPTED
            return finish(Outcome.INTERRUPTED if stopped else Outcome.TIME_LIMIT, best, proven_below)
        pruned = prune_changes(net, candidate, center, label, target, margin)
        if is_adversarial(model, pruned, label, target)[0]:
            candidate = pruned
        best, k = candidate, int(distance(candidate, center, "card"))
        if k <= 1:
            return finish(Outcome.OPTIMAL, best, 1.0)


def _repair(model, x, center, label, target, levels):
    """Push a boundary point slightly further along its change until Keras agrees."""
    delta = x - center
    for factor in (1.0005, 1.002, 1.01, 1.05):
        trial = np.clip(center + factor * delta, 0.0, 1.0)
        if levels:
            trial = round_away(trial, center, levels)
        if is_adversarial(model, trial, label, target)[0]:
            return trial
    return None


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
