"""The MIP encoding is exact: with the input fixed to a digit, the only feasible logits are
the network's own, on every backend; queries are well-formed for every task."""
from __future__ import annotations

import numpy as np
import pytest

from model_zoo import tiny_cnn, tiny_dense
from needs import require_backend
from verify.backends import SolveOptions, get_backend, list_backends
from verify.bounds import compute_bounds
from verify.encodings.query import build_query
from verify.encodings.relu import encode_network
from verify.errors import BackendUnavailableError, ProblemTooLargeError
from verify.keras_io import network_from_keras
from verify.problem import ProblemBuilder
from verify.regions import Box

BACKENDS = [b.name for b in list_backends() if "milp" in b.capabilities]


def _fixed_input_problem(net, x):
    """Encode over the full box (so ReLUs are unstable and binaries present), then fix the
    input columns to ``x`` by their bounds."""
    net = net.merged_affine()
    region = Box(np.full(net.num_inputs, 0.5))
    bounds = compute_bounds(net, region, ("interval", "symbolic"))
    builder = ProblemBuilder()
    enc = encode_network(builder, net, region, bounds)
    problem = builder.build()
    problem.lb[enc.input_cols] = x[enc.free_idx]
    problem.ub[enc.input_cols] = x[enc.free_idx]
    return problem, enc


def _check_logits(backend_name, net, x):
    backend = require_backend(backend_name)
    problem, enc = _fixed_input_problem(net, x)
    assert problem.num_integer > 0
    result = backend.solve(problem, SolveOptions(time_limit=60))
    assert result.status == "optimal", result
    got = enc.logits.evaluate(result.x)
    want = net.forward(x)[0]
    assert np.allclose(got, want, atol=1e-5 * (1 + np.abs(want).max())), (got, want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("maker", ["dense", "cnn-max-valid", "cnn-avg-same"])
def test_tiny_models_on_every_backend(backend, maker, rng):
    model = {"dense": lambda: tiny_dense(12, [6, 5], 3, seed=3),
             "cnn-max-valid": lambda: tiny_cnn(seed=4),
             "cnn-avg-same": lambda: tiny_cnn(seed=5, padding="same", pool="avg")}[maker]()
    net = network_from_keras(model)
    for _ in range(3):
        _check_logits(backend, net, rng.random(net.num_inputs))


@pytest.mark.parametrize("backend", ["highs", "scip", "cplex", "pyomo:appsi_highs"])
@pytest.mark.parametrize("name", ["twoclass", "multiclass", "cnn", "multiclass-large"])
def test_bundled_models_fixed_input(bundled, digits, backend, name):
    net, x = bundled[name].network, digits[0][2].ravel()
    problem, _ = _fixed_input_problem(net, x)
    if backend == "cplex" and max(problem.num_cols, problem.num_rows) > 1000:
        # the PyPI CPLEX Community Edition refuses it; the backend says so from CPLEX's error
        require_backend("cplex")
        with pytest.raises(ProblemTooLargeError, match="--backend highs"):
            get_backend("cplex").solve(problem)
        return
    _check_logits(backend, net, x)


def test_l2_query_on_highs_names_scip(bundled, digits):
    q = build_query(bundled["twoclass"].network, digits[0][0], norm="l2")
    assert q.problem.kind == "miqp"
    with pytest.raises(BackendUnavailableError, match="scip"):
        get_backend("highs").solve(q.problem)


@pytest.mark.parametrize("norm", ["card", "l1", "linf", "l2", None])
def test_query_kinds(bundled, digits, norm):
    q = build_query(bundled["multiclass"].network, digits[0][0], norm=norm)
    assert q.problem.kind == ("miqp" if norm == "l2" else "milp")
    assert q.problem.blocks["input"].size == 784


def test_fixed_pixels_are_constants(bundled, digits):
    x = digits[0][0].ravel()
    free = np.zeros(784, dtype=bool)
    free[:50] = True
    q = build_query(bundled["multiclass"].network, x, norm="card", region=Box(x, free=free))
    assert q.problem.blocks["input"].size == 50
