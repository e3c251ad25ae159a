"""Exact evidence for a sparse judge (verify.evidence) and its region (PixelReveal): every
answer against brute force over all reveal sets of tiny judges; bad input as one-line errors."""
from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from verify.errors import InvalidInputError
from verify.regions import PixelReveal
from verify.tasks.evidence import can_convince, evidence
from needs import require_backend

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


@pytest.fixture(scope="module")
def judge():
    from verify.models import load_model

    return load_model("judge-6px")


def tiny_judge(seed: int, inputs: int = 10, hidden: int = 6, classes: int = 4):
    """A random dense ReLU judge (Keras) small enough to enumerate every reveal set."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((inputs,)), L.Dense(hidden, activation="relu"),
                              L.Dense(classes)], name=f"tiny{seed}")
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=(inputs, hidden)), rng.normal(size=hidden) * 0.3,
                       rng.normal(size=(hidden, classes)), rng.normal(size=classes) * 0.3])
    return model


def tiny_image(seed: int, inputs: int = 10, zeros: int = 2) -> np.ndarray:
    rng = np.random.default_rng(100 + seed)
    x = rng.uniform(0.2, 1.0, inputs)
    x[rng.choice(inputs, zeros, replace=False)] = 0.0
    return x


def numpy_logits(keras_model, views: np.ndarray) -> np.ndarray:
    """The judge's logits computed from its Keras weights, independently of verify."""
    w1, b1, w2, b2 = [np.asarray(w, dtype=np.float64) for w in keras_model.get_weights()]
    return np.maximum(views @ w1 + b1, 0.0) @ w2 + b2


def brute_force(keras_model, image, claim, k, against=None, revealed=()):
    """(best margin, every set's margin) over all sets of at most k more non-zero pixels."""
    candidates = [i for i in np.flatnonzero(image) if i not in revealed]
    sets = [c for s in range(k + 1) for c in itertools.combinations(candidates, s)]
    views = np.zeros((len(sets), image.size))
    for row, s in zip(views, sets):
        shown = list(revealed) + list(s)
        row[shown] = image[shown]
    z = numpy_logits(keras_model, views)
    others = [j for j in range(z.shape[1]) if j != claim] if against is None else [against]
    margins = z[:, claim] - z[:, others].max(axis=1)
    return float(margins.max()), dict(zip(sets, margins))


# -- the region ------------------------------------------------------------------------------------

def test_region_bounds_are_exact_and_contain_every_reveal_set():
    rng = np.random.default_rng(0)
    image = tiny_image(0, inputs=12, zeros=3)
    revealed = [int(np.flatnonzero(image)[0])]
    region = PixelReveal(image, 3, revealed)
    A, c = rng.normal(size=(20, 12)), rng.normal(size=20)
    lo, hi = region.linear_bounds(A, c)
    cand = [i for i in np.flatnonzero(image) if i not in revealed]
    values = []
    for s in range(4):
        for subset in itertools.combinations(cand, s):
            values.append(A @ region.view(subset) + c)
    values = np.array(values)
    assert np.all(values >= lo[None] - 1e-12) and np.all(values <= hi[None] + 1e-12)
    np.testing.assert_allclose(values.min(axis=0), lo, atol=1e-12)      # exact, not just sound
    np.testing.assert_allclose(values.max(axis=0), hi, atol=1e-12)
    # samples are reveal sets: each pixel its value or the centre's, at most k more shown
    for x in region.sample(rng, 50):
        shown = np.flatnonzero(x != region.center)
        assert shown.size <= 3 and set(shown) <= set(cand)
        np.testing.assert_array_equal(x[shown], image[shown])


def test_network_bounds_over_the_region_contain_every_view():
    from verify.encodings.tightening import compute_bounds
    from verify.models import load_model

    model = load_model(tiny_judge(1, inputs=10, hidden=8))
    image = tiny_image(1)
    region = PixelReveal(image, 4)
    net = model.network.merged_affine()
    bounds = compute_bounds(net, region)
    cand = np.flatnonzero(image)
    views = [region.view(s) for n in range(5) for s in itertools.combinations(cand, n)]
    for v in views:
        assert bounds.contains(net.forward_all(v))


# -- evidence against brute force ----------------------------------------------------------------------

CASES = [  # (seed, k, claim, against, revealed positions among the non-zero pixels)
    (2, 1, 0, None, ()), (2, 2, 1, None, ()), (3, 3, 2, None, ()), (3, 3, 3, 0, ()),
    (4, 2, 0, 1, (0,)), (4, 4, 1, None, (1,)), (5, 3, 3, None, (0, 2)), (5, 5, 2, 3, ()),
    (6, 8, 0, None, ()), (6, 2, 3, None, (2,)),
]


@pytest.mark.parametrize("method,backend", [("mip", "highs"), ("mip", "cplex"), ("enumerate", None)])
def test_evidence_agrees_with_brute_force(method, backend):
    if backend:
        require_backend(backend)
    from verify.models import load_model

    statuses = set()
    for seed, k, claim, against, rev in CASES:
        keras_model = tiny_judge(seed)
        model = load_model(keras_model)
        image = tiny_image(seed)
        revealed = [int(np.flatnonzero(image)[p]) for p in rev]
        best, margins = brute_force(keras_model, image, claim, k, against, revealed)
        r = evidence(model, image, claim, k, against=against, revealed=revealed, method=method,
                     backend=backend)
        statuses.add(r.status)
        case = (seed, k, claim, against, rev)
        assert r.margin == pytest.approx(best, abs=1e-5), case
        assert r.optimal, case
        assert r.status == ("optimal" if best > 0 else "infeasible"), case
        assert len(r.pixels) <= k and not set(r.pixels) & set(revealed)
        assert margins[tuple(sorted(r.pixels))] == pytest.approx(r.margin, abs=1e-9), case
        assert r.bound >= best - 1e-6, case
        assert r.convinces == (best > 0), case                    # Keras' verdict
        view = np.zeros_like(image)
        view[revealed + r.pixels] = image[revealed + r.pixels]
        np.testing.assert_array_equal(r.view, view)
    assert statuses == {"optimal", "infeasible"}          # both kinds of answer were checked


@pytest.mark.parametrize("enumerate_up_to", [None, 0])
def test_can_convince_agrees_with_brute_force(monkeypatch, enumerate_up_to):
    """Both ways of deciding: scoring every set, and (nothing enumerated) greedy, bounds, MIP."""
    from verify.models import load_model

    if enumerate_up_to is not None:
        monkeypatch.setattr("verify.tasks.evidence.ENUMERATION_LIMIT", enumerate_up_to)

    verdicts = set()
    for seed, k, claim, against, rev in CASES:
        keras_model = tiny_judge(seed)
        image = tiny_image(seed)
        revealed = [int(np.flatnonzero(image)[p]) for p in rev]
        best, margins = brute_force(keras_model, image, claim, k, against, revealed)
        verdict, pixels, _ = can_convince(load_model(keras_model), image, claim, k, against, revealed)
        verdicts.add(verdict)
        assert verdict == ("yes" if best > 0 else "no")
        if verdict == "yes":
            assert margins[tuple(sorted(pixels))] > 0
    assert verdicts == {"yes", "no"}


def test_mip_and_enumeration_agree_on_the_bundled_judge(judge, digits):
    """The full-size encoding (784 inputs, the judge's 32 ReLUs): the MIP's optimum is the
    enumerated one."""
    model = judge
    images, labels = digits
    image, label = images[0], int(labels[0])
    claim = (label + 3) % 10
    exact = evidence(model, image, claim, 2, method="enumerate")
    mip = evidence(model, image, claim, 2, method="mip", backend="highs")
    assert mip.margin == pytest.approx(exact.margin, abs=1e-5)
    assert mip.status == exact.status and mip.optimal
    revealed = exact.pixels[:1]
    exact = evidence(model, image, label, 2, against=claim, revealed=revealed, method="enumerate")
    mip = evidence(model, image, label, 2, against=claim, revealed=revealed, method="mip")
    assert mip.margin == pytest.approx(exact.margin, abs=1e-5) and mip.optimal


# -- bad input -------------------------------------------------------------------------------------------

def test_bad_input_is_one_line_error_before_any_work(judge, digits):
    model = judge
    image = digits[0][0]
    flat = image.ravel()
    zero, nonzero = int(np.flatnonzero(flat == 0)[0]), int(np.flatnonzero(flat)[0])
    bad = [
        dict(claim=3, k=0), dict(claim=3, k=-1), dict(claim=3, k=1.5), dict(claim=10, k=2),
        dict(claim=-1, k=2), dict(claim=3, k=2, against=3), dict(claim=3, k=2, against=12),
        dict(claim=3, k=2, revealed=[zero]), dict(claim=3, k=2, revealed=[784]),
        dict(claim=3, k=2, revealed=[-1]), dict(claim=3, k=2, revealed=[nonzero + 0.5]),
        dict(claim=3, k=2, method="magic"),
    ]
    for kwargs in bad:
        with pytest.raises(InvalidInputError) as e:
            evidence(model, image, **kwargs)
        assert "\n" not in str(e.value) and str(e.value), kwargs


def test_cli_bad_input_one_line(capsys):
    from verify.cli import main

    digit = str(EXAMPLES / "digit-7.png")
    for argv, needle in (
            (["--claim", "3", "--pixels", "0"], "--pixels"),
            (["--claim", "12"], "--claim"),
            (["--claim", "3", "--against", "3"], "--against"),
            (["--claim", "3", "--revealed", "1,x"], "--revealed"),
            (["--claim", "3", "--revealed", "0"], "value 0"),
            (["--claim", "3", "--revealed", "900"], "out of range")):
        code = main(["evidence", digit, *argv])
        out, err = capsys.readouterr()
        assert code == 1 and out == "", argv
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("verify: error:") and needle in lines[0], (argv, err)


def test_cli_subprocess_json_and_error(tmp_path):
    """The installed command: a JSON answer on stdout, and a bad --claim as one line on stderr."""
    digit = str(EXAMPLES / "digit-7.png")
    script = (
        "import sys; from verify.cli import main\n"
        "a = main(['evidence', sys.argv[1], '--claim', '1', '--pixels', '2', '--json', '-q'])\n"
        "b = main(['evidence', sys.argv[1], '--claim', 'seven'])\n"
        "sys.exit(10 * a + b)\n")
    proc = subprocess.run([sys.executable, "-c", script, digit], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    import json
    result = json.loads(proc.stdout)
    assert result["status"] in ("optimal", "infeasible") and result["optimal"]
    assert len(result["pixels"]) <= 2 and result["method"] == "enumeration"
    errors = [l for l in proc.stderr.splitlines() if l.startswith("verify: error:")]
    assert errors == [l for l in proc.stderr.splitlines() if "error" in l.lower()]
    assert len(errors) == 1 and "--claim 'seven'" in errors[0]


def test_time_limit_gives_a_set_and_a_proven_bound(judge, digits):
    """k = 6 on HiGHS with half a second: whatever the machine manages, the answer is a valid
    set with its true margin, the bound is above it, and only a finished search is 'optimal'."""
    image, label = digits[0][1], int(digits[1][1])
    r = evidence(judge, image, (label + 2) % 10, 6, time_limit=0.5, backend="highs")
    assert r.status in ("optimal", "infeasible", "time_limit")
    assert len(r.pixels) <= 6 and np.all(image.ravel()[r.pixels] > 0)
    z = judge.network.forward(r.view)[0]
    claim = (label + 2) % 10
    assert r.margin == pytest.approx(z[claim] - np.delete(z, claim).max(), abs=1e-9)
    assert r.bound is not None and r.bound >= r.margin - 1e-9
    assert (r.status == "time_limit") == (not r.proven and not (r.bound <= 0))
