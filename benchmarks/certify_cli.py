"""`verify certify IMAGE --eps E` from the command line on a naturally trained network (issue 18:
"answers in a few seconds on most digits, with a progress line on long runs").

For each ε and each of the first ``--digits`` bundled test digits, the digit is written as a
PNG and the real console script runs on it in a subprocess (``--json``, ``--time-limit``), as
a user would. Recorded per query: the verdict, the stage that settled it, the time the command
reports (``time_s``: from reading the image to the verdict) and the wall time of the whole
process (interpreter start-up, imports and model loading included), and whether stderr carried
a branch-and-bound progress line (subdomains left, best bound). One query at a time: run it
on an otherwise idle machine.

    python benchmarks/certify_cli.py                        # natural-256x4, eps 0.01 0.02 0.03
    python benchmarks/certify_cli.py --eps 0.01 --digits 5 --time-limit 10
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import markdown_table, write_results  # noqa: E402

FEW_SECONDS = 5.0     # what "answers in a few seconds" is taken to mean (time_s)


def run_query(verify: Path, image: Path, model: Path, eps: float, time_limit: float) -> dict:
    """One `verify certify` process; its JSON verdict, times and whether it showed progress."""
    command = [str(verify), "certify", str(image), "--model", str(model), "--eps", str(eps),
               "--time-limit", str(time_limit), "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {"status": "error", "stage": "", "time_s": None, "wall_s": wall,
                "progress": False, "error": done.stderr.strip().splitlines()[-1:]}
    result = json.loads(done.stdout)
    return {"status": result["status"], "stage": result.get("stage") or result.get("method", ""),
            "time_s": result["time_s"], "wall_s": wall,
            "progress": "subdomains left" in done.stderr, "error": ""}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(HERE / "engine" / "natural-256x4" / "natural-256x4.keras"))
    p.add_argument("--eps", type=float, nargs="+", default=[0.01, 0.02, 0.03])
    p.add_argument("--digits", type=int, default=10)
    p.add_argument("--time-limit", type=float, default=30.0)
    args = p.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from verify.data import test_digits, write_png

    verify = Path(sys.executable).parent / "verify"
    images, labels = test_digits(args.digits)
    rows, records = [], []
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, image in enumerate(images):
            paths.append(write_png(image.reshape(28, 28), Path(folder) / f"digit{i}.png"))
        for eps in args.eps:
            for i, path in enumerate(paths):
                rec = {"eps": eps, "digit": i, "true_label": int(labels[i]),
                       **run_query(verify, path, Path(args.model), eps, args.time_limit)}
                records.append(rec)
                print(f"eps {eps} digit {i}: {rec['status']} {rec['stage']} "
                      f"{rec['time_s']} s (wall {rec['wall_s']:.1f} s)", file=sys.stderr)
            mine = [r for r in records if r["eps"] == eps]
            answered = [r for r in mine if r["status"] in ("verified", "counterexample")]
            quick = [r for r in answered if r["time_s"] <= FEW_SECONDS]
            long_runs = [r for r in mine if r["time_s"] is not None and r["time_s"] > FEW_SECONDS]
            rows.append([eps, len(mine), len(answered), len(quick),
                         sum(r["status"] == "verified" for r in answered),
                         sum(r["status"] == "counterexample" for r in answered),
                         statistics.median(r["time_s"] for r in answered) if answered else "—",
                         max(r["wall_s"] for r in answered) if answered else "—",
                         f"{sum(r['progress'] for r in long_runs)}/{len(long_runs)}"])
    table = markdown_table(
        ["ε (L∞)", "digits", "answered", f"answered in ≤ {FEW_SECONDS:g} s", "verified",
         "counterexample", "median time_s (answered)", "max wall s (answered)",
         f"progress line shown (runs > {FEW_SECONDS:g} s)"], rows)
    per_query = markdown_table(["ε", "digit", "status", "stage", "time_s", "wall s", "progress"],
                               [[r["eps"], r["digit"], r["status"], r["stage"], r["time_s"],
                                 r["wall_s"], r["progress"]] for r in records])
    write_results("certify_cli", f"`verify certify --eps` on {Path(args.model).stem}",
                  "python benchmarks/certify_cli.py " + " ".join(sys.argv[1:]), table, records,
                  notes=(f"Time limit {args.time_limit:g} s per query, one query at a time, the "
                         "real console script in a subprocess. `time_s` is the command's own "
                         "figure; the wall time adds interpreter start-up and model loading."
                         "\n\n" + per_query))


if __name__ == "__main__":
    main()
