"""Minimal-adversarial-example benchmark: time to a proven optimum, and speed-up over the
seed-style formulation and over OMLT, measured in the same run.

Configurations (the issue's targets are for a 2-core machine):

    twoclass          card, l2      untargeted   (test digits that are 1s or 3s)
    multiclass        card, l2      every target
    cnn               card          untargeted
    multiclass-large  card, l1, linf untargeted

For each, ``--digits`` test digits run through ``verify.min_adversarial`` (heuristic upper
bound → restricted region → progressive bounds → solver with cutoff). On the first
``--seed-queries`` queries of each configuration, the same query also runs **seed-style**:
bounds by interval arithmetic over the full [0, 1] box, no heuristic bound, no cutoff, same
solver, time-limited (``--seed-time-limit``). On the first ``--omlt-queries`` (dense models,
card/l1/linf) it runs through **OMLT** (Pyomo + HiGHS, OMLT's big-M ReLU formulation).
All solver calls use one thread.

Every finished query is appended to ``results/min_adv.jsonl`` at once; ``--report`` turns
the records into ``results/min_adv.md``. Examples:

    python benchmarks/min_adv.py --models twoclass multiclass cnn
    python benchmarks/min_adv.py --models multiclass-large --time-limit 60
    python benchmarks/min_adv.py --report
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, markdown_table, write_results  # noqa: E402

CONFIGS = {
    "twoclass": [("card", None), ("l2", None)],
    "multiclass": [("card", "all"), ("l2", "all")],
    "cnn": [("card", None)],
    "multiclass-large": [("card", None), ("l1", None), ("linf", None)],
}
LOG = RESULTS / "min_adv.jsonl"


def digits_for(model_name: str, count: int, start: int = 0):
    from verify.data import test_digits

    x, y = test_digits()
    if model_name == "twoclass":
        keep = (y == 1) | (y == 3)
        x, y = x[keep], y[keep]
    return x[start:count], list(range(start, count))


def record(rec: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    with LOG.open("a") as f:
        f.write(json.dumps(rec, default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n")


def run(args) -> None:
    from verify import load_model, min_adversarial

    done_keys = set()
    if args.resume and LOG.is_file():
        for line in LOG.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done_keys.add((r["model"], r["norm"], r["digit"], r["target"]))
    omlt = None
    if args.omlt_queries:
        try:
            from omlt_peer import omlt_min_adversarial as omlt
        except ImportError as exc:
            print(f"OMLT peer unavailable ({exc}); skipping it", file=sys.stderr)
    for name in args.models:
        model = load_model(name)
        images, ids = digits_for(name, args.digits, args.start)
        for norm, target in CONFIGS[name]:
            if args.norms and norm not in args.norms:
                continue
            done = 0
            for image, idx in zip(images, ids):
                label = model.label(image)
                targets = [t for t in range(model.network.num_classes) if t != label] if target == "all" else [None]
                for t in targets:
                    if (name, norm, idx, t) in done_keys:
                        done += 1
                        continue
                    r = min_adversarial(model, image, norm=norm, target=t, time_limit=args.time_limit,
                                        threads=1)
                    rec = {"model": name, "norm": norm, "every_target": target == "all", "digit": idx,
                           "target": t, "status": r.status, "objective": r.objective,
                           "bound": r.bound, "time_s": r.time_s, "backend": r.backend,
                           "heuristic_objective": r.stats.get("heuristic_objective"),
                           "settled_by": r.stats.get("settled_by"),
                           "unstable": [s["unstable"] for s in r.stats.get("bounds", [])]}
                    if done < args.seed_queries:
                        s = min_adversarial(model, image, norm=norm, target=t, threads=1,
                                            time_limit=args.seed_time_limit, use_heuristic=False,
                                            bound_stages=("interval",))
                        rec["seed"] = {"status": s.status, "objective": s.objective, "bound": s.bound,
                                       "time_s": s.time_s}
                    if omlt is not None and done < args.omlt_queries and norm != "l2" and name != "cnn":
                        o = omlt(model.keras, image.ravel(), norm, label, t, margin=r.margin,
                                 time_limit=args.seed_time_limit)
                        rec["omlt"] = {k: o.get(k) for k in ("status", "objective", "bound", "time_s")}
                    record(rec)
                    done += 1
                    extra = "".join(f" | {k} {rec[k]['status']} {rec[k]['time_s']:.1f}s"
                                    for k in ("seed", "omlt") if k in rec)
                    print(f"{name:16} {norm:5} digit {idx:3} target {t} {r.status:10} "
                          f"{r.objective} in {r.time_s:.2f}s{extra}", file=sys.stderr, flush=True)


def report(args) -> None:
    recs = [json.loads(line) for line in LOG.read_text().splitlines() if line.strip()]
    # the newest record of each query wins (a rerun replaces older measurements)
    latest = {}
    for r in recs:
        latest[(r["model"], r["norm"], r["digit"], r["target"])] = r
    rows, summary = [], []
    groups = {}
    for r in latest.values():
        groups.setdefault((r["model"], r["norm"], r["every_target"]), []).append(r)
    order = [(m, n) for m, cfg in CONFIGS.items() for n, _ in cfg]
    for (model, norm, every), rs in sorted(groups.items(), key=lambda kv: order.index(kv[0][:2])):
        times = [r["time_s"] for r in rs]
        optimal = sum(r["status"] == "optimal" for r in rs)
        digits = len({r["digit"] for r in rs})
        objs = [r["objective"] for r in rs if r["objective"] is not None]
        seed = [r for r in rs if "seed" in r]
        ratio, seed_txt = "", ""
        if seed:
            st = [r["seed"]["time_s"] for r in seed]
            ours = [r["time_s"] for r in seed]
            seed_opt = sum(r["seed"]["status"] == "optimal" for r in seed)
            ratio = statistics.median(a / b for a, b in zip(st, ours))
            seed_txt = f"{statistics.median(st):.2f} s ({seed_opt}/{len(seed)} optimal)"
            agree = all(abs(r["seed"]["objective"] - r["objective"]) <= 1e-3 * max(1, r["objective"])
                        for r in seed if r["seed"]["status"] == "optimal" and r["status"] == "optimal")
            seed_txt += "" if agree else " DISAGREES"
        om = [r for r in rs if "omlt" in r and r["omlt"].get("time_s")]
        om_txt = ""
        if om:
            om_ratio = statistics.median(r["omlt"]["time_s"] / r["time_s"] for r in om)
            om_opt = sum(r["omlt"]["status"] == "optimal" for r in om)
            om_txt = f"{statistics.median(r['omlt']['time_s'] for r in om):.2f} s ({om_opt}/{len(om)} opt), ×{om_ratio:.1f}"
        rows.append([model, norm + (" every target" if every else ""), f"{digits} × {len(rs) // max(digits, 1)}",
                     f"{optimal}/{len(rs)}", statistics.median(times), max(times),
                     statistics.median(objs) if objs else "", seed_txt,
                     f"×{ratio:.1f}" if ratio != "" else "", om_txt])
        summary.append({"model": model, "norm": norm, "every_target": every, "queries": len(rs),
                        "optimal": optimal, "median_s": statistics.median(times), "max_s": max(times),
                        "seed_median_ratio": ratio or None})
    headers = ["model", "norm", "digits × targets", "proven optimal", "median s", "max s",
               "median objective", "seed-style median (optimal)", "speed-up vs seed (median ratio)",
               "OMLT median (optimal), ratio"]
    notes = ("Objective units: changed pixels (card), L1, squared L2 (sum of squares), L∞. "
             "\"seed-style\": interval bounds over the full [0, 1] box, no heuristic bound or cutoff, "
             "same solver, time-limited; the ratio is the median over the queries run both ways of "
             "seed time / our time (a timed-out seed run counts with its time limit, so the ratio "
             "is a lower bound there). OMLT: Pyomo + HiGHS (appsi) with OMLT's big-M ReLU formulation "
             "(see benchmarks/omlt_peer.py), same margin, time-limited. One solver thread everywhere. "
             "Records: results/min_adv.jsonl.")
    write_results("min_adv", "Minimal adversarial examples: time to a proven optimum",
                  "python benchmarks/min_adv.py ... && python benchmarks/min_adv.py --report",
                  markdown_table(headers, rows), summary, notes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--norms", nargs="+", default=None, help="only these norms")
    ap.add_argument("--digits", type=int, default=20)
    ap.add_argument("--start", type=int, default=0,
                    help="first digit index (to split one configuration across processes)")
    ap.add_argument("--time-limit", type=float, default=300.0, help="per query (s)")
    ap.add_argument("--seed-queries", type=int, default=5, help="queries per config also run seed-style")
    ap.add_argument("--seed-time-limit", type=float, default=120.0)
    ap.add_argument("--omlt-queries", type=int, default=3, help="queries per config also run via OMLT")
    ap.add_argument("--resume", action="store_true",
                    help="skip queries already recorded in results/min_adv.jsonl")
    ap.add_argument("--report", action="store_true", help="only write the table from the records")
    args = ap.parse_args()
    if not args.report:
        run(args)
    report(args)


if __name__ == "__main__":
    main()
