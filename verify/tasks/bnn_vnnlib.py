"""VNN-LIB properties on binarized networks (BNNs): exact, through the BNN formula.

A property case is an input box and a disjunction of conjunctions of output rows
``A_k y ≤ b_k``. On a BNN (:mod:`verify.encodings.bnn`):

* **The box** becomes the values the first layer can see. Binarized inputs (``x > t`` is
  ``+1``): a pixel whose box lies on one side of ``t`` is that constant bit, one whose box
  straddles ``t`` is a free bit. Integer inputs (``round(levels · x)``, 8-bit): the box maps
  to the integer range ``[q(lo), q(hi)]`` of each input (an :class:`IntegerRegion`). Both are
  taken over the float32 values inside the box, which is what the model's runtime reads.
* **The outputs** are integer sums plus the output bias, ``y = W v + bias`` with ``W`` ±1 and
  ``v`` the last hidden layer's ±1 values, so a row ``a · y ≤ b`` is ``Σ c_i v_i ≤ b - a · bias``
  with ``c = a W``. When the nonzero ``c_i`` over the neurons the box leaves free all have
  the same magnitude — comparisons of two outputs (``Y_i ≤ Y_j``) and bounds on one output
  always do — the row is one cardinality constraint over the neurons' literals; disjunct
  ``k`` gets an indicator ``d_k`` that enforces its rows, and one clause asks for some
  ``d_k``. Other rows are refused with a clear error.
* **Solving**: ``--backend`` a formula backend (``sat:...`` (default ``sat:minicard``),
  ``cpsat``, ``portfolio``) solves the CNF/cardinality rendering; a MIP backend (``highs``,
  ``scip``, ``cplex``, ``pyomo:...``) solves the pure 0-1 IP rendering
  (:func:`verify.encodings.bnn.to_problem`) — binarized inputs only for now: integer-input
  networks need a formula backend.

Every ``sat`` is re-checked: the solver's input values are turned into a float32 point inside
the box (a bit's pixel keeps the box centre when that has the bit, else takes the box's end
on the bit's side; an integer value ``q`` becomes ``q / levels``, or the box's end that
rounds to it), which the model's own runtime (Keras, or onnxruntime) must satisfy exactly
(:func:`verify.tasks.vnnlib._confirm`). ``unsat`` is proved with the rows relaxed by
:data:`ROW_SLACK` (relative), so float32 rounding of ``y`` cannot hide a counterexample.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..backends import SolveOptions, Status, check_cnf_backend, get_backend
from ..backends.formula import FormulaBackend
from ..backends.sat import DEFAULT_SAT
from ..cnf import AtLeast
from ..encodings.bnn import BnnFormula, BnnLayers, IntegerRegion, bnn_formula, bnn_layers, to_problem
from ..errors import InvalidInputError
from ..models import LoadedModel
from ..network import Quantize
from ..progress import report
from ..regions import InputBox
from ..vnnlib import PropertyCase

#: Relative slack on each output row when proving ``unsat`` (float32 logits round).
ROW_SLACK = 1e-6

SAT, UNSAT, TIMEOUT, UNKNOWN = "sat", "unsat", "timeout", "unknown"


def bnn_backend(backend: str | None) -> tuple[str, str]:
    """``(encoding, backend)`` for a VNN-LIB property on a BNN: formula backends (and the
    default, :data:`~verify.backends.sat.DEFAULT_SAT`) take the cnf rendering, MIP backends
    the pure 0-1 IP."""
    name = backend or DEFAULT_SAT
    solver = get_backend(name)
    if isinstance(solver, FormulaBackend):
        check_cnf_backend(name)
        return "cnf", solver.name
    solver.check_kind("milp")
    return "ip", solver.name


def _float32_box(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The smallest and largest float32 values inside ``[lo, hi]`` per input, or None when
    some input has none."""
    lo32 = np.asarray(lo, dtype=np.float32)
    below = lo32.astype(np.float64) < lo
    lo32[below] = np.nextafter(lo32[below], np.float32(np.inf))
    hi32 = np.asarray(hi, dtype=np.float32)
    above = hi32.astype(np.float64) > hi
    hi32[above] = np.nextafter(hi32[above], np.float32(-np.inf))
    if np.any(lo32 > hi32):
        return None
    return lo32, hi32


class _Case:
    """One case's formula over the box, and the way back from a solution to an input."""

    def __init__(self, model: LoadedModel, parts: BnnLayers, case: PropertyCase):
        self.model, self.parts, self.case = model, parts, case
        net = model.network
        box = _float32_box(case.lower, case.upper)
        self.empty = box is None
        if box is None:
            return
        self.lo32, self.hi32 = box
        layer = parts.binarize
        if isinstance(layer, Quantize):
            q = layer.forward
            self.qlo, self.qhi = q(self.lo32[None])[0].astype(np.int64), q(self.hi32[None])[0].astype(np.int64)
            image = self.lo32.astype(np.float64)
            region = IntegerRegion(self.qlo.copy(), self.qhi.copy(), None, "card")
            self.formula = bnn_formula(net, image, None, None, 0, None, parts, region)
        else:
            t = np.float32(layer.threshold)
            self.can1, self.can0 = self.hi32 > t, self.lo32 <= t
            image = np.where(self.can1 & ~self.can0, self.hi32, self.lo32).astype(np.float64)
            self.formula = bnn_formula(net, image, self.can1 & self.can0, None, 0, None, parts)
        # drop the label-change property; the case's rows take its place
        self.formula.constraints, self.formula.clauses = [], []

    def add_rows(self) -> None:
        """The disjunction over the outputs as cardinality constraints (see the module)."""
        f: BnnFormula = self.formula
        if f.outputs is None:
            raise InvalidInputError("the BNN formula does not expose its output neurons")
        value, var = f.outputs
        w = self.parts.weight.astype(np.float64)
        bias = self.parts.bias.astype(np.float64)
        const = value != 0
        free = np.flatnonzero(var > 0)
        indicators = []
        for a, b in self.case.disjuncts:
            a = np.atleast_2d(np.asarray(a, dtype=np.float64))
            b = np.asarray(b, dtype=np.float64).reshape(-1)
            f.num_vars += 1
            d = f.num_vars
            possible = True
            for row, rhs in zip(a, b):
                con = _row_constraint(row @ w, rhs - row @ bias, value, const, var, free, d)
                if con is False:
                    possible = False
                    break
                if con is not None:
                    f.constraints.append(con)
            if possible:
                indicators.append(d)
            else:
                f.clauses.append([-d])
        f.clauses.append(indicators)          # empty: no disjunct can hold

    def point(self, values: np.ndarray) -> np.ndarray:
        """A float64 point (of float32 values) inside the box whose first-layer inputs are
        ``values`` (bits, or integers)."""
        center = ((self.lo32.astype(np.float64) + self.hi32.astype(np.float64)) / 2).astype(np.float32)
        layer = self.parts.binarize
        if isinstance(layer, Quantize):
            q = np.asarray(values, dtype=np.int64)
            x = np.clip((q / float(layer.levels)).astype(np.float32), self.lo32, self.hi32)
            wrong = layer.forward(x[None])[0].astype(np.int64) != q
            x[wrong & (q == self.qlo)] = self.lo32[wrong & (q == self.qlo)]
            x[wrong & (q == self.qhi)] = self.hi32[wrong & (q == self.qhi)]
            return x.astype(np.float64)
        bits = np.asarray(values) > 0
        has = (layer.forward(center[None])[0] > 0) == bits
        x = np.where(has, center, np.where(bits, self.hi32, self.lo32))
        return x.astype(np.float32).astype(np.float64)


def _row_constraint(c: np.ndarray, t: float, value, const, var, free, guard: int):
    """``Σ c_i v_i ≤ t`` over the last hidden layer (``value``: ±1 constants, 0 where ``var``
    holds a variable) as ``guard ⇒`` a cardinality constraint; None when it always holds,
    False when it never can. Rows whose free coefficients differ in magnitude are refused."""
    t = t - float(c[const] @ value[const])
    cf = c[free]
    nz = np.flatnonzero(np.abs(cf) > 1e-12 * max(1.0, float(np.abs(c).max(initial=0.0))))
    slack = ROW_SLACK * (1.0 + abs(t))
    if nz.size == 0:
        return None if 0.0 <= t + slack else False
    mag = np.abs(cf[nz])
    if np.any(np.abs(mag - mag[0]) > 1e-9 * mag[0]):
        raise InvalidInputError(
            "an output row of this property weighs the BNN's last hidden neurons unequally "
            f"(coefficients {sorted(set(np.round(mag, 6).tolist()))[:4]}...); VNN-LIB on BNNs "
            "decides rows that compare two outputs (Y_i <= Y_j) or bound one output")
    cmag = float(mag[0])
    signs = np.sign(cf[nz])
    lits = np.where(signs > 0, var[free][nz], -var[free][nz]).astype(np.int64)
    # v = 2x - 1: Σ c_i (2 x_i - 1) ≤ t  ⇔  Σ c_i x_i ≤ (t + Σ c_i) / 2, and with the
    # literals l_i (x_i or ¬x_i by the sign) Σ c_i x_i = cmag (#true(l) - #negative)
    most = (t + float(cf[nz].sum())) / 2.0 / cmag + int(np.count_nonzero(signs < 0))
    most = int(np.floor(most + ROW_SLACK * (1.0 + abs(most))))
    m = len(lits)
    if most >= m:
        return None
    if most < 0:
        return False
    return AtLeast(-lits, m - most, guard, 0, m)             # #true(¬l) ≥ m - most


def bnn_case_decider(model: LoadedModel, backend: str | None, threads: int | None,
                     replay) -> tuple[Callable, str]:
    """``(decide, backend name)`` for the BNN ``model``: ``decide(k, case, remaining)`` settles
    one case of a property (see the module docstring) and returns ``(verdict, stage, x, y,
    stats)`` as :func:`verify.tasks.vnnlib.certify_vnnlib`'s case loop takes them.
    ``replay(model, x, region, cases, net)`` is the zero-tolerance replay of a candidate in the
    model's own runtime (the caller's, handed down: this module sits below it)."""
    parts = bnn_layers(model.network, allow_integer=True)
    encoding, name = bnn_backend(backend)
    if parts.integer and encoding != "cnf":
        # the IP rendering numbers the integer inputs' columns right after the core
        # variables, where the disjunct indicators would have to go: not done yet
        raise InvalidInputError(f"VNN-LIB on integer-input BNNs needs a formula backend "
                                f"({DEFAULT_SAT}, cpsat or portfolio), not {name}")

    def decide(k: int, case: PropertyCase, remaining: float | None):
        started = time.perf_counter()
        c = _Case(model, parts, case)
        stats: dict = {"encoding": encoding}
        if c.empty:
            return UNSAT, "bounds", None, None, dict(stats, note="no float32 input in the box")
        c.add_rows()
        f = c.formula
        stats["formula"] = f.size()
        stats["unstable"] = f.stats["unstable"]
        report(f"vnnlib on a BNN: case {k}: {name} ({encoding}) ...")
        if encoding == "cnf":
            res = check_cnf_backend(name, threads).solve_formula(f, SolveOptions(time_limit=remaining))
            values = f.bits_from(res.x) if res.x is not None else None
        else:
            problem = to_problem(f, encoding)
            res = get_backend(name).solve(problem, SolveOptions(time_limit=remaining, threads=threads))
            values = f.bits_from_columns(res.x) if res.x is not None else None
        stats["solver_status"] = res.status
        stats["time_s"] = round(time.perf_counter() - started, 4)
        if values is not None:
            region = InputBox(case.lower, case.upper)
            cases = [(np.atleast_2d(a), np.asarray(b, dtype=np.float64)) for a, b in case.disjuncts]
            hit = replay(model, c.point(values), region, cases, None)
            if hit is not None:
                return SAT, "mip", hit[0], hit[1], stats
            stats["rejected"] = "the solver's point does not satisfy the property in the runtime"
            return UNKNOWN, "", None, None, stats
        if res.status == Status.INFEASIBLE:
            return UNSAT, "mip", None, None, stats
        return TIMEOUT, "", None, None, stats

    return decide, name
