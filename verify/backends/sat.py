"""SAT backends for CNF/cardinality formulas (:mod:`verify.cnf`; BNNs), through python-sat: ``sat:<solver>[+<card encoding>]``.

* Native cardinality (``sat:minicard``, ``sat:gluecard3``, ``sat:gluecard4``): each
  ``guard ⇒ #true(lits) >= C`` is one ``add_atmost`` over the negated literals, with the guard
  repeated C times (python-sat counts repeated literals separately):
  ``#¬lits + C·[guard] <= m``.
* Clausal (any other solver, e.g. ``sat:glucose4+totalizer``; default encoding
  ``totalizer``; python-sat cannot interrupt CaDiCaL, so ``sat:cadical153`` runs only without
  a time limit): the at-most constraint is encoded into clauses by ``pysat.card`` and each
  clause gets ``¬guard`` added. Encodings: those of ``pysat.card.EncType`` (totalizer,
  seqcounter, cardnetwrk, sortnetwrk, kmtotalizer, mtotalizer, ladder, ...).

A :class:`SatSession` keeps one solver alive: constraints can be added between calls and
each call takes assumptions, which is how budgets are tightened and pixels fixed without
rebuilding anything. Time limits interrupt the solver from a timer thread; a stop request
(Ctrl-C, SIGTERM: :mod:`verify.interrupts`) interrupts it too and the call answers
``interrupted`` (CaDiCaL, which cannot be interrupted, finishes its call first).
"""
from __future__ import annotations

import threading
import time

import numpy as np

from .. import interrupts
from ..cnf import CnfFormula, CnfSource
from ..errors import BackendUnavailableError, ProblemTooLargeError
from .base import SolveResult, Status
from .formula import FormulaBackend, FormulaSession

NATIVE = ("minicard", "gluecard3", "gluecard4")
CLAUSAL_SOLVERS = ("glucose4", "glucose42", "maplechrono", "minisat22", "cadical153", "cadical195")
#: python-sat cannot interrupt these, so they cannot honour a time limit
NO_INTERRUPT = ("cadical153", "cadical195")
DEFAULT_SAT = "sat:minicard"   # gluecard3/4 can hang beyond any interrupt (see the README)
#: Refuse to write more clauses than this for one formula (clausal encodings of wide
#: layers blow up; say so instead of running out of memory).
MAX_CLAUSES = 20_000_000
#: Conflicts in the first slice of a time-limited search (doubling afterwards).
FIRST_CONFLICT_BUDGET = 2_000


#: The SAT session's answer -> :class:`Status`: ``sat`` (a model: ``optimal``), ``unsat``,
#: ``unknown`` (out of time), ``expired`` (the time ran out while writing the formula),
#: ``stopped`` (a stop request; also ``not_started`` when it came before the call).
STATUS_TABLE: dict[str, Status] = {
    "sat": Status.OPTIMAL, "unsat": Status.INFEASIBLE, "unknown": Status.TIME_LIMIT,
    "expired": Status.TIME_LIMIT, "stopped": Status.INTERRUPTED, "not_started": Status.INTERRUPTED,
}


class SatBackend(FormulaBackend):
    """BNN formulas (--encoding cnf) through python-sat: ``sat:<solver>[+<encoding>]``."""

    modules = ("pysat",)
    install_hint = "pip install python-sat (or verify[sat])"
    status_table = STATUS_TABLE
    solver_label = "python-sat"

    def __init__(self, spec: str = DEFAULT_SAT):
        body = spec.split(":", 1)[1] if spec.startswith("sat:") else spec
        solver, _, encoding = body.partition("+")
        solver = solver or "minicard"
        if solver not in NATIVE + CLAUSAL_SOLVERS:
            raise BackendUnavailableError(
                f"unknown SAT solver {solver!r}; choose one of {', '.join(NATIVE + CLAUSAL_SOLVERS)}"
                " (native cardinality: " + ", ".join(NATIVE) + ")")
        if not encoding:
            encoding = "native" if solver in NATIVE else "totalizer"
        if encoding == "native" and solver not in NATIVE:
            raise BackendUnavailableError(
                f"{solver} has no native cardinality constraints; use sat:{solver}+totalizer "
                f"or one of {', '.join('sat:' + s for s in NATIVE)}")
        self.solver, self.encoding = solver, encoding
        if encoding != "native":
            self._enc_type()                         # validate the name now
        self.name = f"sat:{solver}" + ("" if encoding == "native" else f"+{encoding}")
        self.__doc__ = (f"BNNs (--encoding cnf): {solver} with "
                        + ("native cardinality constraints" if encoding == "native"
                           else f"the {encoding} clausal cardinality encoding (pysat.card)"))

    def _enc_type(self) -> int:
        from pysat.card import EncType
        value = getattr(EncType, self.encoding, None)
        if value is None or self.encoding == "native":
            names = [e for e in dir(EncType) if not e.startswith("_") and e != "native"]
            raise BackendUnavailableError(
                f"unknown cardinality encoding {self.encoding!r}; choose one of {', '.join(names)}")
        return value

    def make_session(self, formula: CnfFormula | CnfSource, time_limit: float | None,
                     threads: int | None) -> SatSession:
        return SatSession(self, formula, time_limit)


class SatSession(FormulaSession):
    """A live python-sat solver holding a formula; more constraints and assumptions per call."""

    backend: SatBackend

    def __init__(self, backend: SatBackend, formula: CnfFormula | CnfSource, time_limit: float | None = None):
        from pysat.formula import IDPool
        from pysat.solvers import Solver

        super().__init__(backend, formula)
        self.solver = Solver(name=backend.solver)
        self.pool = IDPool(start_from=self.formula.num_vars + 1)
        self.atmost = 0
        self._stopped = False            # set by stop(): the call in progress ends
        self.load(time_limit)

    def prefer(self, literals) -> None:
        """Branch on these literals' values first (the solver's saved phases)."""
        if hasattr(self.solver, "set_phases"):
            self.solver.set_phases([int(lit) for lit in literals])

    def new_var(self) -> int:
        return self.pool.id(("extra", self.pool.top + 1))

    def add_clause(self, clause) -> None:
        self.solver.add_clause([int(lit) for lit in clause])
        self.clauses += 1

    def add_at_least(self, lits: list[int], bound: int, guard: int) -> None:
        m = len(lits)
        negated = [-lit for lit in lits]                # at most m - bound of them true
        if self.backend.encoding == "native":
            if guard:
                self.solver.add_atmost(negated + [guard] * bound, m)
            else:
                self.solver.add_atmost(negated, m - bound)
            self.atmost += 1
            return
        from pysat.card import CardEnc
        if bound == m:                                  # all literals true: unit clauses
            for lit in lits:
                self.add_clause([lit, -guard] if guard else [lit])
            return
        cnf = CardEnc.atmost(lits=negated, bound=m - bound, vpool=self.pool,
                             encoding=self.backend._enc_type())
        if self.clauses + len(cnf.clauses) > MAX_CLAUSES:
            raise ProblemTooLargeError(
                f"the {self.backend.encoding} encoding needs more than {MAX_CLAUSES:,} clauses "
                f"for this formula; use a native cardinality solver ({', '.join(NATIVE)})")
        for clause in cnf.clauses:
            self.add_clause(clause + [-guard] if guard else clause)

    def stop(self) -> None:
        """End the call in progress (its slices too: see :meth:`_run`); the next call runs."""
        self._stopped = True
        self.solver.interrupt()

    def size(self) -> dict:
        return {"variables": int(self.pool.top), "clauses": self.clauses, "atmost": self.atmost}

    def solve(self, assumptions=(), time_limit: float | None = None) -> SolveResult:
        """Satisfiable (status ``optimal``, ``x``: bool per variable, index 0 unused),
        unsatisfiable (``infeasible``), out of time (``time_limit``) or stopped by a stop
        request (``interrupted``; see :mod:`verify.interrupts`)."""
        t0 = time.perf_counter()
        if time_limit is not None and self.backend.solver in NO_INTERRUPT:
            raise BackendUnavailableError(
                f"python-sat cannot interrupt {self.backend.solver}, so it cannot keep a time "
                "limit; drop the time limit or use sat:glucose4+totalizer")
        early = self.early(time_limit)
        if early is not None:
            return early
        self._stopped = False
        answer = self._run([int(a) for a in assumptions],
                           None if time_limit is None else t0 + time_limit)
        elapsed = time.perf_counter() - t0
        if answer is None:
            return self.answer("stopped" if interrupts.stop_requested() else "unknown", elapsed)
        if not answer:
            return self.answer("unsat", elapsed)
        model = np.asarray(self.solver.get_model(), dtype=np.int64)
        truth = np.zeros(max(self.pool.top, self.formula.num_vars) + 1, dtype=bool)
        truth[model[model > 0]] = True
        return self.answer("sat", elapsed, x=truth, objective=0.0)

    def _run(self, assumptions: list[int], deadline: float | None) -> bool | None:
        """True/False, or None when the deadline passed or a stop was requested. Some
        solvers (gluecard4 on wide cardinality constraints) ignore an interrupt for
        minutes, so with a deadline the search runs in slices of a conflict budget that
        doubles each time (a slice ends in a restart that keeps the learned clauses), with
        the clock checked between slices and an interrupt as well. Every slice is
        cancellable (:func:`verify.interrupts.call_cancellable`, through ``interrupt``)."""
        if self.backend.solver in NO_INTERRUPT:      # no deadline here (see solve)
            # CaDiCaL cannot be interrupted: a stop request waits for this call to end
            return interrupts.call_cancellable(
                lambda: self.solver.solve(assumptions=assumptions), lambda: None)
        budget = FIRST_CONFLICT_BUDGET if deadline is not None else -1    # -1: no budget
        while True:
            if interrupts.stop_requested() or self._stopped:
                return None
            timer = None
            if deadline is not None:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    return None
                timer = threading.Timer(remaining, self.solver.interrupt)
                timer.start()
            try:
                self.solver.conf_budget(budget)
                answer = interrupts.call_cancellable(
                    lambda: self.solver.solve_limited(assumptions=assumptions, expect_interrupt=True),
                    self.solver.interrupt)
            finally:
                if timer is not None:
                    timer.cancel()
                self.solver.clear_interrupt()
            if answer is not None or deadline is None:
                return answer
            budget *= 2

    def close(self) -> None:
        self.solver.delete()
