"""The CP-SAT backend (Google OR-Tools, ``pip install ortools``) for BNN formulas: ``cpsat``.

It takes the same solver-neutral :class:`~verify.cnf.CnfFormula` as the SAT backends
(:mod:`verify.backends.sat`) and offers the same session interface, so the BNN tasks use
either unchanged (``--encoding cnf --backend cpsat``):

* a clause is a ``bool_or``; ``guard ⇒ #true(lits) >= bound`` is one linear constraint
  ``Σ lits >= bound`` with ``guard`` as its enforcement literal (``only_enforce_if``); a
  negated literal ``¬x`` counts as ``1 - x``;
* the formula's preferred literals become the solution hint (``add_hint``);
* a :class:`CpSatSession` keeps the model: constraints can be added between calls (a new
  variable for a selector literal, a budget behind it) and each call takes assumptions
  (CP-SAT re-solves the whole model each call, it is not incremental like python-sat: an
  assumption fixes its variable for the call, which presolve uses fully);
  :meth:`CpSatSession.minimize` also finds the fewest true literals of a set (e.g. flipped
  pixels) by CP-SAT's objective search, with a proven lower bound when out of time;
* time limit (``max_time_in_seconds``), threads (``num_workers``; default
  :data:`DEFAULT_WORKERS`) and a stop request (Ctrl-C, SIGTERM: :mod:`verify.interrupts`)
  that ends the search through ``CpSolver.stop_search`` from the waiting thread.

The model is written straight into CP-SAT's protocol buffer: variable ``v`` of the formula
is CP-SAT variable ``v - 1``, so literal ``+v`` is reference ``v - 1`` and ``-v`` is
reference ``-v`` (CP-SAT's negation of index ``i`` is ``-i - 1``).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import interrupts
from ..cnf import CnfFormula, CnfSource
from .base import SolveResult, Status
from .formula import FormulaBackend, FormulaSession

__all__ = ["DEFAULT_WORKERS", "STATUS_TABLE", "CpSatBackend", "CpSatSession"]

#: CP-SAT workers when no thread count is given (CP-SAT's own default would be every core).
DEFAULT_WORKERS = 1

#: CP-SAT's answer -> :class:`Status`. A formula has no objective, so ``FEASIBLE`` (a
#: solution) answers the question as well as ``OPTIMAL``; ``UNKNOWN``: out of time (or
#: stopped: the session tells the two apart as ``stopped``); ``MODEL_INVALID``: a bug, an
#: error. ``expired``: the time ran out while writing the model; ``not_started``: a stop
#: request came before the call.
STATUS_TABLE: dict[str, Status] = {
    "OPTIMAL": Status.OPTIMAL, "FEASIBLE": Status.OPTIMAL, "INFEASIBLE": Status.INFEASIBLE,
    "UNKNOWN": Status.TIME_LIMIT, "MODEL_INVALID": Status.ERROR, "expired": Status.TIME_LIMIT,
    "stopped": Status.INTERRUPTED, "not_started": Status.INTERRUPTED,
}


def _ref(lit: int) -> int:
    """CP-SAT's reference of the formula's literal ``lit`` (``±var``, var >= 1)."""
    return lit - 1 if lit > 0 else lit


class CpSatBackend(FormulaBackend):
    """BNN formulas (--encoding cnf) through OR-Tools CP-SAT: ``cpsat``."""

    name = "cpsat"
    modules = ("ortools",)
    install_hint = "pip install ortools (or verify[ortools])"
    status_table = STATUS_TABLE
    solver_label = "CP-SAT"

    def __init__(self, threads: int | None = None):
        #: CP-SAT workers (``num_workers``); None: :data:`DEFAULT_WORKERS`
        self.threads = threads
        self.__doc__ = ("BNNs (--encoding cnf): OR-Tools CP-SAT, cardinality as linear "
                        "constraints with enforcement literals")

    def make_session(self, formula: CnfFormula | CnfSource, time_limit: float | None,
                     threads: int | None) -> CpSatSession:
        return CpSatSession(self, formula, time_limit, threads or DEFAULT_WORKERS)


class CpSatSession(FormulaSession):
    """A CP-SAT model of a formula; more constraints and assumptions per call (the same
    interface as :class:`verify.backends.sat.SatSession`)."""

    out_of_time = "UNKNOWN"

    def __init__(self, backend: CpSatBackend, formula: CnfFormula | CnfSource,
                 time_limit: float | None = None, workers: int = DEFAULT_WORKERS):
        from ortools.sat.python import cp_model

        super().__init__(backend, formula)
        self.workers = int(workers)
        self.model: Any = cp_model.CpModel()
        self.proto: Any = self.model.proto
        self.num_vars = 0
        self.linear = 0
        self._solver: Any = None             # the CpSolver of the call in progress
        for _ in range(self.formula.num_vars):
            self.new_var()
        self.load(time_limit)

    def prefer(self, literals) -> None:
        """Try these literals' values first (CP-SAT's solution hint; replaces any earlier)."""
        hint = self.proto.solution_hint
        hint.vars.clear()
        hint.values.clear()
        value = {abs(int(l)) - 1: int(l > 0) for l in literals}   # one per variable: the last
        hint.vars.extend(list(value))
        hint.values.extend(list(value.values()))

    def new_var(self) -> int:
        """A fresh Boolean variable (e.g. a selector literal); returns its formula number."""
        var = self.proto.variables.add()
        var.domain.extend([0, 1])
        self.num_vars += 1
        return self.num_vars

    def add_clause(self, clause) -> None:
        con = self.proto.constraints.add()
        con.bool_or.literals.extend([_ref(int(l)) for l in clause])
        self.clauses += 1

    def add_at_least(self, lits: list[int], bound: int, guard: int) -> None:
        lits_arr = np.asarray(lits, dtype=np.int64)
        # Σ lits = Σ_{+v} x_v + Σ_{-v} (1 - x_v): coefficients +1/-1 per variable (summed
        # where a variable repeats), the negated literals' ones move to the right-hand side
        coeffs = np.where(lits_arr > 0, 1, -1)
        variables, where = np.unique(np.abs(lits_arr) - 1, return_inverse=True)
        summed = np.bincount(where, weights=coeffs, minlength=len(variables)).astype(np.int64)
        keep = summed != 0
        variables, summed = variables[keep], summed[keep]
        lower = bound - int(np.count_nonzero(lits_arr < 0))
        upper = int(summed[summed > 0].sum())
        if lower > upper:                               # x and ¬x cancelled: out of reach
            self.add_clause([-guard] if guard else [])
            return
        c = self.proto.constraints.add()
        if guard:
            c.enforcement_literal.append(_ref(guard))
        c.linear.vars.extend(variables.tolist())
        c.linear.coeffs.extend(summed.tolist())
        c.linear.domain.extend([lower, upper])
        self.linear += 1

    def size(self) -> dict:
        return {"variables": self.num_vars, "clauses": self.clauses, "linear": self.linear}

    def stop(self) -> None:
        """End the call in progress (from another thread); safe at any time."""
        solver = self._solver
        if solver is not None:
            solver.stop_search()

    def solve(self, assumptions=(), time_limit: float | None = None) -> SolveResult:
        """Satisfiable (status ``optimal``, ``x``: bool per variable, index 0 unused),
        unsatisfiable (``infeasible``), out of time (``time_limit``) or stopped by a stop
        request (``interrupted``; see :mod:`verify.interrupts`)."""
        early = self.early(time_limit)
        if early is not None:
            return early
        native, solver, elapsed = self._call(assumptions, time_limit)
        if native not in ("OPTIMAL", "FEASIBLE"):
            return self.answer(native, elapsed, message=self._message(native))
        return self.answer(native, elapsed, x=self._truth(solver), objective=0.0)

    def minimize(self, lits, assumptions=(), time_limit: float | None = None) -> SolveResult:
        """The fewest true literals among ``lits`` (e.g. flipped pixels) by CP-SAT's own
        objective search: ``optimal`` (``x``, ``objective`` = the count = ``bound``),
        ``infeasible``, or unfinished (``time_limit`` / ``interrupted``) with the best
        solution found, if any, and CP-SAT's proven lower ``bound``. The objective is
        removed again afterwards (later :meth:`solve` calls are satisfiability questions)."""
        early = self.early(time_limit)
        if early is not None:
            return early
        lits = np.asarray(lits, dtype=np.int64)
        objective = self.proto.objective
        objective.vars.extend((np.abs(lits) - 1).tolist())
        objective.coeffs.extend(np.where(lits > 0, 1, -1).tolist())
        objective.offset = float(np.count_nonzero(lits < 0))      # ¬x counts as 1 - x
        try:
            native, solver, elapsed = self._call(assumptions, time_limit)
        finally:
            self.model.clear_objective()
        bound = None
        if solver is not None and native in ("OPTIMAL", "FEASIBLE", "UNKNOWN", "stopped"):
            bound = float(np.ceil(solver.best_objective_bound - 1e-6))
        if native not in ("OPTIMAL", "FEASIBLE"):
            return self.answer(native, elapsed, message=self._message(native), bound=bound)
        value = float(round(solver.objective_value))
        if native == "FEASIBLE":              # a solution, optimality not proven
            native = "stopped" if interrupts.stop_requested() else "UNKNOWN"
        return self.answer(native, elapsed, x=self._truth(solver), objective=value,
                            bound=value if native == "OPTIMAL" else bound)

    def _call(self, assumptions, time_limit: float | None) -> tuple[str, Any, float]:
        """One CP-SAT run under ``assumptions``, cancellable by a stop request: the native
        status (``stopped`` for ``UNKNOWN`` after a stop request), the solver, the seconds."""
        from ortools.sat.python import cp_model

        t0 = time.perf_counter()
        # CP-SAT solves from scratch each call, so an assumption is simply the variable fixed
        # for this call (its domain), which presolve exploits fully (CP-SAT's own assumptions
        # keep it from that: measured, a minimal-flips proof took minutes instead of seconds)
        fixed: dict[int, int] = {}
        for a in assumptions:
            var, value = abs(int(a)) - 1, int(int(a) > 0)
            if fixed.setdefault(var, value) != value:       # x and ¬x assumed together
                return "INFEASIBLE", None, time.perf_counter() - t0
        variables = self.proto.variables
        for var, value in fixed.items():
            variables[var].domain.clear()
            variables[var].domain.extend([value, value])
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = self.workers
        # CP-SAT's own SIGINT handler aborts the process (std::bad_function_call) when the
        # signal lands during a solve: verify.interrupts handles Ctrl-C (stop_search)
        solver.parameters.catch_sigint_signal = False
        if time_limit is not None:
            solver.parameters.max_time_in_seconds = float(time_limit)
        self._solver = solver
        try:
            status = interrupts.call_cancellable(lambda: solver.solve(self.model), self.stop)
        finally:
            self._solver = None
            for var in fixed:
                variables[var].domain.clear()
                variables[var].domain.extend([0, 1])
        native = solver.status_name(status)
        if native == "UNKNOWN" and interrupts.stop_requested():
            native = "stopped"
        return native, solver, time.perf_counter() - t0

    def _truth(self, solver) -> np.ndarray:
        """The solution as a truth value per formula variable (index 0 unused)."""
        values = np.asarray(solver.response_proto.solution, dtype=np.int64)
        truth = np.zeros(self.num_vars + 1, dtype=bool)
        truth[1:] = values[:self.num_vars] > 0
        return truth

    def _message(self, native: str) -> str:
        return ("CP-SAT rejected the model: " + self.model.validate()
                if native == "MODEL_INVALID" else "")

    def close(self) -> None:
        self.model = self.proto = None
