"""``verify bench --workers 2`` against ``--workers 1`` on the same queries.

Runs the whole command (``python -m verify.cli bench``: start-up, model loading in each
worker, the queries, writing results.jsonl) on 20 card queries of the twoclass model (test
digits 0..19), each time into a fresh folder, ``--repeats`` times per worker count, and
reports the best and median wall time and the ratio workers=1 / workers=2 (> 1: the
workers help). Solver threads are left at the default (cores // workers) unless
``--threads`` is given. Run it on an otherwise idle machine:

    python benchmarks/bench_workers.py                    # 20 queries, workers 1 and 2, 3 repeats
    python benchmarks/bench_workers.py --threads 1 --name bench_workers_threads1

Writes ``results/bench_workers.md`` and ``.json`` (or ``results/NAME.*`` with ``--name``).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def config_text(model: str, digits: int, time_limit: float, threads: int | None) -> str:
    text = (f'models = ["{model}"]\nbackends = ["highs"]\ntasks = ["min-adv-card"]\n'
            f"images = {{test = [0, {digits}]}}\ntime_limit = {time_limit}\n")
    return text + (f"threads = {threads}\n" if threads else "")


def run_once(config: Path, out: Path, workers: int) -> tuple[float, list[dict]]:
    cmd = [sys.executable, "-m", "verify.cli", "bench", str(config), "--out", str(out),
           "--workers", str(workers), "--quiet"]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line]
    return wall, records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="twoclass")
    ap.add_argument("--digits", type=int, default=20, help="test digits 0..N-1 (default 20)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=None, help="solver threads per query (default: cores // workers)")
    ap.add_argument("--name", default="bench_workers", help="results/NAME.md and .json (default bench_workers)")
    args = ap.parse_args()

    walls: dict[int, list[float]] = {w: [] for w in args.workers}
    solve: dict[int, list[float]] = {w: [] for w in args.workers}
    statuses: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench_workers.toml"
        config.write_text(config_text(args.model, args.digits, args.time_limit, args.threads))
        for rep in range(args.repeats):
            for w in args.workers:          # interleaved, so drift in machine load hits both
                wall, records = run_once(config, Path(tmp) / f"w{w}-r{rep}", w)
                walls[w].append(wall)
                solve[w].append(sum(r["time_s"] for r in records))
                statuses[w] = {r["id"]: (r["status"], r["objective"]) for r in records}
                print(f"workers {w} repeat {rep}: {wall:.2f} s", file=sys.stderr)
    base = min(walls[args.workers[0]])
    rows = [[w, args.digits, min(walls[w]), statistics.median(walls[w]), statistics.median(solve[w]),
             base / min(walls[w])] for w in args.workers]
    table = markdown_table(["workers", "queries", "best wall (s)", "median wall (s)",
                            "median sum of query times (s)", f"speed-up vs workers={args.workers[0]}"], rows)
    same = len({tuple(sorted(s.items())) for s in statuses.values()}) == 1
    notes = (f"{args.model} min-adv-card on test digits 0..{args.digits - 1}, HiGHS, time limit "
             f"{args.time_limit:g} s, solver threads {args.threads or 'cores // workers'}; wall time of the "
             f"whole `verify bench` command (start-up and per-worker model loading included), best of "
             f"{args.repeats}. Same statuses and objectives for every worker count: {same}.")
    command = "python benchmarks/bench_workers.py " + " ".join(sys.argv[1:])
    write_results(args.name, "verify bench: local worker processes", command.strip(), table,
                  {"walls": walls, "solve_sums": solve, "args": vars(args), "same_results": same}, notes)


if __name__ == "__main__":
    main()
