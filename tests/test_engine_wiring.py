"""The bound engine wired into the yes/no tasks (``engine="auto" | "bab" | "mip"``).

* On every bundled ReLU model, ``certify`` with ``engine="bab"`` (the engine alone) and with
  ``engine="mip"`` (the MIP pipeline) agree wherever both decide, and ``auto`` agrees with
  them; every counterexample reported is confirmed by the model's own runtime (Keras) and lies
  inside the budget.
* ``auto`` with the engine forced on tiny networks brackets the exact minimal distance (the
  engine's answer, or the MIP's after it, is right).
* The MIP fallback's bounds, started from the engine's intermediate bounds, are sound and at
  least as tight as the bounds without them.
* ``certify_vnnlib`` and ``run_vnncomp`` take the option and report the stage; the CLI's
  ``--engine bab --json`` prints the stage.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_zoo import tiny_dense
from verify.engine import Spec, decide
from verify.errors import InvalidInputError
from verify.models import load_model
from verify.regions import budget_region
from verify.tasks import engine_stage, robustness
from verify.tasks.adversarial import min_adversarial
from verify.tasks.robustness import certify

ROOT = Path(__file__).resolve().parents[1]
DIGIT = str(ROOT / "examples" / "images" / "digit-7.png")
DECIDED = ("verified", "counterexample")
ENGINE_STAGES = ("attack", "crown", "alpha-crown", "bab")


def _check_counterexample(model, r, x, budget) -> None:
    """A reported counterexample changes the Keras model's label and lies within the budget."""
    ce = np.asarray(r.counterexample, dtype=np.float64).ravel()
    assert model.reference_labels(ce)[0] != r.original_label
    d = ce - np.asarray(x, dtype=np.float64).ravel()
    assert ce.min() >= 0 and ce.max() <= 1
    if "pixels" in budget:
        assert np.count_nonzero(d) <= budget["pixels"]
    else:
        size = {"linf": np.abs(d).max(), "l1": np.abs(d).sum(),
                "l2": np.linalg.norm(d)}[budget.get("norm", "linf")]
        assert size <= budget["eps"] * (1 + 1e-9) + 1e-12


#: Budgets per model: L∞ on every one, every budget type on the seed MLP (each new network
#: and region type costs the engine seconds of JIT compilation).
BUDGETS = [{"eps": 0.01}, {"eps": 0.04}]
EXTRA = {"multiclass": [{"eps": 0.3, "norm": "l1"}, {"eps": 0.3, "norm": "l2"}, {"pixels": 2}]}


def test_bab_and_mip_give_the_same_verdicts_on_every_bundled_relu_model(bundled, digits):
    xs, _ = digits
    compared, verdicts, stages = 0, set(), set()
    for name, model in bundled.items():
        if model.network.is_binarized:
            continue
        for x in xs[:2]:
            for budget in BUDGETS + EXTRA.get(name, []):
                got = {}
                for engine in ("bab", "mip", "auto"):
                    r = certify(model, x, engine=engine, time_limit=10, **budget)
                    d = r.to_dict()
                    assert d["engine"] == engine and "stage" in d
                    if r.status == "counterexample":
                        _check_counterexample(model, r, x, budget)
                    if engine == "bab":
                        assert d["stage"] in ENGINE_STAGES + ("",) and d["backend"] == "engine"
                        assert d["engine_result"]["status"] in DECIDED + ("unknown", "time_limit")
                    if r.status in DECIDED:
                        got[engine] = r.status
                        stages.add(d["stage"])
                        assert d["stage"] and d["method"] == engine_stage.method_of(d["stage"])
                assert len(set(got.values())) <= 1, (name, budget, got)
                compared += len(got) == 3
                verdicts |= set(got.values())
    assert compared >= 20 and verdicts == set(DECIDED)
    assert {"attack", "crown"} <= stages, stages


@pytest.mark.parametrize("norm", ["linf", "l1", "l2", "card"])
def test_auto_with_the_engine_brackets_the_minimum(monkeypatch, norm):
    """The engine is forced on (no tiny-MIP shortcut): below the exact minimal distance
    ``verified``, just above it a confirmed ``counterexample`` — whichever stage answers."""
    monkeypatch.setattr(robustness, "SMALL_MIP_RELUS", -1)
    model = load_model(tiny_dense(4, [6, 5], 3, seed=5))
    for x in np.random.default_rng(3).random((2, 4)):
        best = min_adversarial(model, x, norm=norm)
        if best.objective is None:
            continue
        radius = best.objective if norm != "l2" else np.sqrt(best.objective)
        if norm == "card":
            below, above = {"pixels": int(best.objective) - 1}, {"pixels": int(best.objective)}
        else:
            below, above = {"eps": 0.9 * radius, "norm": norm}, {"eps": 1.1 * radius, "norm": norm}
        r = certify(model, x, engine="auto", **below)
        assert r.status == "verified", r.to_dict()
        assert "engine_result" in r.stats or r.stats["stage"] == "bounds"
        r = certify(model, x, engine="auto", **above)
        assert r.status == "counterexample", r.to_dict()
        _check_counterexample(model, r, x, above)


def test_mip_fallback_bounds_start_from_the_engines_and_stay_sound(bundled, digits):
    model = bundled["multiclass-large"]
    net = model.network.merged_affine()
    x = np.asarray(digits[0][1], dtype=np.float64).ravel()
    region = budget_region(x, 0.01, "linf")
    label = int(model.reference_labels(x)[0])
    r = decide(net, region, Spec.label_change(net.num_outputs, label))
    assert r.status == "verified" and r.bounds is not None
    with_engine = engine_stage.mip_bounds(net, region, engine_stage.cheap_bounds(net, region), r, None)
    without = engine_stage.mip_bounds(net, region, engine_stage.cheap_bounds(net, region), None, None)
    assert [s["stage"] for s in with_engine.report()] == ["interval", "symbolic", "engine", "lp"]
    assert with_engine.unstable(net) <= without.unstable(net)
    points = np.vstack([region.sample(np.random.default_rng(0), 2000), region.lo, region.hi,
                        np.clip(x + 0.01 * np.sign(np.random.default_rng(1).normal(size=(200, x.size))),
                                0, 1)])
    assert with_engine.contains(net.forward_all(points))


def test_vnnlib_and_vnncomp_take_the_engine(tmp_path):
    from verify.tasks.vnnlib import certify_vnnlib
    from verify.vnncomp import read_results, run_vnncomp

    bench = ROOT / "benchmarks" / "vnncomp" / "mlp-256x2"
    model = load_model(bench / "mlp-256x2.onnx")
    for prop in ("prop_0_eps_0.030.vnnlib", "prop_3_eps_0.030.vnnlib"):
        verdicts = {}
        for engine in ("bab", "auto", "mip"):
            r = certify_vnnlib(model, bench / prop, engine=engine, time_limit=60)
            d = r.to_dict()
            assert d["engine"] == engine and d["stage"] == r.stage
            if r.decided:
                assert r.stage and r.method == engine_stage.method_of(r.stage)
                if engine == "bab":
                    assert r.stage in ENGINE_STAGES
            if r.verdict == "sat":        # the runtime's own outputs satisfy the property
                assert r.outputs is not None and r.counterexample is not None
            verdicts[engine] = r.verdict
        assert len(set(verdicts.values())) == 1, (prop, verdicts)
    with pytest.raises(InvalidInputError, match="engine must be one of"):
        certify_vnnlib(model, bench / "prop_0_eps_0.030.vnnlib", engine="milp")
    # the runner: one instance, the stage in its own column
    (tmp_path / "instances.csv").write_text("net.onnx,prop.vnnlib,60\n")
    (tmp_path / "net.onnx").write_bytes((bench / "mlp-256x2.onnx").read_bytes())
    (tmp_path / "prop.vnnlib").write_text((bench / "prop_3_eps_0.030.vnnlib").read_text())
    rows = run_vnncomp(tmp_path, tmp_path / "r.csv", engine="bab")
    assert rows[0]["verdict"] == "sat" and rows[0]["stage"] in ENGINE_STAGES
    assert read_results(tmp_path / "r.csv")[0]["stage"] == rows[0]["stage"]


def test_certify_rejects_an_unknown_engine(bundled, digits):
    with pytest.raises(InvalidInputError, match="engine must be one of"):
        certify(bundled["multiclass"], digits[0][0], eps=0.01, engine="fast")


def test_cli_engine_bab_json_shows_the_stage():
    proc = subprocess.run([sys.executable, "-m", "verify.cli", "certify", DIGIT, "--model",
                           "multiclass-large", "--eps", "0.01", "--engine", "bab", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["engine"] == "bab" and doc["status"] in DECIDED
    assert doc["stage"] in ENGINE_STAGES and doc["engine_result"]["stage"] == doc["stage"]


def test_engine_time_shares():
    """``bab`` has all the time left, ``auto`` half (most of it when many ReLUs are unstable
    and the engine cannot stall, or when the caller puts the engine first); without a limit ``auto`` caps the engine only where it may
    end in slow or undecidable leaves (L2, k pixels, max-pool)."""
    import time

    x = np.full(4, 0.5)
    t0 = time.perf_counter()
    assert engine_stage.engine_time("bab", 10.0, t0) == pytest.approx(10.0, abs=0.5)
    assert engine_stage.engine_time("auto", 10.0, t0) == pytest.approx(5.0, abs=0.5)
    assert engine_stage.engine_time("auto", 10.0, t0 - 20.0) == 0.0
    many, few = engine_stage.LARGE_RELUS + 1, engine_stage.LARGE_RELUS
    box, ball = budget_region(x, 0.1, "linf"), budget_region(x, 0.1, "l2")
    assert engine_stage.engine_time("auto", 10.0, t0, None, box, many) == pytest.approx(
        10.0 * engine_stage.ENGINE_SHARE_LARGE, abs=0.5)
    assert engine_stage.engine_time("auto", 10.0, t0, None, box, few) == pytest.approx(5.0, abs=0.5)
    assert engine_stage.engine_time("auto", 10.0, t0, None, ball, many) == pytest.approx(5.0, abs=0.5)
    # min-adv's card, L∞ and L2 searches: the engine first whatever the count
    assert engine_stage.engine_time("auto", 10.0, t0, None, ball, few, engine_first=True) == \
        pytest.approx(10.0 * engine_stage.ENGINE_SHARE_LARGE, abs=0.5)
    assert engine_stage.engine_time("auto", None, t0, None, budget_region(x, 0.1, "linf")) is None
    assert engine_stage.engine_time("bab", None, t0, None, budget_region(x, 0.1, "l2")) is None
    for region in (budget_region(x, 0.1, "l2"), budget_region(x, pixels=1)):
        assert engine_stage.engine_time("auto", None, t0, None, region) == engine_stage.STALL_CAP_S
