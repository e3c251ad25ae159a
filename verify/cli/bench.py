"""``verify bench`` (run a benchmark config, resumable, in parallel) and
``verify report`` (Markdown summary and plots of its results)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..tasks.table import bench_tasks
from . import args as a
from .output import Output, log


def cmd_bench(args: argparse.Namespace) -> int:
    from ..bench import format_table, load_config, run_bench, summary_rows
    from ..outdir import check_output_dir

    config = load_config(args.config)
    out = Path(args.out) if args.out else Path("bench-results") / Path(args.config).stem
    check_output_dir(out)   # before any query runs; run_bench then holds out/.lock
    run = run_bench(config, out, workers=args.workers or 1, scheduler=args.scheduler,
                    progress=not args.quiet)
    if not args.quiet:
        log(f"{run.total} queries: {run.skipped} already done, {run.ran} run in {run.wall_s:.1f} s; "
            f"results in {run.results_path}")
    Output(args, folder=False).emit(None, format_table(summary_rows(run.records)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import write_report

    paths = write_report(args.results, args.out)
    Output(args, folder=False).emit(None, "\n".join(map(str, paths)) if paths else None)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    tasks = "\n".join(f"  {name:<13s} {', '.join(params)}" for name, params in bench_tasks().items())
    p = sub.add_parser(
        "bench", help="run a benchmark config: models × tasks × images × backends, resumable",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run every query of a TOML/YAML config (models × tasks × images × backends × "
                    "repetitions) on local processes or a Dask cluster. Each finished query is "
                    "appended at once to DIR/results.jsonl; re-running the same command skips "
                    "the queries already there, so an interrupted run (Ctrl-C, kill) resumes "
                    "without losing or duplicating results. A progress bar with ETA goes to "
                    "stderr, a summary table to stdout.",
        epilog="config (TOML; see benchmarks/bench-example.toml):\n"
               "  models = [\"twoclass\"]\n"
               "  backends = [\"highs\"]\n"
               "  tasks = [\"min-adv-card\", {task = \"certify\", eps = 0.05, norm = \"linf\"},\n"
               "           {task = \"attack\", method = \"greedy\", norm = \"card\"}]\n"
               "  images = {test = [0, 10]}      # or {folder = \"examples/images\"}\n"
               "  time_limit = 10                # seconds per query\n"
               "  repetitions = 1\n\n"
               f"tasks (and the parameters a config may set for each):\n{tasks}\n\n"
               "examples:\n"
               "  verify bench benchmarks/bench-example.toml --workers 2 --out runs/example\n"
               "  verify bench benchmarks/bench-example.toml --scheduler tcp://10.0.0.5:8786\n"
               "  verify report runs/example")
    p.add_argument("config", help="benchmark config (.toml, or .yaml/.yml with pyyaml)")
    p.add_argument("--workers", "-j", type=a.workers, default=None, metavar="N",
                   help="local worker processes (default 1; solver threads per query = cores // N "
                        "unless the config sets threads)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask distributed cluster, e.g. tcp://host:8786 (needs dask[distributed])")
    p.add_argument("--out", "-o", default=None, metavar="DIR",
                   help="results folder (default ./bench-results/<config name>)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_bench)

    p = sub.add_parser(
        "report", help="Markdown summary and plots of a bench run's results.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write report.md (per model/task/backend: solved, timeouts, median/mean/max "
                    "time), cactus.png (solved vs time per backend), distances.png (minimal "
                    "distances) and ratios.png (attack / exact, when both were run).",
        epilog="example:\n  verify report runs/example            (or runs/example/results.jsonl)")
    p.add_argument("results", help="results.jsonl of `verify bench`, or its folder")
    p.add_argument("--out", "-o", default=None, metavar="DIR",
                   help="where to write the report (default: beside the results)")
    p.set_defaults(run=cmd_report)
