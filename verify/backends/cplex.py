"""CPLEX backend (``cplex`` Python API): LP, MILP, QP and MIQP.

The model is built with batch calls: one ``variables.add`` with lists, one
``linear_constraints.add`` with the rows in list-of-lists form (senses ``E``/``G``/``L``/``R``,
ranged rows via ``range_values``) and one ``objective.set_quadratic_coefficients`` with the
upper-triangle triplets of ``P`` (CPLEX minimises ``cᵀx + ½ xᵀQx`` and mirrors off-diagonal
entries itself).

The CPLEX Community Edition on PyPI refuses problems with more than 1000 variables or 1000
constraints (error 1016, raised when ``solve`` is called): that becomes a
:class:`~verify.errors.ProblemTooLargeError` naming the sizes and the alternatives.
"""
from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import numpy as np

from .. import interrupts
from ..errors import ProblemTooLargeError, SolveError
from ..problem import Problem
from ..problem_io import upper_triangle
from .base import Backend, Raw, SolveOptions, SolveResult, Status

#: CPXERR_RESTRICTED_VERSION: "Community Edition. Problem size limits exceeded."
_CE_LIMIT_CODE = 1016


def _error_code(err: Exception) -> int | None:
    """The CPLEX error number carried by a ``CplexError`` (``args[2]``), else ``None``."""
    args = getattr(err, "args", ())
    if len(args) >= 3 and isinstance(args[2], int):
        return args[2]
    text = str(args[0]) if args else str(err)
    if "CPLEX Error  1016" in text or "CPLEX Error 1016" in text:
        return _CE_LIMIT_CODE
    return None


def _too_large(problem: Problem) -> ProblemTooLargeError:
    return ProblemTooLargeError(
        "the CPLEX Community Edition on PyPI is limited to 1000 variables and 1000 "
        f"constraints; this problem has {problem.num_cols} columns and {problem.num_rows} "
        "rows — use --backend highs or --backend scip, or install a licensed CPLEX")


#: CPLEX solution status name -> :class:`Status` (memory limits, numerical failures,
#: ``first_order``, ``unknown`` and any other name: ``error``).
STATUS_TABLE: dict[str, Status] = {
    **dict.fromkeys(("optimal", "optimal_tolerance", "MIP_optimal", "optimal_infeasible",
                     "MIP_optimal_infeasible", "optimal_face_unbounded"), Status.OPTIMAL),
    **dict.fromkeys(("infeasible", "MIP_infeasible"), Status.INFEASIBLE),
    **dict.fromkeys(("unbounded", "MIP_unbounded"), Status.UNBOUNDED),
    **dict.fromkeys(("infeasible_or_unbounded", "MIP_infeasible_or_unbounded"),
                    Status.INFEASIBLE_OR_UNBOUNDED),
    **dict.fromkeys(("abort_obj_limit", "abort_primal_obj_limit", "abort_dual_obj_limit"),
                    Status.CUTOFF),
    **dict.fromkeys(("abort_time_limit", "abort_dettime_limit", "MIP_time_limit_feasible",
                     "MIP_time_limit_infeasible", "MIP_dettime_limit_feasible",
                     "MIP_dettime_limit_infeasible"), Status.TIME_LIMIT),
    **dict.fromkeys(("abort_iteration_limit", "abort_user", "solution_limit",
                     "node_limit_feasible", "node_limit_infeasible", "MIP_abort_feasible",
                     "MIP_abort_infeasible", "populate_solution_limit"), Status.INTERRUPTED),
    **dict.fromkeys(("mem_limit_feasible", "mem_limit_infeasible", "first_order", "unknown",
                     "fail_feasible", "fail_infeasible", "fail_feasible_no_tree",
                     "fail_infeasible_no_tree"), Status.ERROR),
}
#: Statuses that mean the user (or our aborter) stopped the solve.
_USER_ABORT = ("abort_user", "MIP_abort_feasible", "MIP_abort_infeasible")


class CplexBackend(Backend):
    """IBM CPLEX via its Python API: LP, MILP, convex QP and MIQP.

    Options: ``time_limit`` (``timelimit``), ``threads`` (``threads``), ``rel_gap``
    (``mip.tolerances.mipgap``), ``verbose`` (all four output streams are silenced unless
    set), ``cutoff`` (``mip.tolerances.uppercutoff``; MIPs only — a MIP with nothing below
    the cutoff is reported as ``cutoff`` with ``bound = cutoff``). ``bound`` is
    ``solution.MIP.get_best_objective()`` for MIPs and the objective for an optimal LP/QP.

    Limits: the pip-installable Community Edition solves at most 1000 variables and 1000
    constraints; larger problems raise :class:`~verify.errors.ProblemTooLargeError`.

    A stop request (Ctrl-C: :mod:`verify.interrupts`) aborts the solve through an
    ``Aborter``: status ``interrupted`` with the incumbent and the best bound.
    """

    name = "cplex"
    modules = ("cplex",)
    capabilities = frozenset({"lp", "milp", "qp", "miqp"})
    install_hint = "pip install cplex (Community Edition: at most 1000 variables/constraints)"
    status_table = STATUS_TABLE
    solver_label = "CPLEX"
    passes_cutoff = True       # mip.tolerances.uppercutoff (MIPs)

    def build_cplex(self, problem: Problem, options: SolveOptions | None = None):
        """A configured ``cplex.Cplex`` holding ``problem``."""
        import cplex
        import scipy.sparse as sp

        options = options or SolveOptions()
        cpx = cplex.Cplex()
        if not options.verbose:
            for set_stream in (cpx.set_results_stream, cpx.set_log_stream,
                               cpx.set_warning_stream, cpx.set_error_stream):
                set_stream(None)
        params = cpx.parameters
        if options.time_limit is not None:
            params.timelimit.set(float(max(options.time_limit, 0.0)))
        if options.threads is not None:
            params.threads.set(int(options.threads))
        if options.rel_gap is not None:
            params.mip.tolerances.mipgap.set(float(options.rel_gap))
        if not options.primal_heuristics:
            params.mip.strategy.heuristicfreq.set(-1)
            params.mip.strategy.rinsheur.set(-1)
        if not options.presolve:
            params.preprocessing.presolve.set(0)
        if options.cutoff is not None and problem.num_integer:
            params.mip.tolerances.uppercutoff.set(float(options.cutoff))

        inf = cplex.infinity
        cpx.objective.set_sense(cpx.objective.sense.minimize)
        var_args = dict(obj=np.asarray(problem.c, dtype=np.float64).tolist(),
                        lb=np.clip(problem.lb, -inf, inf).tolist(),
                        ub=np.clip(problem.ub, -inf, inf).tolist())
        if problem.num_integer:  # passing types at all makes the problem a MIP
            var_args["types"] = "".join(np.where(problem.integrality, "I", "C").tolist())
        cpx.variables.add(**var_args)
        if problem.offset:
            cpx.objective.set_offset(float(problem.offset))

        if problem.num_rows:
            A = sp.csr_matrix(problem.A, dtype=np.float64)
            if not A.has_canonical_format:  # CPLEX rejects repeated indices in a row
                A = A.copy()
                A.sum_duplicates()
            ptr, ind, val = A.indptr.tolist(), A.indices.tolist(), A.data.tolist()
            lin_expr = [[ind[s:e], val[s:e]] for s, e in zip(ptr[:-1], ptr[1:])]
            lo, hi = np.asarray(problem.row_lb, float), np.asarray(problem.row_ub, float)
            lo_f, hi_f = np.isfinite(lo), np.isfinite(hi)
            senses = np.full(len(lo), "L")
            rhs = np.where(hi_f, hi, inf)          # "L" rows, and free rows as  ≤ +inf
            rng = np.zeros(len(lo))
            g = lo_f & ~hi_f
            senses[g], rhs[g] = "G", lo[g]
            both = lo_f & hi_f
            senses[both & (lo == hi)] = "E"
            r = both & (lo < hi)
            senses[r], rng[r] = "R", (hi - lo)[r]   # rhs ≤ a·x ≤ rhs + range
            rhs[both] = lo[both]
            cpx.linear_constraints.add(lin_expr=lin_expr, senses="".join(senses.tolist()),
                                       rhs=rhs.tolist(), range_values=rng.tolist())

        if problem.is_quadratic:
            qi, qj, qv = upper_triangle(problem.P)
            cpx.objective.set_quadratic_coefficients(
                list(zip(qi.tolist(), qj.tolist(), qv.tolist())))
        return cpx

    def trivial(self, problem: Problem) -> SolveResult | None:
        if np.any(problem.row_lb > problem.row_ub):
            return SolveResult(status=Status.INFEASIBLE, backend=self.name,
                               message="a row has lower bound > upper bound")
        return None

    def build(self, problem: Problem, options: SolveOptions | None = None) -> _Model:
        """The configured ``cplex.Cplex`` holding ``problem``, with its aborter."""
        import cplex

        with _cplex_errors(problem):
            cpx = self.build_cplex(problem, options)
            return _Model(cpx, cpx.use_aborter(cplex.Aborter()), problem)

    def run(self, model: _Model, options: SolveOptions):
        with _cplex_errors(model.problem):
            model.cpx.solve()

    def cancel(self, model: _Model) -> None:
        model.aborter.abort()                 # a stop request aborts the solve

    def release(self, model: _Model) -> None:
        model.cpx.end()

    def extract(self, model: _Model, ran, problem: Problem, options: SolveOptions) -> Raw:
        sol = model.cpx.solution
        S = sol.status
        code = sol.get_status()
        native = S[code]
        is_mip = problem.num_integer > 0
        raw = Raw(native=native, message=native)
        if sol.get_solution_type() != sol.type.none and code not in (
                S.infeasible, S.MIP_infeasible, S.unbounded, S.MIP_unbounded):
            try:
                if not sol.is_primal_feasible():
                    raise ValueError("no primal feasible point")
                raw.x = np.array(sol.get_values(), dtype=np.float64)
                raw.objective = float(sol.get_objective_value())
            except Exception:  # no feasible primal values (e.g. an LP stopped early)
                raw.x = raw.objective = None
        if is_mip:
            try:
                best = float(sol.MIP.get_best_objective())
                raw.bound = best if abs(best) < 1e20 else None
            except Exception:
                raw.bound = None
        raw.extra = {"cplex_status": code}
        if is_mip:
            raw.extra["nodes"] = int(sol.progress.get_num_nodes_processed())
        if native in _USER_ABORT:
            # aborted by Ctrl-C (CPLEX's own handler, when cplex was imported before
            # verify.interrupts could switch it off) or by our aborter: either way the
            # user asked to stop, and the rest of the task must stop too
            interrupts.request_stop("SIGINT")
        return raw


class _Model(NamedTuple):
    cpx: Any
    aborter: Any
    problem: Problem


@contextlib.contextmanager
def _cplex_errors(problem: Problem):
    """CPLEX errors as :mod:`verify.errors` (the Community Edition's size limit by name)."""
    import cplex

    try:
        yield
    except cplex.exceptions.CplexError as err:
        if _error_code(err) == _CE_LIMIT_CODE:
            raise _too_large(problem) from None
        raise SolveError(f"CPLEX failed: {err}") from err
