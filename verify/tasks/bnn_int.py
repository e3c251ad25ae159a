"""Exact tasks on BNNs with 8-bit integer inputs (``IntegerInput``: the first block reads
``x_i = round(levels * pixel) ∈ 0..levels``, as the seed's binarized network did).

A change to such a network's input is a change of grey levels. Every question is one
formula of :mod:`verify.encodings.bnn` over an :class:`~verify.encodings.bnn.IntegerRegion`
(each input's integer range, and optionally a budget on the number of changed inputs or on
the grey levels in total), rendered as CNF over an order encoding of the inputs
(``encoding="cnf"``: ``sat:*`` or ``cpsat``) or as a MIP/IP with integer input columns
(``"mip"``, ``"ip"``: HiGHS, SCIP, CPLEX). Every example is re-checked by the Keras model.

* :func:`int_certify` — ``eps`` (every pixel within ``e`` grey levels, or ``e`` grey levels in
  all for L1) or ``pixels`` (at most ``k`` pixels changed, each to any value ``0..levels``).
  ``eps`` is given in [0, 1] units and converted as ``e = floor(levels * eps + 1e-9)``.
* :func:`int_min_distance` — the fewest changed pixels (``card``), the smallest L1 or L∞
  change in grey levels, or the smallest sum of squared grey-level changes (``l2``, MIQP:
  SCIP). ``card`` first takes an example from greedy searches on the network's smooth
  stand-in (:func:`directed_values`; the plain greedy if they find none), within
  :data:`~verify.tasks.bnn.GREEDY_SHARE` of the time left: an answer even when the time
  runs out, and a cap on the radius. The search grows a radius ``r`` (grey levels: doubled, 1, 2, 4, ...; changed
  pixels: by a quarter, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, ...): the region of radius ``r`` (at
  most ``r`` changed pixels / ``r`` grey levels in all / every pixel within ``±r``) either
  holds no example — a proven lower bound ``r + 1`` — or its minimum is the global one (CNF:
  budgets tightened under assumptions in one solver, or CP-SAT's objective search; L∞ on
  CNF: bisection; MIP/IP: the solver minimises). L2: a box of radius ``r`` holds the
  optimum once its own optimum ``D`` has ``D <= r²``.
* explanations go through :func:`verify.explain` with :class:`IntChecker`: a free pixel takes
  any value of its range (all of ``0..levels``, or ``±eps``).

Distances are exact integers in grey levels (``result.objective``, ``result.bound``);
``stats["objective_01"]`` / ``stats["bound_01"]`` give them in [0, 1] units (divided by
``levels``; ``l2``: by ``levels²``).
"""
from __future__ import annotations

import time
from math import isqrt

import numpy as np

from .. import interrupts
from ..attacks.flips import directed_search
from ..backends import SolveOptions, Status, check_cnf_backend, get_backend
from ..backends.cpsat import CpSatSession
from ..cnf import AtLeast
from ..encodings.bnn import BnnFormula, IntegerRegion, flip_budget, l1_budget, to_problem
from ..errors import InvalidInputError
from ..progress import report
from ..results import AdversarialResult, CertifyResult, Outcome
from .bnn import GREEDY_SHARE, BnnChecker, BnnTask, certify_result

NORMS = ("card", "l1", "linf", "l2")

#: The encoding of integer-input BNNs when none is given: measured on the bundled
#: ``bnn-int8`` (certify ±1..4 grey levels, 4 digits), HiGHS decided every question in
#: 0.01-5 s where SAT (minicard) and CP-SAT over the order encoding took up to 20 s or more.
DEFAULT_ENCODING = "mip"


def grey_levels(eps: float, levels: int = 255) -> int:
    """``eps`` in [0, 1] units as whole grey levels: ``floor(levels * eps + 1e-9)`` (so 1/255
    is exactly one level, and 0.01 is 2 levels of 255)."""
    if eps is None or not np.isfinite(eps) or eps < 0:
        raise InvalidInputError(f"eps must be a number ≥ 0, got {eps}")
    return int(np.floor(float(levels) * float(eps) + 1e-9))


def levels_of(task: BnnTask) -> int:
    """The top integer value of the task's inputs (255 for 8-bit pixels)."""
    return int(getattr(task.parts.binarize, "levels"))


def box(task: BnnTask, radius: int) -> IntegerRegion:
    """Every input within ``±radius`` grey levels of its value (inside ``0..levels``)."""
    c = task.bits
    return IntegerRegion(np.maximum(c - radius, 0), np.minimum(c + radius, levels_of(task)))


def radius_region(task: BnnTask, norm: str, radius: int) -> IntegerRegion:
    """The region of all changes of size at most ``radius`` in ``norm`` (card: changed
    pixels, each anywhere in ``0..levels``; l1: grey levels in all; linf: every pixel)."""
    if norm == "card":
        return IntegerRegion(np.zeros_like(task.bits), np.full_like(task.bits, levels_of(task)),
                             int(radius), "card")
    if norm == "l1":
        return IntegerRegion(box(task, radius).lo, box(task, radius).hi, int(radius), "l1")
    return box(task, radius)


def distance(task: BnnTask, values: np.ndarray, norm: str) -> int:
    """The size of the change from the input's values to ``values`` in grey levels."""
    d = np.asarray(values, dtype=np.int64) - task.bits
    if norm == "card":
        return int(np.count_nonzero(d))
    if norm == "l1":
        return int(np.abs(d).sum())
    if norm == "linf":
        return int(np.abs(d).max(initial=0))
    return int((d * d).sum())


# ---------------------------------------------------------------------------------------------
# the integer attack (an upper bound, and a quick counterexample)

def _margin(task: BnnTask, logits: np.ndarray) -> np.ndarray:
    """How far each row of logits is from what the task looks for (<= 0: reached, up to
    ties, which the label itself settles)."""
    if task.target is not None:
        return np.delete(logits, task.target, axis=-1).max(axis=-1) - logits[..., task.target]
    return logits[..., task.label] - np.delete(logits, task.label, axis=-1).max(axis=-1)


def _logits_of(task: BnnTask, values: np.ndarray) -> np.ndarray:
    """The IR's logits of integer inputs (rows; the first block reads the values directly)."""
    h = np.asarray(values, dtype=np.float64)
    for block in task.parts.blocks:
        h = block.forward(h)
    return task.parts.output.forward(h)


def greedy_values(task: BnnTask, region: IntegerRegion, steps: int) -> np.ndarray | None:
    """Greedy search within ``region`` (its budget: the number of steps for ``card``):
    each step moves the one unchanged pixel to the end of its range that lowers the margin
    most. Returns the values if the IR's label is then the one looked for, else None."""
    v = task.bits.copy()
    lo, hi = np.asarray(region.lo), np.asarray(region.hi)
    movable = np.flatnonzero(hi > lo)
    for _ in range(min(int(steps), len(movable))):
        cand = np.flatnonzero((v == task.bits)[movable])
        if cand.size == 0:
            break
        pix = movable[cand]
        trials = np.repeat(v[None], 2 * len(pix), axis=0)
        rows = np.arange(len(pix))
        trials[rows, pix] = lo[pix]
        trials[len(pix) + rows, pix] = hi[pix]
        logits = _logits_of(task, trials)
        best = int(np.argmin(_margin(task, logits)))
        v = trials[best]
        label = int(np.argmax(logits[best]))
        if task.reaches(label):
            return v
    return None


def directed_values(task: BnnTask, region: IntegerRegion, steps: int,
                    deadline: float | None = None) -> np.ndarray | None:
    """The fewest-pixel example (pruned) that greedy searches on the network's smooth
    stand-in find within ``region`` and ``steps`` changed pixels, one search per label the
    task may reach (:func:`~verify.attacks.flips.directed_search`); None if none is found.
    Each move sets one unchanged pixel to an end of its range (the first block's sums move by
    that pixel's weight column times the change)."""
    if not task.parts.blocks:
        return None
    start = np.asarray(task.bits, dtype=np.float64)
    lo, hi = np.asarray(region.lo, dtype=np.float64), np.asarray(region.hi, dtype=np.float64)
    weight = task.parts.blocks[0].weight.astype(np.float64)

    def moves(v: np.ndarray):
        open_ = np.flatnonzero((v == start) & (hi > lo))
        pixels = np.concatenate([open_, open_])
        values = np.concatenate([lo[open_], hi[open_]])
        keep = values != v[pixels]
        pixels, values = pixels[keep], values[keep]
        sums = (weight @ v)[None, :] + (weight[:, pixels] * (values - v[pixels])).T
        return pixels, values, sums

    return directed_search(task, start, moves, steps,
                           lambda v: prune_values(task, v.astype(np.int64)),
                           lambda v: int(np.count_nonzero(v != task.bits)), deadline)


def prune_values(task: BnnTask, values: np.ndarray) -> np.ndarray:
    """Put changed pixels back to their own value, one at a time, while the IR's label
    stays the one looked for (a smaller example of the same kind)."""
    v = np.asarray(values, dtype=np.int64).copy()
    for i in np.flatnonzero(v != task.bits):
        old = v[i]
        v[i] = task.bits[i]
        if not task.reaches(int(np.argmax(_logits_of(task, v[None])[0]))):
            v[i] = old
    return v


# ---------------------------------------------------------------------------------------------
# one question

def solve(task: BnnTask, formula: BnnFormula, objective: str | None = None, lower: int = 0):
    """Solve ``formula`` with the task's encoding and backend: ``(result, values or None)``.
    ``lower``: a proven lower bound on the L∞ objective (the bound of its column ``t``, so
    that the solver need not prove it again)."""
    task.calls += 1
    if task.encoding == "cnf":
        backend = check_cnf_backend(task.backend, task.threads)
        res = backend.solve_formula(formula, SolveOptions(time_limit=task.remaining()))
        return res, formula.bits_from(res.x) if res.x is not None else None
    problem = to_problem(formula, task.encoding, objective=objective)
    if objective == "linf" and lower > 0:
        problem.lb[problem.blocks["linf"]] = float(lower)
    res = get_backend(task.backend).solve(problem, SolveOptions(time_limit=task.remaining(),
                                                                threads=task.threads))
    return res, formula.bits_from_columns(res.x) if res.x is not None else None


def describe(task: BnnTask, eps_levels: int | None, norm: str, pixels: int | None) -> str:
    levels = levels_of(task)
    if pixels is not None:
        return f"at most {pixels} changed pixels, each to any value 0..{levels} (integer input)"
    if norm == "linf":
        return f"every pixel within ±{eps_levels} grey levels (linf; integer input 0..{levels})"
    return f"at most {eps_levels} grey levels changed in all (l1; integer input 0..{levels})"


def int_certify(task: BnnTask, t0: float, eps: float | None = None, norm: str = "linf",
                pixels: int | None = None) -> CertifyResult:
    """Is there an input within the budget that the network labels otherwise (or as the
    target)? ``eps`` ([0, 1] units; ``norm`` ``linf`` or ``l1``) or ``pixels``."""
    if (eps is None) == (pixels is None):
        raise InvalidInputError("give exactly one budget: eps (grey levels, in [0, 1] units) "
                                "or pixels")
    stats: dict = {"encoding": task.encoding}
    if pixels is not None:
        if int(pixels) != pixels or pixels < 0:
            raise InvalidInputError(f"pixels must be a whole number ≥ 0, got {pixels}")
        e, region = None, radius_region(task, "card", int(pixels))
        pixels = int(pixels)
    elif eps is not None:
        if norm not in ("linf", "l1"):
            raise InvalidInputError(f"on an integer-input BNN eps applies in linf or l1, not "
                                    f"{norm!r} (min-adv-l2 gives the L2 distance)")
        e = grey_levels(eps, levels_of(task))
        region = radius_region(task, norm, e)
        stats.update(grey_levels=e, eps_rule=f"floor({levels_of(task)} * eps + 1e-9)")
    text = describe(task, e, norm, pixels)

    def done(status, method, values=None):
        return certify_result(task, text, status, method, t0, stats, values)

    # the greedy attack for k pixels (k steps); a box is left to the solver, which decides
    # it faster than a pixel-by-pixel search over 784 pixels would
    hit = greedy_values(task, region, pixels) if pixels else None
    if hit is not None and task.validated(hit)[0] is not None:
        return done(Outcome.COUNTEREXAMPLE, "attack", hit)
    if interrupts.stop_requested():
        return done(Outcome.UNKNOWN, "")
    formula = task.formula(region=region)
    stats["formula"], stats["unstable"] = formula.size(), formula.stats["unstable"]
    report(f"bnn certify ({text}): {task.backend}, {task.encoding} encoding ...")
    res, values = solve(task, formula)
    if values is not None:
        return done(Outcome.COUNTEREXAMPLE, "solver", values)
    if res.status == Status.INFEASIBLE:
        return done(Outcome.VERIFIED, "solver")
    return done(Outcome.UNKNOWN, "")


# ---------------------------------------------------------------------------------------------
# minimal distances

class _Search:
    """The state of one minimal-distance search: the best example, the proven lower bound."""

    def __init__(self, task: BnnTask, norm: str):
        self.task, self.norm = task, norm
        self.best: np.ndarray | None = None       # image in [0, 1]
        self.best_d = 0                           # its distance (when ``best`` is set)
        self.lower = 1
        self.steps: list[dict] = []
        self.rejected = False

    def offer(self, values: np.ndarray) -> int | None:
        """Keep ``values`` if Keras agrees it is adversarial and it is the smallest so far;
        returns its distance (None: rejected)."""
        if self.norm == "card":
            values = prune_values(self.task, values)
        x = self.task.validated(values)[0]
        if x is None:
            self.rejected = True
            return None
        d = distance(self.task, values, self.norm)
        if self.best is None or d < self.best_d:
            self.best, self.best_d = x, d
        return d


def int_min_distance(task: BnnTask, norm: str, t0: float) -> AdversarialResult:
    """The smallest change (``norm``: ``card``, ``l1``, ``linf``, ``l2``) in grey levels that
    changes the label (or reaches the target); see the module docstring."""
    if norm not in NORMS:
        raise InvalidInputError(f"norm must be one of {', '.join(NORMS)}, not {norm!r}")
    if norm == "l2" and task.encoding == "cnf":
        raise InvalidInputError("min-adv-l2 on an integer-input BNN needs an MIQP backend: "
                                "use --encoding mip --backend scip")
    if norm == "l2":
        get_backend(task.backend).check_kind("miqp")
    s = _Search(task, norm)
    stats: dict = {"encoding": task.encoding, "unit": "grey levels"}
    n, levels = task.bits.size, levels_of(task)
    cap = {"card": n, "l1": n * levels, "linf": levels, "l2": levels}[norm]
    radius = 1
    if norm == "card":             # the greedy attack's example bounds the search
        region = radius_region(task, "card", n)
        hit = directed_values(task, region, min(n, 40), _greedy_deadline(task))
        if hit is None:
            hit = greedy_values(task, region, min(n, 40))
        if hit is not None and s.offer(hit) is not None:
            stats["greedy"] = s.best_d
            if s.best_d == 1:
                return _result(task, s, Outcome.OPTIMAL, t0, stats)
    status = Outcome.TIME_LIMIT
    while True:
        if interrupts.stop_requested():
            status = Outcome.INTERRUPTED
            break
        r = min(radius, cap)
        unit = "changed pixels" if norm == "card" else "grey levels" + (" (box)" if norm == "l2" else "")
        report(f"bnn min {norm} (integer input): within {r} {unit}, {task.backend} ...")
        found, proven = _within(task, s, r)
        s.steps.append({"radius": r, "found": s.best_d if found else None, "proven": proven})
        if not proven:
            status = Outcome.INTERRUPTED if interrupts.stop_requested() else Outcome.TIME_LIMIT
            break
        if found:
            status = Outcome.OPTIMAL
            break
        if norm != "l2":
            s.lower = max(s.lower, r + 1)
        if r >= cap and s.best is None:
            status = Outcome.INFEASIBLE
            break
        radius = next_radius(norm, r, s)
    stats["radii"] = s.steps[-4:]
    if s.rejected:
        stats["rejected"] = "a solver's example was not adversarial in Keras"
    return _result(task, s, status, t0, stats)


#: Growth of the changed-pixel budget after a proven one: ``r + max(1, r // CARD_STEP)``
#: (the formula of a budget grows with it, so a doubled budget can be far harder to decide)
CARD_STEP = 4


def _greedy_deadline(task: BnnTask) -> float | None:
    """When the greedy searches stop: :data:`~verify.tasks.bnn.GREEDY_SHARE` of the time
    left (None: no time limit)."""
    left = task.remaining()
    return None if left is None else time.perf_counter() + GREEDY_SHARE * left


def next_radius(norm: str, r: int, s: _Search) -> int:
    """The radius to search after radius ``r`` was proven free of examples: a quarter more
    changed pixels (``card``), else twice the grey levels (``l2``: at least the box that
    holds the best example so far)."""
    if norm == "card":
        return r + max(1, r // CARD_STEP)
    if norm == "l2" and s.best is not None:     # the box of radius isqrt(d) holds every
        return max(r * 2, isqrt(s.best_d))      # example at least as good as d
    return r * 2


def _within(task: BnnTask, s: _Search, r: int) -> tuple[bool, bool]:
    """Search the region of radius ``r``: ``(found, proven)`` — found: ``s`` holds the
    global minimum; proven and not found: nothing within radius ``r`` (``s.lower`` is
    raised by the caller); not proven: out of time (``s`` keeps what was found)."""
    norm = s.norm
    covers = False            # the region holds every example better than the best one
    if s.best is not None and norm in ("card", "l1") and s.best_d - 1 <= r:
        r, covers = s.best_d - 1, True
        if r == 0:
            s.lower = s.best_d
            return True, True
    region = radius_region(task, norm if norm != "l2" else "linf", r)
    formula = task.formula(region=region)
    if norm == "card" and s.lower > 1:        # proven: no example changes fewer pixels
        formula.constraints.append(AtLeast(formula.flip_literals(), s.lower))
    if task.encoding != "cnf":
        res, values = solve(task, formula, objective=norm, lower=s.lower if norm == "linf" else 0)
        if values is not None:
            s.offer(values)
        if res.status == Status.INFEASIBLE:
            if covers:                                  # nothing below the incumbent
                s.lower = s.best_d
                return True, True
            if norm == "l2":
                s.lower = max(s.lower, (r + 1) ** 2)
            return False, True
        if res.status != Status.OPTIMAL or values is None:
            if res.bound is not None:
                s.lower = max(s.lower, int(np.ceil(res.bound - 1e-6)))
            return False, False
        d = s.best_d
        if norm == "l2" and isqrt(d) > r and r < levels_of(task):        # a better example may lie outside the box
            s.lower = max(s.lower, min(d, (r + 1) ** 2))
            return False, True
        s.lower = d
        return True, True
    if norm == "linf":
        return _bisect_linf(task, s, r, formula)
    return _descend(task, s, formula, covers)


def _descend(task: BnnTask, s: _Search, formula: BnnFormula, covers: bool) -> tuple[bool, bool]:
    """CNF, card or L1: find an example within the formula's budget, then tighten the budget
    below each example found (under assumptions, in one solver) until none is left; CP-SAT
    minimises the count directly."""
    lits = formula.flip_literals() if s.norm == "card" else formula.l1_literals()
    session = check_cnf_backend(task.backend, task.threads).session(formula, task.remaining())
    try:
        if isinstance(session, CpSatSession):
            task.calls += 1
            res = session.minimize(lits, (), task.remaining())
            if res.x is not None:
                s.offer(formula.bits_from(res.x))
            if res.status == Status.INFEASIBLE:
                if covers:
                    s.lower = s.best_d
                    return True, True
                return False, True
            if res.status == Status.OPTIMAL and s.best is not None:
                s.lower = s.best_d
                return True, True
            if res.bound is not None:
                s.lower = max(s.lower, int(res.bound))
            return False, False
        assumptions: list[int] = []
        found = False
        while True:
            task.calls += 1
            res = session.solve(assumptions, task.remaining())
            if res.status == Status.INFEASIBLE:
                if found or covers:
                    s.lower = s.best_d
                    return True, True
                return False, True
            if res.x is None:
                return False, False
            d = s.offer(formula.bits_from(res.x))
            if d is None:
                return False, False
            found = True
            if s.best_d <= max(1, s.lower):
                s.lower = s.best_d
                return True, True
            selector = session.new_var()
            session.add(flip_budget(formula, s.best_d - 1, selector) if s.norm == "card"
                        else l1_budget(formula, s.best_d - 1, selector))
            assumptions = [selector]
    finally:
        session.close()


def _bisect_linf(task: BnnTask, s: _Search, r: int, formula: BnnFormula) -> tuple[bool, bool]:
    """CNF, L∞: is there an example within ±r? If so, bisect between the proven lower bound
    and the example's radius (one formula per radius)."""
    res, values = solve(task, formula)
    if values is None:
        return False, res.status == Status.INFEASIBLE
    if s.offer(values) is None:
        return False, False
    while s.lower < s.best_d:
        mid = (s.lower + s.best_d - 1) // 2
        res, values = solve(task, task.formula(region=box(task, mid)))
        if values is not None:
            if s.offer(values) is None:
                return False, False
        elif res.status == Status.INFEASIBLE:
            s.lower = mid + 1
        else:
            return False, False
    return True, True


def _result(task: BnnTask, s: _Search, status: Outcome, t0: float, stats: dict) -> AdversarialResult:
    shape = tuple(task.model.input_shape)
    levels = levels_of(task)
    scale = float(levels) ** (2 if s.norm == "l2" else 1) if s.norm != "card" else 1.0
    adv = None if s.best is None else int(task.model.reference_labels(s.best)[0])
    lower = s.lower if s.best is None else min(s.lower, s.best_d)
    if status == Outcome.OPTIMAL and s.best is not None:
        lower = s.best_d
    stats["calls"] = task.calls
    if s.norm != "card":
        stats["objective_01"] = None if s.best is None else s.best_d / scale
        stats["bound_01"] = lower / scale
    return AdversarialResult(
        task=f"min-adv-{s.norm}", model=task.model.name, norm=s.norm, backend=task.backend,
        status=status, objective=None if s.best is None else float(s.best_d),
        bound=float(lower), original_label=task.label, adversarial_label=adv,
        target=task.target, time_s=time.perf_counter() - t0, image=task.center.reshape(shape),
        adversarial=None if s.best is None else s.best.reshape(shape), margin=0.0,
        classes=list(task.model.classes), stats=stats)


# ---------------------------------------------------------------------------------------------
# explanations

class IntChecker(BnnChecker):
    """:class:`~verify.tasks.bnn.BnnChecker` for integer inputs: a free pixel takes any value
    of the task's region; witnesses are pruned back towards the input; the order is by
    influence (how much moving a pixel alone to an end of its range lowers the margin)."""

    def prune(self, bits: np.ndarray) -> np.ndarray:
        return prune_values(self.task, bits)

    def influence_order(self) -> np.ndarray:
        task = self.task
        region = task.region or radius_region(task, "linf", levels_of(task))
        v = task.bits
        n = v.size
        trials = np.repeat(v[None], 2 * n, axis=0)
        trials[np.arange(n), np.arange(n)] = region.lo
        trials[n + np.arange(n), np.arange(n)] = region.hi
        m = _margin(task, _logits_of(task, trials))
        drop = _margin(task, _logits_of(task, v[None]))[0] - np.minimum(m[:n], m[n:])
        return np.argsort(drop, kind="stable")


# ---------------------------------------------------------------------------------------------
# entry points for the public tasks (verify.certify, verify.min_adversarial, verify.explain)

def default_encoding(encoding: str | None, backend: str | None) -> str:
    """``encoding``, else ``cnf`` for a formula backend (``sat:*``, ``cpsat``) and
    :data:`DEFAULT_ENCODING` otherwise."""
    if encoding is not None:
        return encoding
    if backend is not None and "cnf" in get_backend(backend).capabilities:
        return "cnf"
    return DEFAULT_ENCODING


def is_integer_bnn(network) -> bool:
    """Whether ``network`` is a BNN whose first layer reads integer inputs."""
    from ..network import Quantize
    return bool(network.layers) and isinstance(network.layers[0], Quantize)


def certify_integer(model, center: np.ndarray, label: int, target: int | None,
                    encoding: str | None, backend: str | None, time_limit: float | None,
                    threads: int | None, eps: float | None, norm: str, pixels: int | None,
                    t0: float) -> CertifyResult:
    """:func:`verify.certify` on an integer-input BNN (see :func:`int_certify`)."""
    task = BnnTask.create(model, center, label, target, default_encoding(encoding, backend),
                          backend, time_limit, threads)
    return int_certify(task, t0, eps=eps, norm=norm, pixels=pixels)


def min_adversarial_integer(ctx, norm: str, target: int | None, region) -> AdversarialResult:
    """:func:`verify.min_adversarial` on an integer-input BNN (see :func:`int_min_distance`);
    default encoding :data:`DEFAULT_ENCODING` (``norm="l2"``: ``mip`` on ``scip``)."""
    if region is not None:
        raise InvalidInputError("region does not apply to an integer-input BNN")
    o = ctx.options
    encoding, backend = o.encoding, o.backend
    if norm == "l2" and encoding is None:
        encoding, backend = "mip", backend or "scip"
    task = BnnTask.create(ctx.model, ctx.image, ctx.label, target,
                          default_encoding(encoding, backend), backend, o.time_limit, o.threads)
    return int_min_distance(task, norm, ctx.started)


def explain_task(ctx, eps: float | None) -> tuple[BnnTask, IntChecker]:
    """The task and checker of :func:`verify.explain` on an integer-input BNN: a free pixel
    takes any value ``0..levels`` or, with ``eps``, any within ``±floor(levels * eps + 1e-9)``."""
    o = ctx.options
    task = BnnTask.create(ctx.model, ctx.image, ctx.label, None,
                          default_encoding(o.encoding, o.backend), o.backend, o.time_limit,
                          o.threads)
    if eps is not None:
        e = grey_levels(eps, levels_of(task))
        if e == 0:
            raise InvalidInputError(f"eps {eps} is below one grey level (1/{levels_of(task)}): "
                                    "no pixel could move")
        task.region = box(task, e)
    return task, IntChecker(task)
