"""The one contract every solver backend implements, and the shared result vocabulary.

A backend declares what it can solve as data (:attr:`Backend.capabilities`), says whether it
is installed without importing the solver (:meth:`Backend.available`), and implements three
steps: :meth:`~Backend.build` (the solver's own model of a :class:`~verify.problem.Problem`),
:meth:`~Backend.run` (solve it; :meth:`~Backend.cancel` stops a run from another thread) and
:meth:`~Backend.extract` (a :class:`Raw` answer: the *native* status, incumbent, bound). The
native status goes through the backend's :attr:`~Backend.status_table` to a :class:`Status`.

Everything the backends share lives once, in :meth:`Backend.solve` / :meth:`Backend._settle`:
stop requests (:mod:`verify.interrupts`), the cutoff rules, settling "infeasible or
unbounded" by a feasibility solve, clamping an optimal bound to the objective, and "an
unfinished LP/QP has no proven bound".
"""
from __future__ import annotations

import dataclasses
import importlib.util
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .. import interrupts
from ..errors import BackendUnavailableError
from ..problem import Problem
from ..status import Status

#: Seconds past a solve's time limit after which it is cancelled (see
#: :func:`verify.interrupts.call_cancellable`): some solvers check their limit only now and then.
TIME_LIMIT_GRACE_S = 1.0

__all__ = ["Backend", "LpSession", "ProblemRun", "Raw", "SolveOptions", "SolveResult", "Status"]


class LpSession(ABC):
    """One LP kept loaded in the solver and re-optimised with changing objectives: the LP
    bound stage minimises and maximises many single columns over the same LP, each solve
    warm-started from the last basis (:meth:`Backend.lp_session`)."""

    @abstractmethod
    def optimum(self, col: int, sign: float, time_limit: float | None = None) -> float | None:
        """min ``sign · x[col]`` over the LP, or None when it did not solve to optimality
        (within ``time_limit`` seconds, if given)."""

    def close(self) -> None:
        """Free the solver's memory (default: nothing to do)."""


#: Names of installed backends that can solve a problem kind (set by the registry,
#: :mod:`verify.backends`, which sits above this module: used only for error hints).
_alternatives: Callable[[str], list[str]] = lambda kind: []


def set_alternatives(lookup: Callable[[str], list[str]]) -> None:
    """Let capability errors name the installed backends that can solve a kind."""
    global _alternatives
    _alternatives = lookup


#: How long :meth:`Backend.solve_light_first` tries without cutting planes (seconds): the
#: explanation checks' feasibility MIPs that the light try settles took 0.01–0.3 s each
#: (cnn, ε = 0.05 and full range); the ones it does not settle took 3–45 s with cuts.
LIGHT_TRY_S = 1.0


@dataclass
class SolveOptions:
    time_limit: float | None = None   # seconds
    threads: int | None = None
    rel_gap: float = 1e-6             # relative MIP gap at which a solution counts as optimal
    verbose: bool = False
    cutoff: float | None = None       # only solutions with objective < cutoff are wanted
    #: False when a good solution is already known and the solve is mainly a proof (e.g.
    #: "no adversarial example with fewer changes"): primal heuristics are then wasted work.
    primal_heuristics: bool = True
    #: False: skip the solver's presolve (HiGHS, SCIP, CPLEX; other backends ignore it)
    presolve: bool = True
    #: False: no cutting planes and only the fast presolve (SCIP; other backends ignore it).
    #: Measured on the feasibility MIPs of explanation checks (cnn at ε = 0.05 and full
    #: range, 30–110 binaries): 6–12x faster; on a hard one (784-64-32-10, full range) a
    #: proof took 45 s with cuts and over 60 s without. See :func:`solve_light_first`.
    cuts: bool = True


@dataclass
class SolveResult:
    status: Status
    backend: str
    x: np.ndarray | None = None       # incumbent solution (None if none found)
    objective: float | None = None    # objective of x
    bound: float | None = None        # proven lower bound on the optimum
    time_s: float = 0.0
    message: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        return abs(self.objective - self.bound) / max(1e-10, abs(self.objective))

    @property
    def has_solution(self) -> bool:
        return self.x is not None


@dataclass
class Raw:
    """What :meth:`Backend.extract` read from the solver, before the shared rules.

    ``native``: the solver's own status (a key of the backend's status table); ``x`` and
    ``objective``: the incumbent if there is a primal feasible one; ``bound``: the solver's
    proven lower bound if it reports a finite one; ``message``: the native status in words."""

    native: Any
    x: np.ndarray | None = None
    objective: float | None = None
    bound: float | None = None
    message: str = ""
    extra: dict = field(default_factory=dict)


class Backend(ABC):
    """Base class: subclasses set the class attributes and implement build / run / extract
    (and :attr:`status_table`); :meth:`solve` is the same for all of them.

    A backend that does not solve :class:`~verify.problem.Problem` objects at all (the SAT
    backends: BNN formulas) overrides :meth:`_solve` instead.
    """

    name: str = ""
    modules: tuple[str, ...] = ()          # Python modules that must be importable
    capabilities: frozenset[str] = frozenset()   # subset of {"lp", "milp", "qp", "miqp"}
    install_hint: str = ""
    #: native status -> :class:`Status` (a native status missing here is an ``error``)
    status_table: ClassVar[Mapping[Any, Status]] = {}
    #: how messages name the solver ("HiGHS stopped with ...")
    solver_label: str = "solver"
    #: True when :meth:`build` hands ``options.cutoff`` to the solver for MIPs: the solver
    #: then prunes everything not below it, so "infeasible" means "nothing below the cutoff"
    passes_cutoff: bool = False
    #: True when :meth:`cancel` can stop a run: it then runs in a worker thread while the
    #: caller waits for stop requests (:func:`verify.interrupts.call_cancellable`)
    cancellable: bool = True
    #: True when :meth:`build` honours ``options.cuts = False``
    switches_cuts: bool = False

    def available(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.modules)

    def unavailable_reason(self) -> str | None:
        """None when installed, else why not and what to install."""
        return None if self.available() else f"not installed ({self.install_hint})"

    def check(self, problem: Problem) -> None:
        """Raise :class:`BackendUnavailableError` if this backend cannot take ``problem``."""
        self.check_kind(problem.kind)

    def check_kind(self, kind: str) -> None:
        """Raise :class:`BackendUnavailableError` unless installed and able to solve ``kind``."""
        if not self.available():
            raise BackendUnavailableError(
                f"backend {self.name!r} is not installed ({self.install_hint})")
        if kind not in self.capabilities:
            others = _alternatives(kind)
            hint = f"use --backend {others[0]}" if others else "install pyscipopt (pip install verify[scip])"
            raise BackendUnavailableError(
                f"backend {self.name!r} cannot solve {kind.upper()} problems "
                f"(it solves {', '.join(sorted(self.capabilities)).upper()}); {hint}"
                + (f" (installed backends that can: {', '.join(others)})" if others else ""))

    def solve(self, problem: Problem, options: SolveOptions | None = None) -> SolveResult:
        """Solve ``problem``. A stop request (Ctrl-C, SIGTERM, :func:`verify.interrupts.request_stop`)
        cancels the solve: the result then has status ``interrupted`` with the incumbent and
        proven bound found so far; after a stop request no new solve starts (status
        ``interrupted`` at once)."""
        self.check(problem)
        with interrupts.scope():
            if interrupts.stop_requested():
                return SolveResult(status=Status.INTERRUPTED, backend=self.name,
                                   message="not started: a stop was requested")
            return self._solve(problem, options or SolveOptions())

    def solve_light_first(self, problem: Problem, options: SolveOptions,
                          try_s: float = LIGHT_TRY_S) -> SolveResult:
        """:meth:`solve`, tried first without cutting planes (``cuts=False``) for at most
        ``try_s`` seconds; a try that ends at that limit is followed by the solve as asked,
        for the time left. The easy feasibility MIPs that explanation checks ask in hundreds
        take a fraction of the time with the light try; a hard one pays ``try_s`` more.
        Backends that ignore ``cuts`` (see :attr:`switches_cuts`) just solve."""
        if not self.switches_cuts or not options.cuts:
            return self.solve(problem, options)
        limit = options.time_limit
        if limit is not None and limit <= try_s:
            return self.solve(problem, dataclasses.replace(options, cuts=False))
        started = time.perf_counter()
        light = self.solve(problem, dataclasses.replace(options, cuts=False, time_limit=try_s))
        if light.status != Status.TIME_LIMIT:
            return light
        left = None if limit is None else max(limit - (time.perf_counter() - started), 0.0)
        full = self.solve(problem, dataclasses.replace(options, time_limit=left))
        return dataclasses.replace(full, time_s=full.time_s + light.time_s)

    # ------------------------------------------------------------------ the three steps

    def trivial(self, problem: Problem) -> SolveResult | None:
        """An answer found without the solver (e.g. a row no point satisfies), else None."""
        return None

    @abstractmethod
    def build(self, problem: Problem, options: SolveOptions | None = None) -> Any:
        """The solver's own model of ``problem``, configured from ``options``."""

    @abstractmethod
    def run(self, model: Any, options: SolveOptions) -> Any:
        """Solve ``model``; the return value is handed to :meth:`extract`."""

    def cancel(self, model: Any) -> None:
        """Stop a :meth:`run` in progress (called from another thread on a stop request).
        The default does nothing: the run then ends at its own time limit."""

    @abstractmethod
    def extract(self, model: Any, ran: Any, problem: Problem, options: SolveOptions) -> Raw:
        """The native status, incumbent and bound of a finished :meth:`run`."""

    def release(self, model: Any) -> None:
        """Free the solver's memory for ``model`` (default: nothing to do)."""

    def lp_session(self, problem: Problem) -> LpSession:
        """``problem``'s feasible region (objective and integrality dropped) loaded as an
        :class:`LpSession` for repeated warm-started single-column optimisations. Backends that cannot keep an LP loaded
        raise :class:`BackendUnavailableError` (the default)."""
        raise BackendUnavailableError(
            f"backend {self.name!r} offers no warm-started LP session (use highs)")

    # ------------------------------------------------------------------ the shared rules

    def _solve(self, problem: Problem, options: SolveOptions) -> SolveResult:
        """One :class:`ProblemRun` (build, run, extract, then :meth:`_settle`: the rules all
        share), its run cancellable by a stop request and by a watchdog past the time limit."""
        early = self.trivial(problem)
        if early is not None:
            return early
        run = ProblemRun(self, problem, options)
        if self.cancellable:
            watchdog = (None if options.time_limit is None
                        else max(options.time_limit, 0.0) + TIME_LIMIT_GRACE_S)
            result = run.solve(lambda go, stop: interrupts.call_cancellable(go, stop, watchdog))
        else:
            result = run.solve()
        if (result.status == Status.INTERRUPTED and not interrupts.stop_requested()
                and options.time_limit is not None and result.time_s > options.time_limit):
            # the time-limit watchdog, not the user, stopped it
            result = dataclasses.replace(result, status=Status.TIME_LIMIT)
        return result

    def _settle(self, raw: Raw, problem: Problem, options: SolveOptions,
                elapsed: float) -> SolveResult:
        """Turn a :class:`Raw` answer into a :class:`SolveResult` by the rules every backend
        shares (the only place they are written):

        * the native status maps through :attr:`status_table` (missing: ``error``);
        * ``infeasible`` for a MIP whose solver was given the cutoff is ``cutoff`` with
          ``bound = cutoff`` (the solver cannot tell the two apart);
        * ``cutoff``: no incumbent, ``bound = cutoff``;
        * ``optimal`` for such a MIP with no incumbent below the cutoff is ``cutoff`` too
          (HiGHS can finish "optimal" with an incumbent at or above its objective bound);
        * ``infeasible_or_unbounded`` is settled by a zero-objective feasibility solve;
        * ``optimal``: ``bound`` is the objective if the solver gave none, and never above it;
        * ``unbounded``: ``bound = -inf``; ``infeasible``: no incumbent, no bound;
        * an unfinished (time limit, interrupted, error) LP/QP has no proven bound.
        """
        status = self.status_table.get(raw.native, Status.ERROR)
        x, objective, bound, message = raw.x, raw.objective, raw.bound, raw.message
        is_mip = problem.num_integer > 0
        cutoff = options.cutoff if (self.passes_cutoff and is_mip) else None
        if status == Status.INFEASIBLE and cutoff is not None:
            status = Status.CUTOFF
            message = "no solution below the cutoff (or the problem is infeasible)"
        elif (status == Status.OPTIMAL and cutoff is not None
              and (objective is None or objective >= cutoff)):
            status, message = Status.CUTOFF, "no solution below the cutoff"
        if status == Status.INFEASIBLE_OR_UNBOUNDED:
            status, bound = self._settle_unbounded_or_infeasible(problem, options)
            message = (f"{status} ({self.solver_label}: infeasible or unbounded; a feasibility "
                       "solve settled it)")
            if status != Status.UNBOUNDED:
                x = objective = None
        elif status == Status.CUTOFF:
            x = objective = None
            bound = float(options.cutoff) if options.cutoff is not None else bound
        elif status == Status.INFEASIBLE:
            x = objective = bound = None
        elif status == Status.UNBOUNDED:
            bound = -np.inf
        elif status == Status.OPTIMAL:
            if bound is None:
                bound = objective
            elif objective is not None:
                bound = min(bound, objective)  # never claim more than the incumbent's value
        elif status == Status.ERROR:
            message = f"{self.solver_label} stopped with status {raw.message!r}"
        if not is_mip and status in (Status.TIME_LIMIT, Status.INTERRUPTED, Status.ERROR):
            bound = None  # an unfinished LP/QP has no proven bound
        return SolveResult(status=status, backend=self.name, x=x, objective=objective,
                           bound=bound, time_s=elapsed, message=message, extra=raw.extra)

    def _settle_unbounded_or_infeasible(self, problem: Problem, options: SolveOptions):
        """``(status, bound)`` when the solver could not tell infeasible from unbounded:
        solve the zero-objective feasibility problem to decide."""
        feasibility = dataclasses.replace(problem, c=np.zeros_like(problem.c), P=None, offset=0.0)
        sub = self._solve(feasibility, dataclasses.replace(options, cutoff=None))
        if sub.status == Status.OPTIMAL:
            return Status.UNBOUNDED, -np.inf
        if sub.status == Status.INFEASIBLE:
            return Status.INFEASIBLE, None
        return Status.ERROR, None


def _direct(go: Callable[[], Any], stop: Callable[[], None]) -> Any:
    return go()


class ProblemRun:
    """One run of ``problem`` on ``backend`` under ``options``: the backend's build, run and
    extract steps, then :meth:`Backend._settle`; the model is released afterwards.
    :meth:`stop` (any thread, any time, also before the run started) cancels it through the
    backend's own cancel. :meth:`Backend.solve` is one such run; a race
    (:mod:`verify.backends.race`) holds several."""

    def __init__(self, backend: Backend, problem: Problem, options: SolveOptions):
        self.backend, self.problem, self.options = backend, problem, options
        self._lock = threading.Lock()
        self._model: Any = None
        self._stopped = False

    def solve(self, call: Callable[[Callable[[], Any], Callable[[], None]], Any] = _direct
              ) -> SolveResult:
        """Build, run, extract, settle. ``call(go, stop)`` runs the native solve ``go`` (the
        default calls it directly; :meth:`Backend._solve` passes it to
        :func:`verify.interrupts.call_cancellable` with :meth:`stop`)."""
        backend, problem, options = self.backend, self.problem, self.options
        t0 = time.perf_counter()
        with self._lock:
            if self._stopped:
                return SolveResult(Status.INTERRUPTED, backend.name, message="not started")
            model = self._model = backend.build(problem, options)
        build_s = time.perf_counter() - t0
        try:
            ran = call(lambda: backend.run(model, options), self.stop)
            elapsed = time.perf_counter() - t0
            raw = backend.extract(model, ran, problem, options)
        finally:
            with self._lock:
                self._model = None
            backend.release(model)
        raw.extra["build_s"] = build_s
        return backend._settle(raw, problem, options, elapsed)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._model is not None:
                self.backend.cancel(self._model)
