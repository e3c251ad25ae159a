"""Minimal adversarial examples: optimal against brute force on tiny networks (all norms,
targeted and untargeted, several backends), agreement across backends on a bundled model,
validation by Keras, and clear errors for bad input."""
from __future__ import annotations

import numpy as np
import pytest

from brute_force import brute_force_min
from model_zoo import tiny_dense
from needs import require_backend
from verify.backends import get_backend
from verify.errors import BackendUnavailableError, InvalidInputError, ProblemTooLargeError
from verify.models import load_model
from verify.tasks.adversarial import min_adversarial

NORM_BACKENDS = {"card": ["highs", "scip", "cplex"], "l1": ["highs", "scip", "cplex"],
                 "linf": ["highs", "scip", "cplex"], "l2": ["scip", "cplex"]}
CASES = [(norm, b) for norm, bs in NORM_BACKENDS.items() for b in bs]


@pytest.fixture(scope="module")
def tiny():
    """Two tiny dense nets (4 inputs; 3 logits of which 2 labels occur on [0, 1]^4, and 1 logit)
    and a few inputs each."""
    rng = np.random.default_rng(11)
    models = [load_model(tiny_dense(4, [3, 3], 3, seed=3)), load_model(tiny_dense(4, [4], 1, seed=3))]
    return [(m, rng.random((2, 4))) for m in models]


def _close(a, b):
    return abs(a - b) <= 2e-4 * max(1.0, abs(b)) + 1e-6


@pytest.mark.parametrize("norm,backend", CASES)
def test_untargeted_matches_brute_force(tiny, norm, backend):
    require_backend(backend)
    for model, inputs in tiny:
        weights = model.keras.get_weights()
        for x in inputs:
            label = model.label(x)
            want = brute_force_min(weights, x, norm, label)
            got = min_adversarial(model, x, norm=norm, backend=backend)
            assert got.status == "optimal" and got.minimal
            assert _close(got.objective, want), (norm, backend, got.objective, want)
            assert got.bound <= got.objective + 1e-9
            assert model.reference_labels(got.adversarial)[0] != label


@pytest.mark.parametrize("norm,backend", CASES)
def test_targeted_matches_brute_force(tiny, norm, backend):
    require_backend(backend)
    model, inputs = tiny[0]
    weights = model.keras.get_weights()
    for x in inputs:
        label = model.label(x)
        for target in (t for t in range(3) if t != label):
            want = brute_force_min(weights, x, norm, label, target)
            got = min_adversarial(model, x, norm=norm, target=target, backend=backend)
            if np.isinf(want):
                assert got.status == "infeasible" and got.adversarial is None
                continue
            assert got.status == "optimal" and _close(got.objective, want), (norm, target, got.objective, want)
            assert got.adversarial_label == target == model.reference_labels(got.adversarial)[0]


@pytest.mark.parametrize("norm", ["card", "linf", "l1"])
def test_plain_formulation_agrees(tiny, norm):
    """Without the heuristic bound and restricted region (seed-style), the same optimum."""
    model, inputs = tiny[0]
    x = inputs[0]
    fast = min_adversarial(model, x, norm=norm)
    plain = min_adversarial(model, x, norm=norm, use_heuristic=False)
    assert plain.status == fast.status == "optimal" and _close(plain.objective, fast.objective)


def test_every_target(tiny):
    model, inputs = tiny[0]
    results = min_adversarial(model, inputs[0], norm="linf", target="all")
    label = model.label(inputs[0])
    assert [r.target for r in results] == [t for t in range(3) if t != label]
    untargeted = min_adversarial(model, inputs[0], norm="linf")
    feasible = [r.objective for r in results if r.objective is not None]
    assert _close(min(feasible), untargeted.objective)


@pytest.mark.parametrize("norm,backends", [("card", ["highs", "scip"]), ("linf", ["highs", "scip"]),
                                           ("l1", ["highs", "scip"])])
def test_cross_backend_on_bundled_model(bundled, digits, norm, backends):
    x = digits[0][1]
    results = [min_adversarial(bundled["twoclass"], x, norm=norm, backend=b) for b in backends]
    assert all(r.status == "optimal" for r in results)
    assert all(_close(r.objective, results[0].objective) for r in results)


def test_result_contract(bundled, digits):
    r = min_adversarial(bundled["multiclass"], digits[0][2], norm="card")
    d = r.to_dict()
    for key in ("task", "model", "backend", "status", "objective", "bound", "original_label",
                "adversarial_label", "target", "time_s"):
        assert key in d
    assert r.adversarial.shape == (28, 28, 1) and r.adversarial.min() >= 0 and r.adversarial.max() <= 1
    unchanged = r.perturbation == 0
    assert np.all(r.adversarial[unchanged] == r.image[unchanged])     # exactly equal
    assert np.count_nonzero(r.perturbation) == r.objective


def test_pixel_levels_make_the_png_adversarial(bundled, digits, tmp_path):
    from verify.data import read_image, write_png

    model = bundled["multiclass"]
    r = min_adversarial(model, digits[0][2], norm="linf", pixel_levels=256)
    assert r.status == "optimal"
    assert np.allclose(r.adversarial * 255, np.round(r.adversarial * 255), atol=1e-9)
    png = read_image(write_png(r.adversarial, tmp_path / "adv.png"))
    assert model.reference_labels(png)[0] == r.adversarial_label != r.original_label
    plain = min_adversarial(model, digits[0][2], norm="linf")
    assert plain.objective <= r.objective + 1e-12        # the 8-bit optimum can only be larger
    assert "rounded_8bit_adversarial" in plain.stats


def test_misclassified_image_still_works(bundled):
    from verify.data import test_digits

    x, y = test_digits(200)
    model = bundled["multiclass"]
    wrong = np.flatnonzero(model.network.predict_label(x) != y)[0]
    r = min_adversarial(model, x[wrong], norm="card")
    assert r.status == "optimal" and r.original_label != y[wrong]
    assert r.adversarial_label != r.original_label


def test_bad_targets(bundled, digits):
    model = bundled["multiclass"]
    label = model.label(digits[0][2])
    with pytest.raises(InvalidInputError, match="already predicts"):
        min_adversarial(model, digits[0][2], target=label)
    with pytest.raises(InvalidInputError, match="0..9"):
        min_adversarial(model, digits[0][2], target=12)
    with pytest.raises(InvalidInputError, match="'all'"):
        min_adversarial(model, digits[0][2], target="every")
    with pytest.raises(InvalidInputError, match="784"):
        min_adversarial(model, np.zeros(100))


def test_missing_and_size_capped_solvers(bundled, digits):
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        min_adversarial(bundled["multiclass"], digits[0][2], backend="gurobi")
    absent = get_backend("pyomo:glpk")
    if not absent.available():
        with pytest.raises(BackendUnavailableError, match="not installed"):
            min_adversarial(bundled["multiclass"], digits[0][2], backend="pyomo:glpk")
    with pytest.raises(BackendUnavailableError, match="scip"):
        min_adversarial(bundled["multiclass"], digits[0][2], norm="l2", backend="highs")
    if get_backend("cplex").available():
        with pytest.raises(ProblemTooLargeError, match="1000"):
            min_adversarial(bundled["cnn"], digits[0][2], norm="linf", backend="cplex",
                            use_heuristic=False)


@pytest.mark.parametrize("norm", ["card", "linf"])
def test_time_limit_returns_best_example_and_proven_bound(bundled, digits, norm):
    """With no time for the solver, the answer is the heuristic's example, labelled time_limit,
    with a proven lower bound that is not above it — never called minimal."""
    model = bundled["multiclass-large"]
    x = digits[0][2]
    r = min_adversarial(model, x, norm=norm, time_limit=1e-3)
    assert r.status in ("time_limit", "optimal")
    if r.status == "time_limit":
        assert not r.minimal and r.adversarial is not None
        assert model.reference_labels(r.adversarial)[0] != r.original_label
        assert r.bound is None or r.bound <= r.objective
        assert r.to_dict()["minimal"] is False
