"""BNNs with integer inputs (``IntegerInput``): the first block reads ``round(levels * x)``.

The tiny networks here read 5 inputs of 0..4 (``input_levels=4``), so all 5^5 inputs are
labelled once by the Keras model and every question — certify within ±e levels or k changed
pixels, the fewest changed pixels, the smallest L1 / L∞ / L2 change, a subset-minimal
explanation — is answered by enumeration and compared with every encoding and backend.
Then the bundled ``bnn-int8`` (784-200-100-10, 8-bit inputs) against Keras on 1,000 digits,
and a rebuild from arrays in PyTorch's layout against a float64 numpy forward pass.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

from needs import require_backend
from verify import certify, explain, min_adversarial
from verify.backends import Status, get_backend
from verify.encodings.bnn import IntegerRegion, bnn_formula, bnn_layers, to_problem
from verify.errors import InvalidInputError, UnsupportedLayerError
from verify.layers import bnn_from_arrays
from verify.models import LoadedModel, load_model
from verify.network import Affine, Quantize, SignBlock
from verify.tasks.bnn_int import grey_levels

#: (encoding, backend) pairs every exact task is checked with
PAIRS = [("cnf", "sat:minicard"), ("cnf", "cpsat"), ("mip", "highs"), ("ip", "highs"),
         ("ip", "scip"), ("mip", "cplex")]
PAIR_IDS = [f"{e}-{b}" for e, b in PAIRS]
LEVELS = 4
N = 5


def _tiny_spec(seed: int) -> tuple[list[dict], dict]:
    rng = np.random.default_rng(seed)
    units = [6, 4]
    signs = np.where(rng.random(units[0]) < 0.5, -1.0, 1.0)
    first = {"weight": rng.normal(size=(N, units[0])), "bias": rng.normal(0.0, 0.5, units[0]),
             "gamma": signs * rng.uniform(0.5, 2.0, units[0]), "beta": rng.normal(0.0, 0.3, units[0]),
             "mean": rng.normal(0.0, 2.5, units[0]), "variance": rng.uniform(0.5, 4.0, units[0])}
    second = {"weight": rng.normal(size=(units[0], units[1]))}
    return [first, second], {"weight": rng.normal(size=(units[1], 3))}


@dataclass
class Case:
    """A tiny integer-input BNN with every input labelled by Keras."""

    model: LoadedModel
    grid: np.ndarray          # (5^5, 5) int64 values
    labels: np.ndarray
    images: list = field(default_factory=list)     # integer centers

    def ok(self, c, target=None, label=None) -> np.ndarray:
        label = self.label(c) if label is None else label
        return self.labels == target if target is not None else self.labels != label

    def label(self, c) -> int:
        return int(self.labels[self.code(c)])

    @staticmethod
    def code(c) -> int:
        return int(np.asarray(c, dtype=np.int64) @ (LEVELS + 1) ** np.arange(N))

    def dist(self, c, norm: str) -> np.ndarray:
        d = self.grid - np.asarray(c)[None]
        return {"card": np.count_nonzero(d, axis=1), "l1": np.abs(d).sum(axis=1),
                "linf": np.abs(d).max(axis=1), "l2": (d * d).sum(axis=1)}[norm]

    def minimum(self, c, norm: str, target=None) -> int | None:
        ok = self.ok(c, target)
        return int(self.dist(c, norm)[ok].min()) if ok.any() else None

    def robust(self, c, fixed, e: int | None = None) -> bool:
        """No label change with the pixels in ``fixed`` kept and the others within ±e."""
        d = self.grid - np.asarray(c)[None]
        inside = np.all(d[:, np.asarray(fixed, dtype=bool)] == 0, axis=1)
        if e is not None:
            inside &= np.abs(d).max(axis=1) <= e
        return not np.any(inside & self.ok(c))


def _build(seed: int) -> Case:
    blocks, output = _tiny_spec(seed)
    km = bnn_from_arrays(blocks, output, input_shape=(N,), input_mode="integer",
                         input_levels=LEVELS, name=f"tiny_int_{seed}")
    model = load_model(km)
    grid = np.array(list(itertools.product(range(LEVELS + 1), repeat=N)))[:, ::-1].copy()
    labels = np.asarray(km.predict((grid / LEVELS).astype(np.float32), verbose=0)).argmax(axis=1)
    case = Case(model, grid, labels)
    rng = np.random.default_rng(seed + 1)
    sample = grid[rng.choice(len(grid), 40, replace=False)]
    robust = max(sample.tolist(), key=lambda c: case.minimum(c, "card") or N + 1)
    case.images = [np.array(robust), sample[0], sample[1]]
    return case


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return [_build(7), _build(8)]


def _image(c) -> np.ndarray:
    return np.asarray(c, dtype=np.float64) / LEVELS


def _values(x) -> np.ndarray:
    return np.round(np.float32(LEVELS) * np.asarray(x, np.float32).ravel()).astype(np.int64)


def _need(backend: str) -> None:
    require_backend(backend)


def test_cases_cover_the_interesting_situations(cases):
    """Guards the fixtures: several labels, robust centers, minima above 1."""
    for case in cases:
        assert len(set(case.labels.tolist())) >= 2
        assert [type(l) for l in case.model.network.layers] == [Quantize, SignBlock, SignBlock,
                                                                  Affine]
        assert max(case.minimum(c, "card") or 0 for c in case.images) >= 2
        assert max(case.minimum(c, "linf") or 0 for c in case.images) >= 2
    assert np.array_equal(cases[0].model.network.predict_label(cases[0].grid / LEVELS),
                          cases[0].labels)


def test_grey_levels_rule():
    assert grey_levels(1 / 255) == 1 and grey_levels(2 / 255) == 2 and grey_levels(0.01) == 2
    assert grey_levels(0.0) == 0 and grey_levels(1.0) == 255 and grey_levels(0.5, 4) == 2
    with pytest.raises(InvalidInputError):
        grey_levels(-0.1)


def test_integer_image_round_trips_every_level():
    """value / 255 is read back as value by round(255 x) in float32, for every value."""
    v = np.arange(256)
    x = (v.astype(np.float64) / 255.0).astype(np.float32)
    assert np.array_equal(np.round(np.float32(255) * x), v)


def _solve(formula, encoding, backend, objective=None):
    if encoding == "cnf":
        res = get_backend(backend).solve_formula(formula)
        values = formula.bits_from(res.x) if res.x is not None else None
    else:
        res = get_backend(backend).solve(to_problem(formula, encoding, objective=objective))
        values = formula.bits_from_columns(res.x) if res.x is not None else None
    assert res.status in (Status.OPTIMAL, Status.INFEASIBLE), res.status
    return res, values


@pytest.mark.parametrize("encoding,backend", PAIRS, ids=PAIR_IDS)
def test_formula_matches_brute_force(cases, encoding, backend):
    """Every region (±e boxes, k changed pixels, L1 budgets, some pixels fixed) and target:
    satisfiable exactly when brute force finds an example there, and the example is one."""
    _need(backend)
    for case in cases:
        net = case.model.network
        parts = bnn_layers(net, allow_integer=True)
        for c in case.images:
            c = np.asarray(c)
            label = case.label(c)
            for target in [None] + [t for t in range(3) if t != label]:
                ok = case.ok(c, target)
                d = case.grid - c[None]
                for kind, r in [("linf", 1), ("linf", 2), ("card", 1), ("card", 2),
                                ("l1", 2), ("l1", 3)]:
                    if kind == "linf":
                        region = IntegerRegion(np.maximum(c - r, 0), np.minimum(c + r, LEVELS))
                        inside = np.abs(d).max(axis=1) <= r
                    elif kind == "card":
                        region = IntegerRegion(np.zeros(N, int), np.full(N, LEVELS), r, "card")
                        inside = np.count_nonzero(d, axis=1) <= r
                    else:
                        region = IntegerRegion(np.zeros(N, int), np.full(N, LEVELS), r, "l1")
                        inside = np.abs(d).sum(axis=1) <= r
                    free = np.array([True, True, False, True, True])
                    for mask in (None, free):
                        want = inside & ok
                        if mask is not None:
                            want &= d[:, 2] == 0
                        formula = bnn_formula(net, _image(c), mask, None, label, target, parts,
                                              region)
                        res, values = _solve(formula, encoding, backend)
                        assert (values is not None) == bool(want.any()), (kind, r, target, mask)
                        if values is not None:
                            assert want[case.code(values)], (kind, r, target, values)


@pytest.mark.parametrize("encoding,backend", PAIRS, ids=PAIR_IDS)
def test_certify_matches_brute_force(cases, encoding, backend):
    _need(backend)
    for case in cases:
        for c in case.images:
            for e in (1, 2):
                want = not case.robust(c, np.zeros(N, bool), e)
                r = certify(case.model, _image(c), eps=e / LEVELS, encoding=encoding,
                            backend=backend)
                assert r.status == ("counterexample" if want else "verified")
                if want:
                    v = _values(r.counterexample)
                    assert np.abs(v - c).max() <= e and case.ok(c)[case.code(v)]
            for k in (1, 2):
                want = (case.minimum(c, "card") or N + 1) <= k
                r = certify(case.model, _image(c), pixels=k, encoding=encoding, backend=backend)
                assert r.status == ("counterexample" if want else "verified")
                if want:
                    v = _values(r.counterexample)
                    assert np.count_nonzero(v - c) <= k and case.ok(c)[case.code(v)]


@pytest.mark.parametrize("encoding,backend", PAIRS, ids=PAIR_IDS)
def test_min_distances_match_brute_force(cases, encoding, backend):
    _need(backend)
    for case in cases:
        for c in case.images:
            label = case.label(c)
            for norm in ("card", "l1", "linf"):
                for target in (None, (label + 1) % 3):
                    want = case.minimum(c, norm, target)
                    r = min_adversarial(case.model, _image(c), norm=norm, target=target,
                                        encoding=encoding, backend=backend)
                    if want is None:
                        assert r.status == "infeasible" and r.adversarial is None
                        continue
                    assert r.status == "optimal", (norm, target, r.status)
                    assert r.objective == want and r.bound == want, (norm, target)
                    v = _values(r.adversarial)
                    assert case.ok(c, target)[case.code(v)]
                    assert case.dist(c, norm)[case.code(v)] == want
                    if norm != "card":
                        assert r.stats["objective_01"] == pytest.approx(want / LEVELS)


def test_directed_values_find_labelled_pruned_examples_no_smaller_than_the_minimum(cases):
    """The smooth-stand-in searches on integer inputs: every example they return is labelled
    as wanted (brute-force grid = Keras), keeps every change it needs, and is never below the
    brute-force minimum; where one changed pixel suffices they find one."""
    from verify.tasks.bnn import BnnTask
    from verify.tasks.bnn_int import directed_values, radius_region

    found = 0
    for case in cases:
        rng = np.random.default_rng(3)
        centres = case.images + list(case.grid[rng.choice(len(case.grid), 12, replace=False)])
        for c in centres:
            label = case.label(c)
            for target in (None, (label + 1) % 3, (label + 2) % 3):
                task = BnnTask.create(case.model, _image(c), label, target, "mip", None, None, None)
                v = directed_values(task, radius_region(task, "card", N), N)
                want = case.minimum(c, "card", target)
                if v is None:
                    assert want is None or want > 1
                    continue
                found += 1
                assert case.ok(c, target, label)[case.code(v)]
                assert np.count_nonzero(v != c) >= want
                for p in np.flatnonzero(v != c):              # every change is needed
                    trial = v.copy()
                    trial[p] = c[p]
                    assert not case.ok(c, target, label)[case.code(trial)]
    assert found >= 20


def test_min_l2_matches_brute_force(cases):
    _need("scip")
    for case in cases:
        for c in case.images:
            want = case.minimum(c, "l2")
            r = min_adversarial(case.model, _image(c), norm="l2")
            assert r.status == "optimal" and r.objective == want and r.backend == "scip"
            v = _values(r.adversarial)
            assert case.ok(c)[case.code(v)] and case.dist(c, "l2")[case.code(v)] == want
    with pytest.raises(InvalidInputError, match="scip"):
        min_adversarial(cases[0].model, _image(cases[0].images[0]), norm="l2", encoding="cnf")


def _check_explanation(case: Case, c, r, e: int | None) -> None:
    fixed = np.zeros(N, bool)
    fixed[np.asarray(r.pixels, dtype=int)] = True
    assert r.status == "minimal"
    assert case.robust(c, fixed, e)
    for i in np.flatnonzero(fixed):
        less = fixed.copy()
        less[i] = False
        assert not case.robust(c, less, e), f"pixel {i} is not needed"


@pytest.mark.parametrize("encoding,backend", PAIRS, ids=PAIR_IDS)
def test_explain_matches_brute_force(cases, encoding, backend):
    _need(backend)
    for case in cases:
        for c in case.images[:2]:
            for e in (None, 1):
                r = explain(case.model, _image(c), eps=None if e is None else e / LEVELS,
                            encoding=encoding, backend=backend)
                _check_explanation(case, c, r, e)


def test_binarised_steps_refuse_integer_inputs(cases):
    net = cases[0].model.network
    with pytest.raises(UnsupportedLayerError, match="IntegerInput"):
        bnn_layers(net)
    assert bnn_layers(net, allow_integer=True).integer


def test_formula_backends_with_a_time_limit_warn_of_overruns(cases):
    """MiniCard (and the portfolio) on an integer-input BNN cannot keep a time limit: a
    warning says so; the MIP default and runs without a limit say nothing."""
    import warnings

    from verify.tasks.bnn import BnnTask
    model, c = cases[0].model, cases[0].images[0]
    x = _image(c)
    with pytest.warns(UserWarning, match="past the time limit"):
        BnnTask.create(model, x, model.label(x), None, "cnf", "sat:minicard", 5.0, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BnnTask.create(model, x, model.label(x), None, "mip", None, 5.0, None)
        BnnTask.create(model, x, model.label(x), None, "cnf", "sat:minicard", None, None)


# ---------------------------------------------------------------------------------------------
# the bundled bnn-int8

@pytest.fixture(scope="module")
def bnn_int8():
    return load_model("bnn-int8")


def test_bnn_int8_ir_equals_keras_on_1000_digits(bnn_int8):
    from verify.data import load_mnist
    x = load_mnist("bundled").x_test[:1000].astype(np.float32)[..., None]
    net = bnn_int8.network
    assert [type(l) for l in net.layers] == [Quantize, SignBlock, SignBlock, Affine]
    assert [l.n_out for l in net.layers[1:3]] == [200, 100]
    keras_logits = np.asarray(bnn_int8.keras.predict(x, verbose=0), dtype=np.float64)
    assert np.array_equal(net.forward(x), keras_logits)


def test_bnn_int8_certify_on_a_digit(bnn_int8):
    """One exact question on the real network, three ways (a fast one: ±1 grey level); the
    default is the MIP on HiGHS, a SAT backend alone means the cnf encoding."""
    from verify.data import load_mnist
    x = load_mnist("bundled").x_test[0].astype(np.float64)[..., None]
    a = certify(bnn_int8, x, eps=1 / 255, backend="sat:minicard", time_limit=60)
    b = certify(bnn_int8, x, eps=1 / 255, encoding="ip", backend="highs", time_limit=60)
    c = certify(bnn_int8, x, eps=1 / 255, time_limit=60)
    assert a.stats["encoding"] == "cnf" and (c.stats["encoding"], c.backend) == ("mip", "highs")
    assert a.status == b.status == c.status and a.status in ("verified", "counterexample")


def test_cli_on_bnn_int8(capsys, tmp_path):
    """The CLI: certify --eps in grey levels, and min-adv-linf's result in grey levels and in
    [0, 1] units (a short time limit: the bound, or the minimum, must be consistent)."""
    import json
    from pathlib import Path

    from verify.cli import main
    from verify.data import read_image

    png = Path(__file__).resolve().parents[1] / "examples" / "images" / "digit-7.png"
    assert main(["certify", str(png), "--model", "bnn-int8", "--eps", "0.008", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["grey_levels"] == 2 and "±2 grey levels" in r["region"]
    assert r["status"] in ("verified", "counterexample")
    assert main(["min-adv-linf", str(png), "--model", "bnn-int8", "--time-limit", "5", "--json",
                 "--out", str(tmp_path)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["unit"] == "grey levels" and r["bound"] >= 1 and r["bound"] == int(r["bound"])
    assert r["bound_01"] == pytest.approx(r["bound"] / 255)
    if r["objective"] is not None:
        x = read_image(png).ravel()
        adv = np.load(tmp_path / "adversarial.npy").ravel()
        d = np.abs(_values_255(adv) - _values_255(x)).max()
        assert d == r["objective"] >= r["bound"]
    code = main(["certify", str(png), "--model", "bnn-int8", "--eps", "0.1", "--norm", "l2"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("verify: error:") and "linf or l1" in err


def _values_255(x) -> np.ndarray:
    return np.round(np.float32(255) * np.asarray(x, np.float32).ravel()).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# a BNN trained in PyTorch, rebuilt from its arrays

def test_pytorch_layout_rebuild_matches_numpy():
    """Arrays as PyTorch stores them (``nn.Linear.weight``: units × inputs; BatchNorm1d's
    weight, bias, running_mean, running_var, eps 1e-5) → ``bnn_from_arrays`` (transposed,
    ``input_mode="integer"``) → the same labels as a float64 numpy forward pass."""
    rng = np.random.default_rng(5)
    sizes = [30, 12, 8, 4]
    torch_eps = 1e-5
    layers = []
    for k in range(2):
        n_in, n_out = sizes[k], sizes[k + 1]
        scale = 255.0 * np.sqrt(n_in) if k == 0 else np.sqrt(n_in)
        layers.append({"weight": rng.normal(size=(n_out, n_in)),            # PyTorch layout
                       "bn_weight": rng.uniform(0.5, 2.0, n_out) * np.where(rng.random(n_out) < 0.3, -1, 1),
                       "bn_bias": rng.normal(0.0, 0.5, n_out),
                       "running_mean": rng.normal(0.0, 0.3 * scale, n_out),
                       "running_var": rng.uniform(0.5, 2.0, n_out) * scale ** 2})
    out_weight = rng.normal(size=(sizes[3], sizes[2]))
    blocks = [{"weight": l["weight"].T, "gamma": l["bn_weight"], "beta": l["bn_bias"],
               "mean": l["running_mean"], "variance": l["running_var"]} for l in layers]
    km = bnn_from_arrays(blocks, {"weight": out_weight.T}, input_shape=(sizes[0],),
                         input_mode="integer", batchnorm_epsilon=torch_eps)
    values = rng.integers(0, 256, size=(2000, sizes[0]))
    x = (values / 255.0).astype(np.float32)

    h = values.astype(np.float64)                   # the numpy reference, in float64
    near = np.zeros(len(h), dtype=bool)
    for l in layers:
        z = h @ np.where(l["weight"] >= 0, 1.0, -1.0).T
        z = (z - l["running_mean"]) / np.sqrt(l["running_var"] + torch_eps) * l["bn_weight"] + l["bn_bias"]
        near |= np.any(np.abs(z) < 1e-4, axis=1)
        h = np.where(z >= 0, 1.0, -1.0)
    want = h @ np.where(out_weight >= 0, 1.0, -1.0).T

    model = load_model(km)
    got_ir = model.network.forward(x)
    got_keras = np.asarray(km.predict(x, verbose=0), dtype=np.float64)
    assert near.mean() < 0.01
    assert np.array_equal(got_ir, got_keras)
    assert np.array_equal(got_ir[~near], want[~near])
    assert len(set(want.argmax(axis=1).tolist())) >= 3
