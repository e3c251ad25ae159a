"""The CP-SAT backend (``cpsat``, OR-Tools) for BNN formulas.

Small formulas are checked against brute force over every assignment (clauses, guarded
cardinality constraints, repeated and opposite literals, assumptions, selector budgets);
the BNN tasks on the tiny networks of ``test_bnn`` against brute force; and on the bundled
``bnn`` CP-SAT must agree with ``sat:minicard``. Time limits and stop requests end a hard
search with the right status. Skipped as a whole when ``ortools`` is not installed
(``pip install verify[ortools]``).
"""
from __future__ import annotations

import itertools
import os
import threading

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

from verify import certify, explain, interrupts, min_adversarial
from verify.backends import SolveOptions, Status, availability, get_backend, list_backends
from verify.backends import check_cnf_backend
from verify.backends.cpsat import CpSatBackend
from verify.cnf import AtLeast, CnfFormula
from verify.encodings.bnn import bnn_formula
from verify.errors import BackendUnavailableError, InvalidInputError

from needs import require_backend

from test_bnn import NETS, build_case, check_example


@pytest.fixture(autouse=True)
def _cpsat_installed():
    """ortools is in the test extra: a missing one fails here (tests/needs.py), never skips."""
    require_backend("cpsat")

CPSAT = "cpsat"


# ---------------------------------------------------------------------------------------------
# small formulas against brute force

def _satisfied(formula: CnfFormula, truth: np.ndarray, extra=(), assumptions=()) -> bool:
    """Whether ``truth`` (bool per variable, index 0 unused) satisfies everything."""
    def value(lit: int) -> bool:
        return bool(truth[abs(lit)]) == (lit > 0)

    if not all(value(a) for a in assumptions):
        return False
    if not all(any(value(l) for l in clause) for clause in formula.clauses):
        return False
    for con in list(formula.constraints) + list(extra):
        if con.guard and not value(con.guard):
            continue
        if sum(value(int(l)) for l in con.lits) < con.bound:
            return False
    return True


def _brute_force(formula: CnfFormula, n: int, extra=(), assumptions=()) -> bool:
    for bits in itertools.product([False, True], repeat=n):
        if _satisfied(formula, np.array((False,) + bits), extra, assumptions):
            return True
    return False


def _random_formula(rng, n: int) -> CnfFormula:
    lit = lambda: int(rng.integers(1, n + 1)) * int(rng.choice([-1, 1]))   # noqa: E731
    clauses = [[lit() for _ in range(rng.integers(1, 4))] for _ in range(rng.integers(0, 5))]
    constraints = []
    for _ in range(rng.integers(1, 4)):
        # repeated and opposite literals happen on purpose: each counts separately
        lits = np.array([lit() for _ in range(rng.integers(1, 7))], dtype=np.int64)
        guard = lit() if rng.random() < 0.6 else 0
        constraints.append(AtLeast(lits, int(rng.integers(0, len(lits) + 2)), guard))
    return CnfFormula(n, clauses, constraints, np.array([lit() for _ in range(3)], dtype=np.int64))


def test_small_formulas_match_brute_force():
    rng = np.random.default_rng(7)
    backend = CpSatBackend()
    seen = set()
    for _ in range(150):
        n = int(rng.integers(1, 7))
        formula = _random_formula(rng, n)
        want = _brute_force(formula, n)
        res = backend.solve_formula(formula)
        seen.add(want)
        assert res.backend == CPSAT
        assert res.status == (Status.OPTIMAL if want else Status.INFEASIBLE), formula
        if want:
            assert res.x is not None and res.x.shape == (n + 1,)
            assert _satisfied(formula, res.x)
        else:
            assert res.x is None
    assert seen == {True, False}


def test_known_answers():
    backend = CpSatBackend()
    # x1 ∨ x2, ¬x1, and at least 2 of {x1, x2, x3}: x2 and x3
    f = CnfFormula(3, [[1, 2], [-1]], [AtLeast(np.array([1, 2, 3]), 2)])
    res = backend.solve_formula(f)
    assert res.status == Status.OPTIMAL and res.x.tolist() == [False, False, True, True]
    # the same with at least 3: unsatisfiable; behind a guard, the guard must be false
    assert backend.solve_formula(CnfFormula(3, [[1, 2], [-1]], [AtLeast(np.array([1, 2, 3]), 3)])
                                 ).status == Status.INFEASIBLE
    guarded = CnfFormula(4, [[1, 2], [-1]], [AtLeast(np.array([1, 2, 3]), 3, 4)])
    res = backend.solve_formula(guarded)
    assert res.status == Status.OPTIMAL and not res.x[4]
    # a bound above the literal count, and x ∧ ¬x counted: always exactly one of them true
    assert backend.solve_formula(CnfFormula(1, [], [AtLeast(np.array([1]), 2)])
                                 ).status == Status.INFEASIBLE
    assert backend.solve_formula(CnfFormula(1, [], [AtLeast(np.array([1, -1]), 2)])
                                 ).status == Status.INFEASIBLE
    assert backend.solve_formula(CnfFormula(1, [], [AtLeast(np.array([1, -1]), 1)])
                                 ).status == Status.OPTIMAL
    assert backend.solve_formula(CnfFormula(1, [[]], [])).status == Status.INFEASIBLE


def test_session_assumptions_and_budgets():
    """One model, many calls: assumptions per call do not leak into the next, and budgets
    added behind new selector variables tighten it as in the SAT session."""
    rng = np.random.default_rng(8)
    backend = CpSatBackend()
    for _ in range(25):
        n = int(rng.integers(2, 7))
        formula = _random_formula(rng, n)
        session = backend.session(formula)
        try:
            for _ in range(4):
                k = int(rng.integers(1, n + 1))
                assumptions = [int(v) * int(rng.choice([-1, 1]))
                               for v in rng.choice(np.arange(1, n + 1), k, replace=False)]
                res = session.solve(assumptions)
                want = _brute_force(formula, n, assumptions=assumptions)
                assert res.status == (Status.OPTIMAL if want else Status.INFEASIBLE)
                if want:
                    assert _satisfied(formula, res.x, assumptions=assumptions)
            # at most b true variables behind a selector: b = n, n-1, ... until unsatisfiable
            extra: list[AtLeast] = []
            for b in range(n, -1, -1):
                selector = session.new_var()
                assert selector == n + len(extra) + 1
                budget = AtLeast(-np.arange(1, n + 1), n - b, selector)
                session.add(budget)
                extra.append(AtLeast(budget.lits, budget.bound))     # checked unguarded
                res = session.solve([selector])
                want = _brute_force(formula, n, extra=extra[-1:])
                assert res.status == (Status.OPTIMAL if want else Status.INFEASIBLE), b
                if not want:
                    break
                assert res.x[selector] and int(res.x[1:n + 1].sum()) <= b
            assert session.solve().status == (Status.OPTIMAL if _brute_force(formula, n)
                                              else Status.INFEASIBLE)
            assert session.size()["variables"] == n + len(extra)
        finally:
            session.close()


def _fewest(formula: CnfFormula, n: int, lits, assumptions=()) -> int | None:
    """Brute force: the fewest true literals of ``lits`` over the satisfying assignments."""
    best = None
    for bits in itertools.product([False, True], repeat=n):
        truth = np.array((False,) + bits)
        if _satisfied(formula, truth, assumptions=assumptions):
            count = sum(bool(truth[abs(l)]) == (l > 0) for l in lits)
            best = count if best is None else min(best, count)
    return best


def test_minimize_matches_brute_force_and_leaves_no_objective_behind():
    rng = np.random.default_rng(9)
    backend = CpSatBackend()
    for _ in range(40):
        n = int(rng.integers(2, 7))
        formula = _random_formula(rng, n)
        lits = [int(v) * int(rng.choice([-1, 1])) for v in range(1, n + 1)]
        assumptions = [int(rng.integers(1, n + 1))] if rng.random() < 0.4 else []
        session = backend.session(formula)
        try:
            res = session.minimize(lits, assumptions)
            best = _fewest(formula, n, lits, assumptions)
            if best is None:
                assert res.status == Status.INFEASIBLE and res.x is None
            else:
                assert res.status == Status.OPTIMAL and res.objective == res.bound == best
                assert _satisfied(formula, res.x, assumptions=assumptions)
                assert sum(bool(res.x[abs(l)]) == (l > 0) for l in lits) == best
            again = session.solve()
            assert again.status == (Status.OPTIMAL if _brute_force(formula, n)
                                    else Status.INFEASIBLE)
            assert again.objective in (None, 0.0)
        finally:
            session.close()


def test_preferred_literals_are_a_hint_not_a_constraint():
    backend = CpSatBackend()
    session = backend.session(CnfFormula(4, [], [], np.array([1, -2, 3, -4, -3])))
    try:        # variable v is CP-SAT's v - 1; a variable preferred twice: the last one wins
        hint = session.proto.solution_hint
        assert list(hint.vars) == [0, 1, 2, 3] and list(hint.values) == [1, 0, 0, 0]
    finally:
        session.close()
    forced = CnfFormula(4, [[2]], [], np.array([1, -2, 3, -4]))
    res = backend.solve_formula(forced)
    assert res.status == Status.OPTIMAL and res.x[2]


# ---------------------------------------------------------------------------------------------
# time limits and stop requests

def hard_formula() -> CnfFormula:
    """Random 3-SAT at the threshold with 700 variables: far beyond a few seconds."""
    rng = np.random.default_rng(5)
    n = 700
    clauses = [(rng.choice(np.arange(1, n + 1), 3, replace=False) * rng.choice([-1, 1], 3)).tolist()
               for _ in range(int(4.26 * n))]
    return CnfFormula(n, clauses, [])


def test_time_limit_is_honoured():
    res = CpSatBackend().solve_formula(hard_formula(), SolveOptions(time_limit=0.2))
    assert res.status == Status.TIME_LIMIT and res.x is None
    assert res.extra["native"] == "UNKNOWN"
    session = CpSatBackend().session(hard_formula())
    try:
        assert session.solve(time_limit=0).status == Status.TIME_LIMIT
    finally:
        session.close()


def test_stop_request_ends_the_search_then_the_next_call_runs():
    backend = CpSatBackend(threads=2)
    timer = threading.Timer(0.5, interrupts.request_stop)
    with interrupts.scope():
        timer.start()
        try:
            res = backend.solve_formula(hard_formula(), SolveOptions(time_limit=120))
        finally:
            timer.cancel()
        assert res.status == Status.INTERRUPTED and res.extra["native"] == "stopped"
        # no new call starts while the stop is requested
        late = backend.solve_formula(CnfFormula(1, [[1]], []))
        assert late.status == Status.INTERRUPTED and "not started" in late.message
    assert not interrupts.stop_requested()
    assert backend.solve_formula(CnfFormula(1, [[1]], [])).status == Status.OPTIMAL


# ---------------------------------------------------------------------------------------------
# registry and errors

def test_registry_lists_cpsat_with_its_install_hint():
    assert CPSAT in [b.name for b in list_backends()]
    assert availability(CPSAT) is None
    backend = get_backend(CPSAT)
    assert isinstance(backend, CpSatBackend) and backend.capabilities == frozenset({"cnf"})

    class Missing(CpSatBackend):
        modules = ("ortools_is_not_here",)

    assert "pip install ortools" in Missing().unavailable_reason()
    with pytest.raises(BackendUnavailableError, match="pip install ortools"):
        Missing().session(CnfFormula(1, [], []))
    assert isinstance(check_cnf_backend("sat:minicard"), type(get_backend("sat:minicard")))
    with pytest.raises(InvalidInputError, match="SAT backend"):
        check_cnf_backend("highs")


def test_cpsat_is_for_the_cnf_encoding_only():
    case = _tiny()[0]
    x = case.images[0]
    with pytest.raises(InvalidInputError, match="cnf"):
        certify(case.model, x, pixels=1, encoding="ip", backend=CPSAT)
    with pytest.raises(BackendUnavailableError, match="BNN formulas"):
        get_backend(CPSAT).build(_problem(case, x))


def _problem(case, x):
    from verify.encodings.bnn import to_problem

    return to_problem(bnn_formula(case.model.network, x, None, 1, case.label(x)), "ip")


# ---------------------------------------------------------------------------------------------
# the BNN tasks: tiny networks against brute force

_CASES: list = []


def _tiny() -> list:
    if not _CASES:
        _CASES.extend(build_case(name) for name in NETS)
    return _CASES


def test_tasks_match_brute_force_on_tiny_bnns():
    for case in _tiny():
        for x in case.images:
            label = case.label(x)
            for target in [None] + case.targets(x):
                best = case.min_flips(x, target)
                for k in range(0, 4):
                    r = certify(case.model, x, pixels=k, target=target, backend=CPSAT)
                    want = "verified" if best is None or best > k else "counterexample"
                    assert r.status == want and r.backend == CPSAT, (case.name, target, k, best)
                    if want == "counterexample":
                        check_example(case, x, r.counterexample, k, label, target)
                r = min_adversarial(case.model, x, norm="card", target=target, backend=CPSAT)
                if best is None:
                    assert r.status == "infeasible" and r.adversarial is None
                    continue
                assert r.status == "optimal" and r.objective == best == r.bound
                check_example(case, x, r.adversarial, best, label, target)
            r = explain(case.model, x, backend=CPSAT)
            assert r.status == "minimal"
            fixed = np.isin(np.arange(case.n), r.pixels)
            assert case.robust(x, fixed)
            for p in r.pixels:            # subset-minimal: no pixel can be dropped
                assert not case.robust(x, fixed & (np.arange(case.n) != p))


def test_minimize_finds_the_fewest_flips_on_a_tiny_bnn():
    """The objective search: the brute-force minimum, with a solution that has it (the
    selector-budget descent is tested for every cnf backend, cpsat included, in test_bnn)."""
    case = _tiny()[1]
    x = case.images[1]
    formula = bnn_formula(case.model.network, x, None, None, case.label(x))
    session = CpSatBackend().session(formula)
    try:
        res = session.minimize(formula.flip_literals())
        assert res.status == Status.OPTIMAL and res.objective == case.min_flips(x)
        assert np.count_nonzero(formula.bits_from(res.x) != formula.bits) == res.objective
    finally:
        session.close()


# ---------------------------------------------------------------------------------------------
# the bundled bnn: CP-SAT agrees with minicard

@pytest.fixture(scope="module")
def bnn_digits():
    from verify.data import load_mnist
    from verify.models import load_model

    return load_model("bnn"), load_mnist("bundled").x_test[:3]


def test_certify_agrees_with_minicard_on_the_bundled_bnn(bnn_digits):
    model, digits = bnn_digits
    decided = 0
    for x in digits:
        for k in (1, 2, 3):
            a = certify(model, x, pixels=k, backend="sat:minicard", time_limit=30)
            b = certify(model, x, pixels=k, backend=CPSAT, time_limit=30)
            assert a.status in ("verified", "counterexample") and a.status == b.status, (k, a, b)
            decided += 1
            if b.status == "counterexample":
                moved = np.count_nonzero(b.counterexample.ravel() != x.ravel())
                assert moved <= k
                assert int(model.reference_labels(b.counterexample)[0]) != b.original_label
    assert decided == 9


def test_min_flips_agree_with_minicard_on_the_bundled_bnn(bnn_digits):
    model, digits = bnn_digits
    x = digits[0]
    a = min_adversarial(model, x, norm="card", backend="sat:minicard", time_limit=60)
    b = min_adversarial(model, x, norm="card", backend=CPSAT, time_limit=60)
    assert a.status == b.status == "optimal" and a.objective == b.objective == b.bound
    assert int(model.reference_labels(b.adversarial)[0]) != b.original_label
    r = min_adversarial(model, x, norm="card", backend=CPSAT, time_limit=1e-9)
    assert r.status in ("time_limit", "optimal")
    assert r.bound is None or r.bound <= a.objective


def test_stop_request_during_min_flips_keeps_the_greedy_example(bnn_digits):
    """A hard digit (no proof within seconds): a stop request ends CP-SAT's search and the
    result is ``interrupted`` with the best example so far and a bound not above it."""
    model, digits = bnn_digits
    x = digits[1]
    timer = threading.Timer(2.0, interrupts.request_stop)
    timer.start()
    try:
        r = min_adversarial(model, x, norm="card", backend=CPSAT, time_limit=120)
    finally:
        timer.cancel()
    assert r.status == "interrupted"
    assert r.adversarial is not None and 1 <= r.bound <= r.objective
    assert int(model.reference_labels(r.adversarial)[0]) != r.original_label
    assert not interrupts.stop_requested()
