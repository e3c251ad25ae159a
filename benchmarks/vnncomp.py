"""A VNN-COMP-style benchmark on the bundled ``mlp-256x2``: generate it, decide it, report.

``--generate`` writes ``benchmarks/vnncomp/mlp-256x2/``: the model exported to ONNX
(``verify export``), one VNN-COMP robustness property per test digit and ε (input box
``[x − ε, x + ε] ∩ [0, 1]``, unsafe when some other output reaches the label's:
``(or (and (>= Y_j Y_label)) ...)``), and ``instances.csv`` (onnx, vnnlib, timeout). The
digits are the first ``--digits`` bundled test digits that the model classifies correctly (as
VNN-COMP skips misclassified images), at ε = 0.03 and 0.05.

Then every instance is decided by ``verify.vnncomp.run_vnncomp`` (the same code as
``verify vnncomp DIR``), from a fresh results file, and each ``sat`` counterexample is checked
again here, independently: read back from its VNN-COMP file, inside the box, and the
property's output condition holds on onnxruntime's outputs. The table lists each instance
with its verdict, how it was decided and the time; the summary gives the decided count, the
median and the maximum time::

    python benchmarks/vnncomp.py --generate              # write the benchmark folder
    python benchmarks/vnncomp.py                         # decide it, write results/vnncomp.md

Writes ``results/vnncomp.md`` / ``.json``, ``results/vnncomp-results.csv`` and the
counterexamples in ``results/vnncomp-results-counterexamples/``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results, write_robustness_instances  # noqa: E402

HERE = Path(__file__).resolve().parent
FOLDER = HERE / "vnncomp" / "mlp-256x2"
EPSILONS = (0.03, 0.05)


def generate(folder: Path, model_name: str, digits: int, timeout: float) -> None:
    from verify.models import export_model, load_model

    folder.mkdir(parents=True, exist_ok=True)
    model = load_model(model_name)
    onnx_name = f"{model.name}.onnx"
    export_model(model, folder / onnx_name)
    rows, chosen = write_robustness_instances(folder, model, onnx_name, EPSILONS, digits, timeout)
    print(f"wrote {len(rows)} instances ({len(chosen)} digits: test #{chosen}) to {folder}")


def recheck(folder: Path, row: dict, results_dir: Path) -> bool:
    """The counterexample file, read back, lies in the box and satisfies the property on
    onnxruntime's outputs (independently of the verdict code)."""
    from verify.onnx import OnnxReference
    from verify.vnnlib import parse_vnnlib, read_counterexample

    x, _ = read_counterexample(results_dir / row["counterexample"])
    prop = parse_vnnlib(folder / row["vnnlib"])
    y = OnnxReference(folder / row["onnx"]).outputs(x[None].astype(np.float32))[0].astype(np.float64)
    for case in prop.cases:
        inside = np.all(x >= case.lower) and np.all(x <= case.upper)
        if inside and any(np.all(a @ y <= b) for a, b in case.disjuncts):
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generate", action="store_true", help="write the benchmark folder and stop")
    ap.add_argument("--model", default="mlp-256x2", help="bundled name or .keras path (with --generate)")
    ap.add_argument("--digits", type=int, default=15)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per instance (instances.csv)")
    ap.add_argument("--folder", type=Path, default=FOLDER)
    ap.add_argument("--backend", default=None, help="MIP solver (default highs)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--name", default="vnncomp", help="results/NAME.md, NAME-results.csv (default vnncomp)")
    args = ap.parse_args()
    if args.generate:
        generate(args.folder, args.model, args.digits, args.timeout)
        return

    from verify.vnncomp import run_vnncomp

    results = HERE / "results" / f"{args.name}-results.csv"
    results.unlink(missing_ok=True)
    for old in (results.parent / f"{results.stem}-counterexamples").glob("*.txt"):
        old.unlink()
    t0 = time.perf_counter()

    def progress(inst, row):
        print(f"{inst.vnnlib}: {row['verdict']} by {row['method'] or '-'} in {row['time_s']} s"
              + (f" ({row['error']})" if row["error"] else ""), flush=True)

    rows = run_vnncomp(args.folder, results, backend=args.backend, threads=args.threads,
                       progress=progress)
    total = time.perf_counter() - t0
    table_rows, rechecked = [], 0
    for r in rows:
        ok = recheck(args.folder, r, results.parent) if r["verdict"] == "sat" else None
        rechecked += bool(ok)
        table_rows.append([r["vnnlib"], r["verdict"], r["method"] or "—", float(r["time_s"] or "nan"),
                           {True: "yes", False: "NO", None: ""}[ok]])
    decided = [float(r["time_s"]) for r in rows if r["verdict"] in ("sat", "unsat")]
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("sat", "unsat", "timeout", "unknown", "error")}
    table = markdown_table(["instance", "verdict", "decided by", "time (s)", "counterexample re-checked"],
                           table_rows)
    median = statistics.median(decided) if decided else float("nan")
    top = max(decided) if decided else float("nan")
    summary = markdown_table(
        ["instances", "decided", "sat", "unsat", "timeout", "unknown", "error", "median s (decided)",
         "max s (decided)", "within 120 s", "wall s"],
        [[len(rows), len(decided), counts["sat"], counts["unsat"], counts["timeout"], counts["unknown"],
          counts["error"], median, top, sum(t <= 120 for t in decided), total]])
    notes = (f"{args.folder.name} exported to ONNX; VNN-COMP robustness properties at ε = "
             f"{', '.join(map(str, EPSILONS))} for the first correctly classified test digits "
             f"(`--generate`); each instance decided by `verify.vnncomp.run_vnncomp` (attack, then "
             f"interval/symbolic/LP bounds, then a feasibility MIP on HiGHS), time per instance "
             f"including bounds and model loading; {rechecked} of {counts['sat']} sat "
             f"counterexamples re-read from their VNN-COMP files and confirmed by onnxruntime here.\n\n"
             f"## Per instance\n\n{table}")
    write_results(args.name, f"VNN-COMP-style benchmark: {args.folder.name}",
                  "python benchmarks/vnncomp.py " + " ".join(sys.argv[1:]), summary,
                  {"rows": rows, "counts": counts, "median_decided_s": median, "max_decided_s": top},
                  notes)


if __name__ == "__main__":
    main()
