"""The one interface every solver backend implements, and the shared result vocabulary.

A backend declares what it can solve as data (:attr:`Backend.capabilities`), says whether it
is installed without importing the solver (:meth:`Backend.available`), and turns a
:class:`~verify.problem.Problem` into a :class:`SolveResult` (:meth:`Backend.solve`).
"""
from __future__ import annotations

import dataclasses
import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from ..errors import BackendUnavailableError
from ..problem import Problem


class Status:
    """Why the solver stopped. The same words for every backend."""

    OPTIMAL = "optimal"          # proven optimal (within the relative gap asked for)
    INFEASIBLE = "infeasible"    # proven: no feasible point
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"    # stopped by the time limit; x/objective are the incumbent if any
    CUTOFF = "cutoff"            # proven: no solution better than the cutoff given
    INTERRUPTED = "interrupted"  # node/solution limit or user interrupt
    ERROR = "error"


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


@dataclass
class SolveResult:
    status: str
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


class Backend(ABC):
    """Base class: subclasses set the class attributes and implement :meth:`_solve`."""

    name: str = ""
    modules: tuple[str, ...] = ()          # Python modules that must be importable
    capabilities: frozenset[str] = frozenset()   # subset of {"lp", "milp", "qp", "miqp"}
    install_hint: str = ""

    def available(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.modules)

    def check(self, problem: Problem) -> None:
        """Raise :class:`BackendUnavailableError` if this backend cannot take ``problem``."""
        self.check_kind(problem.kind)

    def check_kind(self, kind: str) -> None:
        """Raise :class:`BackendUnavailableError` unless installed and able to solve ``kind``."""
        if not self.available():
            raise BackendUnavailableError(
                f"backend {self.name!r} is not installed ({self.install_hint})")
        if kind not in self.capabilities:
            from . import backends_for
            others = [b.name for b in backends_for(kind)]
            hint = f"use --backend {others[0]}" if others else "install pyscipopt (pip install verify[scip])"
            raise BackendUnavailableError(
                f"backend {self.name!r} cannot solve {kind.upper()} problems "
                f"(it solves {', '.join(sorted(self.capabilities)).upper()}); {hint}"
                + (f" (installed backends that can: {', '.join(others)})" if others else ""))

    def solve(self, problem: Problem, options: SolveOptions | None = None) -> SolveResult:
        self.check(problem)
        return self._solve(problem, options or SolveOptions())

    @abstractmethod
    def _solve(self, problem: Problem, options: SolveOptions) -> SolveResult:
        """Solve a problem this backend is known to accept (see :meth:`check`)."""

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
