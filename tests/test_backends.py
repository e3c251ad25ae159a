"""Conformance suite for the solver backends and the MPS/LP writer.

Every backend in ``list_backends()`` runs every small problem below whose kind it declares
in its capabilities. A backend that is not installed is skipped with a visible reason; a
backend that is installed and gets a wrong answer fails. The optima are worked out by hand
in the comments.
"""
from __future__ import annotations


import numpy as np
import pytest

from needs import require_backend
from verify.backends import Backend, SolveOptions, Status, get_backend, list_backends
from verify.errors import BackendUnavailableError, InvalidInputError, ProblemTooLargeError
from verify.problem import INF, Problem, ProblemBuilder
from verify.problem_io import column_names, write_problem

REL_TOL = 1e-6


# ------------------------------------------------------------------------------ problems

def lp_small() -> Problem:
    """min −x − 2y  s.t.  x + y ≤ 4,  x + 3y ≤ 6,  x, y ≥ 0.

    Vertices: (0,0) → 0, (4,0) → −4, (0,2) → −4, and x + y = 4 ∧ x + 3y = 6 → (3,1) → −5.
    Optimum −5 at (3, 1).
    """
    b = ProblemBuilder("lp_small")
    b.add_vars("xy", 2, cost=[-1.0, -2.0])
    b.add_rows([0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 1, 3], -INF, [4, 6])
    return b.build()


def lp_ranged_free() -> Problem:
    """Ranged rows, an equality, a free row, free/infinite bounds and an offset.

    min x + y + z + 0.25  s.t.  1 ≤ x − y ≤ 3,  2 ≤ x + y ≤ 10,  x + z = 1,
    −∞ ≤ x + y + z ≤ ∞ (free row);  x free, y ∈ (−∞, 5], z ∈ [−2, ∞).
    z = 1 − x, so the objective is y + 1.25. x + y ≥ 2 and x − y ≤ 3 give 2y ≥ −1, y ≥ −0.5;
    at y = −0.5 both rows force x = 2.5, so z = −1.5 ≥ −2 is feasible.
    Optimum 0.75 at (2.5, −0.5, −1.5), unique.
    """
    b = ProblemBuilder("lp_ranged_free")
    b.add_vars("x", 1, lb=-INF, ub=INF, cost=1.0)
    b.add_vars("y", 1, lb=-INF, ub=5.0, cost=1.0)
    b.add_vars("z", 1, lb=-2.0, ub=INF, cost=1.0)
    b.add_rows([0, 0, 1, 1, 2, 2, 3, 3, 3], [0, 1, 0, 1, 0, 2, 0, 1, 2],
               [1, -1, 1, 1, 1, 1, 1, 1, 1], [1, 2, 1, -INF], [3, 10, 1, INF])
    b.offset = 0.25
    return b.build()


def lp_infeasible() -> Problem:
    """x + y ≤ 1 and x + y ≥ 2: infeasible."""
    b = ProblemBuilder("lp_infeasible")
    b.add_vars("xy", 2, cost=1.0)
    b.add_rows([0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 1, 1], [-INF, 2], [1, INF])
    return b.build()


def lp_unbounded() -> Problem:
    """min −x  s.t.  x − y ≤ 1,  x, y ≥ 0: x = y + 1 → −∞. Unbounded."""
    b = ProblemBuilder("lp_unbounded")
    b.add_vars("xy", 2, cost=[-1.0, 0.0])
    b.add_rows([0, 0], [0, 1], [1, -1], -INF, 1)
    return b.build()


def milp_knapsack() -> Problem:
    """max 10a + 13b + 7c + 8d  s.t.  3a + 4b + 2c + 3d ≤ 7, binary (as a minimisation).

    Fitting sets: {a,b} (7) → 23, {b,d} (7) → 21, {b,c} (6) → 20, {a,d} (6) → 18,
    {a,c} (5) → 17, {c,d} (5) → 15; no three items fit (the lightest three weigh 8).
    Optimum −23 at (1, 1, 0, 0).
    """
    b = ProblemBuilder("knapsack")
    b.add_vars("item", 4, lb=0, ub=1, integer=True, cost=[-10.0, -13.0, -7.0, -8.0])
    b.add_rows([0, 0, 0, 0], [0, 1, 2, 3], [3, 4, 2, 3], -INF, 7)
    return b.build()


def milp_infeasible() -> Problem:
    """2x + 2y = 3 with x, y integer in [0, 5]: the left side is even. Infeasible
    (the LP relaxation is feasible, so only the integrality makes it so)."""
    b = ProblemBuilder("milp_infeasible")
    b.add_vars("xy", 2, lb=0, ub=5, integer=True, cost=1.0)
    b.add_rows([0, 0], [0, 1], [2, 2], 3, 3)
    return b.build()


def milp_mixed() -> Problem:
    """min −x − 2y + 0.5 with x ∈ [0, 4] continuous, y ∈ [−1, 3] integer, x + y ≤ 5.5,
    and −2 ≤ x − y ≤ 2 (ranged).

    For fixed y the best x is min(4, 5.5 − y, y + 2): y=3 → x=2.5 → −8.5; y=2 → x=3.5 → −7.5.
    Optimum −8.5 + 0.5 = −8 at (2.5, 3).
    """
    b = ProblemBuilder("milp_mixed")
    b.add_vars("x", 1, lb=0, ub=4, cost=-1.0)
    b.add_vars("y", 1, lb=-1, ub=3, integer=True, cost=-2.0)
    b.add_rows([0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 1, -1], [-INF, -2], [5.5, 2])
    b.offset = 0.5
    return b.build()


def qp_convex() -> Problem:
    """min x² + xy + y² − x − y  s.t.  x + y ≥ 1, x, y free  (P = [[2,1],[1,2]]).

    Unconstrained minimiser (1/3, 1/3) violates the row, so x + y = 1; by symmetry
    x = y = 1/2 (gradient (0.5, 0.5) = λ·(1, 1), λ = 0.5 ≥ 0).
    Optimum 1/4 + 1/4 + 1/4 − 1 = −0.25.
    """
    b = ProblemBuilder("qp")
    b.add_vars("xy", 2, lb=-INF, ub=INF, cost=-1.0)
    b.add_quadratic([0, 0, 1, 1], [0, 1, 0, 1], [2.0, 1.0, 1.0, 2.0])
    b.add_rows([0, 0], [0, 1], [1, 1], 1, INF)
    return b.build()


def miqp_small() -> Problem:
    """min (x − 1.4)² + (y − 2.6)²  s.t.  x + y ≤ 3, x, y integer in [0, 5].

    Written as ½·xᵀ(2I)x − 2.8x − 5.2y + 8.72. Points with x + y ≤ 3: (1,2) → 0.16 + 0.36
    = 0.52, (0,3) → 1.96 + 0.16 = 2.12, (2,1) → 0.36 + 2.56, (1,1), (0,2) worse.
    Optimum 0.52 at (1, 2) (the continuous relaxation gives 0.5 at (0.9, 2.1)).
    """
    b = ProblemBuilder("miqp")
    b.add_vars("xy", 2, lb=0, ub=5, integer=True, cost=[-2.8, -5.2])
    b.add_quadratic([0, 1], [0, 1], [2.0, 2.0])
    b.add_rows([0, 0], [0, 1], [1, 1], -INF, 3)
    b.offset = 8.72
    return b.build()


#: name → (builder, expected status, expected optimum or None, expected x or None)
CASES = {
    "lp_small": (lp_small, Status.OPTIMAL, -5.0, [3.0, 1.0]),
    "lp_ranged_free": (lp_ranged_free, Status.OPTIMAL, 0.75, [2.5, -0.5, -1.5]),
    "lp_infeasible": (lp_infeasible, Status.INFEASIBLE, None, None),
    "lp_unbounded": (lp_unbounded, Status.UNBOUNDED, None, None),
    "milp_knapsack": (milp_knapsack, Status.OPTIMAL, -23.0, [1, 1, 0, 0]),
    "milp_mixed": (milp_mixed, Status.OPTIMAL, -8.0, [2.5, 3.0]),
    "milp_infeasible": (milp_infeasible, Status.INFEASIBLE, None, None),
    "qp_convex": (qp_convex, Status.OPTIMAL, -0.25, [0.5, 0.5]),
    "miqp_small": (miqp_small, Status.OPTIMAL, 0.52, [1.0, 2.0]),
}


def _require(backend: Backend) -> Backend:
    return require_backend(backend.name)


def _conformance_params():
    params = []
    for backend in list_backends():
        for case, (build, *_rest) in CASES.items():
            if build().kind in backend.capabilities:
                params.append(pytest.param(backend.name, case, id=f"{backend.name}-{case}"))
    return params


def _close(a: float, b: float, rel: float = REL_TOL) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(b))


# --------------------------------------------------------------------------- conformance

@pytest.mark.parametrize("backend_name,case", _conformance_params())
def test_conformance(backend_name: str, case: str) -> None:
    backend = _require(get_backend(backend_name))
    build, status, optimum, x_expected = CASES[case]
    problem = build()
    result = backend.solve(problem)

    assert result.backend == backend.name
    assert result.status == status, f"{backend.name} on {case}: {result.status} ({result.message})"
    assert result.time_s >= 0.0
    if status == Status.OPTIMAL:
        assert result.x is not None and result.x.shape == (problem.num_cols,)
        assert problem.max_violation(result.x) <= 1e-5
        assert _close(result.objective, optimum), (result.objective, optimum)
        assert _close(problem.objective_value(result.x), optimum)
        assert result.bound is not None
        assert result.bound <= result.objective + 1e-6 * max(1.0, abs(optimum))
        assert _close(result.bound, optimum), (result.bound, optimum)
        if x_expected is not None:
            np.testing.assert_allclose(result.x, x_expected, atol=1e-3)
    elif status == Status.INFEASIBLE:
        assert result.x is None and result.objective is None
    elif status == Status.UNBOUNDED:
        assert result.bound is None or result.bound == -np.inf


def test_every_listed_backend_is_reported() -> None:
    names = [b.name for b in list_backends()]
    assert {"highs", "scip", "cplex", "pyomo:appsi_highs", "pyomo:scip"} <= set(names)


# ------------------------------------------------------------------------ options, limits

def _fixed(name: str) -> Backend:
    return _require(get_backend(name))


def test_highs_refuses_miqp_and_points_to_scip() -> None:
    highs = _fixed("highs")
    with pytest.raises(BackendUnavailableError, match="scip"):
        highs.solve(miqp_small())


def test_cplex_community_edition_limit_is_a_clear_error() -> None:
    cplex = _fixed("cplex")
    b = ProblemBuilder("too_big")
    b.add_vars("x", 1001, lb=0, ub=1, cost=-1.0)
    b.add_rows(np.zeros(1001, dtype=int), np.arange(1001), np.ones(1001), -INF, 10)
    problem = b.build()
    with pytest.raises(ProblemTooLargeError) as info:
        cplex.solve(problem)  # a real CPLEX CE call: error 1016 from CPLEX itself
    message = str(info.value)
    assert "1001 columns" in message and "1 rows" in message
    assert "--backend highs" in message and "--backend scip" in message


def market_split(m: int = 4, n: int = 40, seed: int = 0) -> Problem:
    """Cornuéjols–Dawande market split with slacks: min Σ s⁺ + s⁻  s.t.
    Σ_j a_ij x_j + s⁺_i − s⁻_i = ⌊Σ_j a_ij / 2⌋, x binary. Every x is feasible (so there is
    always an incumbent), but proving the optimum takes branch-and-bound far longer than
    the time limits used here."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 100, size=(m, n)).astype(float)
    rhs = np.floor(a.sum(axis=1) / 2)
    b = ProblemBuilder("market_split")
    x = b.add_vars("x", n, lb=0, ub=1, integer=True)
    sp_ = b.add_vars("s_plus", m, cost=1.0)
    sm = b.add_vars("s_minus", m, cost=1.0)
    b.add_matrix_rows(np.hstack([a, np.eye(m), -np.eye(m)]), np.concatenate([x, sp_, sm]),
                      rhs, rhs)
    return b.build()


@pytest.mark.parametrize("backend_name", [b.name for b in list_backends()
                                          if "milp" in b.capabilities])
def test_time_limit_is_honoured(backend_name: str) -> None:
    backend = _require(get_backend(backend_name))
    problem = market_split()
    limit = 0.1
    result = backend.solve(problem, SolveOptions(time_limit=limit))
    assert result.status in (Status.TIME_LIMIT, Status.OPTIMAL), result.message
    if result.x is not None:
        assert problem.max_violation(result.x) <= 1e-6
        assert _close(result.objective, problem.objective_value(result.x), 1e-6)
    if result.bound is not None and result.objective is not None:
        assert result.bound <= result.objective + 1e-6
    if result.status == Status.OPTIMAL:
        assert result.x is not None and _close(result.bound, result.objective, 1e-5)


@pytest.mark.parametrize("backend_name", ["highs", "scip", "cplex"])
def test_cutoff(backend_name: str) -> None:
    backend = _fixed(backend_name)
    problem = milp_knapsack()  # optimum −23
    above = backend.solve(problem, SolveOptions(cutoff=-20.0))
    assert above.status == Status.OPTIMAL and _close(above.objective, -23.0)
    below = backend.solve(problem, SolveOptions(cutoff=-24.0))
    assert below.status == Status.CUTOFF, below.message
    assert below.x is None and below.bound == -24.0


@pytest.mark.parametrize("backend_name", [b.name for b in list_backends() if "lp" in b.capabilities])
def test_silent_by_default(backend_name: str, capfd) -> None:
    backend = _require(get_backend(backend_name))
    capfd.readouterr()
    result = backend.solve(lp_small())
    assert result.status == Status.OPTIMAL
    captured = capfd.readouterr()
    assert captured.out == "", captured.out[:500]


@pytest.mark.parametrize("backend_name", [b.name for b in list_backends()
                                          if "milp" in b.capabilities])
def test_threads_and_gap_are_accepted(backend_name: str) -> None:
    backend = _require(get_backend(backend_name))
    for threads in (1, 2, None):
        result = backend.solve(milp_knapsack(), SolveOptions(threads=threads, rel_gap=1e-4))
        assert result.status == Status.OPTIMAL and _close(result.objective, -23.0)


@pytest.mark.parametrize("backend_name", [b.name for b in list_backends()
                                          if "milp" in b.capabilities])
def test_presolve_off_gives_the_same_answers(backend_name: str) -> None:
    backend = _require(get_backend(backend_name))
    options = SolveOptions(presolve=False)
    result = backend.solve(milp_knapsack(), options)
    assert result.status == Status.OPTIMAL and _close(result.objective, -23.0)
    assert backend.solve(milp_infeasible(), options).status == Status.INFEASIBLE


@pytest.mark.parametrize("backend_name", [b.name for b in list_backends()
                                          if "milp" in b.capabilities])
def test_light_first_gives_the_same_answers(backend_name: str) -> None:
    backend = _require(get_backend(backend_name))
    for options in (SolveOptions(cuts=False), SolveOptions(time_limit=30.0)):
        result = backend.solve_light_first(milp_knapsack(), options)
        assert result.status == Status.OPTIMAL and _close(result.objective, -23.0)
        assert backend.solve_light_first(milp_infeasible(), options).status == Status.INFEASIBLE


def test_scip_light_try_switches_cuts_off_and_hands_over_when_out_of_time() -> None:
    """``cuts=False`` turns SCIP's separators off; a light try that reaches its time limit
    is followed by the full solve, which finds the optimum."""
    scip = _fixed("scip")
    assert scip.switches_cuts
    light = scip.build(milp_knapsack(), SolveOptions(cuts=False))[0]
    full = scip.build(milp_knapsack(), SolveOptions())[0]
    assert light.getParam("separating/gomory/freq") == -1
    assert full.getParam("separating/gomory/freq") >= 0
    # the light try alone, given no time, stops at its limit ...
    assert scip.solve(milp_knapsack(), SolveOptions(cuts=False, time_limit=0.0)).status == Status.TIME_LIMIT
    # ... and the full solve after it still proves the optimum
    result = scip.solve_light_first(milp_knapsack(), SolveOptions(time_limit=30.0), try_s=0.0)
    assert result.status == Status.OPTIMAL and _close(result.objective, -23.0)


def test_highs_short_mips_run_without_probing() -> None:
    """HiGHS's probing ignores time limits and cancels: a MIP given less than
    PROBING_MIN_TIME_S runs without it, and still finds the optimum; longer MIPs and LPs keep
    HiGHS's defaults."""
    _fixed("highs")
    from verify.backends.highs import PRESOLVE_RULE_PROBING, PROBING_MIN_TIME_S, highs_from_problem

    def rules_off(problem, time_limit):
        h = highs_from_problem(problem, SolveOptions(time_limit=time_limit))
        return h.getOptionValue("presolve_rule_off")[1]

    short = PROBING_MIN_TIME_S / 2
    assert rules_off(milp_knapsack(), short) == PRESOLVE_RULE_PROBING
    assert rules_off(milp_knapsack(), PROBING_MIN_TIME_S) == 0
    assert rules_off(milp_knapsack(), None) == 0
    assert rules_off(lp_small(), short) == 0
    result = get_backend("highs").solve(milp_knapsack(), SolveOptions(time_limit=short))
    assert result.status == Status.OPTIMAL and _close(result.objective, -23.0)


def test_highs_model_can_be_resolved_with_new_costs_and_bounds() -> None:
    _fixed("highs")
    from verify.backends.highs import highs_from_problem

    h = highs_from_problem(lp_small())
    h.run()
    assert _close(h.getInfo().objective_function_value, -5.0)
    # max x instead: −x alone → x = 4 (x + y ≤ 4, y = 0)
    h.changeColsCost(2, np.array([0, 1], dtype=np.int32), np.array([-1.0, 0.0]))
    h.run()
    assert _close(h.getInfo().objective_function_value, -4.0)
    # and with x ≤ 1: −1
    h.changeColsBounds(1, np.array([0], dtype=np.int32), np.array([0.0]), np.array([1.0]))
    h.run()
    assert _close(h.getInfo().objective_function_value, -1.0)


def test_lp_session_optimises_single_columns_warm() -> None:
    """The contract's LP session (used by the LP bound stage): min and max of each column of
    lp_small's polygon, several times over the same loaded LP, in any order."""
    backend = _fixed("highs")
    session = backend.lp_session(lp_small())
    for _ in range(2):
        assert _close(session.optimum(0, 1.0), 0.0) and _close(session.optimum(0, -1.0), -4.0)
        assert _close(session.optimum(1, 1.0), 0.0) and _close(session.optimum(1, -1.0), -2.0)
    session.close()


def test_lp_session_is_refused_clearly_by_backends_without_one() -> None:
    for name in ("scip", "cplex", "sat:minicard"):
        with pytest.raises(BackendUnavailableError, match="no warm-started LP session"):
            get_backend(name).lp_session(lp_small())


def test_highs_builds_a_10k_column_model() -> None:
    _fixed("highs")
    import scipy.sparse as sp

    from verify.backends.highs import highs_from_problem

    rng = np.random.default_rng(1)
    n, m, nnz = 10_000, 5_000, 50_000
    A = sp.csr_matrix((rng.normal(size=nnz), (rng.integers(0, m, nnz), rng.integers(0, n, nnz))),
                      shape=(m, n))
    problem = Problem(c=rng.normal(size=n), A=A, row_lb=np.full(m, -1.0), row_ub=np.ones(m),
                      lb=-np.ones(n), ub=np.ones(n), integrality=np.zeros(n, dtype=bool))
    h = highs_from_problem(problem)
    assert h.getNumCol() == n and h.getNumRow() == m and h.getNumNz() == A.nnz


def test_pyomo_availability_is_cached() -> None:
    from verify.backends import pyomo as pyomo_backend

    backend = get_backend("pyomo:appsi_highs")
    first = backend.available()
    assert pyomo_backend._AVAILABLE["appsi_highs"] is first
    assert "miqp" not in backend.capabilities
    assert "miqp" in get_backend("pyomo:scip").capabilities


# ---------------------------------------------------------------------------- file output

def _read_with_highs(path):
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    assert h.readModel(str(path)) != highspy.HighsStatus.kError
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h


@pytest.mark.parametrize("suffix", [".mps", ".lp"])
@pytest.mark.parametrize("case", ["lp_small", "lp_ranged_free", "milp_knapsack", "milp_mixed",
                                  "qp_convex"])
def test_write_problem_round_trip_highs(case: str, suffix: str, tmp_path) -> None:
    build, _status, optimum, _x = CASES[case]
    problem = build()
    path = write_problem(problem, tmp_path / f"{case}{suffix}")
    h = _read_with_highs(path)
    assert h.getNumCol() == problem.num_cols
    assert _close(h.getInfo().objective_function_value, optimum)


@pytest.mark.parametrize("suffix", [".mps", ".lp"])
@pytest.mark.parametrize("reader", ["cplex", "scip"])
def test_write_problem_round_trip_miqp(reader: str, suffix: str, tmp_path) -> None:
    _fixed(reader)
    problem = miqp_small()
    path = write_problem(problem, tmp_path / f"miqp{suffix}")
    if reader == "cplex":
        import cplex

        cpx = cplex.Cplex()
        for set_stream in (cpx.set_results_stream, cpx.set_log_stream, cpx.set_warning_stream):
            set_stream(None)
        cpx.read(str(path))
        cpx.solve()
        value = cpx.solution.get_objective_value()
    else:
        from pyscipopt import Model

        model = Model()
        model.hideOutput()
        model.readProblem(str(path))
        model.optimize()
        value = model.getObjVal()
    assert _close(value, 0.52, 1e-5)


def test_written_names_come_from_blocks(tmp_path) -> None:
    b = ProblemBuilder("names")
    b.add_vars("input", 2, cost=1.0)
    b.add_vars("layer1.relu", 2, cost=1.0)
    b.add_vars(None, 1, cost=1.0)
    b.add_rows([0, 0], [0, 4], [1, 1], 1, INF)
    problem = b.build()
    assert column_names(problem) == ["input_0", "input_1", "layer1_relu_0", "layer1_relu_1", "x4"]
    text = write_problem(problem, tmp_path / "names.lp").read_text()
    assert "layer1_relu_1" in text and "r0:" in text
    mps = write_problem(problem, tmp_path / "names.mps").read_text()
    assert "input_0  r0  1.0" in mps


def test_write_problem_rejects_unknown_suffix(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="suffix"):
        write_problem(lp_small(), tmp_path / "model.json")


def test_write_problem_writes_10k_columns(tmp_path) -> None:
    import scipy.sparse as sp

    rng = np.random.default_rng(2)
    n, m, nnz = 10_000, 5_000, 50_000
    A = sp.csr_matrix((rng.normal(size=nnz), (rng.integers(0, m, nnz), rng.integers(0, n, nnz))),
                      shape=(m, n))
    problem = Problem(c=rng.normal(size=n), A=A, row_lb=np.full(m, -1.0), row_ub=np.ones(m),
                      lb=-np.ones(n), ub=np.ones(n), integrality=rng.random(n) < 0.1,
                      P=sp.identity(n, format="csr"))
    for suffix in (".mps", ".lp"):
        write_problem(problem, tmp_path / f"big{suffix}")
        assert (tmp_path / f"big{suffix}").stat().st_size > 0
