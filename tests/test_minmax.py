"""The MinMax attack (Hsu et al. 2022) and its penalty baseline on the bundled multiclass
network: they fool it on real digits, stay in the L∞ box and [0, 1], agree with Keras, are
deterministic, leave inputs alone at eps = 0; the max player's update and MINE's gradients
are checked numerically."""
from __future__ import annotations

import numpy as np
import pytest

from verify.attacks import minmax as mm
from verify.attacks.gradients import margins
from verify.data import load_mnist
from verify.errors import InvalidInputError
from verify.models import load_model

VARIANTS = [dict(mine=True), dict(mine=False), dict(variant="penalty")]


@pytest.fixture(scope="module")
def model():
    return load_model("multiclass")


@pytest.fixture(scope="module")
def digits(model):
    """Ten test digits the network classifies correctly: flat images and labels."""
    split = load_mnist("bundled")
    x = split.x_test[:40].reshape(40, -1)
    y = split.y_test[:40]
    ok = model.network.predict_label(x) == y
    return x[ok][:10], y[ok][:10]


def _in_box(adv, x, eps):
    tol = 1e-12
    return (np.all(np.abs(adv - x) <= eps + tol) and np.all(adv >= -tol)
            and np.all(adv <= 1 + tol))


@pytest.mark.parametrize("kw", VARIANTS, ids=["minmax-mine", "minmax", "penalty"])
def test_fools_the_network_inside_the_box(model, digits, kw):
    x, y = digits
    assert len(y) == 10
    adv = mm.minmax(model.network, x, y, 0.2, steps=100, seed=0, **kw)
    assert adv.shape == x.shape
    assert _in_box(adv, x, 0.2)
    success = margins(model.network, adv, y) >= mm.SUCCESS_MARGIN
    assert success.sum() >= 8
    # the IR's verdict is the Keras model's
    np.testing.assert_array_equal(model.reference_labels(adv) != y, success)


@pytest.mark.parametrize("kw", VARIANTS, ids=["minmax-mine", "minmax", "penalty"])
def test_deterministic_under_a_seed(model, digits, kw):
    x, y = digits
    first = mm.minmax(model.network, x, y, 0.1, steps=30, seed=7, **kw)
    second = mm.minmax(model.network, x, y, 0.1, steps=30, seed=7, **kw)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("kw", VARIANTS, ids=["minmax-mine", "minmax", "penalty"])
def test_eps_zero_changes_nothing(model, digits, kw):
    x, y = digits
    adv = mm.minmax(model.network, x, y, 0.0, steps=20, **kw)
    np.testing.assert_array_equal(adv, x)


@pytest.mark.parametrize("kw", VARIANTS, ids=["minmax-mine", "minmax", "penalty"])
def test_returns_the_least_distorted_success(model, digits, kw):
    """Longer runs extend shorter ones (same seed, same step), so the best point kept can
    only get closer; a digit that is already adversarial comes back unchanged."""
    x, y = digits
    short = mm.minmax(model.network, x, y, 0.2, steps=15, lr=0.01, **kw)
    long = mm.minmax(model.network, x, y, 0.2, steps=40, lr=0.01, **kw)
    ok_short = margins(model.network, short, y) >= mm.SUCCESS_MARGIN
    ok_long = margins(model.network, long, y) >= mm.SUCCESS_MARGIN
    assert ok_short.any() and np.all(ok_long[ok_short])
    d_short = np.sum((short - x) ** 2, axis=1)
    d_long = np.sum((long - x) ** 2, axis=1)
    assert np.all(d_long[ok_short] <= d_short[ok_short])
    wrong = (y + 1) % 10
    same = mm.minmax(model.network, x[:3], wrong[:3], 0.2, steps=10, **kw)
    np.testing.assert_array_equal(same, x[:3])


def test_targeted_and_single_image(model, digits):
    x, y = digits
    target = (y + 1) % 10
    adv = mm.minmax(model.network, x, y, 0.3, target=target, steps=100)
    assert _in_box(adv, x, 0.3)
    hit = margins(model.network, adv, y, target) >= mm.SUCCESS_MARGIN
    assert hit.sum() >= 7
    np.testing.assert_array_equal(model.network.predict_label(adv)[hit], target[hit])
    # a batch of one: the MINE marginal comes from decoys
    one = mm.minmax(model.network, x[:1], y[:1], 0.2, steps=60)
    assert _in_box(one, x[:1], 0.2)
    assert margins(model.network, one, y[:1])[0] >= mm.SUCCESS_MARGIN


def test_update_weight_follows_the_formula():
    c = np.array([0.0, 1.0, 2.5])
    f_plus = np.array([3.0, 0.0, 0.5])
    beta = 0.2
    for t in (1, 2, 16, 81):
        expected = (1 - beta / t ** 0.25) * c + beta * f_plus
        np.testing.assert_allclose(mm.update_weight(c, f_plus, beta, t), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(mm.update_weight(1.0, 0.0, 0.5, 16), 0.75)   # 1 − 0.5/2
    np.testing.assert_allclose(mm.update_weight(2.0, 4.0, 0.5, 1), 3.0)     # 0.5·2 + 0.5·4
    with pytest.raises(InvalidInputError):
        mm.update_weight(1.0, 1.0, 0.1, 0)


def test_hinge():
    np.testing.assert_allclose(mm.hinge(np.array([-2.0, 0.0, 5e-4, 2e-3]), 1e-3),
                               [2.001, 1e-3, 5e-4, 0.0])


@pytest.mark.parametrize("batch", [1, 5])
def test_mine_gradients_match_finite_differences(batch):
    rng = np.random.default_rng(3)
    dim = 4
    est = mm._Mine(dim, 6, rng, 1e-2, bound=2.0)
    for k in est.params:
        est.params[k] = 3.0 * est.params[k] + (0.3 if k == "b1" else 0.0)
    a = rng.normal(size=(batch, dim))
    b = rng.normal(size=(batch, dim))
    idx, mask = mm._marginal(batch, dim, rng)
    w = rng.random(batch)
    _, grad_b, grads = est.rows(a, b, idx, mask, w, want_params=True)

    def objective():
        return float(w @ est.rows(a, b, idx, mask))

    def numeric(arr):
        out = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            keep = arr[i]
            arr[i] = keep + 1e-6
            up = objective()
            arr[i] = keep - 1e-6
            down = objective()
            arr[i] = keep
            out[i] = (up - down) / 2e-6
        return out

    np.testing.assert_allclose(grad_b, numeric(b), atol=1e-7)
    for k, v in est.params.items():
        np.testing.assert_allclose(grads[k], numeric(v), atol=1e-7)


def test_mine_learns_to_tell_joint_from_marginal():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(16, 5))
    est = mm._Mine(5, 16, rng, 1e-2)
    before = est.rows(a, a, *mm._marginal(16, 5, rng)).mean()
    for _ in range(100):
        est.ascend(a, a, *mm._marginal(16, 5, rng))
    after = est.rows(a, a, *mm._marginal(16, 5, rng)).mean()
    assert after > before + 1.0
    assert after <= 2 * est.bound + 1e-9


def test_bad_arguments(model, digits):
    x, y = digits
    with pytest.raises(InvalidInputError):
        mm.minmax(model.network, x, y, 0.1, variant="cw")
    with pytest.raises(InvalidInputError):
        mm.minmax(model.network, x, y, -0.1)
    with pytest.raises(InvalidInputError):
        mm.minmax(model.network, x, y, 0.1, step_rule="momentum")
    with pytest.raises(InvalidInputError):
        mm.minmax(model.network, x, y, 0.1, beta=2.0)
