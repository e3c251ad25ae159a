"""Binarized networks: flip-robustness queries per encoding and solver, and minimal flips.

For each test digit and each budget k (at most k flipped input bits) the same question —
"can at most k flipped pixels change the label?" — is built once as a cardinality formula
(:func:`verify.encodings.bnn.bnn_formula`) and answered by every configuration:

* CNF, native cardinality: ``sat:minicard``, ``sat:gluecard4``;
* CNF, clausal cardinality (``pysat.card``) on a CDCL solver: ``sat:glucose4+totalizer``,
  ``sat:glucose4+cardnetwrk`` (first ``--clausal-digits`` digits only: they are slow);
* MIP (continuous pre-activations + big-M) and pure IP, both on HiGHS.

Time per query = rendering the formula for that solver + solving (the formula itself is
shared and timed apart). A query that hits ``--time-limit`` is recorded as ``timeout`` and
counts as the limit in medians (so those medians are lower bounds). Verdicts are checked for
agreement (SAT: a counterexample exists; UNSAT: verified); every SAT answer's bits are
re-checked by the Keras model. The greedy flip attack that ``verify certify`` runs first is
recorded beside, but the queries are run whatever it found, so that every configuration
answers the same exact question. Then the minimal number of flips per digit
(``verify.min_adversarial`` on the default CNF path and on the IP/HiGHS path).

Every record goes to ``results/bnn.jsonl`` (``--resume`` skips what is there); ``--report``
rewrites ``results/bnn.md``/``.json``.

    python benchmarks/bnn.py --digits 20
    python benchmarks/bnn.py --report
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import RESULTS, append_record, markdown_table, read_records, write_results  # noqa: E402

LOG = RESULTS / "bnn.jsonl"
NATIVE = ["sat:minicard", "sat:gluecard4"]
CLAUSAL = ["sat:glucose4+totalizer", "sat:glucose4+cardnetwrk"]
MIPS = [("mip", "highs"), ("ip", "highs")]
BUDGETS = (1, 2, 3, 5)


def record(rec: dict) -> None:
    append_record(LOG, rec)


def load_log() -> list[dict]:
    return read_records(LOG)


def answer(task, formula, encoding: str, backend: str, limit: float) -> dict:
    """Render + solve one formula; verdict sat/unsat/timeout, time, sizes, Keras check."""
    from verify.backends import SolveOptions, Status, get_backend
    from verify.backends.sat import SatBackend
    from verify.encodings.bnn import to_problem
    from verify.errors import ProblemTooLargeError

    t0 = time.perf_counter()
    size: dict = {}
    try:
        if encoding == "cnf":
            session = SatBackend(backend).session(formula, limit)
            size = session.size()
            try:
                res = session.solve((), max(1e-3, limit - (time.perf_counter() - t0)))
            finally:
                session.close()
            bits = formula.bits_from(res.x) if res.x is not None else None
        else:
            problem = to_problem(formula, encoding)
            size = {"columns": problem.num_cols, "rows": problem.num_rows,
                    "integer": problem.num_integer}
            res = get_backend(backend).solve(problem, SolveOptions(time_limit=limit, threads=1))
            bits = formula.bits_from_columns(res.x) if res.x is not None else None
    except ProblemTooLargeError as exc:
        return {"verdict": "too_large", "time_s": time.perf_counter() - t0, "note": str(exc)[:120]}
    elapsed = time.perf_counter() - t0
    out = {"time_s": round(elapsed, 4), "size": size}
    if bits is not None:
        out["verdict"] = "sat"
        out["keras_confirms"] = task.validated(bits)[0] is not None
    elif res.status == Status.INFEASIBLE:
        out["verdict"] = "unsat"
    else:
        out["verdict"] = "timeout"
    return out


def run(args) -> None:
    import numpy as np

    from verify import load_model, min_adversarial
    from verify.data import test_digits
    from verify.tasks.bnn import BnnTask, greedy_flips

    model = load_model(args.model)
    x, y = test_digits()
    done = {(r["kind"], r["digit"], r.get("k"), r.get("config")) for r in load_log()
            if r.get("model") == args.model} if args.resume else set()
    configs = [("cnf", b) for b in NATIVE] + [("cnf", b) for b in CLAUSAL] + MIPS
    for idx in range(args.start, args.start + args.digits):
        image = x[idx].astype(np.float64).ravel()
        label = model.label(image)
        for k in BUDGETS:
            task = BnnTask.create(model, image, label, None, "cnf", None, None, None)
            t0 = time.perf_counter()
            formula = task.formula(budget=k)
            build = time.perf_counter() - t0
            hit = greedy_flips(task, k)
            attack = hit is not None and task.validated(hit)[0] is not None
            line = [f"digit {idx:3d} k={k}: unstable {formula.stats['unstable']}"
                    f"{' (attack finds one)' if attack else ''}"]
            for encoding, backend in configs:
                config = f"{encoding}:{backend}" if encoding != "cnf" else backend
                if ("query", idx, k, config) in done:
                    continue
                if backend in CLAUSAL and idx >= args.start + args.clausal_digits:
                    continue
                rec = answer(task, formula, encoding, backend, args.time_limit)
                rec.update(kind="query", model=args.model, digit=idx, label=label, k=k,
                           config=config, encoding=encoding, formula_s=round(build, 4),
                           formula=formula.size(), unstable=formula.stats["unstable"],
                           attack_found=attack)
                record(rec)
                line.append(f"{config} {rec['verdict']} {rec['time_s']:.2f}s")
            print(" | ".join(line), flush=True)
        for encoding, backend in (("cnf", None), ("ip", "highs")):
            config = f"{encoding}:{backend or 'default'}"
            if ("min_flips", idx, None, config) in done or idx >= args.start + args.min_digits:
                continue
            r = min_adversarial(model, image, encoding=encoding, backend=backend,
                                time_limit=args.min_time_limit)
            record({"kind": "min_flips", "model": args.model, "digit": idx, "label": label,
                    "config": config, "backend": r.backend, "status": r.status,
                    "flips": r.objective, "bound": r.bound, "time_s": round(r.time_s, 3),
                    "adversarial_label": r.adversarial_label, "calls": r.stats.get("calls"),
                    "greedy_flips": r.stats.get("greedy_flips")})
            print(f"digit {idx:3d} min flips [{config}]: {r.status} {r.objective} "
                  f"(bound {r.bound}) in {r.time_s:.2f}s", flush=True)


def _latest(records: list[dict], kind: str) -> dict:
    out = {}
    for r in records:
        if r["kind"] == kind:
            out[(r["digit"], r.get("k"), r["config"])] = r
    return out


def _median(values):
    return statistics.median(values) if values else float("nan")


def report(args) -> None:
    records = [r for r in load_log() if r.get("model") == args.model]
    queries = _latest(records, "query")
    configs = sorted({c for (_, _, c) in queries}, key=lambda c: (
        [b for b in NATIVE + CLAUSAL if b == c] == [], c))
    limit = args.time_limit
    # agreement per (digit, k)
    by_question: dict = {}
    for (d, k, c), r in queries.items():
        by_question.setdefault((d, k), {})[c] = r
    disagreements = [(d, k) for (d, k), rs in by_question.items()
                     if len({r["verdict"] for r in rs.values() if r["verdict"] in ("sat", "unsat")}) > 1]
    keras_bad = [(d, k, c) for (d, k, c), r in queries.items() if r.get("keras_confirms") is False]
    summary: dict = {}

    def config_rows(keep, label: str):
        rows = []
        for c in configs:
            rs = [r for (d, k, cc), r in queries.items() if cc == c and keep(r)]
            times = [r["time_s"] if r["verdict"] != "timeout" else max(r["time_s"], limit)
                     for r in rs]
            decided = [r for r in rs if r["verdict"] in ("sat", "unsat")]
            summary.setdefault(label, {})[c] = {
                "queries": len(rs), "median_s": _median(times), "max_s": max(times, default=0.0),
                "undecided": sum(r["verdict"] not in ("sat", "unsat") for r in rs)}
            rows.append([c, len(rs), len(decided), sum(r["verdict"] == "sat" for r in rs),
                         sum(r["verdict"] == "unsat" for r in rs),
                         sum(r["verdict"] == "timeout" for r in rs),
                         sum(r["verdict"] == "too_large" for r in rs),
                         _median(times), max(times, default=0.0),
                         sum(r["verdict"] in ("sat", "unsat") and r["time_s"] <= 10 for r in rs)])
        return markdown_table(["configuration", "queries", "decided", "sat", "unsat", "timeout",
                               "too large", "median s", "max s", "decided in ≤ 10 s"], rows)

    table = config_rows(lambda r: True, "all")
    solver_table = config_rows(lambda r: not r["attack_found"], "left_to_solver")
    # the targets
    lines = []
    for label, what in (("all", "all queries"), ("left_to_solver", "queries the attack leaves")):
        part = summary[label]
        mip = part.get("mip:highs", {}).get("median_s")
        for c in NATIVE + CLAUSAL:
            if c in part and mip and part[c]["queries"]:
                ratio = mip / max(part[c]["median_s"], 1e-9)
                lines.append(f"| {what} | {c} | {part[c]['queries']} | {part[c]['median_s']:.3g} | "
                             f"{mip:.3g} | {ratio:.3g} | {'met' if ratio >= 10 else 'MISSED'} | "
                             f"{part[c]['max_s']:.3g} | "
                             + ("met" if part[c]["max_s"] <= 10 and not part[c]["undecided"]
                                else f"MISSED ({part[c]['undecided']} undecided)") + " |")
    targets = ("| queries | CNF configuration | n | CNF median s | MIP (HiGHS) median s | ratio | "
               "≥ 10× | CNF max s | every query ≤ 10 s |\n|---|---|---|---|---|---|---|---|---|\n"
               + "\n".join(lines))
    # per budget, native default vs MIP
    per_k = []
    for k in BUDGETS:
        row = [k]
        for c in configs:
            ts = [(r["time_s"] if r["verdict"] != "timeout" else limit)
                  for (d, kk, cc), r in queries.items() if kk == k and cc == c]
            row.append(_median(ts))
        some = [r for (d, kk, cc), r in queries.items() if kk == k]
        row.append(_median([sum(r["unstable"]) for r in some]))
        row.append(_median([r["formula"]["card_literals"] for r in some]))
        row.append(sum(1 for (d, kk), rs in by_question.items()
                       if kk == k and any(r["verdict"] == "sat" for r in rs.values())))
        per_k.append(row)
    per_k_table = markdown_table(["k"] + [f"{c} median s" for c in configs]
                                 + ["unstable neurons (median)", "cardinality literals (median)",
                                    "digits with a counterexample"], per_k)
    sizes = []
    for k in BUDGETS:
        for c in configs:
            rs = [r for (d, kk, cc), r in queries.items() if kk == k and cc == c and r.get("size")]
            if not rs:
                continue
            keys = sorted(rs[0]["size"])
            sizes.append([k, c] + [f"{_median([r['size'].get(key, 0) for r in rs]):.0f} {key}"
                                   for key in keys])
    size_table = "\n".join(f"| {' | '.join(str(v) for v in row)} |" for row in sizes)
    flips = _latest(records, "min_flips")
    flip_rows = []
    for d in sorted({d for (d, _, _) in flips}):
        row = [d]
        for c in ("cnf:default", "ip:highs"):
            r = flips.get((d, None, c))
            row += ([r["status"], r["flips"], r["bound"], r["time_s"]] if r else ["", "", "", ""])
        flip_rows.append(row)
    flip_table = markdown_table(["digit", "CNF status", "flips", "bound", "s",
                                 "IP status", "flips", "bound", "s"], flip_rows)
    text = (f"## Queries: at most k flipped bits, every configuration on the same formula "
            f"(time limit {limit:g} s; timeouts count as {limit:g} s)\n\n{table}\n\n"
            f"The same, only the questions where the greedy flip attack (which `verify certify` "
            f"runs first) finds nothing, so the solver must decide:\n\n{solver_table}\n\n"
            f"Disagreements between decided verdicts: {len(disagreements)} {disagreements or ''}. "
            f"SAT answers the Keras model rejected: {len(keras_bad)} {keras_bad or ''}.\n\n"
            f"## Targets\n\n{targets}\n\n## Per budget\n\n{per_k_table}\n\n"
            f"## Formula sizes (medians per budget and configuration)\n\n"
            f"| k | configuration | sizes |\n|---|---|---|\n{size_table}\n\n"
            f"## Minimal flips (`verify.min_adversarial`, time limit {args.min_time_limit:g} s)"
            f"\n\n{flip_table}\n")
    write_results("bnn", f"BNN verification: {args.model}", "python benchmarks/bnn.py " +
                  " ".join(sys.argv[1:]), text,
                  {"queries": list(queries.values()), "min_flips": list(flips.values()),
                   "summary": summary, "disagreements": disagreements})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--model", default="bnn")
    p.add_argument("--digits", type=int, default=20)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=10.0, help="seconds per query")
    p.add_argument("--clausal-digits", type=int, default=2,
                   help="run the clausal (pysat.card) configurations on this many digits")
    p.add_argument("--min-digits", type=int, default=20, help="minimal flips on this many digits")
    p.add_argument("--min-time-limit", type=float, default=30.0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--report", action="store_true")
    args = p.parse_args()
    if not args.report:
        run(args)
    report(args)


if __name__ == "__main__":
    main()
