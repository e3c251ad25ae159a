"""Exact tasks on binarized networks: flip robustness, minimal flips, minimal explanations.

A BNN sees each pixel as one bit (``x > 0.5``), so a change is a *flip*: a pixel is moved to
0.0 (if it was above 0.5) or to 1.0 (otherwise); every other pixel keeps its exact value.
Every question goes through one cardinality formula (:mod:`verify.encodings.bnn`) rendered as
``encoding="cnf"`` (python-sat, default ``sat:minicard``), ``"mip"`` or ``"ip"`` (HiGHS by
default, or SCIP/CPLEX/Pyomo). Every example is re-checked by the Keras model.

* :func:`bnn_certify` — no adversarial example within ``k`` flips (``verified``), or one.
* :func:`bnn_min_flips` — the smallest number of flips: greedy flip searches (on a smooth
  stand-in for the network, one per label it may reach) give an upper bound ``U``; on CNF
  (default backend ``portfolio``: CP-SAT and a 0-1 IP on HiGHS racing) the budgets
  k = 1, 2, ... are asked in turn, each a fresh formula in which the budget makes
  most first-layer neurons constant, so every unsatisfiable k is a *proven* lower bound k + 1
  and the first satisfiable k is the minimum; a budget left undecided hands the remaining
  time to a descent from ``U`` (tighter budgets under assumptions in one loaded solver) for
  a closer example. On a time limit the result has the best example and the proven bound.
  On MIP/IP the solver minimises the flip count within ``U - 1``.
* :func:`bnn_explain` (through :func:`verify.explain`) — a subset-minimal set of pixels
  whose bits force the label whatever the other bits are; one SAT solver holds the formula
  with every pixel free, and fixing pixels is a set of assumptions.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .. import interrupts
from ..attacks.flips import directed_flips, greedy_flips, prune_flips, single_flip_logits
from ..backends import SolveOptions, Status, get_backend
from ..backends import check_cnf_backend
from ..backends.cpsat import CpSatSession
from ..backends.sat import DEFAULT_SAT
from ..cnf import AtLeast
from ..encodings.bnn import ENCODINGS, BnnFormula, BnnLayers, bnn_formula, bnn_layers, flip_budget, to_problem
from ..encodings.bnn import IntegerRegion
from ..errors import InvalidInputError
from ..progress import report
from ..models import LoadedModel
from ..network import Network
from ..results import AdversarialResult, CertifyResult, Outcome
from .context import TaskContext


def default_backend(encoding: str) -> str:
    return DEFAULT_SAT if encoding == "cnf" else "highs"


@dataclass
class BnnTask:
    """What every BNN task needs: the model, the input, its bits and label, and the solver."""

    model: LoadedModel
    center: np.ndarray
    label: int
    target: int | None
    encoding: str
    backend: str
    parts: BnnLayers
    deadline: float | None
    threads: int | None = None
    calls: int = 0
    #: integer inputs: where each input may go (None: anywhere in 0..levels); see
    #: :mod:`verify.tasks.bnn_int`
    region: IntegerRegion | None = None
    #: False when the backend is the encoding's default (a task may then pick a faster one)
    backend_given: bool = True

    @classmethod
    def create(cls, model: LoadedModel, center: np.ndarray, label: int, target: int | None,
               encoding: str, backend: str | None, time_limit: float | None,
               threads: int | None) -> "BnnTask":
        if encoding not in ENCODINGS:
            raise InvalidInputError(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
        parts = bnn_layers(model.network, allow_integer=True)
        given = backend is not None
        backend = backend or default_backend(encoding)
        if encoding == "cnf":
            check_cnf_backend(backend)
        else:
            if "cnf" in get_backend(backend).capabilities:
                raise InvalidInputError(f"backend {backend} solves the cnf encoding; "
                                        f"use --encoding cnf or a MIP backend (highs, scip, cplex)")
            get_backend(backend).check_kind("milp")
        if parts.integer and backend in SLOW_TO_INTERRUPT and time_limit is not None:
            warnings.warn(f"{backend} on an integer-input BNN can run well past the time "
                          "limit: its wide order-encoded cardinality constraints are slow to "
                          "load and to propagate, and no interrupt reaches the solver inside "
                          "them; --encoding mip (the default there) keeps the limit", stacklevel=2)
        deadline = None if time_limit is None else time.perf_counter() + float(time_limit)
        task = cls(model, center, label, target, encoding, backend, parts, deadline, threads)
        task.backend_given = given
        return task

    @classmethod
    def from_context(cls, ctx: TaskContext, target: int | None = None) -> "BnnTask":
        """The BNN task of a prepared context (:func:`verify.tasks.context.prepare`): its
        options' encoding (default ``cnf``), backend, time limit (from now) and threads."""
        o = ctx.options
        return cls.create(ctx.model, ctx.image, ctx.label, target, o.encoding or "cnf", o.backend,
                          o.time_limit, o.threads)

    @property
    def network(self) -> Network:
        return self.model.network

    @cached_property
    def bits(self) -> np.ndarray:
        """The input's own bits (1 ⇔ +1); integer inputs: its integer values (int64)."""
        v = self.parts.binarize.forward(self.center[None])[0]
        return v.astype(np.int64) if self.parts.integer else (v > 0).astype(np.int8)

    def reaches(self, label: int) -> bool:
        """Whether ``label`` is what the task looks for (the target, or any other label)."""
        return label == self.target if self.target is not None else label != self.label

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.perf_counter())

    def formula(self, budget: int | None = None, free: np.ndarray | None = None,
                region: IntegerRegion | None = None) -> BnnFormula:
        """The formula within ``budget`` flips of the free pixels; integer inputs: within
        ``region`` (default: the task's, with ``budget`` changed inputs at most)."""
        if self.parts.integer and region is None:
            region = integer_region(self, budget)
        return bnn_formula(self.model.network, self.center, free, budget, self.label, self.target,
                           self.parts, region)

    def image(self, bits: np.ndarray) -> np.ndarray:
        """The input with the pixels whose bit differs flipped (to 0.0 or 1.0); integer
        inputs: with the pixels whose value differs set to ``value / levels``."""
        if self.parts.integer:
            return integer_image(self, bits)
        out = self.center.copy()
        flipped = bits != self.bits
        out[flipped] = np.where(self.bits[flipped] == 1, 0.0, 1.0)
        return out

    def validated(self, bits: np.ndarray) -> tuple[np.ndarray | None, int | None]:
        """The image of ``bits`` and its Keras label, if Keras agrees it is adversarial."""
        x = self.image(bits)
        got = int(self.model.reference_labels(x)[0])
        return (x, got) if self.reaches(got) else (None, got)

    def solve_problem(self, formula: BnnFormula, minimize: bool):
        """MIP/IP: solve the rendered problem; returns the SolveResult and the bits."""
        self.calls += 1
        problem = to_problem(formula, self.encoding, minimize_flips=minimize)
        res = get_backend(self.backend).solve(problem, SolveOptions(
            time_limit=self.remaining(), threads=self.threads))
        bits = formula.bits_from_columns(res.x) if res.x is not None else None
        return res, bits, problem.summary()


def _finish_certify(task: BnnTask, k: int, status: str, method: str, t0: float, stats: dict,
                    bits: np.ndarray | None = None) -> CertifyResult:
    stats.update(encoding=task.encoding, flips=k)
    return certify_result(task, f"at most {k} flipped pixels (binarised input)", status, method,
                          t0, stats, bits)


def certify_result(task: BnnTask, region_text: str, status: str, method: str, t0: float,
                   stats: dict, values: np.ndarray | None = None) -> CertifyResult:
    """The certify result of a BNN answer: ``values`` (the first layer's inputs, bits or
    integers) is the solver's example, kept only if Keras confirms it (else ``unknown``);
    undecided answers after a stop request are ``interrupted``."""
    example, adv_label = None, None
    if values is not None:
        example, adv_label = task.validated(values)
        if example is None:
            status, method = Outcome.UNKNOWN, ""
            stats["rejected"] = "the solver's example is not adversarial in Keras"
    if status == Outcome.UNKNOWN and interrupts.stop_requested():
        status = Outcome.INTERRUPTED          # undecided because the user stopped it
    shape = tuple(task.model.input_shape)
    stats["calls"] = task.calls
    return CertifyResult("certify", task.model.name, region_text, task.backend, status, method,
                         task.label, adv_label, time.perf_counter() - t0,
                         task.center.reshape(shape),
                         None if example is None else example.reshape(shape),
                         list(task.model.classes), stats)


def bnn_certify(task: BnnTask, k: int, t0: float) -> CertifyResult:
    """Is there an input with at most ``k`` flipped pixels that the BNN labels otherwise?"""
    if int(k) != k or k < 0:
        raise InvalidInputError(f"pixels must be a whole number ≥ 0, got {k}")
    k = int(k)
    stats: dict = {}
    hit = greedy_flips(task, k) if k > 0 else None
    if hit is not None and task.validated(hit)[0] is not None:
        return _finish_certify(task, k, Outcome.COUNTEREXAMPLE, "attack", t0, stats, hit)
    if interrupts.stop_requested():
        return _finish_certify(task, k, Outcome.UNKNOWN, "", t0, stats)
    formula = task.formula(budget=k)
    stats["formula"] = formula.size()
    stats["unstable"] = formula.stats["unstable"]
    if task.encoding == "cnf":
        task.calls += 1
        report(f"bnn certify: SAT solver {task.backend}, at most {k} flips ...")
        res = solve_staged(formula, task.backend if task.backend_given else None,
                           task.remaining(), task.threads, stats)
        bits = formula.bits_from(res.x) if res.x is not None else None
    else:
        res, bits, stats["problem"] = task.solve_problem(formula, minimize=False)
    if bits is not None:
        return _finish_certify(task, k, Outcome.COUNTEREXAMPLE, "solver", t0, stats, bits)
    if res.status == Status.INFEASIBLE:
        return _finish_certify(task, k, Outcome.VERIFIED, "solver", t0, stats)
    return _finish_certify(task, k, Outcome.UNKNOWN, "", t0, stats)


#: Without a backend, a cnf question goes to MiniCard for this many seconds first (it decides
#: most in milliseconds), then to the portfolio with the time left (bundled ``bnn``: MiniCard
#: leaves some small-budget counterexamples undecided after 5 s that the portfolio finds in
#: under 2 s; ``benchmarks/bnn.py``).
FIRST_STAGE_S = 0.5


def solve_staged(formula: BnnFormula, backend: str | None, time_limit: float | None,
                 threads: int | None, stats: dict | None = None):
    """One satisfiability question on the cnf encoding: on ``backend`` if one is given, else
    :data:`~verify.backends.sat.DEFAULT_SAT` for :data:`FIRST_STAGE_S` seconds and then
    :data:`MIN_FLIPS_BACKEND` (the portfolio) with the rest. ``stats["answered_by"]`` names
    the solver that answered."""
    t0 = time.perf_counter()
    if backend is not None:
        return check_cnf_backend(backend, threads).solve_formula(
            formula, SolveOptions(time_limit=time_limit))
    first = FIRST_STAGE_S if time_limit is None else min(FIRST_STAGE_S, time_limit)
    res = check_cnf_backend(DEFAULT_SAT, threads).solve_formula(formula, SolveOptions(time_limit=first))
    answered = DEFAULT_SAT
    left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
    if (res.status not in (Status.OPTIMAL, Status.INFEASIBLE) and not interrupts.stop_requested()
            and (left is None or left > 0) and get_backend(MIN_FLIPS_BACKEND).available()):
        report(f"bnn: {DEFAULT_SAT} undecided after {first:g} s; {MIN_FLIPS_BACKEND} ...")
        res = check_cnf_backend(MIN_FLIPS_BACKEND, threads).solve_formula(
            formula, SolveOptions(time_limit=left))
        answered = MIN_FLIPS_BACKEND
    if stats is not None:
        stats["answered_by"] = answered
    return res


#: The share of the remaining time that one ascending budget may take; a budget undecided
#: within it hands the rest to the descent (which improves the example). Measured on the
#: bundled ``bnn``: the ascending budgets prove the bounds, the descent rarely proves
#: anything but shortens the example a user gets on a time limit; since the directed
#: searches (:func:`~verify.attacks.flips.directed_flips`) start it within a few flips of
#: the minimum, the ascending budgets have most of the time (digit 9: its minimum, 6 flips,
#: took HiGHS 41 s to find, past a 0.75 share of a 60 s limit).
ASCEND_SHARE = 0.9
#: Pixels flipped per step by the coarse greedy search (when the directed ones find nothing).
GREEDY_BATCH = 8
#: Seconds below which the descent is not started (loading its formula takes 1-2 s on a busy
#: machine).
MIN_DESCENT_S = 3.0
#: The share of the time limit the greedy searches may take (they stop there).
GREEDY_SHARE = 0.2
#: The cnf backend of minimal flips when none is given: measured on the bundled ``bnn``
#: (benchmarks/bnn.py) it proves the most minima (CP-SAT proves the small budgets, the
#: IP on HiGHS finds the examples at the minimum).
MIN_FLIPS_BACKEND = "portfolio"
#: formula backends measured past their time limit on ``bnn-int8`` (min-adv-card, 10 s):
#: MiniCard 25.7 s (one ``solve`` given 7 s ran 22 s before its first conflict), the
#: portfolio 18.1 s (loading the order literals into two solvers)
SLOW_TO_INTERRUPT = ("sat:minicard", "sat:gluecard3", "sat:gluecard4", "portfolio")


def bnn_min_flips(task: BnnTask, t0: float, max_greedy: int = 40) -> AdversarialResult:
    """The smallest number of flipped pixels that changes the label (or reaches the target).

    Greedy flip searches on the network's smooth stand-in, one per label it may reach
    (:func:`~verify.attacks.flips.directed_flips`, pruned), give an upper bound ``U``.
    CNF (any SAT backend, cpsat, portfolio): :func:`_search_cnf` asks "at most k flips?" for k = 1, 2, ... — each a fresh
    formula whose budget k makes most first-layer neurons constant — and every
    unsatisfiable k raises the *proven* lower bound; the first satisfiable k is the minimum.
    On a time limit the result carries the best example and that proven bound. MIP/IP: the
    solver minimises the flips within ``U - 1``.
    """
    stats: dict = {"encoding": task.encoding}
    if task.encoding == "cnf" and not task.backend_given and get_backend(MIN_FLIPS_BACKEND).available():
        task.backend = MIN_FLIPS_BACKEND
    left = task.remaining()
    now = time.perf_counter()
    # first greedy searches on the network's smooth stand-in, one per label it may reach
    # (a close example in a second or so); if they find none within ``max_greedy`` flips,
    # a coarse one (8 flips a step, up to every pixel, pruned after): an example nearly always
    best = directed_flips(task, max_greedy, deadline=None if left is None else now + GREEDY_SHARE * left)
    if best is None and not interrupts.stop_requested():
        best = greedy_flips(task, int(task.bits.size), restarts=1, batch=GREEDY_BATCH,
                            deadline=None if left is None else now + 0.5 * left)
        if best is not None:
            best = prune_flips(task, best)
    best_x = task.validated(best)[0] if best is not None else None
    upper = int(np.count_nonzero(best != task.bits)) if best_x is not None else None
    stats["greedy_flips"] = upper
    report("bnn min flips: greedy search: " + ("no example" if upper is None else f"{upper} flips"))
    lower = 1
    status = Outcome.TIME_LIMIT
    if upper == 1:
        status, lower = Outcome.OPTIMAL, 1
    elif interrupts.stop_requested():
        status = Outcome.INTERRUPTED
    elif task.encoding == "cnf":
        status, lower, best_x = _search_cnf(task, upper, best_x, stats)
    else:
        formula = task.formula(budget=None if upper is None else upper - 1)
        stats["formula"], stats["unstable"] = formula.size(), formula.stats["unstable"]
        report(f"bnn min flips: solver {task.backend} ({task.encoding} encoding) ...")
        res, bits, stats["problem"] = task.solve_problem(formula, minimize=True)
        stats["solver_status"] = res.status
        proven = res.status in (Status.OPTIMAL, Status.INFEASIBLE)
        if bits is not None:
            x = task.validated(bits)[0]
            if x is None:            # an exact encoding should never do this; never trust it
                stats["rejected"] = "the solver's example is not adversarial in Keras"
                proven = False
            elif upper is None or np.count_nonzero(bits != task.bits) < upper:
                best_x = x
        if res.status == Status.INFEASIBLE:
            lower = upper
        elif res.bound is not None:
            lower = max(lower, int(np.ceil(res.bound - 1e-6)))
        if proven:
            if best_x is None:
                status = Outcome.INFEASIBLE
            else:
                status, lower = Outcome.OPTIMAL, int(np.count_nonzero(best_x != task.center))
        elif interrupts.stop_requested() or res.status == Status.INTERRUPTED:
            status = Outcome.INTERRUPTED
    return _flips_result(task, status, best_x, lower, t0, stats)


def _search_cnf(task: BnnTask, upper: int | None, best_x, stats: dict):
    """Minimal flips on a formula backend: ascending budgets prove the lower bound, then
    (if one budget stays undecided within :data:`ASCEND_SHARE` of the time left) the
    descent improves the example with the rest. Returns ``(status, lower, best_x)``.

    Why a fresh formula per budget rather than one loaded solver with tighter budgets under
    assumptions: a first-layer neuron whose margin exceeds k is a constant within k flips,
    and so may be the neurons after it, so the formula for k has far fewer unstable neurons
    (bundled ``bnn``, digit 1: 11 at k = 1, 90 at k = 7, against several hundred at the
    greedy bound); small budgets are then decided in milliseconds.
    """
    n = int(task.bits.size)
    lower = 1
    steps: list[dict] = []
    backend = check_cnf_backend(task.backend, task.threads)
    stats["ascending"] = steps
    if upper is None and not interrupts.stop_requested():
        # no example yet: is there one at all? (unsatisfiable: none; else an upper bound)
        remaining = task.remaining()
        formula = task.formula()
        task.calls += 1
        report(f"bnn min flips: SAT solver {task.backend}: any number of flips ...")
        session = backend.session(formula, remaining)
        try:
            res = session.solve((), None if remaining is None else remaining * (1 - ASCEND_SHARE))
        finally:
            session.close()
        steps.append({"at_most": None, "status": res.status, "time_s": round(res.time_s, 4)})
        if res.status == Status.INFEASIBLE:
            return Outcome.INFEASIBLE, None, None
        if res.x is not None:
            bits = prune_flips(task, formula.bits_from(res.x))
            x = task.validated(bits)[0]
            if x is not None:
                best_x, upper = x, int(np.count_nonzero(bits != task.bits))
                stats["solver_flips"] = upper
    while upper is None or lower < upper:
        if interrupts.stop_requested():
            return Outcome.INTERRUPTED, lower, best_x
        remaining = task.remaining()
        if remaining is not None and remaining <= 0:
            return Outcome.TIME_LIMIT, lower, best_x
        k = lower
        budget = k if k < n else None
        formula = task.formula(budget=budget)
        cap = None if remaining is None else remaining * ASCEND_SHARE
        task.calls += 1
        report(f"bnn min flips: SAT solver {task.backend}: at most {k} flips "
               f"({sum(formula.stats['unstable'])} unstable neurons) ...")
        session = backend.session(formula, cap)
        try:
            res = session.solve((), cap)
        finally:
            session.close()
        steps.append({"at_most": k, "status": res.status, "time_s": round(res.time_s, 4),
                      "unstable": sum(formula.stats["unstable"]),
                      "solver": (res.extra or {}).get("solver", task.backend)})
        if res.status == Status.INFEASIBLE:
            if budget is None:                        # no flips at all change the label
                return Outcome.INFEASIBLE, None, None
            lower = k + 1
            continue
        if res.x is not None:
            bits = prune_flips(task, formula.bits_from(res.x))
            x = task.validated(bits)[0]
            if x is None:          # cannot happen for an exact encoding; never trust it blindly
                stats["rejected"] = "a solver's model was not adversarial in Keras"
                return Outcome.TIME_LIMIT, lower, best_x
            # nothing within k - 1 flips, so this one has exactly k
            return Outcome.OPTIMAL, int(np.count_nonzero(bits != task.bits)), x
        if interrupts.stop_requested() or res.status == Status.INTERRUPTED:
            return Outcome.INTERRUPTED, lower, best_x
        break                                         # undecided: on to the descent
    if upper is not None and lower >= upper:
        return Outcome.OPTIMAL, upper, best_x
    remaining = task.remaining()
    if remaining is not None and remaining < MIN_DESCENT_S:      # too little left to gain
        return Outcome.TIME_LIMIT, lower, best_x
    status, found, best_x = _descend_cnf(task, upper, best_x, lower, stats)
    return status, (None if found is None else max(lower, found)), best_x


def _minimize_cpsat(task: BnnTask, session: CpSatSession, formula: BnnFormula, upper: int | None,
                    best_x, lower: int, stats: dict):
    """One CP-SAT objective search for the fewest flips within ``upper - 1`` (at least
    ``lower``, proven already); out of time, its proven lower bound."""
    task.calls += 1
    report(f"bnn min flips: CP-SAT minimises the flips (at most "
           f"{'any number of' if upper is None else upper - 1}) ...")
    res = session.minimize(formula.flip_literals(), (), task.remaining())
    stats["solver_status"] = res.status
    if res.x is not None:
        x = task.validated(prune_flips(task, formula.bits_from(res.x)))[0]
        if x is None:          # cannot happen for an exact encoding; never trust it blindly
            stats["rejected"] = "a CP-SAT solution was not adversarial in Keras"
            return Outcome.TIME_LIMIT, lower, best_x
        best_x = x
    if res.status == Status.INFEASIBLE:       # nothing within upper - 1 flips
        return (Outcome.OPTIMAL if best_x is not None else Outcome.INFEASIBLE), upper, best_x
    if res.status == Status.OPTIMAL:
        return Outcome.OPTIMAL, int(res.objective), best_x
    if res.bound is not None:
        lower = max(lower, int(res.bound))
    stopped = interrupts.stop_requested() or res.status == Status.INTERRUPTED
    return (Outcome.INTERRUPTED if stopped else Outcome.TIME_LIMIT), lower, best_x


def _descend_cnf(task: BnnTask, upper: int | None, best_x, lower: int, stats: dict):
    """Tighten the flip budget in one loaded solver until it is unsatisfiable (CP-SAT: its
    objective search instead); ``lower`` flips are known to be needed, which the formula
    states too (a redundant constraint that prunes the search)."""
    formula = task.formula(budget=None if upper is None else upper - 1)
    if lower > 1:
        flips = formula.flip_literals()
        formula.constraints.append(AtLeast(flips, lower, 0, 0, len(flips)))
    stats["formula"], stats["unstable"] = formula.size(), formula.stats["unstable"]
    session = check_cnf_backend(task.backend, task.threads).session(formula, task.remaining())
    if isinstance(session, CpSatSession):         # CP-SAT: its own objective search instead
        try:
            return _minimize_cpsat(task, session, formula, upper, best_x, lower, stats)
        finally:
            stats["sat"] = session.size()
            session.close()
    steps = []
    try:
        limit = None if upper is None else upper - 1
        while True:
            if interrupts.stop_requested():
                return Outcome.INTERRUPTED, lower, best_x
            assumptions = []
            if limit is not None and (upper is None or limit < upper - 1):
                selector = session.new_var()
                session.add(flip_budget(formula, limit, selector))
                assumptions = [selector]
            task.calls += 1
            report(f"bnn min flips: SAT solver {task.backend}: at most "
                   f"{'any number of' if limit is None else limit} flips (descent) ...")
            res = session.solve(assumptions, task.remaining())
            steps.append({"at_most": limit, "status": res.status, "time_s": round(res.time_s, 4)})
            if res.status == Status.INFEASIBLE:
                bound = (limit + 1) if limit is not None else None
                status = Outcome.OPTIMAL if best_x is not None else Outcome.INFEASIBLE
                return status, bound, best_x
            if res.x is None:
                stopped = interrupts.stop_requested() or res.status == Status.INTERRUPTED
                return (Outcome.INTERRUPTED if stopped else Outcome.TIME_LIMIT), lower, best_x
            bits = prune_flips(task, formula.bits_from(res.x))
            x = task.validated(bits)[0]
            if x is None:          # cannot happen for an exact encoding; never trust it blindly
                stats["rejected"] = "a SAT model was not adversarial in Keras"
                return Outcome.TIME_LIMIT, lower, best_x
            best_x = x
            flips = int(np.count_nonzero(bits != task.bits))
            if flips <= lower:
                return Outcome.OPTIMAL, flips, best_x
            limit = flips - 1
    finally:
        stats["budgets_tried"] = len(steps)
        stats["last_steps"] = steps[-3:]
        stats["sat"] = session.size()
        session.close()


def _flips_result(task: BnnTask, status: str, example, lower, t0, stats) -> AdversarialResult:
    shape = tuple(task.model.input_shape)
    adv_label = None
    if example is not None:
        adv_label = int(task.model.reference_labels(example)[0])
    objective = None if example is None else float(np.count_nonzero(example != task.center))
    stats["calls"] = task.calls
    return AdversarialResult(
        task="min-adv-card", model=task.model.name, norm="card", backend=task.backend,
        status=status, objective=objective, bound=None if lower is None else float(lower),
        original_label=task.label, adversarial_label=adv_label, target=task.target,
        time_s=time.perf_counter() - t0, image=task.center.reshape(shape),
        adversarial=None if example is None else example.reshape(shape), margin=0.0,
        classes=list(task.model.classes), stats=stats)


class BnnChecker:
    """"With the pixels in ``free`` free (any bit) and the rest fixed, can the label change?"
    for :func:`verify.explain` on a BNN. CNF: one solver holds the formula with every pixel
    free, and the fixed pixels are assumptions. MIP/IP: the formula for ``free`` is built
    and solved. Witnesses found earlier are reused first."""

    def __init__(self, task: BnnTask):
        self.task = task
        self.center = task.center
        self.label = task.label
        self.threads = task.threads
        self.counts = {"witness": 0, "bounds": 0, "attack": 0, "exact": 0}
        self.exact_time = 0.0
        self.witnesses: list[np.ndarray] = []
        self.changed = np.zeros((0, task.center.size), dtype=bool)
        self.bits = task.bits
        self.cheap = True               # False: no witness reuse (the seed-style method)
        self.session = None
        if task.encoding == "cnf":
            self.formula = task.formula()
            self.session = check_cnf_backend(task.backend, task.threads).session(
                self.formula, task.remaining())

    @property
    def calls(self) -> int:
        return self.task.calls

    @property
    def solver(self):
        return get_backend(self.task.backend)

    def remaining(self) -> float | None:
        return self.task.remaining()

    def out_of_time(self) -> bool:
        """No more work: the time limit is reached, or a stop was requested (Ctrl-C)."""
        r = self.remaining()
        return (r is not None and r <= 0) or interrupts.stop_requested()

    def region(self, free: np.ndarray) -> np.ndarray:
        return free

    def attack(self, free: np.ndarray) -> None:
        return None                     # no separate attack: SAT calls are the cheap check

    def store(self, x: np.ndarray) -> int:
        """Keep a witness image; returns its index."""
        self.witnesses.append(x)
        self.changed = np.vstack([self.changed, (x != self.center)[None]])
        return len(self.witnesses) - 1

    def check(self, free: np.ndarray) -> tuple[bool | None, int | None]:
        """(True, None): proven robust; (False, w): witness ``w``; (None, None): undecided."""
        if self.cheap and self.witnesses:
            inside = np.flatnonzero(~np.any(self.changed & ~free, axis=1))
            if inside.size:
                self.counts["witness"] += 1
                return False, int(inside[0])
        if self.out_of_time():
            return None, None
        t0 = time.perf_counter()
        if self.session is not None:
            self.task.calls += 1
            res = self.session.solve(self.formula.original_literals()[~free], self.remaining())
            bits = self.formula.bits_from(res.x) if res.x is not None else None
        else:
            res, bits, _ = self.task.solve_problem(self.task.formula(free=free), minimize=False)
        self.exact_time += time.perf_counter() - t0
        if res.status == Status.INFEASIBLE:
            self.counts["exact"] += 1
            return True, None
        if bits is None:
            return None, None
        self.counts["exact"] += 1
        return False, self.store(self.task.image(self.prune(bits)))

    def prune(self, bits: np.ndarray) -> np.ndarray:
        """A witness with as few changed pixels as the greedy pruning leaves."""
        return prune_flips(self.task, bits)

    def sweep(self, free: np.ndarray, undecided: np.ndarray, after: int | None = None) -> dict[int, int]:
        return {}

    def influence_order(self) -> np.ndarray:
        """Pixels, least influential first: by how much flipping each alone lowers the margin
        (integer logits: ties keep index order)."""
        v = self.task.parts.binarize.forward(self.center[None])[0]
        logits = single_flip_logits(self.task, v)
        here = self.task.model.network.forward(self.center)[0]

        def margin(z: np.ndarray) -> np.ndarray:
            return z[..., self.label] - np.delete(z, self.label, axis=-1).max(axis=-1)

        return np.argsort(margin(here) - margin(logits), kind="stable")

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


# ---------------------------------------------------------------------------------------------
# integer inputs (8-bit IntegerInput): the task's region and images; the tasks themselves are
# in verify.tasks.bnn_int

def integer_region(task: BnnTask, budget: int | None = None) -> IntegerRegion:
    """The task's integer region (default: every input anywhere in ``0..levels``), with at
    most ``budget`` changed inputs."""
    if task.region is not None:
        return IntegerRegion(task.region.lo, task.region.hi, budget if budget is not None
                             else task.region.budget, task.region.norm if budget is None else "card")
    levels = int(task.parts.binarize.levels)
    return IntegerRegion(np.zeros_like(task.bits), np.full_like(task.bits, levels), budget, "card")


def integer_image(task: BnnTask, values: np.ndarray) -> np.ndarray:
    """The input with every pixel whose integer value differs set to ``value / levels``
    (which the network's ``round(levels * x)`` maps back to ``value`` exactly); the other
    pixels keep their exact values."""
    out = task.center.copy()
    values = np.asarray(values, dtype=np.int64)
    moved = values != task.bits
    out[moved] = values[moved].astype(np.float64) / float(task.parts.binarize.levels)
    return out
