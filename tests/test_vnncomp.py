"""Deciding VNN-LIB properties on ONNX (and Keras) models: verdicts against brute force on tiny
networks, every counterexample confirmed by onnxruntime, the same verdicts for every bundled
model and its ONNX export, the CLI, and the resumable VNN-COMP runner."""
from __future__ import annotations

import csv
import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brute_force import brute_force_property
from model_zoo import tiny_dense
from verify import certify
from verify.errors import InvalidInputError
from verify.models import export_model, load_model
from verify.onnx import OnnxReference, network_to_onnx
from verify.tasks.vnnlib import certify_vnnlib
from verify.vnnlib import (parse_vnnlib, parse_vnnlib_text, read_counterexample,
                           write_robustness_property)
from verify.vnncomp import read_results, run_vnncomp

ROOT = Path(__file__).resolve().parents[1]


def _linear(coefs: np.ndarray) -> str:
    terms = [f"(* {c:.6f} Y_{j})" for j, c in enumerate(coefs) if c != 0]
    return terms[0] if len(terms) == 1 else "(+ " + " ".join(terms) + ")"


def _property_text(lower, upper, disjuncts) -> str:
    """VNN-LIB text for the box and ``OR_k (A_k y ≤ b_k)``."""
    n_in, n_out = len(lower), disjuncts[0][0].shape[1]
    lines = [f"(declare-const X_{i} Real)" for i in range(n_in)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, (lo, hi) in enumerate(zip(lower, upper)):
        lines += [f"(assert (>= X_{i} {float(lo)!r}))", f"(assert (<= X_{i} {float(hi)!r}))"]
    ors = []
    for A, b in disjuncts:
        rows = [f"(<= {_linear(r)} {float(v)!r})" for r, v in zip(A, b)]
        ors.append("(and " + " ".join(rows) + ")")
    lines.append("(assert (or " + " ".join(ors) + "))")
    return "\n".join(lines) + "\n"


def _onnx_of(keras_model, path: Path) -> Path:
    network = load_model(keras_model).network
    network_to_onnx(network, path)
    return path


def _confirmed(path: Path, x: np.ndarray, disjuncts) -> bool:
    y = OnnxReference(path).outputs(x[None].astype(np.float32))[0].astype(np.float64)
    return any(np.all(A @ y <= b) for A, b in disjuncts)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    models = []
    for seed, hidden in ((0, [4, 3]), (1, [5]), (2, [3, 3])):
        keras_model = tiny_dense(3, hidden, 3, seed=seed)
        models.append((keras_model, _onnx_of(keras_model, out / f"tiny{seed}.onnx")))
    return models


def test_general_properties_match_brute_force(tiny_onnx):
    rng = np.random.default_rng(7)
    verdicts = {"sat": 0, "unsat": 0}
    for keras_model, path in tiny_onnx:
        weights = keras_model.get_weights()
        model = load_model(path)
        for _ in range(8):
            lower = rng.uniform(-1.0, 1.0, 3)
            upper = lower + rng.uniform(0.05, 1.0, 3)
            # thresholds around the outputs seen in the box, so both verdicts occur
            y = model.network.forward(rng.uniform(lower, upper, (64, 3)))
            disjuncts = []
            for _ in range(rng.integers(1, 4)):
                A = rng.normal(size=(int(rng.integers(1, 3)), 3))
                values = y @ A.T
                b = values.min(axis=0) + rng.uniform(-0.6, 0.3) * values.std(axis=0)
                disjuncts.append((A, b))
            prop = parse_vnnlib_text(_property_text(lower, upper, disjuncts))
            exact = brute_force_property(weights, lower, upper, disjuncts)
            if exact != brute_force_property(weights, lower, upper, disjuncts,
                                             slack=-2e-3 if exact else 2e-3):
                continue     # decided only within 2e-3 of the boundary: margins may differ
            r = certify_vnnlib(model, prop, time_limit=30)
            assert r.verdict == ("sat" if exact else "unsat"), (r.to_dict(), exact)
            verdicts[r.verdict] += 1
            if r.verdict == "sat":
                assert _confirmed(path, r.counterexample, prop.cases[0].disjuncts)
                assert np.all(r.counterexample >= lower) and np.all(r.counterexample <= upper)
    assert verdicts["sat"] >= 3 and verdicts["unsat"] >= 3, verdicts


def test_input_disjunction_and_keras_model(tiny_onnx):
    """Two input boxes (an ACAS-Xu-style (or (and X-bounds Y-rows) ...)), on the Keras model."""
    keras_model, _ = tiny_onnx[0]
    model = load_model(keras_model)
    y0 = model.network.forward(np.zeros(3))[0]
    text = "\n".join([f"(declare-const X_{i} Real)" for i in range(3)]
                     + [f"(declare-const Y_{j} Real)" for j in range(3)]) + f"""
(assert (or (and (>= X_0 5) (<= X_0 6) (>= X_1 5) (<= X_1 6) (>= X_2 5) (<= X_2 6) (<= Y_0 -1000))
            (and (>= X_0 0) (<= X_0 0) (>= X_1 0) (<= X_1 0) (>= X_2 0) (<= X_2 0)
                 (<= Y_1 {float(y0[1]) + 1e-2!r}))))
"""
    prop = parse_vnnlib_text(text)
    assert len(prop.cases) == 2
    r = certify_vnnlib(model, prop)
    assert r.verdict == "sat" and r.case == 1
    r = certify_vnnlib(model, parse_vnnlib_text(text.replace(f"{float(y0[1]) + 1e-2!r}", f"{float(y0[1]) - 1e-2!r}")))
    assert r.verdict == "unsat"


@pytest.mark.parametrize("name", ["twoclass", "multiclass", "multiclass-large", "cnn", "mixture-10",
                                  "mlp-256x2", "bnn-small", "bnn"])
def test_bundled_model_and_its_onnx_give_the_same_verdicts(bundled, digits, tmp_path, name):
    assert name in bundled, f"{name} is not bundled"
    keras_model = bundled[name]
    path = tmp_path / f"{name}.onnx"
    export_model(keras_model, path)
    onnx_model = load_model(path)
    assert onnx_model.format == "onnx" and keras_model.format == "keras"
    x, _ = digits
    if keras_model.network.is_binarized:
        budgets = [dict(pixels=1), dict(pixels=3)]
    else:
        budgets = [dict(eps=0.005), dict(eps=0.03)]
    verdicts = []
    for i in range(3):
        assert onnx_model.reference_labels(x[i])[0] == keras_model.reference_labels(x[i])[0]
        for budget in budgets:
            a = certify(keras_model, x[i], time_limit=30, **budget)
            b = certify(onnx_model, x[i], time_limit=30, **budget)
            assert a.status == b.status, (name, i, budget, a.status, b.status)
            verdicts.append(a.status)
            if b.counterexample is not None:
                assert onnx_model.reference_labels(b.counterexample)[0] != b.original_label
    assert "unknown" not in verdicts


def test_robustness_property_verdicts_keras_and_onnx(bundled, digits, tmp_path):
    model = bundled["multiclass"]
    path = tmp_path / "multiclass.onnx"
    export_model(model, path)
    onnx_model = load_model(path)
    x, _ = digits
    seen = set()
    for i in range(4):
        label = model.label(x[i])
        for eps in (0.005, 0.05):
            prop_path = tmp_path / f"p{i}-{eps}.vnnlib"
            write_robustness_property(prop_path, x[i].ravel(), label, eps, 10)
            a = certify_vnnlib(model, prop_path, time_limit=60)
            b = certify_vnnlib(onnx_model, prop_path, time_limit=60)
            assert a.verdict == b.verdict and a.verdict in ("sat", "unsat")
            # the same question as certify's (ties aside): robust iff unsat
            c = certify(model, x[i], eps=eps, time_limit=60)
            assert (c.status == "verified") == (a.verdict == "unsat")
            seen.add(a.verdict)
            if b.verdict == "sat":
                assert _confirmed(path, b.counterexample, parse_vnnlib(prop_path).cases[0].disjuncts)
    assert seen == {"sat", "unsat"}


def test_bad_properties_and_models_are_refused(bundled, tmp_path):
    model = bundled["multiclass"]
    prop = parse_vnnlib_text(_property_text(np.zeros(3), np.ones(3), [(np.eye(3)[:1], np.zeros(1))]))
    with pytest.raises(InvalidInputError, match="3 inputs and 3 outputs.*784 inputs and 10 outputs"):
        certify_vnnlib(model, prop)
    # a softmax model and a property on output values (not a pairwise comparison)
    values = parse_vnnlib_text(_property_text(np.zeros(784), np.full(784, 0.1),
                                              [(np.eye(10)[:1], np.array([0.5]))]))
    with pytest.raises(InvalidInputError, match="softmax"):
        certify_vnnlib(model, values)
    # binarized networks are decided exactly now (issue 20; tests/test_bnn_flips.py)
    assert certify_vnnlib(bundled["bnn-small"], values).verdict in ("sat", "unsat")


def _cli(*args, check=True):
    done = subprocess.run([sys.executable, "-m", "verify.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr[-2000:]
    return done


def _benchmark(tmp_path, bundled, digits) -> Path:
    bench = tmp_path / "bench"
    bench.mkdir()
    export_model(bundled["multiclass"], bench / "net.onnx")
    x, _ = digits
    rows = []
    for k, (i, eps) in enumerate(((1, 0.005), (2, 0.05), (4, 0.005))):   # unsat, sat, unsat
        name = f"prop_{k}.vnnlib"
        write_robustness_property(bench / name, x[i].ravel(), bundled["multiclass"].label(x[i]), eps, 10)
        if k == 2:   # gzip-compressed files are accepted
            (bench / (name + ".gz")).write_bytes(gzip.compress((bench / name).read_bytes()))
            name += ".gz"
        rows.append(f"net.onnx,{name},60")
    (bench / "instances.csv").write_text("\n".join(rows) + "\n")
    return bench


def test_cli_certify_vnnlib_and_export(bundled, digits, tmp_path):
    bench = _benchmark(tmp_path, bundled, digits)
    _cli("export", "multiclass", tmp_path / "m.onnx")
    assert load_model(tmp_path / "m.onnx").network.num_inputs == 784
    done = _cli("certify", "--model", tmp_path / "m.onnx", "--vnnlib", bench / "prop_1.vnnlib",
                "--out", tmp_path / "out")
    assert done.stdout.strip() == "sat"
    text = (tmp_path / "out" / "result.txt").read_text()
    assert text.startswith("sat\n")
    x, y = read_counterexample(text)
    prop = parse_vnnlib(bench / "prop_1.vnnlib")
    assert _confirmed(tmp_path / "m.onnx", x, prop.cases[0].disjuncts)
    assert np.all(x >= prop.cases[0].lower) and np.all(x <= prop.cases[0].upper)
    done = _cli("certify", "--model", tmp_path / "m.onnx", "--vnnlib", bench / "prop_0.vnnlib")
    assert done.stdout.strip() == "unsat"
    bad = _cli("certify", "digit.png", "--vnnlib", bench / "prop_0.vnnlib", "--eps", "0.1", check=False)
    assert bad.returncode == 1 and "drop IMAGE, --eps" in bad.stderr
    bad = _cli("export", "multiclass", tmp_path / "m.txt", check=False)
    assert bad.returncode == 1 and ".onnx" in bad.stderr


def test_vnncomp_runner_is_resumable(bundled, digits, tmp_path):
    bench = _benchmark(tmp_path, bundled, digits)
    results = tmp_path / "results.csv"
    rows = run_vnncomp(bench, results)
    assert [r["verdict"] for r in rows] == ["unsat", "sat", "unsat"]
    assert rows[1]["counterexample"] and (results.parent / rows[1]["counterexample"]).is_file()
    # a killed run leaves a partial last line: it is cut, the instance run again, nothing doubled
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:-1]) + lines[-1][:12])
    again = run_vnncomp(bench, results)
    assert [r["verdict"] for r in again] == ["unsat", "sat", "unsat"]
    assert len(read_results(results)) == 3
    with open(results) as f:
        assert len(list(csv.DictReader(f))) == 3
    done = _cli("vnncomp", bench, "--out", results, "--quiet")
    assert "3 instances: sat 1, unsat 2" in done.stdout
    (bench / "instances.csv").write_text("net.onnx,prop_0.vnnlib\n")
    bad = _cli("vnncomp", bench, check=False)
    assert bad.returncode == 1 and "line 1" in bad.stderr
