"""Robustness certificates: is there an adversarial example within a budget? Yes or no, fast.

``certify`` answers in the cheapest way that settles it, and stops there (``engine="auto"``,
the default; see :mod:`verify.tasks.engine_stage`):

1. **bounds** — interval and symbolic bounds over the region; if they show no other label
   can win, the image is ``verified`` at once;
2. **engine** — :mod:`verify.engine` within half the time left: PGD, CROWN, α-CROWN, then
   branch and bound over ReLU phases (stages ``attack``, ``crown``, ``alpha-crown``, ``bab``);
   a counterexample is re-checked by the Keras model before it is reported. Skipped when the
   bounds leave at most :data:`~verify.tasks.engine_stage.SMALL_MIP_RELUS` ReLUs unstable
   (a tiny MIP is faster), and then replaced by a quick **attack**: greedy pixel changes
   (``pixels=k``) or projected gradient ascent (``eps``) in the region, whose hit, re-checked
   by the Keras model, is a ``counterexample``;
3. **MIP** — only if the engine left it open: LP bounds (starting from the engine's
   intermediate bounds, so the big-M values are tighter), a thorough attack, then a
   feasibility MIP (the first feasible point ends the search) for L∞, L1 and L0 budgets; for
   an L2 budget, the minimal squared-L2 MIQP with the budget ε² as cutoff (stage ``mip``).

``engine="mip"`` is the pipeline before the engine existed: the quick attack, interval →
symbolic → LP bounds, the thorough attack and the MIP. ``engine="bab"`` is step 2 alone
(what it cannot decide is ``unknown``). The result's ``stage`` (a JSON key) names
the stage that settled it, ``method`` the older coarse word (``attack``, ``bounds``,
``solver``), and ``engine_result`` the engine's figures (its status, best bound, subdomains)
when it ran.

On a time limit the status is ``unknown``; on Ctrl-C or SIGTERM (:mod:`verify.interrupts`),
``interrupted`` unless already decided. The margin (default 1e-3) applies to
counterexamples the solver finds; ``verified`` means no label change at all, with
``margin`` as the numerical safety gap.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import interrupts
from ..attacks.search import distance, greedy_pixels, min_norm_search, pgd
from ..backends import SolveOptions, Status, get_backend
from ..budget import Deadline
from ..encodings.tightening import compute_bounds
from ..encodings.properties import DEFAULT_MARGIN, bounds_exclude_label_change, check_labels
from ..encodings.query import build_query
from ..engine import Spec
from ..errors import InvalidInputError
from ..progress import describe_query, report, seconds
from ..regions import budget_region
from ..results import CertifyResult, Outcome
from .common import VERIFY_MARGIN, bound_budget, is_adversarial, repair, snap
from .context import prepare
from .bnn import BnnTask, bnn_certify
from .bnn_int import certify_integer, is_integer_bnn
from .engine_stage import (SMALL_MIP_RELUS, check_engine, cheap_bounds, engine_summary,
                           engine_time, method_of, mip_bounds, run_engine)

#: Share of the time left that the thorough attack before the MIP may take.
THOROUGH_ATTACK_SHARE = 0.25


@interrupts.scoped
def certify(model: Any, image: np.ndarray, eps: float | None = None, norm: str = "linf",
            pixels: int | None = None, target: int | None = None, backend: str | None = None,
            time_limit: float | None = None, margin: float = DEFAULT_MARGIN,
            threads: int | None = None, encoding: str | None = None,
            engine: str | None = None) -> CertifyResult:
    """Prove that no input within the budget changes the label, or find one that does.

    Budget: ``eps`` in ``norm`` (``"linf"``, ``"l1"``, ``"l2"``: the plain Euclidean radius) or
    ``pixels`` (at most that many changed pixels, each to any value). ``target``: only a change
    to that label counts.

    On a binarized network (BNN) the budget is ``pixels``: at most that many flipped input
    bits, and ``encoding`` (``"cnf"``, default, ``"mip"`` or ``"ip"``) picks the encoding
    (see :mod:`verify.tasks.bnn`).

    ``engine``: ``"auto"`` (default: attack, bounds, the bound engine, then the MIP on what
    it leaves open), ``"bab"`` (the bound engine alone) or ``"mip"`` (no engine); see the
    module docstring. Not used for BNNs. ``threads`` limits the MIP solver.

    Ctrl-C (see :mod:`verify.interrupts`) before the question is decided gives status
    ``interrupted`` (undecided, like ``unknown``; the engine's best bound is in
    ``stats["engine_result"]``).
    """
    from ..validate import check, check_eps
    check(pixels=pixels)
    check_eps(eps, norm)
    ctx = prepare(model, image, backend=backend, time_limit=time_limit, threads=threads,
                  margin=margin, engine=check_engine(engine), encoding=encoding)
    t0, model, center, label, engine = (ctx.started, ctx.model, ctx.image, ctx.label,
                                        ctx.options.engine)
    if target is not None:
        check_labels(model.network.num_classes, label, target)
    if ctx.binarized and is_integer_bnn(model.network):
        return certify_integer(model, center, label, target, encoding, backend, time_limit,
                               threads, eps, norm, pixels, t0)
    if ctx.binarized:
        if pixels is None or eps is not None:
            raise InvalidInputError("a BNN sees each pixel as one bit: give the budget as "
                                    "pixels=k (at most k flipped pixels), not eps")
        task = BnnTask.create(model, center, label, target, encoding or "cnf", backend,
                              time_limit, threads)
        return bnn_certify(task, pixels, t0)
    region = budget_region(center, eps, norm, pixels)
    net = model.network.merged_affine()
    backend_name = backend or ("scip" if pixels is None and norm == "l2" else "highs")
    solver = get_backend(backend_name)
    if engine != "bab":
        solver.check_kind("miqp" if pixels is None and norm == "l2" else "milp")
    stats: dict = {"engine": engine}

    def done(status, stage, example=None):
        adv_label = None
        if example is not None:
            ok, adv_label = is_adversarial(model, example, label, target)
            if not ok:
                example, status, stage = None, Outcome.UNKNOWN, ""
        if status == Outcome.UNKNOWN and interrupts.stop_requested():
            status = Outcome.INTERRUPTED      # undecided because the user stopped it
        stats["stage"] = stage
        return CertifyResult("certify", model.name, region.describe(),
                             "engine" if engine == "bab" else solver.name, status, method_of(stage),
                             label, adv_label, time.perf_counter() - t0,
                             center.reshape(model.input_shape),
                             None if example is None else example.reshape(model.input_shape),
                             list(model.classes), stats)

    lo, hi = region.lo, region.hi
    l2 = pixels is None and norm == "l2"
    spec = Spec.label_change(net.num_outputs, label, target)

    def confirm(x: np.ndarray) -> bool:
        return _confirmed(model, x, center, region, eps, norm, pixels, label, target)

    if engine == "bab":
        return _engine_verdict(done, run_engine(net, region, spec, engine_time(engine, time_limit, t0),
                                                VERIFY_MARGIN, confirm, "certify"), stats)
    engine_result, bounds = None, None
    if engine == "auto" and not interrupts.stop_requested():
        # 1. cheap bounds, 2. the engine (its own attack first); 3. the MIP on what is left open
        report(f"certify {region.describe()}: interval and symbolic bounds ...")
        bounds = cheap_bounds(net, region)
        if bounds_exclude_label_change(net, region, bounds, label, target, VERIFY_MARGIN):
            stats["bounds"] = bounds.report()
            return done(Outcome.VERIFIED, "bounds")
        unstable = bounds.unstable(net)
        if unstable > SMALL_MIP_RELUS:
            engine_result = run_engine(net, region, spec,
                                       engine_time(engine, time_limit, t0, net, region, unstable),
                                       VERIFY_MARGIN, confirm, "certify", initial_bounds=bounds)
            if engine_result.status in ("verified", "counterexample", "interrupted"):
                return _engine_verdict(done, engine_result, stats)
            stats["engine_result"] = engine_summary(engine_result)
            report(f"certify: the engine left it open ({engine_result.status}); LP bounds from "
                   "the engine's bounds, then the MIP ...")
    if engine_result is None:
        # 1. a quick attack (the engine, when it ran, began with a stronger one)
        report(f"certify {region.describe()}: quick attack ...")
        if pixels is not None:
            hit = greedy_pixels(net, center, label, target, margin, lo, hi, max_pixels=pixels)
        else:
            hit = pgd(net, center, norm, eps, label, target, margin, lo, hi, steps=100, restarts=2)
        if hit is not None and _within(hit, center, region, eps, norm, pixels) \
                and is_adversarial(model, hit, label, target)[0]:
            return done(Outcome.COUNTEREXAMPLE, "attack", hit)
    if interrupts.stop_requested():
        return done(Outcome.UNKNOWN, "")
    # 2. bounds over the region (LP-tightened): do they already prove robustness?
    if bounds is not None:
        bounds = mip_bounds(net, region, bounds, engine_result, bound_budget(time_limit, t0))
    else:
        report("certify: no counterexample from the attack; bounds over the region ...")
        bounds = compute_bounds(net, region, time_limit=bound_budget(time_limit, t0))
    stats["bounds"] = bounds.report()
    query = build_query(net, center, None, target, label, region, margin=VERIFY_MARGIN, bounds=bounds)
    report(f"certify: {describe_query(query)}")
    if query.property.proven_infeasible:
        return done(Outcome.VERIFIED, "bounds")
    # 2b. a thorough search before any solver call (not after the engine: its attack, PGD
    #     and APGD with restarts and targeted runs, is stronger, and the time left is the MIP's)
    if pixels is None and engine_result is None:
        report("certify: not settled by the bounds; thorough attack ...")
        search = Deadline(None if time_limit is None else THOROUGH_ATTACK_SHARE * max(
            0.0, time_limit - (time.perf_counter() - t0)))
        greedy = greedy_pixels(net, center, label, target, margin, lo, hi, deadline=search)
        best = min_norm_search(net, center, norm, label, target, margin, lo, hi, seeds=[greedy],
                               deadline=search)
        if best is not None and _within(best, center, region, eps, norm, pixels) \
                and is_adversarial(model, best, label, target)[0]:
            return done(Outcome.COUNTEREXAMPLE, "attack", best)
    budget = eps * eps * (1 + 1e-9) if l2 else None
    # 3. exact solve: a counterexample with the usual margin first; if there is none, prove
    #    robustness with the tiny verification margin (the band between is reported unknown)
    for phase_margin in (margin, VERIFY_MARGIN):
        if interrupts.stop_requested():
            return done(Outcome.UNKNOWN, "")
        query = build_query(net, center, "l2" if l2 else None, target, label, region,
                            margin=phase_margin, bounds=bounds)
        stats["problem"] = query.problem.summary()
        if query.property.proven_infeasible:
            if phase_margin == VERIFY_MARGIN:
                return done(Outcome.VERIFIED, "bounds" if "solver_status" not in stats else "mip")
            continue
        remaining = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - t0))
        report(f"certify: solver {solver.name} ({'counterexample' if phase_margin == margin else 'proof'} "
               f"phase, margin {phase_margin:g}), time left {seconds(remaining)} ...")
        res = solver.solve(query.problem, SolveOptions(time_limit=remaining, threads=threads, cutoff=budget))
        stats["solver_status"] = res.status
        if res.x is not None and (not l2 or res.objective <= budget):
            candidate = snap(query.decode(res.x), center, None)
            if not is_adversarial(model, candidate, label, target)[0]:
                candidate = repair(model, candidate, center, label, target, None)
                if candidate is not None and not _within(candidate, center, region, eps, norm, pixels):
                    candidate = None
            if candidate is not None:
                return done(Outcome.COUNTEREXAMPLE, "mip", candidate)
            return done(Outcome.UNKNOWN, "")     # only boundary points: undecided
        proven_none = res.status in (Status.INFEASIBLE, Status.CUTOFF) or (
            l2 and res.status == Status.OPTIMAL and res.objective > budget)
        if not proven_none:
            return done(Outcome.UNKNOWN, "")     # time limit
        if phase_margin == VERIFY_MARGIN:
            return done(Outcome.VERIFIED, "mip")
    return done(Outcome.UNKNOWN, "")


def _engine_verdict(done, r, stats: dict) -> CertifyResult:
    """The certify result of an engine answer (``done(status, stage, example)``); undecided
    answers are ``unknown`` (``interrupted`` when stopped)."""
    stats["engine_result"] = engine_summary(r)
    if r.status == "verified":
        return done(Outcome.VERIFIED, r.stage)
    if r.status == "counterexample":
        return done(Outcome.COUNTEREXAMPLE, r.stage, r.x)
    return done(Outcome.UNKNOWN, "")


def _confirmed(model, x, center, region, eps, norm, pixels, label, target) -> bool:
    """Whether ``x`` is inside the budget and the model's own runtime (Keras, float32) gives
    it another label (the target)."""
    return _within(x, center, region, eps, norm, pixels) and is_adversarial(model, x, label, target)[0]


def _within(x, center, region, eps, norm, pixels) -> bool:
    if np.any(x < region.lo - 1e-12) or np.any(x > region.hi + 1e-12):
        return False
    if pixels is not None:
        return np.count_nonzero(x != center) <= pixels
    budget = eps * eps if norm == "l2" else eps
    return distance(x, center, norm) <= budget * (1 + 1e-9)
