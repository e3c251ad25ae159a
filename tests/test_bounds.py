"""Bounds are sound: every neuron's value at random points of a region lies within them,
for every stage (interval, symbolic, LP), every region type and every bundled model.
Later stages are never looser than earlier ones."""
from __future__ import annotations

import numpy as np
import pytest

from verify.encodings.tightening import compute_bounds
from verify.network import ReLU
from verify.regions import Box, L0Ball, L1Ball, L2Ball, LinfBall

MODELS = ["twoclass", "multiclass", "cnn", "multiclass-large"]
STAGE_SETS = [("interval",), ("interval", "symbolic"), ("interval", "symbolic", "lp")]


def regions(center):
    free = np.zeros(center.size, dtype=bool)
    free[::3] = True
    return {
        "box": Box(center),
        "linf": LinfBall(center, 0.05),
        "l1": L1Ball(center, 3.0),
        "l2": L2Ball(center, 1.0),
        "l0": L0Ball(center, 10),
        "mask": Box(center, free=free),
        "linf-mask": LinfBall(center, 0.3, free=free),
    }


def _violation(bounds, values):
    worst = 0.0
    for v, lo, hi in zip(values, bounds.lower, bounds.upper):
        scale = 1 + np.maximum(np.abs(lo), np.abs(hi))
        worst = max(worst, float(np.max((lo - v) / scale)), float(np.max((v - hi) / scale)))
    return worst


@pytest.mark.parametrize("name", MODELS)
def test_bounds_sound_on_random_points(bundled, digits, name):
    net = bundled[name].network.merged_affine()
    rng = np.random.default_rng(7)
    center = digits[0][3].ravel()
    for kind, region in regions(center).items():
        points = region.sample(rng, 1000)
        assert np.all(points >= region.lo - 1e-12) and np.all(points <= region.hi + 1e-12)
        values = net.forward_all(points)
        previous = None
        for stages in STAGE_SETS:
            b = compute_bounds(net, region, stages)
            assert _violation(b, values) <= 1e-9, (name, kind, stages)
            if previous is not None:       # never looser than the stage before
                for lo0, hi0, lo1, hi1 in zip(previous.lower, previous.upper, b.lower, b.upper):
                    assert np.all(lo1 >= lo0 - 1e-9) and np.all(hi1 <= hi0 + 1e-9)
            previous = b


def test_region_samples_respect_budgets(digits):
    rng = np.random.default_rng(0)
    c = digits[0][0].ravel()
    r = regions(c)
    assert np.all(np.abs(r["l1"].sample(rng, 200) - c).sum(axis=1) <= 3.0 + 1e-9)
    assert np.all(np.linalg.norm(r["l2"].sample(rng, 200) - c, axis=1) <= 1.0 + 1e-9)
    assert np.all((r["l0"].sample(rng, 200) != c).sum(axis=1) <= 10)
    fixed = ~r["mask"].free
    assert np.all(r["mask"].sample(rng, 50)[:, fixed] == c[fixed])


@pytest.mark.parametrize("kind", ["box", "l1", "l0", "linf"])
def test_first_layer_bounds_are_exact(bundled, digits, kind):
    """Interval bounds of the first affine layer are attained by some point of the region
    (found by an LP/MIP over the region alone), i.e. they are exact, not just sound."""
    from verify.backends import get_backend
    from verify.problem import ProblemBuilder

    net = bundled["twoclass"].network
    region = regions(digits[0][5].ravel())[kind]
    b = compute_bounds(net, region, ("interval",))
    layer = net.layers[0]
    for neuron in [0, 7, 13]:
        for sign in (1.0, -1.0):
            builder = ProblemBuilder()
            idx = np.flatnonzero(region.free)
            cols = builder.add_vars("input", idx.size, region.lo[idx], region.hi[idx])
            region.encode(builder, cols, idx)
            builder.set_cost(cols, sign * layer.weight[neuron, idx])
            res = get_backend("highs").solve(builder.build())
            value = sign * res.objective + layer.weight[neuron, ~region.free] @ region.center[~region.free] \
                + layer.bias[neuron]
            expected = b.lower[1][neuron] if sign > 0 else b.upper[1][neuron]
            assert value == pytest.approx(expected, abs=1e-6)


def test_tightening_helps_somewhere(bundled, digits):
    """On a small L∞ ball the symbolic and LP stages really do stabilise ReLUs."""
    net = bundled["multiclass-large"].network
    b = compute_bounds(net, LinfBall(digits[0][1].ravel(), 0.03))
    unstable = [s.unstable for s in b.stages]
    assert unstable[0] > unstable[-1] and unstable == sorted(unstable, reverse=True)
    assert b.stages[0].relus == sum(l.out_shape[0] for l in net.layers if isinstance(l, ReLU))
