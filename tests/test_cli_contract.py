"""The output contract, checked on the real console script in a subprocess.

Solver libraries written in C/C++ print to file descriptor 1 (highspy ≥ 1.16 prints a banner
when a ``Highs`` object is made); pytest's capture of ``sys.stdout`` never sees that, so only a
subprocess shows what a user's pipe receives. Every command with ``--json`` must print exactly
one JSON document on stdout, and ``certify --vnnlib`` must print the verdict as its first line.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIGIT = str(ROOT / "examples" / "images" / "digit-7.png")
VNNCOMP = ROOT / "benchmarks" / "vnncomp" / "mlp-256x2"
VERIFY = Path(sys.executable).with_name("verify")


def run_cli(*argv: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The installed ``verify`` console script, as a user's shell runs it."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([str(VERIFY), *argv], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def one_json_document(proc: subprocess.CompletedProcess):
    assert proc.returncode == 0, proc.stderr[-2000:]
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        pytest.fail(f"stdout is not one JSON document ({exc}); it starts with {proc.stdout[:200]!r}")


JSON_COMMANDS = {
    "models": ["models", "--json"],
    "info": ["info", "cnn", "--json"],
    "predict": ["predict", DIGIT, "--model", "twoclass", "--json"],
    "backends": ["backends", "--json"],
    "min-adv-card": ["min-adv-card", DIGIT, "--model", "multiclass", "--json", "--time-limit", "60"],
    "min-adv-l1": ["min-adv-l1", DIGIT, "--model", "twoclass", "--json", "--time-limit", "60"],
    "min-adv-linf": ["min-adv-linf", DIGIT, "--model", "twoclass", "--json", "--time-limit", "60"],
    "min-adv-l2": ["min-adv-l2", DIGIT, "--model", "twoclass", "--json", "--time-limit", "30"],
    "min-adv-all-targets": ["min-adv-linf", DIGIT, "--model", "multiclass", "--all-targets",
                            "--json", "--time-limit", "20"],
    "certify-eps": ["certify", DIGIT, "--model", "multiclass", "--eps", "0.02", "--json",
                    "--backend", "highs"],
    "certify-pixels": ["certify", DIGIT, "--model", "multiclass", "--pixels", "2", "--json",
                       "--backend", "highs"],
    "explain": ["explain", DIGIT, "--model", "twoclass", "--eps", "0.02", "--json",
                "--backend", "highs", "--time-limit", "60", "--quiet"],
    "attack": ["attack", DIGIT, "--model", "multiclass", "--method", "pgd", "--eps", "0.2",
               "--json"],
    "evidence": ["evidence", DIGIT, "--model", "judge-6px", "--claim", "3", "--pixels", "4",
                 "--json", "--time-limit", "60"],
    "compare": ["compare", DIGIT, "--model", "twoclass", "--norm", "linf", "--methods",
                "fgsm,pgd", "--json", "--time-limit", "30", "--quiet"],
}


@pytest.mark.parametrize("name", sorted(JSON_COMMANDS))
def test_json_commands_print_one_document(name):
    doc = one_json_document(run_cli(*JSON_COMMANDS[name]))
    assert doc, f"{name}: empty JSON document"
    if name.startswith(("min-adv", "certify", "explain")):
        items = doc if isinstance(doc, list) else [doc]
        assert all("status" in item for item in items)


def test_encode_json_and_file(tmp_path):
    out = tmp_path / "query.mps"
    doc = one_json_document(run_cli("encode", "multiclass", DIGIT, "--task", "min-adv-card",
                                    "--out", str(out), "--json"))
    assert out.is_file() and out.stat().st_size > 0 and isinstance(doc, dict)


def test_certify_vnnlib_verdict_is_first_line(tmp_path):
    prop = VNNCOMP / "prop_0_eps_0.030.vnnlib"
    proc = run_cli("certify", "--model", str(VNNCOMP / "mlp-256x2.onnx"), "--vnnlib", str(prop),
                   "--time-limit", "60")
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = proc.stdout.splitlines()[0] if proc.stdout else ""
    assert first in ("sat", "unsat", "timeout", "unknown"), proc.stdout[:200]
    doc = one_json_document(run_cli("certify", "--model", str(VNNCOMP / "mlp-256x2.onnx"),
                                    "--vnnlib", str(prop), "--time-limit", "60", "--json"))
    assert doc["verdict"] == first


def test_vnncomp_json_summary(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    with open(VNNCOMP / "instances.csv", newline="") as f:
        onnx, vnnlib, timeout = next(csv.reader(f))
    shutil.copy(VNNCOMP / onnx, bench / onnx)
    shutil.copy(VNNCOMP / vnnlib, bench / vnnlib)
    (bench / "instances.csv").write_text(f"{onnx},{vnnlib},{timeout}\n")
    doc = one_json_document(run_cli("vnncomp", str(bench), "--json", "--quiet",
                                    "--timeout-cap", "60"))
    assert doc["instances"] == 1


def test_plain_output_has_no_solver_banner():
    """Without --json too, stdout holds only the result lines."""
    proc = run_cli("min-adv-card", DIGIT, "--model", "multiclass", "--time-limit", "60")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HiGHS" not in proc.stdout and "Copyright" not in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("multiclass")


def test_compile_cache_goes_to_the_cache_dir_and_can_be_switched_off(tmp_path):
    """The CLI points JAX's persistent compilation cache at $VERIFY_CACHE_DIR/jax (created),
    and leaves JAX alone with VERIFY_CACHE_DIR=off or an unwritable place."""
    probe = ("import os; from verify.cli.app import _use_compile_cache; _use_compile_cache(); "
             "print(os.environ.get('JAX_COMPILATION_CACHE_DIR', '-'))")

    def cache_dir(value: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
        env["VERIFY_CACHE_DIR"] = value
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()

    assert cache_dir(str(tmp_path / "c")) == str(tmp_path / "c" / "jax")
    assert (tmp_path / "c" / "jax").is_dir()
    assert cache_dir("off") == "-"
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cache_dir(str(blocker)) == "-"


def test_python_api_keeps_solver_banner_off_stdout():
    """From Python too, a solve leaves the caller's standard output to the caller: highspy's
    banner (printed on file descriptor 1 when a process makes its first ``Highs``) goes to
    stderr."""
    script = ("from verify.models import load_model\n"
              "from verify.data import test_digits\n"
              "from verify.tasks.adversarial import min_adversarial\n"
              "images, labels = test_digits(1)\n"
              "r = min_adversarial(load_model('multiclass'), images[0], norm='l1', engine='mip', time_limit=60)\n"
              "print('distance', r.objective)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("distance "), proc.stdout[:300]
    assert len(proc.stdout.splitlines()) == 1
