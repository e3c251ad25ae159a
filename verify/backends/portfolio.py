"""A portfolio of two formula solvers for BNNs: ``portfolio`` (``--encoding cnf``).

The same :class:`~verify.cnf.CnfFormula` is loaded into two sessions — by default OR-Tools
CP-SAT (``cpsat``) and the pure 0-1 IP on HiGHS (``ip:highs``, :class:`HighsIpSession`: the
formula's rows, the BNN ``ip`` encoding) — and every call races them, one thread each (both
release the GIL while they search, so on 2 cores they really run side by side): the first
*proof* (satisfiable with a model, or unsatisfiable) is the answer, and the other solver is
stopped through its own interrupt (:meth:`~verify.backends.formula.FormulaSession.stop`,
re-sent until it ends) and joined before the call returns, so no search outlives its call.

Why these two (measured on the bundled ``bnn``, minimal flips by ascending budgets,
``benchmarks/bnn.py``): CP-SAT proves the small budgets unsatisfiable fastest, while HiGHS,
guided by its LP relaxation, finds the examples at the minimum that CP-SAT and MiniCard do
not find in 15 s (digit 11 at 9 flips: HiGHS 0.8 s, CP-SAT 16 s); MiniCard was slower than
CP-SAT on both sides and is the third choice (:data:`MEMBERS`: the first two installed race;
``PortfolioBackend(members=...)`` picks others).

* Constraints added between calls (a selector literal and a budget behind it) go to both
  sessions; :meth:`PortfolioSession.new_var` keeps their variable numbers in step.
* Time limit: each call gives both solvers the same limit; a stop request (Ctrl-C) stops
  both, and the answer is ``interrupted`` unless one of them had already proven something.
* Threads: ``--threads N`` gives CP-SAT ``N - 1`` workers (at least 1) beside the other
  member's one thread; without it the portfolio uses two threads in all.
* If only one member is installed the portfolio is that solver alone (the answer says which
  solver gave it: ``extra["solver"]``).
"""
from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable

import numpy as np

from .. import interrupts
from ..cnf import CnfFormula, CnfSource
from ..errors import BackendUnavailableError
from .base import ProblemRun, SolveResult, Status
from .cpsat import STATUS_TABLE as CPSAT_STATUS
from .cpsat import CpSatBackend
from .formula import FormulaBackend, FormulaSession
from .race import DECIDED, Entrant, race
from .sat import STATUS_TABLE as SAT_STATUS
from .sat import SatBackend

__all__ = ["MEMBERS", "PortfolioBackend", "PortfolioSession"]

#: the portfolio's candidate members, by preference: the first two installed race (the
#: order also breaks ties when both answer at once)
MEMBERS = ("cpsat", "ip:highs", "sat:minicard")

#: Native status words: the members' (their answers pass through as they are; the words do
#: not clash) and the portfolio's own (``unknown``, ``stopped``, ...).
STATUS_TABLE: dict[str, Status] = {**CPSAT_STATUS, **SAT_STATUS}


def member_backend(name: str) -> FormulaBackend:
    """The formula backend of a member name (``cpsat``, ``ip:highs``, ``sat:<solver>``)."""
    if name == "cpsat":
        return CpSatBackend()
    if name == "ip:highs":
        return HighsIpBackend()
    if name.startswith("sat:"):
        return SatBackend(name)
    raise BackendUnavailableError(f"unknown portfolio member {name!r}; choose from "
                                  f"{', '.join(MEMBERS)} or another sat:<solver>")


#: Whether the HiGHS member presolves. Measured on the bundled ``bnn`` (HiGHS alone, 10 s per
#: question): without presolve the 80 robustness questions took 17.9 s in all against 21.5 s
#: (the slowest 8.5 s against a timeout), and the two hardest single questions met in
#: minimal flips took 9.5 s / 0.1 s against 40 s (unfinished) / 0.33 s (digit 6 at 12 flips,
#: digit 3 at 5); the easy questions, which cost a few ms either way, are MiniCard's and
#: CP-SAT's.
PRESOLVE = False


class HighsIpBackend(FormulaBackend):
    """A formula as a pure 0-1 IP on HiGHS (``ip:highs``), as a portfolio member: a clause is
    ``Σ lits >= 1``, ``guard ⇒ #true(lits) >= bound`` is ``Σ lits - bound·[guard] >= 0``
    (a negated literal ``¬x`` counts as ``1 - x``), the rows the BNN's ``ip`` encoding has."""

    name = "ip:highs"
    modules = ("highspy",)
    install_hint = "pip install highspy"
    status_table = STATUS_TABLE
    solver_label = "HiGHS (0-1 IP)"

    def make_session(self, formula: CnfFormula | CnfSource, time_limit: float | None,
                     threads: int | None) -> HighsIpSession:
        return HighsIpSession(self, formula, time_limit)


class HighsIpSession(FormulaSession):
    """The rows of a formula, solved as a 0-1 IP by HiGHS each call (assumptions fix their
    columns); :meth:`stop` cancels the HiGHS run in progress."""

    out_of_time = "unknown"

    def __init__(self, backend: HighsIpBackend, formula: CnfFormula | CnfSource,
                 time_limit: float | None = None):
        super().__init__(backend, formula)
        self.num_vars = self.formula.num_vars
        self.rows: list[tuple[list[int], int, int]] = []    # literals, bound, guard
        self._lock = threading.Lock()
        self._run: ProblemRun | None = None
        self.load(time_limit)

    def load(self, time_limit: float | None) -> None:
        """The formula's rows in the order the BNN ``ip`` encoding writes them: the
        cardinality rows first, then the clauses. HiGHS's search depends on the row order
        (bundled ``bnn``, digit 3, at most 5 flips, with presolve: 0.35 s in this order,
        20.6 s with the clauses first; without presolve, :data:`PRESOLVE`: 0.10 s / 0.09 s;
        digit 6 at 12 flips without presolve: 9.5 s / 23.8 s)."""
        super().load(time_limit)
        n = len(self.formula.clauses)               # load() wrote them first, one row each
        self.rows = self.rows[n:] + self.rows[:n]

    def add_clause(self, clause: Iterable[int]) -> None:
        self.rows.append(([int(l) for l in clause], 1, 0))
        self.clauses += 1

    def add_at_least(self, lits: list[int], bound: int, guard: int) -> None:
        self.rows.append(([int(l) for l in lits], int(bound), int(guard)))

    def prefer(self, literals: Iterable[int]) -> None:
        """Nothing: HiGHS takes no phases (its LP relaxation guides the search)."""

    def new_var(self) -> int:
        self.num_vars += 1
        return self.num_vars

    def size(self) -> dict:
        return {"columns": self.num_vars, "rows": len(self.rows)}

    def stop(self) -> None:
        with self._lock:
            run = self._run
        if run is not None:
            run.stop()

    @property
    def backend_highs(self):
        from .highs import HighsBackend
        return HighsBackend()

    def _problem(self, assumptions: list[int]):
        """The 0-1 IP: per row ``Σ lits - bound·[guard] >= bound·(guard negated) - #negated``
        (``[¬x] = 1 - x``), all rows at once; assumptions fix their columns."""
        from ..problem import ProblemBuilder

        lo, hi = np.zeros(self.num_vars), np.ones(self.num_vars)
        for a in assumptions:
            if a > 0:
                lo[a - 1] = 1.0
            else:
                hi[-a - 1] = 0.0
        b = ProblemBuilder("formula")
        b.add_vars("bits", self.num_vars, lo, hi, integer=True)
        if self.rows:
            guards = np.array([g for _, _, g in self.rows], dtype=np.int64)
            bounds = np.array([k for _, k, _ in self.rows], dtype=np.float64)
            sizes = np.array([len(l) for l, _, _ in self.rows], dtype=np.int64)
            lits = np.fromiter((l for ls, _, _ in self.rows for l in ls), dtype=np.int64,
                               count=int(sizes.sum()))
            row_of = np.repeat(np.arange(len(self.rows)), sizes)
            negated = np.bincount(row_of, weights=(lits < 0), minlength=len(self.rows))
            lower = bounds - negated
            has = np.flatnonzero(guards != 0)
            g = guards[has]
            # Σ lits >= bound·[g]: [g] = x_g (g > 0) or 1 - x_g (g < 0)
            lower[has] = np.where(g < 0, bounds[has], 0.0) - negated[has]
            rows = np.concatenate([row_of, has])
            cols = np.concatenate([np.abs(lits) - 1, np.abs(g) - 1])
            vals = np.concatenate([np.where(lits > 0, 1.0, -1.0),
                                   np.where(g > 0, -bounds[has], bounds[has])])
            b.add_rows(rows, cols, vals, lower, np.inf, count=len(self.rows))
        return b.build()

    def solve(self, assumptions: Iterable[int] = (), time_limit: float | None = None) -> SolveResult:
        from .base import SolveOptions

        t0 = time.perf_counter()
        early = self.early(time_limit)
        if early is not None:
            return early
        assumptions = [int(a) for a in assumptions]
        if any(-a in assumptions for a in assumptions):
            return self.answer("unsat", time.perf_counter() - t0)
        run = ProblemRun(self.backend_highs, self._problem(assumptions),
                         SolveOptions(time_limit=time_limit, threads=1, presolve=PRESOLVE))
        with self._lock:
            self._run = run
        try:
            res = interrupts.call_cancellable(run.solve, run.stop)
        finally:
            with self._lock:
                self._run = None
        elapsed = time.perf_counter() - t0
        if res.status == Status.INFEASIBLE:
            return self.answer("unsat", elapsed)
        if res.x is not None:
            truth = np.zeros(self.num_vars + 1, dtype=bool)
            truth[1:] = np.asarray(res.x)[:self.num_vars] > 0.5
            return self.answer("sat", elapsed, x=truth, objective=0.0)
        if res.status == Status.ERROR:
            return SolveResult(Status.ERROR, self.backend.name, time_s=elapsed, message=res.message)
        return self.answer("stopped" if interrupts.stop_requested() else "unknown", elapsed)


class PortfolioBackend(FormulaBackend):
    """BNN formulas (--encoding cnf): CP-SAT and MiniCard race, the first proof wins."""

    name = "portfolio"
    modules = ()
    install_hint = "pip install ortools highspy (or verify[ortools])"
    status_table = STATUS_TABLE
    solver_label = "portfolio"

    def __init__(self, threads: int | None = None, members: tuple[str, ...] | None = None):
        self.threads = threads
        #: the candidate members (default :data:`MEMBERS`); the first two installed race
        self.members = tuple(members or MEMBERS)
        self.__doc__ = ("BNNs (--encoding cnf): CP-SAT and a 0-1 IP on HiGHS race on 2 "
                        "threads, the first proof wins")

    def installed_members(self) -> list[FormulaBackend]:
        return [m for m in (member_backend(n) for n in self.members) if m.available()][:2]

    def available(self) -> bool:
        return bool(self.installed_members())

    def unavailable_reason(self) -> str | None:
        if self.available():
            return None
        return f"none of {', '.join(self.members)} is installed ({self.install_hint})"

    def make_session(self, formula: CnfFormula | CnfSource, time_limit: float | None,
                     threads: int | None) -> PortfolioSession:
        return PortfolioSession(self, formula, time_limit, threads)


class PortfolioSession(FormulaSession):
    """One session per member, holding the same formula; every call races them."""

    backend: PortfolioBackend

    def __init__(self, backend: PortfolioBackend, formula: CnfFormula | CnfSource,
                 time_limit: float | None = None, threads: int | None = None):
        super().__init__(backend, formula)
        members = backend.installed_members()
        if not members:
            raise BackendUnavailableError(f"backend 'portfolio' is not installed: "
                                          f"{backend.unavailable_reason()}")
        t0 = time.perf_counter()
        workers = max(1, int(threads) - 1) if threads else 1
        self.sessions: list[FormulaSession] = []
        try:
            for m in members:
                left = None if time_limit is None else max(1e-3, time_limit - (time.perf_counter() - t0))
                self.sessions.append(m.session(self.formula, left, workers if isinstance(m, CpSatBackend)
                                               else None))
        except BaseException:
            self.close()
            raise
        self.expired = all(s.expired for s in self.sessions)
        self.build_s = time.perf_counter() - t0
        self.clauses = max(s.clauses for s in self.sessions)

    # the formula is written by the members' own sessions
    def add_clause(self, clause: Iterable[int]) -> None:
        clause = [int(lit) for lit in clause]
        for s in self.sessions:
            s.add_clause(clause)
        self.clauses += 1

    def add_at_least(self, lits: list[int], bound: int, guard: int) -> None:
        for s in self.sessions:
            s.add_at_least(lits, bound, guard)

    def prefer(self, literals: Iterable[int]) -> None:
        literals = [int(lit) for lit in literals]
        for s in self.sessions:
            s.prefer(literals)

    def new_var(self) -> int:
        numbers = {s.new_var() for s in self.sessions}
        if len(numbers) != 1:               # cannot happen with native cardinality members
            raise BackendUnavailableError(f"portfolio members numbered a new variable "
                                          f"differently: {sorted(numbers)}")
        return numbers.pop()

    def stop(self) -> None:
        for s in self.sessions:
            s.stop()

    def size(self) -> dict:
        return {s.backend.name: s.size() for s in self.sessions}

    def solve(self, assumptions: Iterable[int] = (), time_limit: float | None = None) -> SolveResult:
        """Race the members on one question; the first proof wins and the other is stopped
        and joined. ``extra["solver"]`` names the member that answered."""
        t0 = time.perf_counter()
        early = self.early(time_limit)
        if early is not None:
            return early
        assumptions = [int(a) for a in assumptions]
        live = [s for s in self.sessions if not s.expired]
        if len(live) == 1:
            return self._tag(live[0].solve(assumptions, time_limit), live[0])
        finished = race([Entrant(s.backend.name, functools.partial(s.solve, assumptions, time_limit),
                                 s.stop) for s in live], time_limit)
        elapsed = time.perf_counter() - t0
        winners = [(i, r) for i, r in finished if r.status in DECIDED]
        if winners:
            # both may have finished: answers agree for an exact formula; prefer a model
            winners.sort(key=lambda ir: (ir[1].status != Status.OPTIMAL, ir[0]))
            i, res = winners[0]
            res.time_s = elapsed
            return self._tag(res, live[i])
        errors = [r for _, r in finished if r.status == Status.ERROR]
        if errors and len(errors) == len(finished):
            return errors[0]
        native = "stopped" if interrupts.stop_requested() else "unknown"
        return self.answer(native, elapsed, message="; ".join(
            f"{live[i].backend.name}: {r.status}" for i, r in sorted(finished)))

    @staticmethod
    def _tag(res: SolveResult, session: FormulaSession) -> SolveResult:
        res.extra = dict(res.extra or {}, solver=session.backend.name)
        return res

    def minimize(self, lits, assumptions=(), time_limit: float | None = None) -> SolveResult:
        """Not offered: the BNN tasks search the budgets with :meth:`solve` instead."""
        raise BackendUnavailableError("the portfolio answers satisfiability questions only")

    def close(self) -> None:
        for s in getattr(self, "sessions", []):
            s.close()
