"""Binarized networks (BNNs): the Keras layers, the folded IR, the cardinality formula in its
three renderings (CNF, MIP, pure 0-1 IP), and the exact tasks on top of it.

Every exact answer is compared with brute force: the tiny networks here have at most 12
binary inputs, so all 2^n inputs are labelled once by the Keras model itself and every
question (is there a label change within k flips? how few flips? which pixels force the
label?) is answered by enumeration.
"""
from __future__ import annotations

import importlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

from needs import require_backend
from verify import certify, explain, min_adversarial
from verify.backends import Status, get_backend
from verify.backends.sat import DEFAULT_SAT
from verify.encodings.bnn import bnn_formula, bnn_layers, flip_budget, to_problem
from verify.errors import BackendUnavailableError, InvalidInputError, UnsupportedLayerError
from verify.keras_io import network_from_keras
from verify.layers import bnn_from_arrays
from verify.models import LoadedModel, load_model
from verify.network import Affine, Binarize, Quantize, SignBlock

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"

#: (encoding, backend) pairs every exact task is checked with
PAIRS = [("cnf", "sat:minicard"), ("cnf", "sat:gluecard4"), ("cnf", "sat:glucose4+totalizer"),
         ("cnf", "cpsat"), ("mip", "highs"), ("ip", "highs"), ("ip", "scip"), ("mip", "cplex")]
PAIR_IDS = [f"{e}-{b}" for e, b in PAIRS]
EPS = 1e-3          # bnn_from_arrays' default batch-norm epsilon


def _need(backend: str) -> None:
    require_backend(backend)


# ---------------------------------------------------------------------------------------------
# the tiny networks

def _batchnorm(rng, signs) -> dict:
    signs = np.asarray(signs, dtype=np.float64)
    units = signs.size
    return {"gamma": signs * rng.uniform(0.5, 2.0, units), "beta": rng.normal(0.0, 1.0, units),
            "mean": rng.normal(0.0, 1.5, units), "variance": rng.uniform(0.5, 3.0, units)}


def spec(name: str) -> tuple[list[dict], dict, int]:
    """``(blocks, output, n)`` of a tiny BNN, from numpy arrays with a fixed seed."""
    if name == "two-blocks":
        # batch norm with gammas of both signs and a hidden bias, then a block with neither;
        # class 3 has the output weights of class 1, so it always ties class 1 and loses the
        # tie (argmax takes the first index): no input at all is labelled 3
        rng = np.random.default_rng(11)
        n = 10
        first = {"weight": rng.normal(size=(n, 7)), "bias": rng.normal(0.0, 1.0, 7),
                 **_batchnorm(rng, [1, -1, 1, -1, 1, 1, -1])}
        second = {"weight": rng.normal(size=(7, 5))}
        w = rng.normal(size=(5, 4))
        w[:, 3] = w[:, 1]
        return [first, second], {"weight": w}, n
    if name == "output-bias":
        # a nonzero output bias (exact in float32, with integer gaps: ties do happen), a
        # neuron with gamma 0 (constant output), and two neurons whose batch norm is exactly 0
        # on a reachable sum (mean on an even integer, beta 0): Sign(0) = +1 must be kept
        rng = np.random.default_rng(12)
        n = 8
        bn = _batchnorm(rng, [1, -1, 1, -1, 1, 1])
        bn["gamma"][4] = 0.0
        bn["mean"][:2] = [2.0, 0.0]
        bn["beta"][:2] = 0.0
        block = {"weight": rng.normal(size=(n, 6)), **bn}
        return [block], {"weight": rng.normal(size=(6, 3)), "bias": np.array([1.0, -1.0, 0.5])}, n
    if name == "wide":
        rng = np.random.default_rng(13)
        n = 12
        first = {"weight": rng.normal(size=(n, 12)),
                 **_batchnorm(rng, np.where(rng.random(12) < 0.5, -1, 1))}
        second = {"weight": rng.normal(size=(12, 6)), "bias": rng.normal(0.0, 1.0, 6),
                  **_batchnorm(rng, [-1, 1, 1, -1, 1, -1])}
        return [first, second], {"weight": rng.normal(size=(6, 3))}, n
    raise KeyError(name)


NETS = ("two-blocks", "output-bias", "wide")


def all_inputs(n: int) -> np.ndarray:
    """All 2^n binary inputs as 0.0/1.0 pixels; row ``i`` has pixel ``j`` = bit ``j`` of ``i``."""
    return ((np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float32)


@dataclass
class Case:
    """A tiny BNN with every input labelled by Keras, and a few inputs to ask about."""

    name: str
    keras: object
    model: LoadedModel
    n: int
    inputs: np.ndarray            # (2^n, n) float32 0/1
    logits: np.ndarray            # Keras logits of every input
    labels: np.ndarray            # Keras labels (argmax) of every input
    images: list = field(default_factory=list)

    @property
    def classes(self) -> int:
        return self.logits.shape[1]

    def code(self, x) -> int:
        bits = np.asarray(x, dtype=np.float64).ravel() > 0.5
        return int(bits.astype(np.int64) @ (1 << np.arange(self.n)))

    def label(self, x) -> int:
        return int(self.labels[self.code(x)])

    def min_flips(self, x, target: int | None = None, free=None) -> int | None:
        """Fewest flipped bits (only pixels in ``free``) giving another label (or ``target``)."""
        c = self.code(x)
        rows = np.arange(len(self.labels))
        ok = self.labels == target if target is not None else self.labels != self.labels[c]
        if free is not None:
            fixed = int((~np.asarray(free, dtype=bool)).astype(np.int64) @ (1 << np.arange(self.n)))
            ok &= ((rows ^ c) & fixed) == 0
        if not ok.any():
            return None
        return int(self.inputs[(rows ^ c)[ok]].sum(axis=1).min())

    def robust(self, x, fixed) -> bool:
        """True when fixing the pixels in ``fixed`` (all others any bit) never changes the label."""
        return self.min_flips(x, free=~np.asarray(fixed, dtype=bool)) is None

    def targets(self, x) -> list[int]:
        label = self.label(x)
        return [t for t in range(self.classes) if t != label]


def build_case(name: str) -> Case:
    blocks, output, n = spec(name)
    km = bnn_from_arrays(blocks, output, input_shape=(n,), name=name)
    model = load_model(km)
    inputs = all_inputs(n)
    logits = np.asarray(km.predict(inputs, verbose=0), dtype=np.float64)
    case = Case(name, km, model, n, inputs, logits, logits.argmax(axis=1))
    rng = np.random.default_rng(100 + n)
    # a fractional image (the bits are x > 0.5), the most robust of some binary images, and a
    # random binary one
    sample = rng.choice(2 ** n, size=48, replace=False)
    robust = max(sample, key=lambda c: (case.min_flips(inputs[c]) or n + 1, -c))
    case.images = [rng.uniform(0.02, 0.98, n), inputs[robust].astype(np.float64),
                   inputs[rng.integers(2 ** n)].astype(np.float64)]
    return case


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return [build_case(name) for name in NETS]


def check_example(case: Case, x, example, max_flips: int, label: int,
                  target: int | None) -> tuple[int, int]:
    """An example must only flip pixels (to exactly 0.0 or 1.0, across 0.5), at most
    ``max_flips`` of them, and Keras must label it as wanted. Returns (flips, Keras label)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    e = np.asarray(example, dtype=np.float64).ravel()
    assert e.shape == x.shape
    moved = e != x
    assert np.array_equal(e[moved], np.where(x[moved] > 0.5, 0.0, 1.0)), "not a pure bit flip"
    flips = int(moved.sum())
    assert flips <= max_flips
    got = int(case.model.reference_labels(e)[0])
    assert got == target if target is not None else got != label
    return flips, got


# ---------------------------------------------------------------------------------------------
# 1. the IR is the Keras model, on every input

def test_cases_cover_the_interesting_situations(cases):
    """Guards the fixtures: the brute-force comparisons below mean something only if the tiny
    networks have robust inputs, several labels, and an unreachable target."""
    two = cases[0]
    assert 3 not in set(two.labels.tolist()) and len(set(two.labels.tolist())) == 3
    for case in cases:
        assert len(set(case.labels.tolist())) >= 2
        assert max(case.min_flips(x) for x in case.images) >= 2, case.name
        assert any(0 < x < 1 and x != 0.5 for x in case.images[0])
    net = cases[1].model.network
    block = net.layers[1]
    assert np.count_nonzero(np.all(block.weight == 0, axis=1)) >= 1      # the gamma-0 neuron


@pytest.mark.parametrize("name", NETS)
def test_ir_equals_keras_on_all_inputs(cases, name):
    case = cases[NETS.index(name)]
    net = case.model.network
    kinds = [type(layer) for layer in net.layers]
    blocks, _, _ = spec(name)
    assert kinds == [Binarize] + [SignBlock] * len(blocks) + [Affine]
    assert net.is_binarized and net.layers[-1].kind == "binary_dense"
    for block in net.layers[1:-1]:
        assert set(np.unique(block.weight).tolist()) <= {-1, 0, 1}
        assert block.threshold.dtype == np.int64
    # logits and labels, exactly, on all 2^n binary inputs
    assert np.array_equal(net.forward(case.inputs), case.logits)
    assert np.array_equal(net.predict_label(case.inputs), case.labels)
    assert np.array_equal(network_from_keras(case.keras).predict_label(case.inputs), case.labels)
    assert np.array_equal(case.model.reference_labels(case.inputs), case.labels)
    # and on fractional pixels (float32 values, the ones Keras sees), 0.5 included
    rng = np.random.default_rng(5)
    x = rng.random((300, case.n)).astype(np.float32)
    x[::7, 0] = 0.5
    x[1::7, 1] = np.nextafter(np.float32(0.5), np.float32(1))
    assert np.array_equal(net.forward(x), np.asarray(case.keras.predict(x, verbose=0), np.float64))


def test_tied_logits_go_to_the_smaller_index(cases):
    case = cases[0]
    ties = case.logits[:, 1] == case.logits[:, 3]
    assert ties.all()
    top = case.logits.max(axis=1)
    both_top = case.logits[:, 1] == top
    assert both_top.any()
    assert np.all(case.labels[both_top & (case.logits[:, 0] < top)] == 1)


# ---------------------------------------------------------------------------------------------
# 2. the formula, in every rendering, against brute force

def _solve_formula(formula, encoding: str, backend: str, minimize: bool = False):
    """(status, bits or None, objective) of the formula in ``encoding`` on ``backend``."""
    if encoding == "cnf":
        res = get_backend(backend).solve_formula(formula)
        bits = formula.bits_from(res.x) if res.x is not None else None
    else:
        res = get_backend(backend).solve(to_problem(formula, encoding, minimize_flips=minimize))
        bits = (formula.bits_from(np.concatenate([[False], res.x > 0.5]))
                if res.x is not None else None)
    assert res.status in (Status.OPTIMAL, Status.INFEASIBLE), res.status
    return res.status, bits, res.objective


def _brute_force_questions(cases):
    """Every (case, image, its label, target or None, brute-force minimal flips) of the tiny BNNs."""
    for case in cases:
        for x in case.images:
            label = case.label(x)
            for target in [None] + case.targets(x):
                yield case, x, label, target, case.min_flips(x, target)


def _formula_questions(case: Case, rng, images: int, masks: int, budgets) -> list:
    out = []
    for x in case.images[:images]:
        frees = [np.ones(case.n, dtype=bool)] + [rng.random(case.n) < 0.6 for _ in range(masks)]
        for free in frees:
            for budget in budgets:
                for target in [None] + case.targets(x):
                    out.append((x, free, budget, target))
    return out


@pytest.mark.parametrize("encoding,backend", PAIRS, ids=PAIR_IDS)
def test_formula_matches_brute_force(cases, encoding, backend):
    """``bnn_formula`` + the backend, with free masks, flip budgets and targets: satisfiable
    exactly when brute force finds an input, and the solution decodes to one."""
    _need(backend)
    sat = encoding == "cnf"
    rng = np.random.default_rng(21)
    for case in cases:
        questions = (_formula_questions(case, rng, 3, 2, (None, 0, 1, 2, 3)) if sat
                     else _formula_questions(case, rng, 2, 1, (None, 1, 2)))
        for x, free, budget, target in questions:
            label = case.label(x)
            best = case.min_flips(x, target, free)
            exists = best is not None and (budget is None or best <= budget)
            formula = bnn_formula(case.model.network, x, free, budget, label, target)
            status, bits, _ = _solve_formula(formula, encoding, backend)
            assert (status == Status.OPTIMAL) == exists, (case.name, free, budget, target, best)
            if bits is None:
                continue
            origin = (np.asarray(x).ravel() > 0.5).astype(np.int8)
            assert np.array_equal(bits[~free], origin[~free]), "a fixed pixel moved"
            if budget is not None:
                assert np.count_nonzero(bits != origin) <= budget
            got = int(case.labels[case.code(bits)])
            assert got == target if target is not None else got != label


@pytest.mark.parametrize("encoding,backend", [p for p in PAIRS if p[0] != "cnf"],
                         ids=[i for p, i in zip(PAIRS, PAIR_IDS) if p[0] != "cnf"])
def test_problem_minimises_flips(cases, encoding, backend):
    """``to_problem(..., minimize_flips=True)``: the optimum is the brute-force minimum."""
    _need(backend)
    rng = np.random.default_rng(22)
    for case in cases:
        for x in case.images[:2]:
            label = case.label(x)
            for free in (np.ones(case.n, dtype=bool), rng.random(case.n) < 0.7):
                for target in [None] + case.targets(x):
                    best = case.min_flips(x, target, free)
                    formula = bnn_formula(case.model.network, x, free, None, label, target)
                    status, bits, objective = _solve_formula(formula, encoding, backend,
                                                             minimize=True)
                    if best is None:
                        assert status == Status.INFEASIBLE
                        continue
                    assert status == Status.OPTIMAL and round(objective) == best
                    origin = (np.asarray(x).ravel() > 0.5).astype(np.int8)
                    assert np.count_nonzero(bits != origin) == best


@pytest.mark.parametrize("backend", [b for e, b in PAIRS if e == "cnf"])
def test_sat_session_budgets_and_assumptions(cases, backend):
    """One live solver: budgets tightened behind selector literals reach the brute-force
    minimum, and fixing pixels by assumptions answers each free mask (calls do not leak)."""
    _need(backend)
    rng = np.random.default_rng(23)
    sat = get_backend(backend)
    for case, x, label, target, best in _brute_force_questions(cases):
        formula = bnn_formula(case.model.network, x, None, None, label, target)
        session = sat.session(formula)
        try:
            flips, assumptions = None, []
            while True:
                res = session.solve(assumptions)
                if res.status == Status.INFEASIBLE:
                    break
                flips = int(np.count_nonzero(formula.bits_from(res.x) != formula.bits))
                selector = session.new_var()
                session.add(flip_budget(formula, flips - 1, selector))
                assumptions = [selector]
            assert flips == best
            if target is not None:
                continue
            for _ in range(4):
                free = rng.random(case.n) < 0.5
                res = session.solve(formula.original_literals()[~free])
                assert (res.status == Status.OPTIMAL) == (not case.robust(x, ~free))
        finally:
            session.close()


def test_clausal_encodings_agree(cases):
    """Other clausal cardinality encodings and solvers give the same answers."""
    _need("sat:minicard")
    case = cases[2]
    x = case.images[1]
    label = case.label(x)
    for spec_ in ("sat:glucose4+seqcounter", "sat:minisat22+cardnetwrk", "sat:gluecard4+totalizer",
                  "sat:cadical153"):
        for budget in range(0, 4):
            best = case.min_flips(x)
            formula = bnn_formula(case.model.network, x, None, budget, label)
            status, _, _ = _solve_formula(formula, "cnf", spec_)
            assert (status == Status.OPTIMAL) == (best <= budget), (spec_, budget)


# ---------------------------------------------------------------------------------------------
# 3. certify, min_adversarial, explain

@pytest.mark.parametrize("encoding,backend", PAIRS, ids=PAIR_IDS)
def test_certify_matches_brute_force(cases, encoding, backend):
    _need(backend)
    for case, x, label, target, best in _brute_force_questions(cases):
        for k in range(0, 5):
            r = certify(case.model, x, pixels=k, target=target, encoding=encoding,
                        backend=backend)
            want = "verified" if best is None or best > k else "counterexample"
            assert r.status == want, (case.name, target, k, best, r.method)
            assert r.original_label == label and r.backend == backend
            if want == "verified":
                assert r.counterexample is None and r.method == "solver"
                continue
            _, got = check_example(case, x, r.counterexample, k, label, target)
            assert r.adversarial_label == got
            assert r.counterexample.shape == tuple(case.model.input_shape)


@pytest.mark.parametrize("encoding,backend", PAIRS, ids=PAIR_IDS)
def test_min_adversarial_matches_brute_force(cases, encoding, backend):
    _need(backend)
    for case, x, label, target, best in _brute_force_questions(cases):
        r = min_adversarial(case.model, x, norm="card", target=target, encoding=encoding,
                            backend=backend)
        assert r.original_label == label and r.target == target and r.norm == "card"
        if best is None:
            assert r.status == "infeasible", (case.name, target)
            assert r.adversarial is None and r.objective is None
            assert r.adversarial_label is None
            continue
        assert r.status == "optimal" and r.minimal, (case.name, target, r.status)
        assert r.objective == best, (case.name, target, r.objective, best)
        assert r.bound == best
        flips, got = check_example(case, x, r.adversarial, best, label, target)
        assert flips == best and r.adversarial_label == got


def test_unreachable_target_is_infeasible_and_verified(cases):
    case = cases[0]
    for x in case.images:
        assert case.min_flips(x, 3) is None
        r = min_adversarial(case.model, x, target=3)
        assert r.status == "infeasible" and r.adversarial is None
        assert certify(case.model, x, pixels=case.n, target=3).status == "verified"


def _deletion(case: Case, x, order) -> list[int]:
    """The destructive explanation in ``order``, by brute force."""
    fixed = np.ones(case.n, dtype=bool)
    for p in order:
        fixed[p] = False
        if not case.robust(x, fixed):
            fixed[p] = True
    return np.flatnonzero(fixed).tolist()


def _check_explanation(case: Case, x, r) -> None:
    kept = np.zeros(case.n, dtype=bool)
    kept[r.pixels] = True
    assert r.status == "minimal" and r.minimal
    assert r.original_label == case.label(x)
    assert case.robust(x, kept), "not sound: freeing the other pixels changes the label"
    for p in r.pixels:
        fewer = kept.copy()
        fewer[p] = False
        assert not case.robust(x, fewer), f"pixel {p} is not necessary"
    assert sorted(r.witnesses) == sorted(r.pixels)
    for p, w in r.witnesses.items():
        w = np.asarray(w, dtype=np.float64).ravel()
        moved = w != np.asarray(x, dtype=np.float64).ravel()
        assert not np.any(moved & kept & (np.arange(case.n) != p)), "witness moves a kept pixel"
        assert int(case.model.reference_labels(w)[0]) != r.original_label


@pytest.mark.parametrize("encoding,backend", PAIRS, ids=PAIR_IDS)
def test_explain_matches_brute_force(cases, encoding, backend):
    """Sound and subset-minimal in both orders; with ``order="index"`` the very set brute
    force gives, so every encoding and backend returns the same pixels."""
    _need(backend)
    for case in cases:
        for i, x in enumerate(case.images):
            r = explain(case.model, x, encoding=encoding, backend=backend, order="index")
            _check_explanation(case, x, r)
            assert r.pixels == _deletion(case, x, range(case.n)), (case.name, encoding, backend)
            if i == 0:
                r = explain(case.model, x, encoding=encoding, backend=backend, order="influence")
                _check_explanation(case, x, r)


@pytest.mark.parametrize("encoding,backend", [("cnf", "sat:minicard"), ("ip", "highs")])
def test_explain_methods_agree(cases, encoding, backend):
    _need(backend)
    for case in cases:
        x = case.images[0]
        want = _deletion(case, x, range(case.n))
        for method in ("batch", "sequential", "seed"):
            r = explain(case.model, x, encoding=encoding, backend=backend, method=method,
                        order="index")
            assert r.pixels == want and r.status == "minimal", method
        r = explain(case.model, x, encoding=encoding, backend=backend, method="seed", order="index")
        assert r.checks["witness"] == 0 and r.checks["exact"] == case.n


def _smallest_sound(case: Case, x) -> int:
    for size in range(case.n + 1):
        for subset in itertools.combinations(range(case.n), size):
            fixed = np.zeros(case.n, dtype=bool)
            fixed[list(subset)] = True
            if case.robust(x, fixed):
                return size
    raise AssertionError("fixing every pixel is always sound")


@pytest.mark.parametrize("encoding,backend", [("cnf", "sat:minicard"), ("ip", "highs")])
def test_explain_minimum_matches_brute_force(cases, encoding, backend):
    """``minimum=True``: the hitting-set search proves the brute-force smallest size."""
    _need(backend)
    for case in cases:
        x = case.images[1]
        r = explain(case.model, x, encoding=encoding, backend=backend, minimum=True)
        _check_explanation(case, x, r)
        smallest = _smallest_sound(case, x)
        assert r.minimum["status"] == "minimum"
        assert r.minimum["size"] == r.minimum["lower_bound"] == smallest, case.name
        fixed = np.zeros(case.n, dtype=bool)
        fixed[r.minimum["pixels"]] = True
        assert fixed.sum() == smallest and case.robust(x, fixed)


@pytest.mark.parametrize("encoding,backend", [("cnf", "sat:minicard"), ("ip", "highs"),
                                              ("mip", "scip")])
def test_exhausted_time_limit_is_never_a_wrong_answer(cases, encoding, backend):
    """With no time left the answers are undecided (or proven anyway), never wrong."""
    _need(backend)
    case = cases[2]
    x = case.images[1]
    label = case.label(x)
    best = case.min_flips(x)
    for k in range(4):
        r = certify(case.model, x, pixels=k, encoding=encoding, backend=backend, time_limit=1e-9)
        right = "verified" if best > k else "counterexample"
        assert r.status in ("unknown", right)
        if r.status == "counterexample":
            check_example(case, x, r.counterexample, k, label, None)
    r = min_adversarial(case.model, x, encoding=encoding, backend=backend, time_limit=1e-9)
    assert r.status in ("time_limit", "optimal")
    assert r.bound is None or r.bound <= best
    if r.adversarial is not None:
        flips, _ = check_example(case, x, r.adversarial, case.n, label, None)
        assert flips == r.objective >= best
    if r.status == "optimal":
        assert r.objective == best
    r = explain(case.model, x, encoding=encoding, backend=backend, time_limit=1e-9)
    assert r.status in ("time_limit", "minimal")
    assert case.robust(x, np.isin(np.arange(case.n), r.pixels))


# ---------------------------------------------------------------------------------------------
# 4. the bundled BNNs: folded thresholds agree with Keras

@pytest.fixture(scope="module")
def digits_1000():
    from verify.data import load_mnist

    x = load_mnist("bundled").x_test[:1000]
    assert x.shape[0] == 1000 and x.min() >= 0 and x.max() <= 1
    return x


@pytest.mark.parametrize("name", ["bnn-small", "bnn"])
def test_bundled_bnn_folding_matches_keras(name, digits_1000):
    model = load_model(name)
    net = model.network
    assert net.is_binarized
    assert [type(l) for l in net.layers] == [Binarize, SignBlock, SignBlock, Affine]
    batch = digits_1000.reshape((-1,) + tuple(model.input_shape)).astype(np.float32)
    keras_logits = np.asarray(model.keras.predict(batch, verbose=0), dtype=np.float64)
    assert np.array_equal(net.forward(digits_1000), keras_logits)
    assert np.array_equal(net.predict_label(digits_1000), model.reference_labels(digits_1000))
    assert np.array_equal(net.predict_label(digits_1000), keras_logits.argmax(axis=1))
    bnn_layers(net)                                       # the encodings accept it


# ---------------------------------------------------------------------------------------------
# 5. serialisation and the 8-bit input mode

def test_save_and_reload(cases, tmp_path):
    import keras

    importlib.import_module("verify.layers")       # registers the BNN layers

    case = cases[1]
    path = tmp_path / "m.keras"
    case.keras.save(path)
    again = keras.models.load_model(path, compile=False)
    logits = np.asarray(again.predict(case.inputs, verbose=0), dtype=np.float64)
    assert np.array_equal(logits, case.logits)
    reloaded = load_model(str(path)).network
    for a, b in zip(case.model.network.layers, reloaded.layers):
        assert type(a) is type(b)
        if isinstance(a, SignBlock):
            assert np.array_equal(a.weight, b.weight) and np.array_equal(a.threshold, b.threshold)
    r = certify(str(path), case.images[1], pixels=1)
    assert r.status == ("verified" if case.min_flips(case.images[1]) > 1 else "counterexample")


def _integer_bnn():
    """An 8-bit-input BNN (the widths of "two-blocks"); batch-norm statistics on the scale of
    sums of 0..255 values, so that the thresholds fall inside the reachable range."""
    rng = np.random.default_rng(31)
    n = 10
    blocks = [{"weight": rng.normal(size=(n, 7)), "bias": rng.normal(0.0, 20.0, 7),
               "gamma": np.array([1.5, -0.7, 1.0, -2.0, 0.8, 1.1, -1.3]),
               "beta": rng.normal(0.0, 1.0, 7), "mean": rng.normal(0.0, 250.0, 7),
               "variance": rng.uniform(100.0, 4000.0, 7)},
              {"weight": rng.normal(size=(7, 5))}]
    output = {"weight": rng.normal(size=(5, 4))}
    return bnn_from_arrays(blocks, output, input_shape=(n,), input_mode="integer"), n


def test_integer_input_mode_matches_keras():
    km, n = _integer_bnn()
    model = load_model(km)
    net = model.network
    assert [type(l) for l in net.layers] == [Quantize, SignBlock, SignBlock, Affine]
    assert net.layers[0].levels == 255
    rng = np.random.default_rng(32)
    levels = np.arange(256) / 255.0
    halves = (np.arange(255) + 0.5) / 255.0                  # round-half-to-even cases
    pool = np.concatenate([levels, halves, rng.random(400)]).astype(np.float32)
    x = rng.choice(pool, size=(3000, n)).astype(np.float32)
    keras_logits = np.asarray(km.predict(x, verbose=0), dtype=np.float64)
    assert np.array_equal(net.forward(x), keras_logits)
    assert np.array_equal(net.predict_label(x), keras_logits.argmax(axis=1))
    assert len(set(keras_logits.argmax(axis=1).tolist())) >= 2
    # the exact tasks take integer inputs (tests/test_bnn_int.py); the flip search on bits
    # does not, and says so
    image = x[0].astype(np.float64)
    assert certify(model, image, pixels=1).status in ("verified", "counterexample")
    with pytest.raises(UnsupportedLayerError, match="IntegerInput") as e:
        bnn_layers(net)
    assert "binarised" in str(e.value)


def test_bad_input_mode():
    blocks, output, n = spec("wide")
    with pytest.raises(ValueError, match="input_mode"):
        bnn_from_arrays(blocks, output, input_shape=(n,), input_mode="ternary")


# ---------------------------------------------------------------------------------------------
# 6. bnn_from_arrays against an independent numpy BNN

def numpy_bnn(blocks, output, x01: np.ndarray, eps: float = EPS):
    """Float64 reference: sign(BN(sign(W) h + b)) per block, integer logits; also a mask of
    the inputs on which some batch-norm (or biased) output lies within 1e-4 of zero, where
    float32 rounding may decide the sign either way."""
    h = np.where(x01 > 0.5, 1.0, -1.0)
    near = np.zeros(len(h), dtype=bool)
    for block in blocks:
        z = h @ np.where(np.asarray(block["weight"]) >= 0, 1.0, -1.0) + block.get("bias", 0.0)
        if "gamma" in block:
            z = (block["gamma"] * (z - block["mean"]) / np.sqrt(block["variance"] + eps)
                 + block["beta"])
        if "gamma" in block or "bias" in block:          # exact integers otherwise
            near |= np.any(np.abs(z) < 1e-4, axis=1)
        h = np.where(z >= 0, 1.0, -1.0)
    logits = h @ np.where(np.asarray(output["weight"]) >= 0, 1.0, -1.0) + output.get("bias", 0.0)
    return logits, near


def _bigger_spec():
    """40 inputs (too many to enumerate; random inputs instead), the layer widths of
    "two-blocks" after the first layer, and an output bias."""
    rng = np.random.default_rng(41)
    n = 40
    first = {"weight": rng.normal(size=(n, 7)), "bias": rng.normal(0.0, 2.0, 7),
             **_batchnorm(rng, [1, -1, -1, 1, 1, -1, 1])}
    first["mean"] = first["mean"] * 4
    second = {"weight": rng.normal(size=(7, 5)), **_batchnorm(rng, [-1, 1, 1, -1, 1])}
    return [first, second], {"weight": rng.normal(size=(5, 4)),
                             "bias": np.array([0.0, 0.5, -0.5, 0.25])}, n


@pytest.mark.parametrize("name", NETS + ("bigger",))
def test_bnn_from_arrays_matches_numpy_reference(name):
    blocks, output, n = _bigger_spec() if name == "bigger" else spec(name)
    km = bnn_from_arrays(blocks, output, input_shape=(n,))
    rng = np.random.default_rng(42)
    x = all_inputs(n) if n <= 12 else (rng.random((2000, n)) < 0.5).astype(np.float32)
    want, near = numpy_bnn(blocks, output, x.astype(np.float64))
    keras_logits = np.asarray(km.predict(x, verbose=0), dtype=np.float64)
    ir_logits = network_from_keras(km).forward(x)
    assert near.mean() < 0.5
    ok = ~near
    assert np.array_equal(keras_logits.argmax(axis=1)[ok], want.argmax(axis=1)[ok])
    assert np.array_equal(ir_logits.argmax(axis=1)[ok], want.argmax(axis=1)[ok])
    assert np.allclose(keras_logits[ok], want[ok], atol=1e-6)
    assert np.array_equal(ir_logits, keras_logits)


# ---------------------------------------------------------------------------------------------
# 7. bad input: clear errors

@pytest.fixture(scope="module")
def relu_model():
    import keras

    keras.utils.set_random_seed(3)
    km = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"),
                           keras.layers.Dense(3)])
    return load_model(km)


def test_errors(cases, relu_model):
    case = cases[0]
    model, x = case.model, case.images[1]
    label = case.label(x)
    with pytest.raises(InvalidInputError, match="pixels=k"):
        certify(model, x, eps=0.1)
    with pytest.raises(InvalidInputError, match="pixels=k"):
        certify(model, x, eps=0.1, pixels=2)
    with pytest.raises(InvalidInputError, match="pixels=k"):
        certify(model, x)
    with pytest.raises(InvalidInputError, match="whole number"):
        certify(model, x, pixels=-1)
    with pytest.raises(InvalidInputError, match="whole number"):
        certify(model, x, pixels=1.5)
    with pytest.raises(InvalidInputError, match="SAT backend"):
        certify(model, x, pixels=1, encoding="cnf", backend="highs")
    with pytest.raises(InvalidInputError, match="cnf"):
        certify(model, x, pixels=1, encoding="ip", backend="sat:minicard")
    with pytest.raises(InvalidInputError, match="cnf"):
        min_adversarial(model, x, encoding="mip", backend="sat:minicard")
    with pytest.raises(InvalidInputError, match="encoding"):
        certify(model, x, pixels=1, encoding="smt")
    with pytest.raises(BackendUnavailableError, match="nosuch"):
        certify(model, x, pixels=1, backend="sat:nosuch")
    with pytest.raises(BackendUnavailableError, match="native"):
        certify(model, x, pixels=1, backend="sat:glucose4+native")
    with pytest.raises(BackendUnavailableError, match="nosuch"):
        certify(model, x, pixels=1, backend="sat:glucose4+nosuch")
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        certify(model, x, pixels=1, encoding="mip", backend="nosuch")
    with pytest.raises(InvalidInputError, match="card"):
        min_adversarial(model, x, norm="l2")
    with pytest.raises(InvalidInputError, match="card"):
        min_adversarial(model, x, norm="linf")
    with pytest.raises(InvalidInputError):
        min_adversarial(model, x, target=label)
    with pytest.raises(InvalidInputError):
        certify(model, x, pixels=1, target=case.classes)
    with pytest.raises(InvalidInputError, match="eps"):
        explain(model, x, eps=0.1)
    with pytest.raises(InvalidInputError):
        certify(model, np.full(case.n + 1, 0.5), pixels=1)
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        certify(model, np.full(case.n, 2.0), pixels=1)
    # the BNN encodings are refused on a ReLU network
    xr = np.linspace(0.1, 0.9, 6)
    for encoding in ("cnf", "ip"):
        with pytest.raises(InvalidInputError, match="binarized"):
            certify(relu_model, xr, pixels=1, encoding=encoding)
        with pytest.raises(InvalidInputError, match="binarized"):
            min_adversarial(relu_model, xr, encoding=encoding)
        with pytest.raises(InvalidInputError, match="binarized"):
            explain(relu_model, xr, encoding=encoding)
    # bnn_formula's own checks
    with pytest.raises(InvalidInputError, match="target"):
        bnn_formula(model.network, x, target=label)
    with pytest.raises(InvalidInputError, match="class index"):
        bnn_formula(model.network, x, target=17)
    with pytest.raises(InvalidInputError, match="free mask"):
        bnn_formula(model.network, x, free=np.ones(3, dtype=bool))
    with pytest.raises(InvalidInputError, match="encoding"):
        to_problem(bnn_formula(model.network, x), "cnf")


def test_cadical_cannot_keep_a_time_limit(cases):
    _need("sat:cadical153")
    case = cases[0]
    x = case.images[1]
    with pytest.raises(BackendUnavailableError, match="time limit"):
        certify(case.model, x, pixels=0, backend="sat:cadical153", time_limit=5)
    assert certify(case.model, x, pixels=0, backend="sat:cadical153").status == "verified"


def test_unsupported_bnn_layouts():
    """BNN layers in an order the reader cannot fold: one clear UnsupportedLayerError."""
    import keras

    from verify.layers import BinarizeInput, BinaryDense, Sign

    no_binarize = keras.Sequential([keras.Input((6,)), BinaryDense(4), Sign(), BinaryDense(3)])
    with pytest.raises(UnsupportedLayerError, match="integer inputs"):
        network_from_keras(no_binarize)
    lone_sign = keras.Sequential([keras.Input((6,)), BinarizeInput(), keras.layers.Dense(4),
                                  Sign(), BinaryDense(3)])
    with pytest.raises(UnsupportedLayerError, match="Sign must follow"):
        network_from_keras(lone_sign)
    # a real output bias that float32 rounds away (classes tie in Keras, not in exact
    # arithmetic) is refused by the encodings
    rng = np.random.default_rng(51)
    km = bnn_from_arrays([{"weight": rng.normal(size=(6, 4))}],
                         {"weight": np.ones((4, 2)), "bias": np.array([0.0, 1e-9])},
                         input_shape=(6,))
    with pytest.raises(UnsupportedLayerError, match="tie in float32"):
        bnn_layers(load_model(km).network)
    # a one-class output
    km = bnn_from_arrays([{"weight": rng.normal(size=(6, 4))}], {"weight": rng.normal(size=(4, 1))},
                         input_shape=(6,))
    with pytest.raises(UnsupportedLayerError, match="two output classes"):
        bnn_layers(load_model(km).network)


# ---------------------------------------------------------------------------------------------
# 8. the command line

def _cli(capsys, *argv):
    from verify.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def bnn_small():
    return load_model("bnn-small")


def test_cli_certify(capsys, bnn_small, tmp_path):
    from verify.data import read_image

    png = EXAMPLES / "digit-7.png"
    code, out, _ = _cli(capsys, "certify", png, "--model", "bnn-small", "--pixels", 1, "--json",
                        "--out", tmp_path)
    assert code == 0
    result = json.loads(out)
    image = read_image(png).ravel()
    label = int(bnn_small.reference_labels(image)[0])
    # brute force: every single flip
    flipped = np.repeat(image[None], image.size + 1, axis=0)
    idx = np.arange(image.size)
    flipped[idx, idx] = np.where(image > 0.5, 0.0, 1.0)
    any_change = bool(np.any(bnn_small.reference_labels(flipped) != label))
    assert result["status"] == ("counterexample" if any_change else "verified")
    assert result["original_label"] == label and result["encoding"] == "cnf"
    assert result["backend"] == DEFAULT_SAT and result["flips"] == 1
    assert (tmp_path / "result.json").is_file()
    assert json.loads((tmp_path / "result.json").read_text())["status"] == result["status"]
    # a BNN budget given as eps is a one-line error, not a traceback
    code, _, err = _cli(capsys, "certify", png, "--model", "bnn-small", "--eps", "0.1")
    assert code == 1 and err.startswith("verify: error:") and "pixels" in err
    assert "Traceback" not in err


def test_cli_min_adv_card(capsys, bnn_small, tmp_path):
    from verify.data import read_image

    png = EXAMPLES / "digit-7.png"
    code, out, _ = _cli(capsys, "min-adv-card", png, "--model", "bnn-small", "--encoding", "ip",
                        "--json", "--time-limit", 60, "--out", tmp_path)
    assert code == 0
    result = json.loads(out)
    image = read_image(png).ravel()
    assert result["status"] == "optimal" and result["minimal"] is True
    assert result["norm"] == "card" and result["encoding"] == "ip"
    assert result["original_label"] == int(bnn_small.reference_labels(image)[0])
    assert result["adversarial_label"] != result["original_label"]
    assert result["objective"] == result["bound"] == len(result["changed_pixels"])
    assert json.loads((tmp_path / "result.json").read_text())["objective"] == result["objective"]
    adversarial = np.load(tmp_path / "adversarial.npy")
    assert adversarial.shape == tuple(bnn_small.input_shape)
    moved = adversarial.ravel() != image.astype(np.float32)
    assert np.flatnonzero(moved).tolist() == result["changed_pixels"]
    assert np.array_equal(adversarial.ravel()[moved], np.where(image[moved] > 0.5, 0.0, 1.0))
    assert int(bnn_small.reference_labels(adversarial)[0]) == result["adversarial_label"]
    # one flip fewer cannot change the label
    fewer = certify(bnn_small, image, pixels=int(result["objective"]) - 1, encoding="ip",
                    time_limit=60)
    assert fewer.status == "verified"


# ---------------------------------------------------------------------------------------------
# edge cases found while writing these tests

def test_binarize_threshold_agrees_with_keras_in_float32(cases):
    case = cases[0]
    # an input whose label depends on pixel p, with p just above 0.5 in float64 only
    for c in range(2 ** case.n):
        p = next((p for p in range(case.n) if not (c >> p) & 1
                  and case.labels[c] != case.labels[c | (1 << p)]), None)
        if p is not None:
            break
    x = case.inputs[c].astype(np.float64)
    x[p] = 0.5 + 1e-12            # above 0.5 in float64, equal to it in float32 (Keras)
    keras_label = int(case.model.reference_labels(x)[0])
    assert keras_label == case.labels[c]
    r = certify(case.model, x, pixels=0)          # zero flips: nothing can change
    assert r.status == "verified", (r.status, r.stats.get("rejected"))
    assert case.model.network.label(x) == keras_label


def test_bnn_without_hidden_blocks():
    rng = np.random.default_rng(61)
    n = 6
    km = bnn_from_arrays([], {"weight": rng.normal(size=(n, 3))}, input_shape=(n,))
    model = load_model(km)
    bnn_layers(model.network)                      # the encodings themselves accept it
    x = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    assert certify(model, x, pixels=0).status == "verified"
    assert certify(model, x, pixels=1, encoding="cnf").status in ("verified", "counterexample")


def test_tiny_negative_weights_are_minus_one():
    # signs are taken before any float32 rounding: -1e-50 is negative, so -1
    weight = np.array([[-1e-50, 2.0], [0.0, -3.0]])
    km = bnn_from_arrays([], {"weight": weight}, input_shape=(2,))
    kernel = np.asarray(km.get_layer("binary_dense_out").get_weights()[0])
    assert np.array_equal(kernel, [[-1.0, 1.0], [1.0, -1.0]])
