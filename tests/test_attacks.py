"""Gradient and saliency attacks: success re-checked by Keras, fixed-ε attacks stay in their
ball, and on tiny networks no attack ever beats the exact (brute-force) minimum."""
from __future__ import annotations

import json

import numpy as np
import pytest

from brute_force import brute_force_min
from model_zoo import tiny_dense
from verify.attacks.api import METHODS, attack, radius
from verify.cli import main
from verify.errors import InvalidInputError
from verify.models import load_model
from verify.tasks.compare import compare
from verify.tasks.adversarial import min_adversarial

EASY_EPS = {"linf": 0.3, "l2": 4.0, "l1": 40.0}
ALL = [(name, norm) for name, m in METHODS.items() for norm in m.norms]


@pytest.fixture(scope="module")
def batch(bundled, digits):
    """Ten test digits that the multiclass model classifies correctly."""
    x, y = digits
    model = bundled["multiclass"]
    keep = np.flatnonzero(model.reference_labels(x) == y)[:10]
    return model, x[keep]


@pytest.mark.parametrize("method,norm", ALL)
def test_attack_succeeds_on_easy_cases_and_mask_agrees_with_keras(batch, method, norm):
    model, x = batch
    kind = METHODS[method].kind
    eps = EASY_EPS.get(norm) if kind == "fixed-eps" else None
    r = attack(model, x, method, norm, eps=eps, seed=1)
    assert r.success.mean() >= 0.8, (method, norm, r.success)
    again = model.reference_labels(r.adversarial)
    assert np.array_equal(r.success, again != r.labels)
    assert np.array_equal(r.adversarial_labels[r.success], again[r.success])
    assert r.adversarial.min() >= 0 and r.adversarial.max() <= 1
    flat, clean = r.adversarial.reshape(len(x), -1), r.images.reshape(len(x), -1)
    for i in np.flatnonzero(r.success):
        assert r.distances[i] > 0
        if eps is not None:
            assert radius(flat[i], clean[i], norm) <= eps + 1e-9
    assert np.all(np.isinf(r.distances[~r.success]))
    assert set(r.failed) == set(np.flatnonzero(~r.success))


@pytest.mark.parametrize("name", ["twoclass", "cnn"])
def test_other_models_sigmoid_and_cnn(bundled, digits, name):
    model = bundled[name]
    x = digits[0][:4]
    for method, norm in [("fgsm", "linf"), ("pgd", "l2"), ("deepfool", "linf"), ("cw", "l2"), ("jsma", "card")]:
        r = attack(model, x, method, norm, eps=None if METHODS[method].kind == "minimum-norm" else EASY_EPS[norm])
        assert r.success.sum() >= 3, (name, method)
        assert np.array_equal(r.success, model.reference_labels(r.adversarial) != r.labels)


def test_targeted_attack_reaches_the_target(batch):
    model, x = batch
    target = 3
    x = x[model.reference_labels(x) != target][:5]
    for method, norm in [("pgd", "linf"), ("cw", "l2"), ("deepfool", "l2"), ("jsma", "card")]:
        r = attack(model, x, method, norm, eps=0.4 if method == "pgd" else None, target=target)
        assert r.success.sum() >= 4, method
        assert np.all(model.reference_labels(r.adversarial)[r.success] == target)


def test_small_eps_fails_and_says_which(batch):
    model, x = batch
    r = attack(model, x, "pgd", "linf", eps=1e-4)
    assert not r.success.any() and list(r.failed) == list(range(len(x)))
    assert r.to_dict()["distance"] == [None] * len(x)


def test_deterministic_under_seed(batch):
    model, x = batch
    a = attack(model, x, "pgd", "l2", eps=1.0, steps=10, restarts=3, random_start=True, seed=5)
    b = attack(model, x, "pgd", "l2", eps=1.0, steps=10, restarts=3, random_start=True, seed=5)
    assert np.array_equal(a.adversarial, b.adversarial)


def test_smallest_eps_search_beats_a_fixed_eps(batch):
    model, x = batch
    fixed = attack(model, x, "pgd", "linf", eps=0.3)
    smallest = attack(model, x, "pgd", "linf")
    assert smallest.success.all()
    assert np.all(smallest.distances <= fixed.distances + 1e-12)


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(7)
    nets = [load_model(tiny_dense(4, [3, 3], 3, seed=3)), load_model(tiny_dense(4, [4], 1, seed=3)),
            load_model(tiny_dense(5, [6], 4, seed=8))]
    return [(m, rng.random((3, m.network.num_inputs))) for m in nets]


@pytest.mark.parametrize("norm", ["card", "l1", "l2", "linf"])
def test_exact_minimum_never_larger_than_any_attack_on_tiny_networks(tiny, norm):
    """Brute force over the ReLU phases gives the true minimum; every successful attack, by
    every method of the norm, is at least that far away."""
    checked = 0
    for model, inputs in tiny:
        weights = model.keras.get_weights()
        for method in (m for m, n in ALL if n == norm):
            r = attack(model, inputs, method, norm)
            for i in np.flatnonzero(r.success):
                exact = brute_force_min(weights, inputs[i], norm, int(r.labels[i]))
                assert exact <= r.distances[i] * (1 + 1e-6) + 1e-9, (method, i, exact, r.distances[i])
                checked += 1
    assert checked >= 4


def test_compare_exact_bound_below_every_attack(tiny):
    model, inputs = tiny[0]
    r = compare(model, inputs[0], norm="linf")
    assert r.exact.minimal
    assert [a.method for a in r.attacks] == ["fgsm", "pgd", "deepfool", "minmax"]
    for row in r.rows():
        assert not row["below_bound"]
        if row["success"]:
            assert row["ratio"] >= 1 - 1e-6
    d = r.to_dict()
    assert set(d) >= {"exact", "attacks"}
    assert set(d["attacks"][0]) >= {"method", "distance", "success", "time_s"}


def test_binarized_network_only_greedy(bundled, digits):
    model = bundled["bnn-small"]
    with pytest.raises(InvalidInputError, match="binarized"):
        attack(model, digits[0][:2], "pgd", "linf", eps=0.1)
    r = attack(model, digits[0][:3], "greedy", "card")
    assert np.array_equal(r.success, model.reference_labels(r.adversarial) != r.labels)
    assert r.success.any()
    # the attack's example is never smaller than the proven minimum number of flips
    for x, ok, d in zip(digits[0][:3], r.success, r.distances):
        exact = min_adversarial(model, x, norm="card", time_limit=120)
        assert exact.status == "optimal"
        assert not ok or d >= exact.objective


def test_bad_input(batch):
    model, x = batch
    with pytest.raises(InvalidInputError, match="unknown attack"):
        attack(model, x, "foo", "linf")
    with pytest.raises(InvalidInputError, match="works in"):
        attack(model, x, "cw", "linf")
    with pytest.raises(InvalidInputError, match="eps"):
        attack(model, x, "pgd", "linf", eps=-1)
    with pytest.raises(InvalidInputError, match="takes 784"):
        attack(model, np.zeros(10), "pgd", "linf", eps=0.1)
    with pytest.raises(InvalidInputError, match="already the label"):
        attack(model, x[:1], "pgd", "linf", eps=0.1, target=int(model.reference_labels(x[:1])[0]))


def test_cli_attack_and_compare(tmp_path, capsys):
    image = "examples/images/digit-7.png"
    assert main(["attack", image, "--method", "pgd", "--norm", "linf", "--eps", "0.2", "--json",
                 "--out", str(tmp_path / "a")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["success"] == [True] and out["distance"][0] <= 0.2 + 1e-9
    assert (tmp_path / "a" / "figure.png").is_file() and (tmp_path / "a" / "adversarial.npy").is_file()
    assert main(["attack", image, "--method", "fgsm", "--eps", "0.0001"]) == 3
    assert "FAILED" in capsys.readouterr().out
    assert main(["compare", image, "--norm", "card", "--json", "--quiet", "--out", str(tmp_path / "c")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exact"]["status"] == "optimal"
    assert {a["method"] for a in out["attacks"]} == {"jsma", "greedy"}
    for a in out["attacks"]:
        assert a["distance"] >= out["exact"]["objective"] and a["ratio"] >= 1
    assert (tmp_path / "c" / "figure.png").is_file()


def _prune_one_at_a_time(network, x, center, label, margin):
    """The reference: restore pixels smallest change first, one forward pass per try."""
    from verify.attacks.gradients import margins

    x = x.copy()
    changed = np.flatnonzero(x != center)
    for i in changed[np.argsort(np.abs(x[changed] - center[changed]))]:
        trial = x.copy()
        trial[i] = center[i]
        if margins(network, trial, label, None)[0] >= margin:
            x = trial
    return x


@pytest.mark.parametrize("name", ["multiclass", "twoclass", "cnn"])
def test_batched_pruning_gives_the_one_at_a_time_answer(bundled, digits, name):
    """prune_changes batches its tries; the answer is the sequential one, pixel for pixel,
    on random adversarial inputs with many changes (long runs of restorations and
    frequent failures both occur)."""
    from verify.attacks.gradients import margins
    from verify.attacks.search import prune_changes

    net = bundled[name].network.merged_affine()
    images, _ = digits
    rng = np.random.default_rng(7)
    compared = 0
    for image in images[:40]:
        center = net.flatten_input(image)[0]
        label = int(net.label(center))
        for scale in (0.3, 0.6, 1.0):
            x = np.clip(center + scale * rng.uniform(-1, 1, center.size), 0, 1)
            if margins(net, x, label, None)[0] < 1e-3:
                continue
            expected = _prune_one_at_a_time(net, x, center, label, 1e-3)
            got = prune_changes(net, x, center, label, None, 1e-3)
            np.testing.assert_array_equal(got, expected)
            assert margins(net, got, label, None)[0] >= 1e-3
            compared += 1
    assert compared >= 5
