"""``verify report``: a Markdown summary and plots of a benchmark run's ``results.jsonl``.

Writes ``report.md`` (per model/task/backend: solved, timeouts, errors, median/mean/max
time), ``cactus.png`` (queries solved within a time, per backend and task),
``distances.png`` (distribution of the minimal distances per model and task) and, where the
same images were both attacked and solved exactly in the same norm, ``ratios.png``
(attack distance / proven minimum).
"""
from __future__ import annotations

import os
from pathlib import Path

from .bench import RESULTS_FILE, format_table, is_solved, latest, read_results, summary_rows
from .errors import InvalidInputError


def _label(r: dict) -> str:
    return f"{Path(r['model']).name} {r.get('task_key', r['task'])}"


def attack_ratios(records: list[dict]) -> dict[str, list[float]]:
    """``model method/norm`` → attack distance / proven minimum, over images with both."""
    exact = {}
    for r in records:
        if r["task"].startswith("min-adv-") and r.get("status") == "optimal" and r.get("objective"):
            if (r.get("params") or {}).get("target") is None:
                exact[(r["model"], r["task"][len("min-adv-"):], r["image"])] = r["objective"]
    ratios: dict[str, list[float]] = {}
    for r in records:
        if r["task"] != "attack" or r.get("status") != "success" or r.get("objective") is None:
            continue
        p = r.get("params") or {}
        norm = p.get("norm", "linf")
        best = exact.get((r["model"], norm, r["image"]))
        if best:
            key = f"{Path(r['model']).name} {p.get('method', 'pgd')}/{norm}"
            ratios.setdefault(key, []).append(r["objective"] / best)
    return ratios


def write_report(results: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Write the report next to ``results`` (a results.jsonl or its folder) or into ``out_dir``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = Path(results)
    if results.is_dir():
        results = results / RESULTS_FILE
    if not results.is_file():
        raise InvalidInputError(f"{results} does not exist (give a results.jsonl or its folder)")
    records = list(latest(read_results(results)).values())
    if not records:
        raise InvalidInputError(f"{results} holds no results")
    out = Path(out_dir) if out_dir else results.parent
    out.mkdir(parents=True, exist_ok=True)
    written = []

    # cactus: per (backend, task) the sorted times of solved queries
    fig, ax = plt.subplots(figsize=(6, 4))
    series: dict[str, list[float]] = {}
    for r in records:
        if is_solved(r) and r.get("time_s") is not None:
            series.setdefault(f"{r['backend']}: {_label(r)}", []).append(max(r["time_s"], 1e-4))
    for name, times in sorted(series.items()):
        times.sort()
        ax.step(range(1, len(times) + 1), times, where="post", label=name, marker=".")
    ax.set_xlabel("queries solved")
    ax.set_ylabel("time per query (s)")
    ax.set_yscale("log")
    ax.set_title("Cactus plot: solved within a time")
    if series:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "cactus.png", dpi=110)
    plt.close(fig)
    written.append(out / "cactus.png")

    # minimal distances of the exact min-adv tasks
    dist: dict[str, list[float]] = {}
    for r in records:
        if r["task"].startswith("min-adv-") and r.get("status") == "optimal" and r.get("objective") is not None:
            dist.setdefault(_label(r), []).append(r["objective"])
    if dist:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(list(dist.values()), bins=20, label=list(dist), histtype="step" if len(dist) > 1 else "bar")
        ax.set_xlabel("proven minimal distance (card: pixels; l2: squared)")
        ax.set_ylabel("images")
        ax.set_title("Minimal adversarial distances")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "distances.png", dpi=110)
        plt.close(fig)
        written.append(out / "distances.png")

    ratios = attack_ratios(records)
    if ratios:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.boxplot(list(ratios.values()))
        ax.set_xticks(range(1, len(ratios) + 1), list(ratios), rotation=30, ha="right", fontsize=7)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_ylabel("attack distance / proven minimum")
        ax.set_title("Attacks beside the exact minimum")
        fig.tight_layout()
        fig.savefig(out / "ratios.png", dpi=110)
        plt.close(fig)
        written.append(out / "ratios.png")

    lines = [f"# Benchmark report: `{results}`", "",
             f"{len(records)} queries. Solved: a proof or a settled answer (optimal, infeasible, "
             "verified, counterexample, minimal explanation, successful attack). Timeouts: "
             "time_limit / unknown. Times are the tasks' own (seconds).", "",
             format_table(summary_rows(records), markdown=True), ""]
    if dist:
        lines += ["## Minimal distances", "", "| model task | images | min | median | max |",
                  "|---|---|---|---|---|"]
        for k, v in dist.items():
            v = sorted(v)
            lines.append(f"| {k} | {len(v)} | {v[0]:g} | {v[len(v) // 2]:g} | {v[-1]:g} |")
        lines.append("")
    if ratios:
        lines += ["## Attack / exact ratios", "", "| attack | images | median | max |", "|---|---|---|---|"]
        for k, v in ratios.items():
            v = sorted(v)
            lines.append(f"| {k} | {len(v)} | {v[len(v) // 2]:.3g} | {v[-1]:.3g} |")
        lines.append("")
    lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in written] + [""]
    (out / "report.md").write_text("\n".join(lines))
    return [out / "report.md"] + written
