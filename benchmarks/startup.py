"""Start-up time of the command line: this tree against a git revision (default HEAD).

Measures, as whole processes, ``verify --help``, ``verify info cnn`` and ``verify predict
examples/images/digit-7.png --model cnn`` run as ``python -m verify.cli ...`` with the same
interpreter, once with this working tree first on ``PYTHONPATH`` and once with a temporary
``git worktree`` of the revision (removed afterwards). Each run checks that the package it
imports really is the tree it measures (not an editable install of another one).

One process at a time; the two trees alternate within each repetition, so a busy machine
slows both alike. Reported per command: the median and the minimum wall time over the
repetitions, the ratio of the medians (before / after), and which heavy libraries the
command imports (from ``python -X importtime``).

    .venv/bin/python benchmarks/startup.py                 # this tree vs HEAD, 7 repetitions
    .venv/bin/python benchmarks/startup.py --revision c48fbc6 --repeats 11
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "examples/images/digit-7.png"
COMMANDS = {
    "verify --help": ["--help"],
    "verify info cnn": ["info", "cnn"],
    f"verify predict {IMAGE} --model cnn": ["predict", IMAGE, "--model", "cnn"],
}
#: Where the rest of the time goes (profiled with cProfile and ``-X importtime``; see the notes).
ANALYSIS = """\
Where the time of `info` and `predict` goes: both need the Keras model (`info` reads the
network IR through Keras; `predict` also reports the label of the model's own runtime), and
Keras is nearly all of it. Importing Keras with JAX takes 1-2 s (it imports matplotlib
itself, for its plotting utilities). Loading a `.keras` file takes 3-4 s, most of it XLA
compiling JAX's threefry random-number kernels: Keras builds every layer with randomly
initialised weights (one compile per weight shape) before overwriting them with the stored
values. No public Keras option skips that initialisation, and a second reader of the
`.keras` format (config.json + model.weights.h5, whose weight paths follow Keras's own
internal naming) would duplicate the Keras reader for `info` alone, so this stays as it is;
`verify` itself now adds well under a second. `verify --help` and the commands that need no
model (`models`, `backends`) import no numpy, scipy or Keras any more."""
#: Libraries whose import is worth knowing about (top-level module names).
HEAVY = ("keras", "jax", "scipy", "matplotlib", "h5py", "highspy", "pyscipopt", "cplex",
         "onnx", "onnxruntime", "dask", "tqdm", "numpy")


def _env(tree: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("KERAS_BACKEND", "jax")
    return env


def check_tree(tree: Path) -> None:
    """Fail unless ``import verify`` with this environment imports ``tree``'s package."""
    out = subprocess.run([sys.executable, "-c", "import verify; print(verify.__file__)"],
                         cwd=tree, env=_env(tree), capture_output=True, text=True, check=True)
    where = Path(out.stdout.strip()).resolve()
    if tree.resolve() not in where.parents:
        raise SystemExit(f"importing verify from {tree} gives {where}: not the tree measured")


def run_once(tree: Path, args: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "verify.cli", *args], cwd=tree, env=_env(tree),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"`verify {' '.join(args)}` failed in {tree}:\n{proc.stderr[-2000:]}")
    return elapsed


def heavy_imports(tree: Path, args: list[str]) -> list[str]:
    """The libraries of :data:`HEAVY` that the command imports."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "verify.cli", *args],
                          cwd=tree, env=_env(tree), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seen = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip().split(".")[0]
            if name in HEAVY:
                seen.add(name)
    return [h for h in HEAVY if h in seen]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--revision", default="HEAD", help="git revision to compare with (default HEAD)")
    ap.add_argument("--repeats", type=int, default=7, help="runs per command and tree (default 7)")
    ap.add_argument("--note", default="", help="a line added to the notes (e.g. the machine load)")
    args = ap.parse_args()

    rev = subprocess.run(["git", "rev-parse", "--short", args.revision], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="verify-startup-"))
    before = tmp / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(before), rev], cwd=ROOT,
                   capture_output=True, check=True)
    try:
        trees = {"before": before, "after": ROOT}
        for tree in trees.values():
            check_tree(tree)
        times: dict = {(c, k): [] for c in COMMANDS for k in trees}
        for c, argv in COMMANDS.items():          # warm the caches (.pyc, disk) once per tree
            for tree in trees.values():
                run_once(tree, argv)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        for r in range(args.repeats):
            for c, argv in COMMANDS.items():
                for k, tree in (trees.items() if r % 2 == 0 else reversed(trees.items())):
                    times[(c, k)].append(run_once(tree, argv))
            print(f"repetition {r + 1}/{args.repeats} done", file=sys.stderr)
        load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        imports = {(c, k): heavy_imports(tree, argv) for c, argv in COMMANDS.items()
                   for k, tree in trees.items()}
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT,
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

    rows, data = [], []
    for c in COMMANDS:
        b, a = times[(c, "before")], times[(c, "after")]
        mb, ma = statistics.median(b), statistics.median(a)
        rows.append([f"`{c}`", f"{mb:.2f}", f"{min(b):.2f}", f"{ma:.2f}", f"{min(a):.2f}",
                     f"{mb / ma:.1f}x", ", ".join(imports[(c, "before")]) or "-",
                     ", ".join(imports[(c, "after")]) or "-"])
        data.append({"command": c, "before_s": b, "after_s": a, "median_before_s": mb,
                     "median_after_s": ma, "ratio": mb / ma,
                     "imports_before": imports[(c, "before")], "imports_after": imports[(c, "after")]})
    table = markdown_table(
        ["command", f"before ({rev}) median s", "before min s", "after median s", "after min s",
         "speed-up (medians)", "heavy imports before", "heavy imports after"], rows)
    notes = (f"{args.repeats} repetitions per command and tree, one process at a time, the two "
             f"trees alternating; after one warm-up run each. Load average (1 min) "
             f"{load:.2f} at the start, {load_after:.2f} at the end: the machine is shared, so "
             "absolute times vary between runs; compare the two columns of one run.")
    if args.note:
        notes += "\n\n" + args.note
    notes += "\n\n" + ANALYSIS
    write_results("startup", "Start-up time of the command line",
                  "python benchmarks/startup.py " + " ".join(sys.argv[1:]), table, data, notes)


if __name__ == "__main__":
    main()
