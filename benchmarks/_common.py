"""Shared helpers for the benchmark scripts: timing and writing result tables."""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
#: Seconds of each untimed warm-up run before a timed comparison of engines in one process:
#: without it the first timed query pays the process's warm-up (JIT compilation, solver
#: loading) under the engine that runs first alone, and the one run second looks faster
#: than it is (measured on multiclass explanations at ε = 0.05, warm, alternating order
#: over 5 digits: auto 59.4 s, mip 58.8 s; the cold first-digit comparisons said ×0.8).
WARM_UP_S = 10.0


def machine() -> str:
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def markdown_table(headers: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, title: str, command: str, table: str, data, notes: str = "") -> Path:
    """Print the table and write ``results/<name>.md`` (table + how it was made) and ``.json``."""
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    text = (f"# {title}\n\nProduced by `{command}` on {stamp} ({machine()}).\n\n{table}\n"
            + (f"\n{notes}\n" if notes else ""))
    path = RESULTS / f"{name}.md"
    path.write_text(text)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1, default=str))
    print(table)
    print(f"\nwritten: {path}")
    return path


def append_record(log: Path, rec: dict) -> None:
    """Append one finished query to a JSONL log at once (a long run loses nothing)."""
    log.parent.mkdir(exist_ok=True)
    with log.open("a") as f:
        f.write(json.dumps(rec, default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n")


def read_records(log: Path) -> list[dict]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def write_robustness_instances(folder: Path, model, onnx_name: str, epsilons, digits: int,
                               timeout: float) -> tuple[list[str], list[int]]:
    """VNN-COMP-style L∞ robustness properties of ``model`` (a loaded verify model) for the
    first ``digits`` correctly classified test digits at each ε, and ``instances.csv`` naming
    them with ``onnx_name``. Returns the instance rows and the chosen test indices."""
    from verify.data import test_digits
    from verify.vnnlib import write_robustness_property

    x, y = test_digits(200)
    chosen = [i for i in range(len(x)) if model.label(x[i]) == y[i]][:digits]
    rows = []
    for eps in epsilons:
        for i in chosen:
            name = f"prop_{i}_eps_{eps:.3f}.vnnlib"
            write_robustness_property(folder / name, x[i].ravel(), int(y[i]), eps,
                                      model.network.num_outputs)
            rows.append(f"{onnx_name},{name},{timeout:g}")
    (folder / "instances.csv").write_text("\n".join(rows) + "\n")
    return rows, chosen
