"""Pyomo backend: any solver Pyomo's ``SolverFactory`` knows, as ``pyomo:<solver>``.

The :class:`~verify.problem.Problem` becomes a ``ConcreteModel`` with one indexed ``Var``
and one indexed ``Constraint`` whose rows are ``LinearExpression`` objects built directly
from the CSR arrays (no operator overloading per coefficient), so a 1000-row problem builds
in a few tens of milliseconds.
"""
from __future__ import annotations

import importlib.util
import logging

import numpy as np

from ..errors import SolveError
from ..problem import Problem
from ..problem_io import upper_triangle
from .base import Backend, Raw, SolveOptions, SolveResult, Status

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

_ALL = frozenset({"lp", "milp", "qp", "miqp"})
_NO_MIQP = frozenset({"lp", "milp", "qp"})
_LINEAR = frozenset({"lp", "milp"})

#: Pyomo solver name -> (its family in :data:`_OPTION_NAMES`, what it solves). A solver not
#: listed gets Pyomo's generic ``timelimit`` only and is assumed to solve everything.
#: ``appsi_highs`` passes only linear objectives to HiGHS (DegreeError otherwise);
#: ``pyomo:highs``, the newer interface, takes QPs; HiGHS has no MIQP.
SOLVERS: dict[str, tuple[str | None, frozenset[str]]] = {
    "appsi_highs": ("highs", _LINEAR),
    "highs": ("highs", _NO_MIQP),
    "cplex_direct": ("cplex_direct", _ALL),
    "cplex_persistent": ("cplex_direct", _ALL),
    "appsi_cplex": ("cplex_direct", _ALL),
    "cplex": ("cplex_shell", _ALL),
    "gurobi": ("gurobi", _ALL),
    "gurobi_direct": ("gurobi", _ALL),
    "gurobi_persistent": ("gurobi", _ALL),
    "appsi_gurobi": ("gurobi", _ALL),
    "scip": ("scip", _ALL),
    "cbc": ("cbc", _LINEAR),
    "appsi_cbc": ("cbc", _LINEAR),
    "glpk": ("glpk", _LINEAR),
}

#: Pyomo termination condition -> :class:`Status` (any other condition: ``error``).
STATUS_TABLE: dict[str, Status] = {
    **dict.fromkeys(("optimal", "globallyOptimal", "locallyOptimal"), Status.OPTIMAL),
    "infeasible": Status.INFEASIBLE,
    "unbounded": Status.UNBOUNDED,
    "infeasibleOrUnbounded": Status.INFEASIBLE_OR_UNBOUNDED,
    "maxTimeLimit": Status.TIME_LIMIT,
    "minFunctionValue": Status.CUTOFF,
    **dict.fromkeys(("maxIterations", "maxEvaluations", "userInterrupt", "resourceInterrupt",
                     "intermediateNonInteger", "minStepLength", "feasible"),
                    Status.INTERRUPTED),
    **dict.fromkeys(("unknown", "solverFailure", "internalSolverError", "error", "invalidProblem",
                     "licensingProblems", "noSolution", "other"), Status.ERROR),
}


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

    Stop requests (Ctrl-C: :mod:`verify.interrupts`) are best effort here: Pyomo gives no
    uniform way to cancel a running solver, so a solve that has started runs to its end (or
    time limit); no new solve starts after the request.
    """

    modules = ("pyomo",)
    status_table = STATUS_TABLE
    cancellable = False        # Pyomo gives no uniform way to stop a running solver

    def __init__(self, solver_name: str):
        self.solver = solver_name.strip()
        self.name = f"pyomo:{self.solver}"
        self.solver_label = self.name
        self.family, self.capabilities = SOLVERS.get(self.solver.lower(), (None, _ALL))
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

    def build(self, problem: Problem, options: SolveOptions | None = None):
        """``(model, xs, problem)``: a ``ConcreteModel`` with ``x`` (indexed Var), ``rows``
        (indexed Constraint), ``obj``; its column variables; the problem."""
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
        return model, xs, problem

    def _solver_options(self, options: SolveOptions) -> tuple[dict, dict]:
        """(solver options dict, extra keyword arguments for ``solve``)."""
        names = _OPTION_NAMES.get(self.family or "", {})
        opts, kwargs = {}, {}
        if options.time_limit is not None:
            if "time_limit" in names:
                opts[names["time_limit"]] = float(max(options.time_limit, 0.0))
            else:
                kwargs["timelimit"] = float(max(options.time_limit, 0.0))
        if options.threads is not None and "threads" in names:
            opts[names["threads"]] = int(options.threads)
            if self.family == "highs":
                from .highs import prepare_highs_scheduler

                prepare_highs_scheduler(options.threads)
        if options.rel_gap is not None and "rel_gap" in names:
            opts[names["rel_gap"]] = float(options.rel_gap)
        return opts, kwargs

    def trivial(self, problem: Problem) -> SolveResult | None:
        empty = np.diff(problem.A.indptr) == 0
        if np.any(problem.row_lb > problem.row_ub) or np.any(
                empty & ((problem.row_lb > 0) | (problem.row_ub < 0))):
            return SolveResult(status=Status.INFEASIBLE, backend=self.name,
                               message="a row excludes every point (empty row or lb > ub)")
        if problem.num_cols == 0:  # nothing to hand a solver; every row contains 0 here
            return SolveResult(status=Status.OPTIMAL, backend=self.name, x=np.zeros(0),
                               objective=float(problem.offset), bound=float(problem.offset),
                               message="no columns")
        return None

    def run(self, model, options: SolveOptions):
        from pyomo.environ import SolverFactory

        opts, kwargs = self._solver_options(options)
        try:
            return SolverFactory(self.solver).solve(
                model[0], tee=bool(options.verbose), load_solutions=False, options=opts, **kwargs)
        except Exception as err:
            from .cplex import _CE_LIMIT_CODE, _error_code, _too_large

            if _error_code(err) == _CE_LIMIT_CODE:
                raise _too_large(model[2]) from None
            raise SolveError(f"{self.name} failed: {err}") from err

    def extract(self, model, ran, problem: Problem, options: SolveOptions) -> Raw:
        model, xs, _ = model
        results = ran
        tc = str(results.solver.termination_condition)
        tc = tc.split(".")[-1]  # enum repr on some versions
        raw = Raw(native=tc, message=tc, bound=_as_bound(results.problem.lower_bound),
                  extra={"termination_condition": tc})
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
            raw.x, raw.objective = x, problem.objective_value(x)
        return raw
