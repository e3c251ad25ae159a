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

import dataclasses
import threading
import time

import numpy as np

from .. import interrupts
from ..cnf import AtLeast, CnfFormula, CnfSource, as_cnf
from ..errors import BackendUnavailableError, ProblemTooLargeError
from ..problem import Problem
from .base import Backend, Raw, SolveOptions, SolveResult, Status

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


class SatBackend(Backend):
    """BNN formulas (--encoding cnf) through python-sat: ``sat:<solver>[+<encoding>]``."""

    modules = ("pysat",)
    capabilities = frozenset({"cnf"})
    install_hint = "pip install python-sat (or verify[sat])"
    status_table = STATUS_TABLE
    solver_label = "python-sat"
    cancellable = False        # SatSession.solve runs its own cancellable slices

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

    def _solve(self, problem: Problem, options: SolveOptions) -> SolveResult:   # pragma: no cover
        raise BackendUnavailableError("SAT backends solve BNN formulas, not MIP problems")

    # the backend contract, on a formula instead of a Problem: build / run / extract
    def build(self, formula: CnfFormula | CnfSource, options: SolveOptions | None = None) -> SatSession:
        """A live solver holding ``formula`` (writing it stops after the time limit)."""
        return self.session(formula, (options or SolveOptions()).time_limit)

    def run(self, model: SatSession, options: SolveOptions) -> SolveResult:
        return model.solve(time_limit=options.time_limit)

    def cancel(self, model: SatSession) -> None:
        model.solver.interrupt()

    def extract(self, model: SatSession, ran: SolveResult, problem, options: SolveOptions) -> Raw:
        return Raw(native=ran.extra.get("native"), x=ran.x, objective=ran.objective,
                   message=ran.message, extra=ran.extra)

    def release(self, model: SatSession) -> None:
        model.close()

    def session(self, formula: CnfFormula | CnfSource, time_limit: float | None = None) -> SatSession:
        """A live solver holding ``formula`` (writing it stops after ``time_limit`` s)."""
        if not self.available():
            raise BackendUnavailableError(f"backend {self.name!r} is not installed ({self.install_hint})")
        return SatSession(self, formula, time_limit)

    def solve_formula(self, formula: CnfFormula | CnfSource, options: SolveOptions | None = None) -> SolveResult:
        """One satisfiability question; the result's ``x`` is the truth value per variable."""
        options = options or SolveOptions()
        limit = options.time_limit
        t0 = time.perf_counter()
        session = self.build(formula, options)
        try:
            return self.run(session, dataclasses.replace(
                options, time_limit=None if limit is None
                else max(1e-3, limit - (time.perf_counter() - t0))))
        finally:
            self.release(session)


class SatSession:
    """A live solver holding a formula; more constraints and assumptions per call."""

    def __init__(self, backend: SatBackend, formula: CnfFormula | CnfSource, time_limit: float | None = None):
        from pysat.formula import IDPool
        from pysat.solvers import Solver

        self.backend = backend
        self.formula = formula = as_cnf(formula)
        self.solver = Solver(name=backend.solver)
        self.pool = IDPool(start_from=formula.num_vars + 1)
        self.clauses = 0
        self.atmost = 0
        self.build_s = 0.0
        #: True when writing the formula ran past ``time_limit`` (clausal encodings of wide
        #: layers can take minutes): every solve then answers ``time_limit`` at once
        self.expired = False
        t0 = time.perf_counter()
        for clause in formula.clauses:
            self.add_clause(clause)
        for con in formula.constraints:
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                self.expired = True
                break
            if interrupts.stop_requested():
                break                   # every solve answers "interrupted" at once
            self.add(con)
        self.prefer(formula.preferred)     # e.g. search near the input first
        self.build_s = time.perf_counter() - t0

    def prefer(self, literals) -> None:
        """Branch on these literals' values first (the solver's saved phases)."""
        if hasattr(self.solver, "set_phases"):
            self.solver.set_phases([int(l) for l in literals])

    def new_var(self) -> int:
        return self.pool.id(("extra", self.pool.top + 1))

    def add_clause(self, clause) -> None:
        self.solver.add_clause([int(l) for l in clause])
        self.clauses += 1

    def add(self, con: AtLeast) -> None:
        """Add ``guard ⇒ #true(lits) >= bound``."""
        lits = [int(l) for l in con.lits]
        m, bound, guard = len(lits), int(con.bound), int(con.guard)
        if bound <= 0:
            return
        if bound > m:                                   # impossible: the guard must be false
            self.add_clause([-guard] if guard else [])
            return
        negated = [-l for l in lits]                    # at most m - bound of them true
        if self.backend.encoding == "native":
            if guard:
                self.solver.add_atmost(negated + [guard] * bound, m)
            else:
                self.solver.add_atmost(negated, m - bound)
            self.atmost += 1
            return
        from pysat.card import CardEnc
        if bound == m:                                  # all literals true: unit clauses
            for l in lits:
                self.add_clause([l, -guard] if guard else [l])
            return
        if bound == 1:
            self.add_clause(lits + ([-guard] if guard else []))
            return
        cnf = CardEnc.atmost(lits=negated, bound=m - bound, vpool=self.pool,
                             encoding=self.backend._enc_type())
        if self.clauses + len(cnf.clauses) > MAX_CLAUSES:
            raise ProblemTooLargeError(
                f"the {self.backend.encoding} encoding needs more than {MAX_CLAUSES:,} clauses "
                f"for this formula; use a native cardinality solver ({', '.join(NATIVE)})")
        for clause in cnf.clauses:
            self.add_clause(clause + [-guard] if guard else clause)

    def size(self) -> dict:
        return {"variables": int(self.pool.top), "clauses": self.clauses, "atmost": self.atmost}

    def solve(self, assumptions=(), time_limit: float | None = None) -> SolveResult:
        """Satisfiable (status ``optimal``, ``x``: bool per variable, index 0 unused),
        unsatisfiable (``infeasible``), out of time (``time_limit``) or stopped by a stop
        request (``interrupted``; see :mod:`verify.interrupts`)."""
        t0 = time.perf_counter()
        if interrupts.stop_requested():
            return self._answer("not_started", 0.0, message="not started: a stop was requested")
        if self.expired:
            return self._answer("expired", 0.0,
                                message="the time limit ran out while writing the formula")
        if time_limit is not None and self.backend.solver in NO_INTERRUPT:
            raise BackendUnavailableError(
                f"python-sat cannot interrupt {self.backend.solver}, so it cannot keep a time "
                "limit; drop the time limit or use sat:glucose4+totalizer")
        if time_limit is not None and time_limit <= 0:
            return self._answer("unknown", 0.0)
        answer = self._run([int(a) for a in assumptions],
                           None if time_limit is None else t0 + time_limit)
        elapsed = time.perf_counter() - t0
        if answer is None:
            return self._answer("stopped" if interrupts.stop_requested() else "unknown", elapsed)
        if not answer:
            return self._answer("unsat", elapsed)
        model = np.asarray(self.solver.get_model(), dtype=np.int64)
        truth = np.zeros(max(self.pool.top, self.formula.num_vars) + 1, dtype=bool)
        truth[model[model > 0]] = True
        return self._answer("sat", elapsed, x=truth, objective=0.0)

    def _answer(self, native: str, elapsed: float, message: str = "", **kw) -> SolveResult:
        """The result for the session's answer ``native``, mapped through the status table."""
        return SolveResult(STATUS_TABLE[native], self.backend.name, time_s=elapsed,
                           message=message, extra={"native": native}, **kw)

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
            if interrupts.stop_requested():
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
