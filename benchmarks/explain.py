"""Minimal explanations (``verify.explain``) over test digits, with the seed-style method beside.

For each model and digit it records the subset-minimal explanation found by the default
method (batches, influence order, backend ``auto``): size, time, exact solver calls and how
each check was settled. Beside it, on the same digits:

* **index order** — the same destructive algorithm in the seed's pixel order. The result of
  the destructive algorithm depends only on the order (batches and cheap checks change how
  fast, not what), so this *is* the seed's explanation, computed fast; compare the sizes.
* **seed-style timing** (``--seed-digits``) — the seed's method itself: index order, one
  exact MIP per pixel, no cheap checks, HiGHS, stopped after ``--seed-time-limit`` seconds;
  its time for all pixels is extrapolated from the pixels it decided (labelled as such).
* **HiGHS only** (``--highs-digits``) — the default method with backend ``highs``.
* ``--minimum-digits`` — ``minimum=True`` (hitting sets) on that many digits of the first
  model: the minimum size or proven bounds beside the subset-minimal size.
* ``--engine auto|bab|mip`` — how the checks the cheap means leave open are settled
  (default ``auto``: α-CROWN, branch and bound, then the MIP). With an engine other than
  ``mip``, the first ``--mip-digits`` digits (default: all) also run with ``engine="mip"``
  in the same run, the ratio baseline (column "MIP path"). Each process first runs both
  (only the engine when ``--mip-digits 0``), untimed and cut off after
  ``_common.WARM_UP_S``, on its first digit, so that neither pays the process's warm-up in
  the timed runs.
* models: the bundled ones, or ``natural-256x2`` (784-256-256-10, the naturally trained MLP
  of the engine benchmark), e.g. ``--models natural-256x2 --eps 0.02``.

Every run appends to ``results/explain.jsonl`` (``--resume`` skips digits already there);
``--report`` rewrites ``results/explain.md``/``.json`` from that log.

    python benchmarks/explain.py --models twoclass multiclass --digits 10
    python benchmarks/explain.py --models cnn --digits 3 --seed-digits 0 --highs-digits 0 --resume
    python benchmarks/explain.py --models multiclass --eps 0.05 --digits 20 --engine auto
    python benchmarks/explain.py --report
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import RESULTS, WARM_UP_S, markdown_table, write_results  # noqa: E402
from min_adv import digits_for, load  # noqa: E402

LOG = RESULTS / "explain.jsonl"
TARGETS = {"twoclass": 20.0, "multiclass": 120.0, "cnn": 300.0}


def _summary(r) -> dict:
    return {"status": r.status, "size": r.size, "time_s": round(r.time_s, 3), "calls": r.calls,
            "checks": r.checks, "backend": r.backend,
            "exact_time_s": r.stats.get("exact_time_s"), "engine_time_s": r.stats.get("engine_time_s"),
            "mip_first_checks": r.stats.get("mip_first_checks")}


def _engine(r: dict) -> str:
    """A record's engine (records from before the option ran the MIP path)."""
    return r.get("engine", "mip")


def run(args) -> None:
    from verify import explain

    done = set()
    if args.resume and LOG.is_file():
        done = {(r["model"], r["digit"], r.get("eps"), _engine(r))
                for r in map(json.loads, LOG.read_text().splitlines()) if "kind" not in r}
    RESULTS.mkdir(exist_ok=True)
    for m_i, name in enumerate(args.models):
        model = load(name)
        images, ids = digits_for(name, args.start + args.digits, args.start)
        if args.engine != "mip" and len(images):
            for engine in (args.engine, "mip") if args.mip_digits != 0 else (args.engine,):
                explain(model, images[0], eps=args.eps, threads=1, engine=engine,
                        time_limit=WARM_UP_S)
        for k, (image, idx) in enumerate(zip(images, ids)):
            if (name, idx, args.eps, args.engine) in done:
                continue
            main = explain(model, image, eps=args.eps, threads=1, engine=args.engine,
                           time_limit=args.time_limit)
            rec = {"model": name, "digit": idx, "eps": args.eps, "label": main.original_label,
                   "engine": args.engine, **_summary(main)}
            if args.engine != "mip" and (args.mip_digits is None or k < args.mip_digits):
                rec["mip"] = _summary(explain(model, image, eps=args.eps, threads=1, engine="mip",
                                              time_limit=args.time_limit))
            if k < args.index_digits:
                index = explain(model, image, eps=args.eps, order="index", threads=1,
                                time_limit=args.index_time_limit)
                rec["index_order"] = _summary(index)
            if k < args.highs_digits:
                rec["highs"] = _summary(explain(model, image, eps=args.eps, backend="highs", threads=1))
            if k < args.seed_digits:
                seed = explain(model, image, eps=args.eps, method="seed", order="index", backend="highs",
                               threads=1, time_limit=args.seed_time_limit)
                decided = seed.stats["free_pixels"] + len(seed.witnesses)
                movable = seed.stats["free_pixels"] + seed.size
                rec["seed"] = {**_summary(seed), "decided": decided, "pixels": movable,
                               "extrapolated_s": (seed.time_s * movable / decided) if decided else None}
            if m_i == 0 and k < args.minimum_digits:
                mini = explain(model, image, eps=args.eps, minimum=True, threads=1,
                               time_limit=args.minimum_time_limit, engine=args.engine)
                rec["minimum"] = {**mini.minimum, "subset_minimal_size": mini.size,
                                  "time_s": round(mini.time_s, 2)}
                rec["minimum"].pop("pixels", None)
            with LOG.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            extra = "".join(f" | {key} {rec[key]['time_s']:.1f}s" for key in ("mip", "highs", "seed") if key in rec)
            index_txt = f" (index order {rec['index_order']['size']:3})" if "index_order" in rec else ""
            print(f"{name:12} digit {idx:3} {main.status:10} size {main.size:3}{index_txt} "
                  f"in {main.time_s:6.1f}s, {main.calls} calls{extra}",
                  file=sys.stderr, flush=True)


def _index_size(r) -> str:
    io = r.get("index_order")
    if io is None:
        return ""
    return str(io["size"]) if io["status"] == "minimal" else f"{io['size']} ({io['status']} {io['time_s']:.0f} s)"


def _median(values):
    return statistics.median(values) if values else ""


def report(args) -> None:
    recs = {}
    for line in LOG.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            recs[(r["model"], r["digit"], r.get("eps"), _engine(r))] = r        # newest wins
    rows, summary, seed_rows, min_rows = [], [], [], []
    by_model: dict = {}
    for r in recs.values():
        by_model.setdefault((r["model"], r.get("eps"), _engine(r)), []).append(r)
    for (name, eps, engine), rs in by_model.items():
        rs.sort(key=lambda r: r["digit"])
        for r in rs:
            c = r["checks"]
            rows.append([name, "full" if eps is None else eps, engine, r["digit"], r["label"], r["status"],
                         r["size"], _index_size(r), r["time_s"], r["calls"], c["bounds"],
                         c["attack"], c["witness"], c.get("alpha-crown", 0), c.get("bab", 0),
                         c["exact"], r["backend"],
                         r["highs"]["time_s"] if "highs" in r else "",
                         f"{r['mip']['time_s']:.2f} (size {r['mip']['size']})" if "mip" in r else ""])
            if "seed" in r:
                s = r["seed"]
                seed_rows.append([name, r["digit"], s["time_s"], f"{s['decided']}/{s['pixels']}",
                                  s["calls"], s["time_s"] / max(s["calls"], 1), s["extrapolated_s"],
                                  r["time_s"], s["extrapolated_s"] / r["time_s"] if s["extrapolated_s"] else "",
                                  _index_size(r), r["size"]])
            if "minimum" in r:
                m = r["minimum"]
                min_rows.append([name, r["digit"], m["subset_minimal_size"], m["size"], m["lower_bound"],
                                 m["status"], m["rounds"], m["sets"], m.get("seeded_sets", ""),
                                 m["time_s"]])
        times = [r["time_s"] for r in rs]
        target = TARGETS.get(name)
        med = statistics.median(times)
        mips = [r["mip"] for r in rs if "mip" in r]
        mip_txt = ""
        if mips:
            mip_txt = (f"mean {statistics.mean(m['time_s'] for m in mips):.2f} s, max "
                       f"{max(m['time_s'] for m in mips):.2f} s, ×"
                       f"{statistics.mean(m['time_s'] for m in mips) / max(statistics.mean(times), 1e-3):.2f}")
        summary.append([name, "full" if eps is None else eps, engine, len(rs),
                        sum(r["status"] == "minimal" for r in rs), statistics.mean(times), med, max(times),
                        statistics.mean(r["size"] for r in rs), mip_txt,
                        statistics.median(r["size"] for r in rs),
                        _median([r["index_order"]["size"] for r in rs
                                 if r.get("index_order", {}).get("status") == "minimal"]),
                        statistics.median(r["calls"] for r in rs),
                        f"≤ {target:.0f} s: {'met' if med <= target else 'MISSED'}" if target and eps is None else ""])
    table = ("## Summary\n\n" + markdown_table(
        ["model", "range", "engine", "digits", "minimal (proven)", "mean s", "median s", "max s",
         "mean size", "MIP path, same digits (mean, max, mean ratio MIP/ours)", "median size",
         "median size, index order (completed)", "median exact calls", "target"], summary)
        + "\n\n## Per digit (default: batches, influence order, backend auto)\n\n" + markdown_table(
        ["model", "range", "engine", "digit", "label", "status", "size", "size (index order)", "time s",
         "exact calls", "bounds", "attack", "witness", "alpha-crown", "bab", "exact", "backend",
         "time s (HiGHS)", "MIP path s"], rows))
    if seed_rows:
        table += "\n\n## Seed-style method (index order, one exact HiGHS MIP per pixel), time-limited\n\n" + \
            markdown_table(["model", "digit", "ran s", "pixels decided", "MIPs", "s per MIP",
                            "extrapolated s (all pixels)", "ours s", "speed-up (extrapolated)",
                            "seed size", "our size"], seed_rows)
    if min_rows:
        table += "\n\n## Minimum explanations (`minimum=True`, hitting sets), time-limited\n\n" + \
            markdown_table(["model", "digit", "subset-minimal size", "best size", "proven lower bound",
                            "status", "master rounds", "sets", "seeded sets", "time s"], min_rows)
    notes = ("Checks: `bounds` = proven robust by interval/symbolic bounds; `attack` = a flip found "
             "by gradient ascent or the single-pixel sweep; `witness` = an earlier witness already "
             "lies in the region; `exact` = settled by an exact MIP (calls counts each solve). "
             "'seed size' is the explanation for index order, computed by the fast method: the "
             "destructive algorithm's answer depends only on the order, so it is the seed's answer. "
             "The seed-style time for all pixels is extrapolated linearly from the pixels it decided "
             "within its time limit; later checks (more free pixels) are usually slower, so the "
             "extrapolation flatters the seed.")
    write_results(LOG.stem, "Minimal explanations", "python benchmarks/explain.py --report", table,
                  list(recs.values()), notes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["twoclass", "multiclass"])
    p.add_argument("--digits", type=int, default=10)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--eps", type=float, default=None)
    p.add_argument("--index-digits", type=int, default=3)
    p.add_argument("--index-time-limit", type=float, default=120.0)
    p.add_argument("--seed-digits", type=int, default=2)
    p.add_argument("--seed-time-limit", type=float, default=60.0)
    p.add_argument("--highs-digits", type=int, default=2)
    p.add_argument("--minimum-digits", type=int, default=3)
    p.add_argument("--minimum-time-limit", type=float, default=60.0)
    p.add_argument("--engine", choices=("auto", "bab", "mip"), default="auto",
                   help="how open checks are settled (the MIP path runs beside as the baseline)")
    p.add_argument("--mip-digits", type=int, default=None,
                   help="digits per model also run with engine='mip' (default: all)")
    p.add_argument("--time-limit", type=float, default=None, help="per explanation (s)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--report", action="store_true", help="only rewrite the report from the log")
    p.add_argument("--name", default="explain",
                   help="records in results/NAME.jsonl, report in results/NAME.md (e.g. a smoke run)")
    args = p.parse_args()
    global LOG
    LOG = RESULTS / f"{args.name}.jsonl"
    if not args.report:
        run(args)
    report(args)


if __name__ == "__main__":
    main()
