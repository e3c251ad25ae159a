"""Robustness certificates agree with the exact minimal distance: verified below it,
counterexample (re-checked by Keras, inside the budget) above it."""
from __future__ import annotations

import numpy as np
import pytest

from model_zoo import tiny_dense
from verify.errors import InvalidInputError
from verify.models import load_model
from verify.tasks.adversarial import min_adversarial
from verify.tasks.robustness import certify


@pytest.fixture(scope="module")
def tiny():
    return load_model(tiny_dense(4, [3, 3], 3, seed=3)), np.random.default_rng(11).random((2, 4))


@pytest.mark.parametrize("norm", ["linf", "l1", "l2", "card"])
def test_certify_brackets_the_minimum(tiny, norm):
    model, inputs = tiny
    for x in inputs:
        best = min_adversarial(model, x, norm=norm)
        if best.objective is None:
            continue
        radius = best.objective if norm != "l2" else np.sqrt(best.objective)
        if norm == "card":
            below = certify(model, x, pixels=int(best.objective) - 1)
            above = certify(model, x, pixels=int(best.objective))
        else:
            kw = {"norm": norm}
            below = certify(model, x, eps=0.9 * radius, **kw)
            above = certify(model, x, eps=1.1 * radius, **kw)
        assert below.status == "verified", below
        assert above.status == "counterexample", above
        ce = above.counterexample.ravel()
        assert model.reference_labels(ce)[0] != model.label(x)
        d = ce - x
        size = {"linf": np.abs(d).max(), "l1": np.abs(d).sum(), "l2": np.linalg.norm(d),
                "card": np.count_nonzero(d)}[norm]
        assert size <= (1.1 * radius if norm != "card" else best.objective) + 1e-9


def test_solver_path_is_used_when_attacks_and_bounds_do_not_settle(bundled, digits):
    """Just below the minimal L∞ distance of a bundled model, the proof needs the MIP."""
    model, x = bundled["twoclass"], digits[0][1]
    best = min_adversarial(model, x, norm="linf")
    r = certify(model, x, eps=0.999 * best.objective)
    assert r.status == "verified" and r.method in ("bounds", "solver")
    r = certify(model, x, eps=1.001 * best.objective)
    assert r.status == "counterexample"


def test_certify_needs_one_budget(bundled, digits):
    with pytest.raises(InvalidInputError, match="exactly one budget"):
        certify(bundled["multiclass"], digits[0][0])
    with pytest.raises(InvalidInputError, match="exactly one budget"):
        certify(bundled["multiclass"], digits[0][0], eps=0.1, pixels=3)
