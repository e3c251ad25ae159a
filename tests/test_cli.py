"""The command line: outputs, and one-line errors (never a traceback) for bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from verify.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "predict" in capsys.readouterr().out


def test_models_json(capsys):
    code, out, _ = run(capsys, "models", "--json")
    rows = {m["name"]: m for m in json.loads(out)}
    assert code == 0 and rows["twoclass"]["test_accuracy"] > 0.97


def test_info(capsys):
    code, out, _ = run(capsys, "info", "cnn")
    assert code == 0 and "conv" in out.lower() and "160 ReLUs" in out


def test_predict_json(capsys, bundled):
    code, out, _ = run(capsys, "predict", str(EXAMPLES / "digit-7.png"), "--model", "cnn", "--json")
    result = json.loads(out)
    assert code == 0 and result["label"] == 7 == result["reference_label"]
    assert len(result["logits"]) == 10


def test_predict_model_by_path(capsys, bundled):
    path = bundled["multiclass"].path
    code, out, _ = run(capsys, "predict", str(EXAMPLES / "digit-3.png"), "--model", str(path))
    assert code == 0 and "label 3" in out


def _unsupported_model(tmp_path) -> Path:
    import keras
    from keras import layers as L

    model = keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(), L.Dense(4, activation="tanh"),
                              L.LayerNormalization(), L.Dense(10)])
    path = tmp_path / "unsupported.keras"
    model.save(path)
    return path


def _bad_inputs(tmp_path):
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG but not really")
    (tmp_path / "corrupt.keras").write_bytes(b"PK\x03\x04 this is no zip")
    (tmp_path / "model.txt").write_text("hello")
    from PIL import Image
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(tmp_path / "small.png")
    digit = str(EXAMPLES / "digit-1.png")
    return [
        (["predict", str(tmp_path / "missing.png")], "not found"),
        (["predict", str(tmp_path / "garbage.png")], "cannot read"),
        (["predict", str(tmp_path / "small.png")], "28x28"),
        (["predict", digit, "--model", str(tmp_path / "corrupt.keras")], "cannot load"),
        (["predict", digit, "--model", str(tmp_path / "model.txt")], "not a Keras model"),
        (["predict", digit, "--model", str(tmp_path / "nope.keras")], "not found"),
        (["predict", digit, "--model", "no-such-model"], "bundled models"),
        (["info", str(_unsupported_model(tmp_path))], "2 unsupported layer(s)"),
    ]


def test_bad_input_gives_one_line_error(capsys, tmp_path):
    for argv, expected in _bad_inputs(tmp_path):
        code, out, err = run(capsys, *argv)
        assert code == 1, argv
        assert err.startswith("verify: error:") and expected in err, (argv, err)
        assert "Traceback" not in err and err.count("\n") == 1, err


def test_console_script_runs_without_traceback(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "verify.cli", "predict", str(tmp_path / "x.png")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "not found" in proc.stderr and "Traceback" not in proc.stderr


def test_min_adv_card_out_dir(capsys, tmp_path, bundled):
    out = tmp_path / "out"
    code, _, err = run(capsys, "min-adv-card", str(EXAMPLES / "digit-7.png"), "--out", str(out))
    assert code == 0 and "proven minimal" in err
    result = json.loads((out / "result.json").read_text())
    for key in ("task", "model", "backend", "status", "objective", "bound", "original_label",
                "adversarial_label", "target", "time_s"):
        assert key in result
    assert result["status"] == "optimal" and result["task"] == "min-adv-card"
    adv = np.load(out / "adversarial.npy")
    assert adv.dtype == np.float32 and adv.shape == (28, 28, 1)
    from verify.data import read_image
    orig = read_image(EXAMPLES / "digit-7.png").reshape(28, 28, 1).astype(np.float32)
    assert np.count_nonzero(adv != orig) == result["objective"]
    assert (out / "adversarial.png").is_file() and (out / "figure.png").is_file()


def test_min_adv_all_targets_json(capsys, tmp_path, bundled):
    code, out, _ = run(capsys, "min-adv-linf", str(EXAMPLES / "digit-1.png"), "--model", "multiclass",
                       "--all-targets", "--json", "--out", str(tmp_path))
    rows = json.loads(out)
    assert code == 0 and len(rows) == 9 and all(r["status"] == "optimal" for r in rows)
    assert (tmp_path / "figure-target0.png").is_file() and (tmp_path / "adversarial-target9.npy").is_file()


def test_min_adv_sum_alias_and_certify(capsys, tmp_path, bundled):
    code, out, _ = run(capsys, "min-adv-sum", str(EXAMPLES / "digit-1.png"), "--model", "multiclass",
                       "--json")
    assert code == 0 and json.loads(out)["norm"] == "l2"
    code, out, _ = run(capsys, "certify", str(EXAMPLES / "digit-7.png"), "--eps", "0.005", "--json")
    assert code == 0 and json.loads(out)["status"] == "verified"
    code, out, _ = run(capsys, "certify", str(EXAMPLES / "digit-7.png"), "--pixels", "20",
                       "--out", str(tmp_path))
    assert code == 0 and json.loads((tmp_path / "result.json").read_text())["status"] == "counterexample"
    assert (tmp_path / "adversarial.npy").is_file()


def test_min_adv_bad_input(capsys):
    digit = str(EXAMPLES / "digit-7.png")
    for argv, expected in [
        (["min-adv-card", digit, "--target", "7"], "already predicts"),
        (["min-adv-card", digit, "--target", "10"], "not a class of multiclass; its classes are 0, 1,"),
        (["min-adv-l2", digit, "--backend", "highs"], "scip"),
        (["min-adv-card", digit, "--backend", "nope"], "unknown backend"),
        (["certify", digit], "exactly one budget"),
    ]:
        code, _, err = run(capsys, *argv)
        assert code == 1 and expected in err and "Traceback" not in err, (argv, err)


def test_min_adv_on_cnn(capsys, bundled):
    code, out, _ = run(capsys, "min-adv-linf", str(EXAMPLES / "digit-4.png"), "--model", "cnn", "--json")
    result = json.loads(out)
    assert code == 0 and result["status"] == "optimal" and result["model"] == "cnn"
