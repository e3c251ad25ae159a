"""What the backends for CNF/cardinality formulas (BNNs: ``sat:...``, ``cpsat``) share.

They solve a :class:`~verify.cnf.CnfFormula` instead of a :class:`~verify.problem.Problem`,
through sessions that keep the formula loaded: constraints can be added between calls and
each call takes assumptions. :class:`FormulaBackend` is the backend contract (build / run /
cancel / extract / release) on such a session; :class:`FormulaSession` writes a formula into
a solver within a time limit (stopping on a stop request), handles the cardinality
constraints every solver states the same way (``bound ≤ 0``: nothing; more than the literals:
the guard is false; ``bound = 1``: one clause) and answers calls that do not start.
A subclass states only the solver's own parts: clauses, a cardinality constraint, phases,
a solve, a stop.
"""
from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from .. import interrupts
from ..cnf import AtLeast, CnfFormula, CnfSource, as_cnf
from ..errors import BackendUnavailableError
from ..problem import Problem
from .base import Backend, Raw, SolveOptions, SolveResult

__all__ = ["FormulaBackend", "FormulaSession"]


class FormulaSession(ABC):
    """A solver holding a formula. Subclasses call :meth:`load` at the end of ``__init__``
    and set :attr:`out_of_time` to their status word for "no answer in time"."""

    #: the native word of an unfinished call (a key of the backend's status table)
    out_of_time = "unknown"

    def __init__(self, backend: FormulaBackend, formula: CnfFormula | CnfSource):
        self.backend = backend
        self.formula = as_cnf(formula)
        self.clauses = 0
        self.build_s = 0.0
        #: True when writing the formula ran past its time limit (clausal encodings of wide
        #: layers can take minutes): every call then answers ``time_limit`` at once
        self.expired = False

    def load(self, time_limit: float | None) -> None:
        """Write the formula's clauses and constraints (the constraints stop when
        ``time_limit`` seconds pass — :attr:`expired` — or a stop is requested, after which
        every call answers ``interrupted``), then its preferred literals."""
        t0 = time.perf_counter()
        for clause in self.formula.clauses:
            self.add_clause(clause)
        for con in self.formula.constraints:
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                self.expired = True
                break
            if interrupts.stop_requested():
                break
            self.add(con)
        self.prefer(self.formula.preferred)     # e.g. search near the input first
        self.build_s = time.perf_counter() - t0

    def add(self, con: AtLeast) -> None:
        """Add ``guard ⇒ #true(lits) >= bound``: the trivial cases here, the rest by
        :meth:`add_at_least`."""
        lits = [int(lit) for lit in con.lits]
        m, bound, guard = len(lits), int(con.bound), int(con.guard)
        if bound <= 0:
            return
        if bound > m:                                   # impossible: the guard must be false
            self.add_clause([-guard] if guard else [])
        elif bound == 1:                                # one of them: a clause
            self.add_clause(lits + ([-guard] if guard else []))
        else:
            self.add_at_least(lits, bound, guard)

    def early(self, time_limit: float | None) -> SolveResult | None:
        """The answer of a call that does not start (a stop was requested, the formula was
        not written in time, no time left), else None."""
        if interrupts.stop_requested():
            return self.answer("not_started", 0.0, message="not started: a stop was requested")
        if self.expired:
            return self.answer("expired", 0.0,
                               message="the time limit ran out while writing the formula")
        if time_limit is not None and time_limit <= 0:
            return self.answer(self.out_of_time, 0.0)
        return None

    def answer(self, native: str, elapsed: float, message: str = "", **kw: Any) -> SolveResult:
        """The result for the session's answer ``native``, mapped through the status table."""
        return SolveResult(self.backend.status_table[native], self.backend.name, time_s=elapsed,
                           message=message, extra={"native": native}, **kw)

    @abstractmethod
    def add_clause(self, clause: Iterable[int]) -> None:
        """Add a clause (literals ``±var``); count it in :attr:`clauses`."""

    @abstractmethod
    def add_at_least(self, lits: list[int], bound: int, guard: int) -> None:
        """Add ``guard ⇒ #true(lits) >= bound`` with ``2 ≤ bound ≤ len(lits)`` (guard 0: none)."""

    @abstractmethod
    def prefer(self, literals: Iterable[int]) -> None:
        """Try these literals' values first."""

    @abstractmethod
    def new_var(self) -> int:
        """A fresh variable (e.g. a selector literal); returns its number."""

    @abstractmethod
    def solve(self, assumptions: Iterable[int] = (), time_limit: float | None = None) -> SolveResult:
        """Satisfiable (status ``optimal``, ``x``: bool per variable, index 0 unused),
        unsatisfiable (``infeasible``), out of time (``time_limit``) or stopped by a stop
        request (``interrupted``; see :mod:`verify.interrupts`)."""

    @abstractmethod
    def stop(self) -> None:
        """End the call in progress (from another thread); safe at any time."""

    @abstractmethod
    def size(self) -> dict:
        """Counts of what the session holds (variables, clauses, constraints)."""

    def close(self) -> None:
        """Free the solver (default: nothing to do)."""


class FormulaBackend(Backend):
    """A backend that solves formulas (``capabilities`` ``cnf``): the backend contract on a
    :class:`FormulaSession` (:meth:`make_session`). ``threads`` is the default thread count
    of its sessions (solvers that run one thread ignore it)."""

    capabilities = frozenset({"cnf"})
    cancellable = False        # a session's solve runs its own cancellable call
    threads: int | None = None

    @abstractmethod
    def make_session(self, formula: CnfFormula | CnfSource, time_limit: float | None,
                     threads: int | None) -> FormulaSession:
        """The solver's session holding ``formula``."""

    def session(self, formula: CnfFormula | CnfSource, time_limit: float | None = None,
                threads: int | None = None) -> FormulaSession:
        """A session holding ``formula`` (writing it stops after ``time_limit`` s);
        ``threads``: the solver's threads (default: the backend's)."""
        if not self.available():
            raise BackendUnavailableError(
                f"backend {self.name!r} is not installed ({self.install_hint})")
        return self.make_session(formula, time_limit, threads or self.threads)

    def _solve(self, problem: Problem, options: SolveOptions) -> SolveResult:
        raise BackendUnavailableError(
            f"the {self.name} backend solves BNN formulas (--encoding cnf), not MIP problems")

    def build(self, formula: Any, options: SolveOptions | None = None) -> FormulaSession:
        """A session holding ``formula`` (writing it stops after the time limit)."""
        if isinstance(formula, Problem):
            self._solve(formula, options or SolveOptions())
        options = options or SolveOptions()
        return self.session(formula, options.time_limit, options.threads)

    def run(self, model: FormulaSession, options: SolveOptions) -> SolveResult:
        return model.solve(time_limit=options.time_limit)

    def cancel(self, model: FormulaSession) -> None:
        model.stop()

    def extract(self, model: FormulaSession, ran: SolveResult, problem: Any,
                options: SolveOptions) -> Raw:
        return Raw(native=ran.extra.get("native"), x=ran.x, objective=ran.objective,
                   message=ran.message, extra=ran.extra)

    def release(self, model: FormulaSession) -> None:
        model.close()

    def solve_formula(self, formula: CnfFormula | CnfSource,
                      options: SolveOptions | None = None) -> SolveResult:
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
