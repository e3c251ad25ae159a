"""Summaries of benchmark records: per (model, task, backend) counts and times, as a table."""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Iterable

#: Statuses that settle a query (a proof, a counterexample, or a working attack).
SOLVED = ("optimal", "infeasible", "verified", "counterexample", "minimal", "success")
TIMEOUT = ("time_limit", "unknown")


def is_solved(r: dict) -> bool:
    return r.get("status") in SOLVED


def summary_rows(records: Iterable[dict]) -> list[dict]:
    """Per (model, task, backend): queries, solved, timeouts, errors, median/mean/max time."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["model"], r.get("task_key", r["task"]), r["backend"]), []).append(r)
    rows = []
    for (model, task, backend), rs in groups.items():
        times = [r["time_s"] for r in rs if r.get("time_s") is not None]
        rows.append({"model": Path(model).name, "task": task, "backend": backend, "queries": len(rs),
                     "solved": sum(map(is_solved, rs)),
                     "timeouts": sum(r.get("status") in TIMEOUT for r in rs),
                     "errors": sum(r.get("status") == "error" for r in rs),
                     "median_s": statistics.median(times) if times else None,
                     "mean_s": statistics.fmean(times) if times else None,
                     "max_s": max(times) if times else None})
    return rows


SUMMARY_COLUMNS = ("model", "task", "backend", "queries", "solved", "timeouts", "errors",
                   "median_s", "mean_s", "max_s")


def format_table(rows: list[dict], markdown: bool = False) -> str:
    def cell(v):
        if v is None:
            return "-"
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    cells = [[cell(r[c]) for c in SUMMARY_COLUMNS] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "|".join("---" for _ in SUMMARY_COLUMNS) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(SUMMARY_COLUMNS)]
    line = lambda c: "  ".join(s.ljust(w) if i < 3 else s.rjust(w)  # noqa: E731
                               for i, (s, w) in enumerate(zip(c, widths)))
    return "\n".join([line(SUMMARY_COLUMNS)] + [line(c) for c in cells])
