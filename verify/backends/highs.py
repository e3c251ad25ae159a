"""HiGHS backend (``highspy``): LP, MILP and convex QP. The default backend.

The whole model goes to HiGHS in one ``passModel`` call with the constraint matrix as
row-wise CSR arrays and the Hessian as the lower triangle, column-wise, of the symmetric
``P`` (HiGHS minimises ``½ xᵀQx + cᵀx`` and stores only one triangle of ``Q``: each
off-diagonal entry appears once). Building a 10 000-column model takes milliseconds.

:func:`highs_from_problem` returns the built, configured ``highspy.Highs`` object so that
other code (LP-based bound tightening, ...) can re-solve it with changed costs or bounds.
"""
from __future__ import annotations

import functools
import threading
import time

import numpy as np

from ..errors import SolveError
from ..problem import Problem
from ..problem_io import upper_triangle
from ..stdio import native_stdout_to_stderr
from .base import Backend, LpSession, Raw, SolveOptions, Status

#: Thread count the HiGHS global scheduler was last (re)started with by this module.
_scheduler_threads: int | None = None


def prepare_highs_scheduler(threads: int | None) -> None:
    """Make HiGHS's process-wide task scheduler accept a solve with ``threads`` threads.

    HiGHS sizes one global scheduler at the first solve; a later solve asking for a different
    thread count fails with ``kError`` unless the scheduler is reset first (which must not
    happen while another HiGHS solve runs in this process). ``None`` keeps what exists.
    """
    global _scheduler_threads
    if threads is None or _scheduler_threads == int(threads):
        return
    import highspy

    highspy.Highs.resetGlobalScheduler(True)
    _scheduler_threads = int(threads)


_first_highs_lock = threading.Lock()
_first_highs_made = False


def new_highs():
    """A new ``highspy.Highs``. highspy prints a banner on file descriptor 1 when a process
    makes its first one, before any option can silence it; that first one is made with
    descriptor 1 on standard error, so that a Python caller's standard output carries only
    what the caller prints (the CLI guards the whole command the same way)."""
    global _first_highs_made
    import highspy

    if _first_highs_made:
        return highspy.Highs()
    with _first_highs_lock:
        if not _first_highs_made:
            with native_stdout_to_stderr():
                h = highspy.Highs()
            _first_highs_made = True
            return h
    return highspy.Highs()


def _check(status, what: str) -> None:
    import highspy

    if status == highspy.HighsStatus.kError:
        raise SolveError(f"HiGHS rejected the model ({what} failed)")


def highs_from_problem(problem: Problem, options: SolveOptions | None = None):
    """A ``highspy.Highs`` holding ``problem`` and configured from ``options``.

    The model is passed in one call (arrays, no per-coefficient calls). Re-solve it with
    ``changeColsCost``/``changeColsBounds``/``changeRowsBounds`` and ``run()``.
    """
    import highspy
    import scipy.sparse as sp

    options = options or SolveOptions()
    h = new_highs()
    configure_highs(h, options, mip=problem.num_integer > 0)

    n, m = problem.num_cols, problem.num_rows
    A = sp.csr_matrix(problem.A, dtype=np.float64)
    if not A.has_canonical_format:
        A = A.copy()
        A.sum_duplicates()
    if A.nnz >= 2**31 - 1:
        raise SolveError("HiGHS takes at most 2^31 - 1 nonzeros")
    integrality = np.asarray(problem.integrality, dtype=bool).astype(np.int32)

    q_start = np.zeros(n + 1, dtype=np.int32)
    q_index = np.zeros(0, dtype=np.int32)
    q_value = np.zeros(0, dtype=np.float64)
    if problem.is_quadratic:
        # lower triangle, column-wise == upper triangle, row-wise (P symmetric)
        i, j, v = upper_triangle(problem.P)
        L = sp.csc_matrix((v, (j, i)), shape=(n, n))
        L.sort_indices()
        q_start = L.indptr.astype(np.int32)
        q_index = L.indices.astype(np.int32)
        q_value = L.data.astype(np.float64)

    status = h.passModel(
        int(n), int(m), int(A.nnz), int(q_value.size),
        int(highspy.MatrixFormat.kRowwise), int(highspy.HessianFormat.kTriangular),
        int(highspy.ObjSense.kMinimize), float(problem.offset),
        np.ascontiguousarray(problem.c, dtype=np.float64),
        np.ascontiguousarray(problem.lb, dtype=np.float64),
        np.ascontiguousarray(problem.ub, dtype=np.float64),
        np.ascontiguousarray(problem.row_lb, dtype=np.float64),
        np.ascontiguousarray(problem.row_ub, dtype=np.float64),
        A.indptr.astype(np.int32), A.indices.astype(np.int32), A.data,
        q_start, q_index, q_value, integrality,
    )
    _check(status, "passModel")
    if problem.num_integer > 0 and A.nnz > PRESOLVE_MAX_NONZEROS:
        h.setOptionValue("presolve", "off")
    return h


#: MIPs with more nonzeros than this are solved without HiGHS's presolve. Its presolve checks
#: neither the time limit nor a cancel request, and on the dense MIPs of 784-256×k MLPs it
#: ran 10–24 s (392,516 nonzeros, 784-256×4, on a loaded 2-core machine) past a 10 s limit
#: to remove 1.4 % of the rows; without it the limit holds to a second.
PRESOLVE_MAX_NONZEROS = 300_000

#: MIPs given fewer seconds than this are solved without HiGHS's probing (the presolve rule
#: that tentatively fixes each binary and propagates). Probing checks the time limit only
#: between binaries and ignores a cancel request: on the 784-256-256-10 fallback MIP of a
#: minimal-L∞ search (362 binaries, 267,903 nonzeros) it ran 7.2 s against a 1.9 s limit
#: (the whole run then took 7.2 s; without probing 1.93 s); given 30 s it still spent 7.3 s
#: in presolve. A short MIP has no time for it anyway.
PROBING_MIN_TIME_S = 10.0
#: HiGHS's ``presolve_rule_off`` bit of probing (``kPresolveRuleProbing`` = 14; HiGHS names
#: the value in its "time limit reached in probing" message).
PRESOLVE_RULE_PROBING = 1 << 14


def configure_highs(h, options: SolveOptions, mip: bool = True) -> None:
    """Apply :class:`SolveOptions` to a ``highspy.Highs`` (silent unless ``verbose``).

    A ``mip`` with less than :data:`PROBING_MIN_TIME_S` seconds runs without probing (it
    would not honour the limit). ``cutoff`` becomes ``objective_bound`` only when ``mip``
    (for LPs HiGHS would use it to stop dual simplex early, which re-solves for bound
    tightening must not do).
    """
    h.setOptionValue("output_flag", bool(options.verbose))
    if options.time_limit is not None:
        h.setOptionValue("time_limit", float(max(options.time_limit, 0.0)))
        if mip and options.time_limit < PROBING_MIN_TIME_S:
            h.setOptionValue("presolve_rule_off", PRESOLVE_RULE_PROBING)
    if options.rel_gap is not None:
        h.setOptionValue("mip_rel_gap", float(options.rel_gap))
    if options.cutoff is not None and mip:
        #: HiGHS prunes every node whose bound is not below objective_bound
        h.setOptionValue("objective_bound", float(options.cutoff))
    if options.threads is not None:
        prepare_highs_scheduler(options.threads)
        h.setOptionValue("threads", int(options.threads))
    if not options.primal_heuristics:
        for name, value in HEURISTICS_OFF.items():
            h.setOptionValue(name, value)
    if not options.presolve:
        h.setOptionValue("presolve", "off")


#: HiGHS options that switch its primal heuristics off (measured: the proof that no
#: adversarial example with fewer changed pixels exists runs about 3x faster without them).
HEURISTICS_OFF = {
    "mip_heuristic_effort": 0.0, "mip_heuristic_run_feasibility_jump": False,
    "mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False,
    "mip_heuristic_run_root_reduced_cost": False, "mip_heuristic_run_zi_round": False,
    "mip_heuristic_run_shifting": False,
}


class HighsBackend(Backend):
    """HiGHS via ``highspy``: LP, MILP and convex QP (no MIQP — use ``scip`` or ``cplex``).

    Options: ``time_limit``, ``threads`` (restarts HiGHS's process-wide scheduler when it
    changes), ``rel_gap`` (``mip_rel_gap``), ``verbose`` (``output_flag``; silent by default),
    ``cutoff`` (``objective_bound``; applies to MIPs only — a MIP with nothing below the
    cutoff is reported as ``cutoff`` with ``bound = cutoff``; HiGHS does not tell that apart
    from an infeasible MIP, and may even call it "optimal" with an incumbent above the
    cutoff, which is reported as ``cutoff`` too). ``bound`` is ``mip_dual_bound`` for MIPs
    and the objective for an optimal LP/QP. The Hessian must be positive semi-definite.
    A stop request (Ctrl-C: :mod:`verify.interrupts`) cancels ``run()`` through HiGHS's
    user-interrupt callback: status ``interrupted`` with the incumbent and dual bound.
    """

    name = "highs"
    modules = ("highspy",)
    capabilities = frozenset({"lp", "milp", "qp"})
    install_hint = "pip install highspy"
    solver_label = "HiGHS"
    passes_cutoff = True       # objective_bound (MIPs)

    @property
    def status_table(self):      # built on first use: highspy is imported only then
        return _status_table()

    def build(self, problem: Problem, options: SolveOptions | None = None):
        h = highs_from_problem(problem, options)
        h.HandleUserInterrupt = True          # cancelSolve() stops run() (see verify.interrupts)
        return h

    def run(self, model, options: SolveOptions):
        return model.run()

    def cancel(self, model) -> None:
        model.cancelSolve()

    def lp_session(self, problem: Problem) -> LpSession:
        return HighsLpSession(problem)

    def extract(self, model, ran, problem: Problem, options: SolveOptions) -> Raw:
        import highspy

        h = model
        ms = h.getModelStatus()
        info = h.getInfo()
        is_mip = problem.num_integer > 0
        has_x = info.primal_solution_status == highspy.kSolutionStatusFeasible
        raw = Raw(native=ms, message=h.modelStatusToString(ms))
        if has_x:
            raw.x = np.array(h.getSolution().col_value, dtype=np.float64)
            raw.objective = float(info.objective_function_value)
        if is_mip and np.isfinite(info.mip_dual_bound):
            raw.bound = float(info.mip_dual_bound)
        raw.extra = {"model_status": raw.message,
                     "simplex_iterations": int(info.simplex_iteration_count)}
        if is_mip:
            raw.extra["nodes"] = int(info.mip_node_count)
        if ms == highspy.HighsModelStatus.kModelEmpty:
            # no columns: feasible iff 0 lies in every row's range
            if np.all(problem.row_lb <= 0.0) and np.all(problem.row_ub >= 0.0):
                raw.x = np.zeros(problem.num_cols)
                raw.objective = raw.bound = float(problem.offset)
            else:
                raw.native = highspy.HighsModelStatus.kInfeasible
        return raw


#: Dual simplex iterations allowed per LP optimum, per row and column of the LP.
LP_ITERATIONS_PER_SIZE = 4


class HighsLpSession(LpSession):
    """A HiGHS LP re-solved per column with the previous basis as the start (the problem's
    own objective and integrality are dropped: only its feasible region counts).

    Warm starts usually take a few dozen dual simplex iterations, but on some LPs with tiny
    coefficients they stall for hundreds of thousands (measured: 232,220 iterations and 50 s,
    against 1,097 iterations and 0.1 s from scratch). So iterations are capped at
    :data:`LP_ITERATIONS_PER_SIZE` times the LP's size, and a stalled solve is restarted once
    from scratch."""

    def __init__(self, problem: Problem):
        import dataclasses

        lp = dataclasses.replace(problem, integrality=np.zeros(problem.num_cols, dtype=bool),
                                 c=np.zeros(problem.num_cols), P=None, offset=0.0)
        self._h = highs_from_problem(lp)
        self._h.setOptionValue("simplex_iteration_limit",
                               LP_ITERATIONS_PER_SIZE * (problem.num_rows + problem.num_cols))

    def optimum(self, col: int, sign: float, time_limit: float | None = None) -> float | None:
        import highspy

        h = self._h
        start = time.perf_counter()
        h.setOptionValue("time_limit", float("inf") if time_limit is None else max(time_limit, 0.0))
        h.changeColCost(col, sign)
        h.run()
        if h.getModelStatus() == highspy.HighsModelStatus.kIterationLimit:
            h.clearSolver()
            if time_limit is not None:
                h.setOptionValue("time_limit", max(time_limit - (time.perf_counter() - start), 0.0))
            h.run()
        ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        value = h.getInfo().objective_function_value if ok else None
        h.changeColCost(col, 0.0)
        return value


@functools.cache
def _status_table() -> dict:
    """HiGHS model status -> :class:`Status` (kNotset, load/model/presolve/solve errors and
    anything unlisted are ``error``)."""
    import highspy

    S = highspy.HighsModelStatus
    return {
        S.kOptimal: Status.OPTIMAL,
        S.kModelEmpty: Status.OPTIMAL,           # extract checks the rows (else infeasible)
        S.kInfeasible: Status.INFEASIBLE,
        S.kObjectiveBound: Status.CUTOFF,
        S.kUnbounded: Status.UNBOUNDED,
        S.kUnboundedOrInfeasible: Status.INFEASIBLE_OR_UNBOUNDED,
        S.kTimeLimit: Status.TIME_LIMIT,
        S.kIterationLimit: Status.INTERRUPTED,
        S.kSolutionLimit: Status.INTERRUPTED,
        S.kInterrupt: Status.INTERRUPTED,
        S.kHighsInterrupt: Status.INTERRUPTED,
        S.kObjectiveTarget: Status.INTERRUPTED,
        S.kNotset: Status.ERROR,
        S.kLoadError: Status.ERROR,
        S.kModelError: Status.ERROR,
        S.kPresolveError: Status.ERROR,
        S.kSolveError: Status.ERROR,
        S.kPostsolveError: Status.ERROR,
        S.kMemoryLimit: Status.ERROR,
        S.kUnknown: Status.ERROR,
    }
