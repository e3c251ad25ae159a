"""Minimal-adversarial-example benchmark: time to a proven optimum, and speed-up over the
seed-style formulation and over OMLT, measured in the same run.

Configurations (the issue's targets are for a 2-core machine):

    twoclass          card, l2      untargeted   (test digits that are 1s or 3s)
    multiclass        card, l2      every target
    cnn               card          untargeted
    multiclass-large  card, l1, linf untargeted
    natural-256x2     linf, l2, l1, card untargeted   (784-256-256-10, benchmarks/engine/)
    natural-256x4     linf, l2, l1, card untargeted   (784-256x4-10)

``--engine auto|bab|mip`` picks how minimality is proven (default ``auto``; see
:mod:`verify.tasks.adversarial`). With an engine other than ``mip``, ``--mip-queries``
queries per configuration (default: all) also run with ``engine="mip"`` in the same run —
the MIP path as the ratio baseline (same time limit, same thread count); each process first
runs both untimed for ``_common.WARM_UP_S`` on its first digit, so that neither pays the
warm-up (JIT compilation, solver loading) in the timed runs. The natural
networks are the naturally trained MLPs of the engine benchmark
(``benchmarks/engine/NAME/NAME.keras``).

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
    python benchmarks/min_adv.py --models natural-256x2 --time-limit 120 --digits 10 &
    python benchmarks/min_adv.py --models natural-256x2 --time-limit 120 --start 10 --digits 20
    python benchmarks/min_adv.py --report
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, WARM_UP_S, markdown_table, write_results  # noqa: E402

CONFIGS = {
    "twoclass": [("card", None), ("l2", None)],
    "multiclass": [("card", "all"), ("l2", "all")],
    "cnn": [("card", None)],
    "multiclass-large": [("card", None), ("l1", None), ("linf", None), ("l2", None)],
    "natural-256x2": [("linf", None), ("l2", None), ("l1", None), ("card", None)],
    "natural-256x4": [("linf", None), ("l2", None), ("l1", None), ("card", None)],
}
LOG = RESULTS / "min_adv.jsonl"
#: The naturally trained networks of the engine benchmark, by name.
NATURAL = {name: Path(__file__).resolve().parent / "engine" / name / f"{name}.keras"
           for name in ("natural-256x2", "natural-256x4", "natural-256x6")}


def load(name: str):
    """A bundled model, or a natural network of the engine benchmark."""
    from verify import load_model

    return load_model(str(NATURAL[name]) if name in NATURAL else name)


def summary_of(r) -> dict:
    """The fields of a result that the report compares."""
    return {"status": r.status, "objective": r.objective, "bound": r.bound,
            "time_s": round(r.time_s, 3), "settled_by": r.stats.get("settled_by"),
            "backend": r.backend}


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


def engine_of(rec: dict) -> str:
    """The engine of a record (records from before the engine option ran the MIP path)."""
    return rec.get("engine", "mip")


def run(args) -> None:
    from verify import min_adversarial

    done_keys = set()
    if args.resume and LOG.is_file():
        for line in LOG.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done_keys.add((r["model"], r["norm"], r["digit"], r["target"], engine_of(r)))
    omlt = None
    if args.omlt_queries:
        try:
            from omlt_peer import omlt_min_adversarial as omlt
        except ImportError as exc:
            print(f"OMLT peer unavailable ({exc}); skipping it", file=sys.stderr)
    for name in args.models:
        model = load(name)
        images, ids = digits_for(name, args.digits, args.start)
        for norm, target in CONFIGS[name]:
            if args.norms and norm not in args.norms:
                continue
            done = 0
            if args.engine != "mip" and args.mip_queries != 0 and len(images):
                # untimed, both engines: neither pays the process's warm-up in the timed runs
                for engine in (args.engine, "mip"):
                    min_adversarial(model, images[0], norm=norm, time_limit=WARM_UP_S, threads=1,
                                    engine=engine)
            for image, idx in zip(images, ids):
                label = model.label(image)
                targets = [t for t in range(model.network.num_classes) if t != label] if target == "all" else [None]
                for t in targets:
                    if (name, norm, idx, t, args.engine) in done_keys:
                        done += 1
                        continue
                    r = min_adversarial(model, image, norm=norm, target=t, time_limit=args.time_limit,
                                        threads=1, engine=args.engine)
                    rec = {"model": name, "norm": norm, "every_target": target == "all", "digit": idx,
                           "target": t, "engine": args.engine, "status": r.status, "objective": r.objective,
                           "bound": r.bound, "time_s": r.time_s, "backend": r.backend,
                           "heuristic_objective": r.stats.get("heuristic_objective"),
                           "settled_by": r.stats.get("settled_by"),
                           "unstable": [s["unstable"] for s in r.stats.get("bounds", [])],
                           "engine_steps": len(r.stats.get("engine_radius", {}).get("steps", [])),
                           "engine_fallback": r.stats.get("engine_fallback")}
                    if args.engine != "mip" and (args.mip_queries is None or done < args.mip_queries):
                        rec["mip"] = summary_of(min_adversarial(
                            model, image, norm=norm, target=t, time_limit=args.time_limit,
                            threads=1, engine="mip"))
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
                                    for k in ("mip", "seed", "omlt") if k in rec)
                    print(f"{name:16} {norm:5} digit {idx:3} target {t} {r.status:10} "
                          f"{r.objective} in {r.time_s:.2f}s{extra}", file=sys.stderr, flush=True)


def report(args) -> None:
    recs = [json.loads(line) for line in LOG.read_text().splitlines() if line.strip()]
    # the newest record of each query wins (a rerun replaces older measurements)
    latest = {}
    for r in recs:
        latest[(r["model"], r["norm"], r["digit"], r["target"], engine_of(r))] = r
    rows, summary = [], []
    groups = {}
    for r in latest.values():
        groups.setdefault((r["model"], r["norm"], r["every_target"], engine_of(r)), []).append(r)
    order = [(m, n) for m, cfg in CONFIGS.items() for n, _ in cfg]

    def place(kv):
        key = kv[0][:2]
        return (order.index(key) if key in order else len(order), kv[0][3])

    for (model, norm, every, engine), rs in sorted(groups.items(), key=place):
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
        mip = [r for r in rs if "mip" in r]
        mip_txt = ""
        if mip:
            mip_opt = sum(r["mip"]["status"] == "optimal" for r in mip)
            mip_ratio = statistics.median(r["mip"]["time_s"] / max(r["time_s"], 1e-3) for r in mip)
            mip_txt = (f"{mip_opt}/{len(mip)}, median {statistics.median(r['mip']['time_s'] for r in mip):.2f} s, "
                       f"×{mip_ratio:.2f}")
            if not all(abs(r["mip"]["objective"] - r["objective"]) <= 2e-4 * max(1, r["objective"])
                       for r in mip if r["mip"]["status"] == "optimal" and r["status"] == "optimal"):
                mip_txt += " DISAGREES"
        rows.append([model, norm + (" every target" if every else ""), engine,
                     f"{digits} × {len(rs) // max(digits, 1)}",
                     f"{optimal}/{len(rs)}", statistics.median(times), max(times),
                     statistics.median(objs) if objs else "", mip_txt, seed_txt,
                     f"×{ratio:.1f}" if ratio != "" else "", om_txt])
        summary.append({"model": model, "norm": norm, "every_target": every, "engine": engine,
                        "queries": len(rs), "optimal": optimal, "median_s": statistics.median(times),
                        "max_s": max(times), "seed_median_ratio": ratio or None,
                        "mip_optimal": sum(r["mip"]["status"] == "optimal" for r in mip) if mip else None})
    headers = ["model", "norm", "engine", "digits × targets", "proven optimal", "median s", "max s",
               "median objective", "MIP path in the same run: proven, median, time ratio MIP/ours",
               "seed-style median (optimal)", "speed-up vs seed (median ratio)",
               "OMLT median (optimal), ratio"]
    notes = ("Objective units: changed pixels (card), L1, squared L2 (sum of squares), L∞. "
             "\"seed-style\": interval bounds over the full [0, 1] box, no heuristic bound or cutoff, "
             "same solver, time-limited; the ratio is the median over the queries run both ways of "
             "seed time / our time (a timed-out seed run counts with its time limit, so the ratio "
             "is a lower bound there). OMLT: Pyomo + HiGHS (appsi) with OMLT's big-M ReLU formulation "
             "(see benchmarks/omlt_peer.py), same margin, time-limited. One solver thread everywhere. "
             "Records: results/min_adv.jsonl.")
    write_results(LOG.stem, "Minimal adversarial examples: time to a proven optimum",
                  "python benchmarks/min_adv.py ... && python benchmarks/min_adv.py --report",
                  markdown_table(headers, rows), summary, notes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--engine", choices=("auto", "bab", "mip"), default="auto",
                    help="how minimality is proven (the MIP path runs beside as the baseline)")
    ap.add_argument("--mip-queries", type=int, default=None,
                    help="queries per configuration also run with engine='mip' (default: all)")
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
    ap.add_argument("--name", default="min_adv",
                    help="records in results/NAME.jsonl, report in results/NAME.md (e.g. a smoke run)")
    args = ap.parse_args()
    global LOG
    LOG = RESULTS / f"{args.name}.jsonl"
    if not args.report:
        run(args)
    report(args)


if __name__ == "__main__":
    main()
