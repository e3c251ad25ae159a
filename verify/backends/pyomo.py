"""Pyomo backend: any solver Pyomo's ``SolverFactory`` knows, as ``pyomo:<solver>``.

The :class:`~verify.problem.Problem` becomes a ``ConcreteModel`` with one indexed ``Var``
and one indexed ``Constraint`` whose rows are ``LinearExpression`` objects built directly
from the CSR arrays (no operator overloading per coefficient), so a 1000-row problem builds
in a few tens of milliseconds.
"""
from __future__ import annotations

import importlib.util
import logging
import time

import numpy as np

from ..errors import SolveError
from ..problem import Problem
from ..problem_io import upper_triangle
from .base import Backend, SolveOptions, SolveResult, Status

#: ``SolverFactory(name).available()`` per solver name, computed once per process.
_AVAILABLE: dict[str, bool] = {}

#: Option names per solver family: SolveOptions field -> the solver's own option name.
#: ``time_limit`` missing means Pyomo's ``timelimit`` argument to ``solve`` is used instead.
_OPTION_NAMES: dict[str, dict[str, str]] = {
    "highs": {"threads": "threads", "rel_gap": "mip_rel_gap"},
    "cplex_direct": {"time_limit": "timelimit", "threads": "threads",
                     "rel_gap": "mip_tolerances_mipgap"},
    "cplex_shell": {"time_limit": "timelimit", "threads": "threads", "rel_gap": "mipgap"},
    "gurobi": {"time_limit": "TimeLimit", "threads": "Threads", "rel_gap": "MIPGap"},
    "scip": {"time_limit": "limits/time", "rel_gap": "limits/gap"},
    "cbc": {"time_limit": "sec", "threads": "threads", "rel_gap": "ratioGap"},
    "glpk": {"time_limit": "tmlim", "rel_gap": "mipgap"},
}

_OPTIMAL = {"optimal", "globallyOptimal", "locallyOptimal"}
_INTERRUPTED = {"maxIterations", "maxEvaluations", "userInterrupt", "resourceInterrupt",
                "intermediateNonInteger", "minStepLength", "feasible"}


def _family(solver: str) -> str | None:
    """Which entry of :data:`_OPTION_NAMES` names ``solver``'s options (None: unknown)."""
    s = solver.lower()
    if "highs" in s:
        return "highs"
    if s in ("cplex_direct", "cplex_persistent"):
        return "cplex_direct"
    if s == "cplex":
        return "cplex_shell"
    if "gurobi" in s:
        return "gurobi"
    for family in ("scip", "cbc", "glpk"):
        if family in s:
            return family
    return None


def _as_bound(value) -> float | None:
    """A finite float from a Pyomo results field, else None."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


class PyomoBackend(Backend):
    """A solver reached through Pyomo (``pyomo:appsi_highs``, ``pyomo:scip``, ...).

    Capabilities: LP, MILP, QP and MIQP, except HiGHS-based solvers (no MIQP), and
    ``appsi_highs``, ``cbc`` and ``glpk`` (linear only: Pyomo's APPSI HiGHS interface rejects
    quadratic objectives; ``pyomo:highs``, the newer interface, takes QPs).

    :meth:`available` asks Pyomo whether the solver is installed (cached per solver name).
    Options are passed under each solver's own names for the families in
    :data:`_OPTION_NAMES` (HiGHS, CPLEX direct/shell, Gurobi, SCIP, CBC, GLPK); any other solver
    gets the time limit only, through Pyomo's generic ``timelimit`` argument. ``verbose`` is
    ``tee``. ``cutoff`` is not passed to any solver. ``bound`` is the results'
    ``problem.lower_bound`` (for ``appsi_*`` solvers: the best objective bound) when the solver
    reports one, and the objective for an optimal continuous problem otherwise.
    """

    modules = ("pyomo",)

    def __init__(self, solver_name: str):
        self.solver = solver_name.strip()
        self.name = f"pyomo:{self.solver}"
        caps = {"lp", "milp", "qp", "miqp"}
        low = self.solver.lower()
        if "highs" in low:
            caps.discard("miqp")
        if low in ("cbc", "glpk", "appsi_highs"):
            # appsi_highs passes only linear objectives to HiGHS (DegreeError otherwise)
            caps -= {"qp", "miqp"}
        self.capabilities = frozenset(caps)
        self.install_hint = (f"pip install pyomo, and install the solver {self.solver!r} so "
                             f"that pyomo.environ.SolverFactory({self.solver!r}).available()")

    def available(self) -> bool:
        if self.solver not in _AVAILABLE:
            ok = False
            if importlib.util.find_spec("pyomo") is not None:
                try:
                    from pyomo.environ import SolverFactory

                    ok = bool(SolverFactory(self.solver).available(exception_flag=False))
                except Exception:
                    ok = False
            _AVAILABLE[self.solver] = ok
        return _AVAILABLE[self.solver]

    def build(self, problem: Problem):
        """A ``ConcreteModel`` with ``x`` (indexed Var), ``rows`` (indexed Constraint), ``obj``."""
        import pyomo.environ as pyo
        import scipy.sparse as sp
        from pyomo.core.expr.numeric_expr import LinearExpression

        n = problem.num_cols
        model = pyo.ConcreteModel(name=problem.name or "verify")
        lbs = [v if np.isfinite(v) else None for v in problem.lb.tolist()]
        ubs = [v if np.isfinite(v) else None for v in problem.ub.tolist()]
        integ = np.asarray(problem.integrality, dtype=bool).tolist()
        model.x = pyo.Var(range(n), bounds=lambda _m, j: (lbs[j], ubs[j]),
                          domain=lambda _m, j: pyo.Integers if integ[j] else pyo.Reals)
        xs = [model.x[j] for j in range(n)]

        A = sp.csr_matrix(problem.A, dtype=np.float64)
        ptr, cols, vals = A.indptr.tolist(), A.indices.tolist(), A.data.tolist()
        row_lb, row_ub = problem.row_lb.tolist(), problem.row_ub.tolist()

        def row_rule(_m, i):
            lo = row_lb[i] if np.isfinite(row_lb[i]) else None
            hi = row_ub[i] if np.isfinite(row_ub[i]) else None
            s, e = ptr[i], ptr[i + 1]
            if (lo is None and hi is None) or s == e:
                return pyo.Constraint.Skip  # free or empty (checked before solving)
            expr = LinearExpression(linear_coefs=vals[s:e], linear_vars=[xs[j] for j in cols[s:e]])
            if lo is not None and lo == hi:
                return expr == lo
            return (lo, expr, hi)

        model.rows = pyo.Constraint(range(problem.num_rows), rule=row_rule)

        c = np.asarray(problem.c, dtype=np.float64)
        nz = np.flatnonzero(c).tolist()
        if not nz and n:
            nz = [0]
        obj = LinearExpression(constant=float(problem.offset), linear_coefs=c[nz].tolist(),
                               linear_vars=[xs[j] for j in nz])
        if problem.is_quadratic:
            qi, qj, qv = upper_triangle(problem.P)
            half = np.where(qi == qj, 0.5 * qv, qv).tolist()
            obj = obj + pyo.quicksum(
                v * xs[a] * xs[b] for a, b, v in zip(qi.tolist(), qj.tolist(), half))
        model.obj = pyo.Objective(expr=obj, sense=pyo.minimize)
        return model, xs

    def _solver_options(self, options: SolveOptions) -> tuple[dict, dict]:
        """(solver options dict, extra keyword arguments for ``solve``)."""
        names = _OPTION_NAMES.get(_family(self.solver) or "", {})
        opts, kwargs = {}, {}
        if options.time_limit is not None:
            if "time_limit" in names:
                opts[names["time_limit"]] = float(max(options.time_limit, 0.0))
            else:
                kwargs["timelimit"] = float(max(options.time_limit, 0.0))
        if options.threads is not None and "threads" in names:
            opts[names["threads"]] = int(options.threads)
            if _family(self.solver) == "highs":
                from .highs import prepare_highs_scheduler

                prepare_highs_scheduler(options.threads)
        if options.rel_gap is not None and "rel_gap" in names:
            opts[names["rel_gap"]] = float(options.rel_gap)
        return opts, kwargs

    def _solve(self, problem: Problem, options: SolveOptions) -> SolveResult:
        from pyomo.environ import SolverFactory

        empty = np.diff(problem.A.indptr) == 0
        if np.any(problem.row_lb > problem.row_ub) or np.any(
                empty & ((problem.row_lb > 0) | (problem.row_ub < 0))):
            return SolveResult(status=Status.INFEASIBLE, backend=self.name,
                               message="a row excludes every point (empty row or lb > ub)")
        if problem.num_cols == 0:  # nothing to hand a solver; every row contains 0 here
            return SolveResult(status=Status.OPTIMAL, backend=self.name, x=np.zeros(0),
                               objective=float(problem.offset), bound=float(problem.offset),
                               message="no columns")
        t0 = time.perf_counter()
        model, xs = self.build(problem)
        build_s = time.perf_counter() - t0
        opts, kwargs = self._solver_options(options)
        solver = SolverFactory(self.solver)
        try:
            results = solver.solve(model, tee=bool(options.verbose), load_solutions=False,
                                   options=opts, **kwargs)
        except Exception as err:
            from .cplex import _CE_LIMIT_CODE, _error_code, _too_large

            if _error_code(err) == _CE_LIMIT_CODE:
                raise _too_large(problem) from None
            raise SolveError(f"{self.name} failed: {err}") from err
        elapsed = time.perf_counter() - t0

        tc = str(results.solver.termination_condition)
        tc = tc.split(".")[-1]  # enum repr on some versions
        x = objective = None
        if len(results.solution) > 0:
            # quiet Pyomo's "loading a result with an 'aborted' status" warning (time limit)
            core_log = logging.getLogger("pyomo.core")
            level = core_log.level
            core_log.setLevel(logging.ERROR)
            try:
                model.solutions.load_from(results)
            finally:
                core_log.setLevel(level)
            vals = [v.value for v in xs]
            x = np.array([0.0 if v is None else v for v in vals], dtype=np.float64)
            missing = np.array([v is None for v in vals])
            if missing.any():  # columns the solver never saw: any point in their bounds
                x[missing] = np.clip(0.0, problem.lb[missing], problem.ub[missing])
            objective = problem.objective_value(x)
        bound = _as_bound(results.problem.lower_bound)
        is_mip = problem.num_integer > 0
        extra = {"termination_condition": tc, "build_s": build_s}
        message = tc

        if tc in _OPTIMAL:
            status = Status.OPTIMAL
            if bound is None:
                bound = objective
            if bound is not None and objective is not None:
                bound = min(bound, objective)
        elif tc == "infeasible":
            status, bound, x, objective = Status.INFEASIBLE, None, None, None
        elif tc == "unbounded":
            status, bound = Status.UNBOUNDED, -np.inf
        elif tc == "infeasibleOrUnbounded":
            status, bound = self._settle_unbounded_or_infeasible(problem, options)
            if status != Status.UNBOUNDED:
                x = objective = None
            message = f"{status} (solver: infeasible or unbounded; a feasibility solve settled it)"
        elif tc == "maxTimeLimit":
            status = Status.TIME_LIMIT
        elif tc == "minFunctionValue":
            status = Status.CUTOFF
        elif tc in _INTERRUPTED:
            status = Status.INTERRUPTED
        else:
            status = Status.ERROR
            message = f"{self.name} stopped with termination condition {tc!r}"
        if not is_mip and status in (Status.TIME_LIMIT, Status.INTERRUPTED, Status.ERROR):
            bound = None
        return SolveResult(status=status, backend=self.name, x=x, objective=objective,
                           bound=bound, time_s=elapsed, message=message, extra=extra)
