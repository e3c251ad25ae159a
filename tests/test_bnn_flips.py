"""Minimal flips that finish, the ``portfolio`` backend, and VNN-LIB on binarized networks.

* Minimal flips on the tiny BNNs of ``test_bnn`` (every input labelled by Keras) agree with
  brute force on every formula backend, the portfolio included, and on IP/HiGHS; on the
  bundled ``bnn`` a time-limited run returns an example Keras confirms and a *proven* lower
  bound above the trivial 1 (the ascending budgets).
* The portfolio answers small formulas as brute force does (clauses, guarded cardinality
  constraints, selector budgets under assumptions), stops its loser, honours a stop request,
  and is listed by ``verify backends``.
* VNN-LIB boxes over a tiny BNN (pixels fixed on one side of 0.5, or straddling it) with
  output disjunctions agree with brute force over every bit assignment the box allows, and a
  ``sat`` answer's counterexample lies in the box and satisfies the property in Keras; on a
  tiny 8-bit integer-input BNN the box's integer ranges are enumerated the same way.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

from verify import interrupts, min_adversarial
from verify.backends import Status, check_cnf_backend
from verify.cnf import AtLeast, CnfFormula
from verify.tasks.vnnlib import certify_vnnlib
from verify.vnnlib import parse_vnnlib_text

from needs import require_backend
from test_bnn import NETS, _brute_force_questions, build_case, check_example
from test_cpsat import hard_formula

#: (encoding, backend) pairs minimal flips are checked with
PAIRS = [("cnf", "portfolio"), ("cnf", "sat:minicard"), ("cnf", "cpsat"), ("ip", "highs")]


@pytest.fixture(scope="module")
def cases():
    return [build_case(name) for name in NETS]


# ---------------------------------------------------------------------------------------------
# minimal flips

@pytest.mark.parametrize("encoding,backend", PAIRS, ids=[f"{e}-{b}" for e, b in PAIRS])
def test_min_flips_match_brute_force(cases, encoding, backend):
    require_backend(backend)
    for case, x, label, target, best in _brute_force_questions(cases):
        r = min_adversarial(case.model, x, norm="card", target=target, encoding=encoding,
                            backend=backend)
        if best is None:
            assert r.status == "infeasible" and r.adversarial is None, (case.name, target)
            continue
        assert r.status == "optimal" and r.objective == best == r.bound, \
            (case.name, target, r.status, r.objective, r.bound, best)
        flips, got = check_example(case, x, r.adversarial, best, label, target)
        assert flips == best and r.adversarial_label == got


def test_ascending_budgets_prove_each_bound(cases):
    """Each unsatisfiable budget in the stats is below the brute-force minimum, and the last
    step (satisfiable) is the minimum itself."""
    for case in cases:
        for x in case.images:
            best = case.min_flips(x)
            r = min_adversarial(case.model, x, norm="card", encoding="cnf", backend="sat:minicard")
            steps = r.stats.get("ascending", [])
            if r.stats["greedy_flips"] == 1:
                continue
            for s in steps:
                if s["status"] == "infeasible":
                    assert s["at_most"] < best
            if steps and steps[-1]["status"] == "optimal":
                assert steps[-1]["at_most"] == best


def test_directed_flips_find_confirmed_examples_no_smaller_than_the_minimum(cases):
    """The smooth-stand-in searches: every example they return flips pixels only, is labelled
    as wanted by Keras and has no unneeded flip, and is never below the brute-force minimum;
    where an example exists within one flip they find it."""
    from verify.attacks.flips import directed_flips
    from verify.tasks.bnn import BnnTask

    found = 0
    for case, x, label, target, best in _brute_force_questions(cases):
        task = BnnTask.create(case.model, x, label, target, "cnf", None, None, None)
        bits = directed_flips(task, case.n)
        if best is None:                                        # no example exists
            assert bits is None
            continue
        if bits is None:                                        # the search may miss one
            continue
        found += 1
        flips, _ = check_example(case, x, task.image(bits), case.n, label, target)
        assert flips >= best
        if best == 1:
            assert flips == 1
        for p in np.flatnonzero(bits != task.bits):             # every flip is needed
            trial = bits.copy()
            trial[p] = task.bits[p]
            assert not task.reaches(case.model.network.label(task.image(trial)))
    assert found >= 10


@pytest.fixture(scope="module")
def bnn_digit():
    from verify.data import load_mnist
    from verify.models import load_model

    return load_model("bnn"), load_mnist("bundled").x_test[1]


@pytest.mark.parametrize("backend", ["portfolio", "sat:minicard"])
def test_time_limited_min_flips_prove_a_lower_bound(bnn_digit, backend):
    """Digit 1 of the bundled bnn needs many flips (no proof within seconds): out of time,
    the result is a Keras-confirmed example and a proven bound above 1, not above it."""
    require_backend(backend)
    model, x = bnn_digit
    r = min_adversarial(model, x, norm="card", encoding="cnf", backend=backend, time_limit=6)
    assert r.status in ("time_limit", "optimal")
    assert r.adversarial is not None
    assert int(model.reference_labels(r.adversarial)[0]) != r.original_label
    assert r.bound > 1 and r.bound <= r.objective
    proven = [s for s in r.stats["ascending"] if s["status"] == "infeasible"]
    assert r.bound >= 1 + len(proven) and len(proven) >= 1


# ---------------------------------------------------------------------------------------------
# the portfolio as a formula backend

def _satisfied(formula: CnfFormula, truth, extra=(), assumptions=()) -> bool:
    def value(lit: int) -> bool:
        return bool(truth[abs(lit)]) == (lit > 0)

    if not all(value(a) for a in assumptions):
        return False
    if not all(any(value(l) for l in clause) for clause in formula.clauses):
        return False
    return all((con.guard and not value(con.guard)) or sum(value(int(l)) for l in con.lits) >= con.bound
               for con in list(formula.constraints) + list(extra))


def _brute(formula: CnfFormula, n: int, extra=(), assumptions=()) -> bool:
    return any(_satisfied(formula, np.array((False,) + bits), extra, assumptions)
               for bits in itertools.product([False, True], repeat=n))


@pytest.mark.parametrize("members", [None, ("cpsat", "sat:minicard"), ("ip:highs", "sat:minicard")],
                         ids=["default", "cpsat-minicard", "highs-minicard"])
def test_portfolio_sessions_match_brute_force(members):
    """Random small formulas, then a selector budget added between calls and assumed: the
    same answers as brute force, models that satisfy everything, one variable numbering;
    for the default members and other pairs (the IP member is a formula backend of its own)."""
    from verify.backends.portfolio import MEMBERS, PortfolioBackend

    require_backend("portfolio")
    rng = np.random.default_rng(3)
    backend = PortfolioBackend(members=members)
    names = [m.name for m in backend.installed_members()]
    assert names == list(members or MEMBERS[:2])
    n = 6
    for formula in _random_formulas(rng, 25, n):
        clauses, cons = formula.clauses, formula.constraints
        session = backend.session(formula)
        try:
            res = session.solve()
            want = _brute(formula, n)
            assert res.status == (Status.OPTIMAL if want else Status.INFEASIBLE)
            assert res.extra["solver"] in names
            if want:
                assert _satisfied(formula, res.x)
            selector = session.new_var()
            assert selector == n + 1
            extra = AtLeast(np.array([-1, -2, -3]), 2, selector)        # at most 1 of x1..x3
            session.add(extra)
            res = session.solve([selector])
            want = _brute(CnfFormula(n + 1, clauses, cons), n + 1, [extra], [selector])
            assert res.status == (Status.OPTIMAL if want else Status.INFEASIBLE)
            if want:
                assert _satisfied(formula, res.x, [extra], [selector])
        finally:
            session.close()


def _random_formulas(rng, count: int, n: int = 6):
    """Small random formulas: clauses and (guarded) cardinality constraints over n variables."""
    for _ in range(count):
        lit = lambda: int(rng.integers(1, n + 1)) * int(rng.choice([-1, 1]))   # noqa: E731
        clauses = [[lit() for _ in range(rng.integers(1, 4))] for _ in range(rng.integers(0, 4))]
        cons = [AtLeast(np.array([lit() for _ in range(rng.integers(2, 6))]), int(rng.integers(1, 4)),
                        lit() if rng.random() < 0.5 else 0) for _ in range(rng.integers(1, 4))]
        yield CnfFormula(n, clauses, cons)


def test_portfolio_time_limit_and_stop_request():
    require_backend("portfolio")
    backend = check_cnf_backend("portfolio")
    session = backend.session(hard_formula())
    try:
        res = session.solve((), 1.0)
        assert res.status in (Status.TIME_LIMIT, Status.OPTIMAL, Status.INFEASIBLE)
        if res.status == Status.TIME_LIMIT:
            assert res.x is None
        with interrupts.scope():
            timer = threading.Timer(0.5, interrupts.request_stop)
            timer.start()
            try:
                res = session.solve((), 120)
            finally:
                timer.cancel()
            assert res.status in (Status.INTERRUPTED, Status.OPTIMAL, Status.INFEASIBLE)
            assert res.time_s < 60
        assert session.solve([1, -1]).status == Status.INFEASIBLE     # and it answers again
    finally:
        session.close()


# ---------------------------------------------------------------------------------------------
# VNN-LIB on a tiny BNN

def _property_text(n: int, classes: int, lo, hi, disjuncts) -> str:
    """VNN-LIB text: box ``[lo, hi]``; ``disjuncts``: lists of (a, b) rows ``a · Y <= b``."""
    lines = [f"(declare-const X_{i} Real)" for i in range(n)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(classes)]
    for i in range(n):
        lines += [f"(assert (>= X_{i} {float(lo[i])!r}))", f"(assert (<= X_{i} {float(hi[i])!r}))"]
    terms = []
    for rows in disjuncts:
        parts = []
        for a, b in rows:
            summands = " ".join(f"(* {float(c)!r} Y_{j})" for j, c in enumerate(a) if c != 0)
            parts.append(f"(<= (+ {summands} 0.0) {float(b)!r})")
        terms.append("(and " + " ".join(parts) + ")")
    lines.append("(assert (or " + " ".join(terms) + "))")
    return "\n".join(lines) + "\n"


def _vnn_questions(case, rng):
    """Boxes (pixels fixed low, fixed high, or free across 0.5) and disjunctions of pairwise
    comparisons and one-output bounds; with the brute-force verdict over the box's bits."""
    n, classes = case.n, case.classes
    for _ in range(6):
        kind = rng.integers(0, 3, size=n)                 # 0: low, 1: high, 2: free
        lo = np.where(kind == 0, rng.uniform(0.0, 0.3, n), np.where(kind == 1, rng.uniform(0.6, 0.9, n),
                                                                   rng.uniform(0.1, 0.45, n)))
        hi = np.where(kind == 0, lo + rng.uniform(0.0, 0.2, n),
                      np.where(kind == 1, lo + rng.uniform(0.0, 0.1, n), rng.uniform(0.55, 0.95, n)))
        lo, hi = np.round(lo, 4), np.round(hi, 4)
        disjuncts = []
        for _ in range(int(rng.integers(1, 3))):
            rows = []
            for _ in range(int(rng.integers(1, 3))):
                a = np.zeros(classes)
                if rng.random() < 0.6:
                    i, j = rng.choice(classes, 2, replace=False)
                    a[i], a[j] = 1.0, -1.0                      # Y_i - Y_j <= b
                    b = float(rng.integers(-2, 3))
                else:
                    j = int(rng.integers(classes))
                    a[j] = float(rng.choice([-1.0, 1.0]))        # ±Y_j <= b
                    b = float(rng.integers(-3, 4)) + 0.5
                rows.append((a, b))
            disjuncts.append(rows)
        # brute force over the bits the box allows
        free = kind == 2
        codes = [c for c in range(2 ** n)
                 if np.all(((c >> np.arange(n)) & 1)[~free] == (kind[~free] == 1))]
        y = case.logits[codes]
        holds = np.zeros(len(codes), dtype=bool)
        for rows in disjuncts:
            ok = np.ones(len(codes), dtype=bool)
            for a, b in rows:
                ok &= y @ a <= b
            holds |= ok
        yield lo, hi, disjuncts, bool(holds.any())


@pytest.mark.parametrize("backend", ["sat:minicard", "cpsat", "portfolio", "highs"])
def test_vnnlib_on_tiny_bnns_matches_brute_force(cases, backend):
    require_backend(backend)
    rng = np.random.default_rng(21)
    seen = set()
    for case in cases:
        for lo, hi, disjuncts, want in _vnn_questions(case, rng):
            text = _property_text(case.n, case.classes, lo, hi, disjuncts)
            prop = parse_vnnlib_text(text, case.n, case.classes)
            r = certify_vnnlib(case.model, prop, backend=backend)
            assert r.verdict == ("sat" if want else "unsat"), (case.name, backend, r.cases)
            seen.add(r.verdict)
            if want:
                x = np.asarray(r.counterexample)
                assert np.all(x >= lo) and np.all(x <= hi)
                y = np.asarray(case.model.reference_outputs(x.astype(np.float32)[None])[0], np.float64)
                assert any(all(a @ y <= b for a, b in rows) for rows in disjuncts)
    assert seen == {"sat", "unsat"}


def test_vnnlib_on_a_tiny_integer_input_bnn_matches_brute_force():
    """8-bit integer inputs: a box of a few grey levels per input (its ends off the grid) maps
    to integer ranges; verdicts agree with Keras on every float32 point's integer values."""
    from verify.errors import InvalidInputError
    from verify.layers import bnn_from_arrays
    from verify.models import load_model

    rng = np.random.default_rng(4)
    n = 4
    first = {"weight": rng.normal(size=(n, 6)), "gamma": np.ones(6), "beta": np.zeros(6),
             "mean": rng.normal(0, 60, 6) + 250, "variance": np.ones(6)}
    km = bnn_from_arrays([first], {"weight": rng.normal(size=(6, 3))}, input_shape=(n,),
                         input_mode="integer", name="tinyint")
    model = load_model(km)
    seen = set()
    for _ in range(10):
        c, w = rng.integers(20, 235, n), rng.integers(0, 4, n)
        lo = (c - w - rng.uniform(0, 0.5, n)) / 255.0
        hi = (c + w + rng.uniform(0, 0.5, n)) / 255.0
        a = np.zeros(3)
        i, j = rng.choice(3, 2, replace=False)
        a[i], a[j] = 1.0, -1.0
        disjuncts = [[(a, float(rng.integers(-2, 3)))]]
        # the integer values float32 points of the box reach: round(255 · x) at its float32 ends
        lo32 = np.array([np.float32(v) if np.float32(v) >= v else np.nextafter(np.float32(v), np.float32(1))
                         for v in lo], dtype=np.float32)
        hi32 = np.array([np.float32(v) if np.float32(v) <= v else np.nextafter(np.float32(v), np.float32(0))
                         for v in hi], dtype=np.float32)
        qlo = np.round(np.float32(255) * lo32).astype(int)
        qhi = np.round(np.float32(255) * hi32).astype(int)
        points = np.array(list(itertools.product(*[range(a_, b_ + 1) for a_, b_ in zip(qlo, qhi)])),
                          dtype=np.float32) / np.float32(255)
        y = np.asarray(km.predict(points, verbose=0), np.float64)
        want = bool(np.any(y @ a <= disjuncts[0][0][1]))
        prop = parse_vnnlib_text(_property_text(n, 3, lo, hi, disjuncts), n, 3)
        for backend in ("sat:minicard", "cpsat", "portfolio"):
            r = certify_vnnlib(model, prop, backend=backend)
            assert r.verdict == ("sat" if want else "unsat"), (backend, r.cases)
            seen.add(r.verdict)
            if want:
                x = np.asarray(r.counterexample)
                assert np.all(x >= lo) and np.all(x <= hi)
    assert seen == {"sat", "unsat"}
    with pytest.raises(InvalidInputError, match="formula backend"):
        certify_vnnlib(model, prop, backend="highs")


def test_vnnlib_on_a_bnn_refuses_unequal_rows(cases):
    case = cases[2]
    n, classes = case.n, case.classes
    a = np.zeros(classes)
    a[0], a[1] = 2.0, -1.0
    text = _property_text(n, classes, np.full(n, 0.2), np.full(n, 0.8), [[(a, 0.0)]])
    from verify.errors import InvalidInputError
    with pytest.raises(InvalidInputError, match="unequally"):
        certify_vnnlib(case.model, parse_vnnlib_text(text, n, classes), backend="sat:minicard")


# ---------------------------------------------------------------------------------------------
# the command line: portfolio listed, and used

def test_cli_lists_and_uses_the_portfolio(tmp_path):
    require_backend("portfolio")
    from verify.data import load_mnist
    from verify.models import load_model
    from verify.vnnlib import write_robustness_property

    model = load_model("bnn")
    x = load_mnist("bundled").x_test[0].astype(np.float64).ravel()
    prop = tmp_path / "p.vnnlib"
    write_robustness_property(prop, x, model.label(x), 0.02, 10)
    script = (
        "import sys\nfrom verify.cli import main\n"
        "print('==1', flush=True); main(['backends'])\n"
        f"print('==2', flush=True); main(['certify', '--model', 'bnn', '--vnnlib', {str(prop)!r}, "
        "'--backend', 'portfolio', '--time-limit', '30'])\n")
    env = dict(os.environ, KERAS_BACKEND="jax")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=300)
    text = out.stdout
    listing = text.split("==1", 1)[1].split("==2", 1)[0]
    assert any(line.startswith("portfolio") and " yes " in line for line in listing.splitlines()), listing
    assert text.split("==2", 1)[1].strip().splitlines()[-1] == "unsat", out.stderr[-2000:]
