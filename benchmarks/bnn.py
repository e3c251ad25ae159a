"""Binarized networks: the same robustness questions for every configuration, and minimal flips.

Networks: ``bnn`` (binarized inputs) and ``bnn-int8`` (8-bit integer inputs), the latter
included when the model is bundled (``--models`` chooses). Per test digit:

* **Queries** — "at most ``k`` changed pixels" for k in {1, 2, 3, 5} (``bnn``: flipped bits;
  ``bnn-int8``: pixels set to any grey level) and, for ``bnn-int8``, "every pixel within
  ``±e`` grey levels" for e in {1, 2, 4}. Each question is built once as a formula
  (:meth:`verify.tasks.bnn.BnnTask.formula`) and answered by every configuration: CNF with
  native cardinality (``sat:minicard``, ``sat:gluecard4``), ``cpsat``, ``portfolio`` (CP-SAT
  and the 0-1 IP on HiGHS racing), ``default`` (what ``verify certify`` runs: MiniCard for
  0.5 s, then the portfolio), CNF with a clausal cardinality encoding (``sat:glucose4+totalizer``,
  first ``--clausal-digits`` digits only: slow), and the MIP (big-M) and pure IP renderings
  on HiGHS. Time per query = writing the formula into the solver + solving; a query that
  hits ``--time-limit`` is a ``timeout`` and counts as the limit in medians.
* **Minimal flips** — ``verify.min_adversarial(norm="card")`` per digit for the default
  configuration and the others in ``MIN_CONFIGS`` (``--min-time-limit``, default 60 s):
  status, the example's flips and the proven lower bound. On ``bnn-int8`` the CNF ones
  (cpsat, portfolio) are left out: over the order-encoded pixels they overrun the limit and
  prove less than the MIP (README, integer inputs).

Every SAT answer's input is re-checked by the Keras model, and decided verdicts must agree
between configurations (the report counts disagreements). The report gives, per network,
each configuration's median and maximum time, undecided count, queries decided within 10 s,
and its **ratio to the fastest configuration's median**; the default configuration (what
``verify certify`` runs: ``DEFAULT``) is marked.

Records go to ``results/<name>.jsonl`` (``--resume`` skips what is there); ``--report``
rewrites ``results/<name>.md``/``.json`` from them (``--name``, default ``bnn``).

    python benchmarks/bnn.py                       # 20 digits, both networks (long)
    python benchmarks/bnn.py --digits 2 --time-limit 5 --min-time-limit 10 --name bnn-smoke
    python benchmarks/bnn.py --report
    python benchmarks/bnn.py --no-queries --min-configs default   # re-run one configuration
    python benchmarks/bnn.py --configs default,portfolio --min-configs none   # re-run two
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

#: Record format of this version of the script (older records in the log are ignored).
VERSION = 3
MODELS = ("bnn", "bnn-int8")
NATIVE = ["default", "sat:minicard", "sat:gluecard4", "cpsat", "portfolio"]
CLAUSAL = ["sat:glucose4+totalizer"]
MIPS = [("mip", "highs"), ("ip", "highs")]
BUDGETS = (1, 2, 3, 5)
GREY_LEVELS = (1, 2, 4)
#: what ``verify certify`` runs on a BNN without options: MiniCard for 0.5 s, then the
#: portfolio (:func:`verify.tasks.bnn.solve_staged`)
DEFAULT = "default"
#: ... and on integer-input networks (verify.tasks.bnn_int.DEFAULT_ENCODING: the MIP on HiGHS)
DEFAULT_INTEGER = ("mip", "highs")
#: minimal-flips configurations: (encoding, backend); (None, None) is the default, what
#: ``verify min-adv-card`` runs (``bnn``: the portfolio; ``bnn-int8``: the MIP on HiGHS)
MIN_CONFIGS = [(None, None), ("cnf", "cpsat"), ("cnf", "portfolio"), ("ip", "highs")]


def config_name(encoding: str, backend: str) -> str:
    return backend if encoding == "cnf" else f"{encoding}:{backend}"


#: Configurations that can ignore their interrupt for minutes (gluecard4 on wide cardinality
#: constraints, see the README): run in a forked child that is killed past the limit.
HANGS = {"sat:gluecard4"}
#: Seconds past the limit before a forked query is killed.
GRACE_S = 5.0


def answer_isolated(task, formula, encoding: str, backend: str, limit: float) -> dict:
    """:func:`answer` in a forked child (solving only; the parent re-checks the example with
    Keras), killed ``GRACE_S`` past the limit: a query that hangs is a ``timeout``."""
    import multiprocessing as mp

    import numpy as np

    ctx = mp.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        try:
            send.send(answer(task, formula, encoding, backend, limit, validate=False))
        except BaseException as exc:  # noqa: BLE001 - reported as the query's verdict
            send.send({"verdict": "error", "time_s": 0.0, "note": str(exc)[:120]})

    t0 = time.perf_counter()
    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    try:
        if receive.poll(limit + GRACE_S):
            rec = receive.recv()
        else:
            rec = {"verdict": "timeout", "time_s": round(time.perf_counter() - t0, 4),
                   "note": f"killed {GRACE_S:g} s past the limit (ignored its interrupt)"}
    finally:
        proc.kill()
        proc.join()
    bits = rec.pop("bits", None)
    if bits is not None:
        rec["keras_confirms"] = task.validated(np.asarray(bits, dtype=task.bits.dtype))[0] is not None
    return rec


def answer(task, formula, encoding: str, backend: str, limit: float, validate: bool = True) -> dict:
    """Render + solve one formula; verdict sat/unsat/timeout, time, sizes, Keras check
    (``validate=False``: the example's bits instead, as ``bits``)."""
    from verify.backends import SolveOptions, Status, check_cnf_backend, get_backend
    from verify.encodings.bnn import to_problem
    from verify.errors import ProblemTooLargeError

    t0 = time.perf_counter()
    size: dict = {}
    try:
        if backend == "default" and task.parts.integer:
            encoding, backend = DEFAULT_INTEGER     # integer inputs: what int_certify runs
        if backend == "default":
            from verify.tasks.bnn import solve_staged
            stages: dict = {}
            res = solve_staged(formula, None, limit, 1, stages)
            size = {"answered_by": stages.get("answered_by")}
            bits = formula.bits_from(res.x) if res.x is not None else None
        elif encoding == "cnf":
            session = check_cnf_backend(backend, 1).session(formula, limit)
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
        if validate:
            out["keras_confirms"] = task.validated(bits)[0] is not None
        else:
            out["bits"] = [int(b) for b in bits]
    elif res.status == Status.INFEASIBLE:
        out["verdict"] = "unsat"
    else:
        out["verdict"] = "timeout"
    if "solver" in (res.extra or {}):
        out["won"] = res.extra["solver"]            # the portfolio member that answered
    return out


def questions(task, integer: bool):
    """``(name, formula builder)`` per question of one digit."""
    out = [(f"k={k}", (lambda k=k: task.formula(budget=k))) for k in BUDGETS]
    if integer:
        from verify.tasks.bnn_int import box
        out += [(f"eps={e}", (lambda e=e: task.formula(region=box(task, e)))) for e in GREY_LEVELS]
    return out


def models_present(names) -> list:
    """The bundled models among ``names`` (a missing ``bnn-int8`` is left out, with a note)."""
    from verify import load_model
    from verify.errors import VerifyError

    out = []
    for name in names:
        try:
            out.append(load_model(name))
        except VerifyError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
    return out


def run(args) -> None:
    import numpy as np

    from verify import min_adversarial
    from verify.data import test_digits
    from verify.tasks.bnn import BnnTask

    log = RESULTS / f"{args.name}.jsonl"
    x, _ = test_digits()
    done = {(r["model"], r["kind"], r["digit"], r.get("question"), r["config"])
            for r in read_records(log) if r.get("version") == VERSION} if args.resume else set()
    configs = [("cnf", b) for b in NATIVE] + [("cnf", b) for b in CLAUSAL] + MIPS
    for model in models_present(args.models.split(",")):
        for idx in range(args.start, args.start + args.digits):
            image = x[idx].astype(np.float64).ravel()
            label = model.label(image)
            task = BnnTask.create(model, image, label, None, "cnf", None, None, None)
            for question, build in (questions(task, task.parts.integer) if args.queries else ()):
                t0 = time.perf_counter()
                formula = build()
                build_s = time.perf_counter() - t0
                line = [f"{model.name} digit {idx:3d} {question}: unstable {formula.stats['unstable']}"]
                for encoding, backend in configs:
                    config = config_name(encoding, backend)
                    if (model.name, "query", idx, question, config) in done or \
                            (args.configs and config not in args.configs.split(",")):
                        continue
                    if backend in CLAUSAL and (idx >= args.start + args.clausal_digits
                                               or task.parts.integer):
                        continue            # slow; and on integer inputs out of memory (GBs)
                    ask = answer_isolated if backend in HANGS else answer
                    rec = ask(task, formula, encoding, backend, args.time_limit)
                    rec.update(version=VERSION, kind="query", model=model.name, digit=idx,
                               label=label, question=question, config=config, encoding=encoding,
                               formula_s=round(build_s, 4), formula=formula.size(),
                               unstable=formula.stats["unstable"])
                    append_record(log, rec)
                    line.append(f"{config} {rec['verdict']} {rec['time_s']:.2f}s")
                print(" | ".join(line), flush=True)
            for encoding, backend in MIN_CONFIGS:
                config = "default" if encoding is None else config_name(encoding, backend)
                if config == "portfolio" and not task.parts.integer:
                    continue                # on binarized inputs the default is the portfolio
                if task.parts.integer and encoding == "cnf":
                    continue                # order-encoded formulas: slow and past the limit
                if args.min_configs and config not in args.min_configs.split(","):
                    continue
                if (model.name, "min_flips", idx, None, config) in done or \
                        idx >= args.start + args.min_digits:
                    continue
                r = min_adversarial(model, image, norm="card", encoding=encoding, backend=backend,
                                    time_limit=args.min_time_limit)
                append_record(log, {
                    "version": VERSION, "kind": "min_flips", "model": model.name, "digit": idx,
                    "label": label, "config": config, "backend": r.backend, "status": r.status,
                    "flips": r.objective, "bound": r.bound, "time_s": round(r.time_s, 3),
                    "adversarial_label": r.adversarial_label, "calls": r.stats.get("calls"),
                    "greedy_flips": r.stats.get("greedy_flips"),
                    "keras_confirms": None if r.adversarial is None else
                    int(model.reference_labels(r.adversarial)[0]) != label})
                print(f"{model.name} digit {idx:3d} min flips [{config}]: {r.status} {r.objective} "
                      f"(bound {r.bound}) in {r.time_s:.2f}s", flush=True)


def _median(values):
    return statistics.median(values) if values else float("nan")


def _latest(records: list[dict], kind: str) -> dict:
    out = {}
    for r in records:
        if r["kind"] == kind:
            out[(r["digit"], r.get("question"), r["config"])] = r
    return out


def _model_report(name: str, records: list[dict], limit: float, min_limit: float) -> tuple[str, dict]:
    queries = _latest(records, "query")
    integer = any(q.startswith("eps=") for (_, q, _) in queries)
    order = NATIVE + CLAUSAL + [config_name(e, b) for e, b in MIPS]
    present = {c for (_, _, c) in queries}
    configs = [c for c in order if c in present] + sorted(present - set(order))
    by_question: dict = {}
    for (d, q, c), r in queries.items():
        by_question.setdefault((d, q), {})[c] = r
    disagreements = sorted((d, q) for (d, q), rs in by_question.items()
                           if len({r["verdict"] for r in rs.values()
                                   if r["verdict"] in ("sat", "unsat")}) > 1)
    keras_bad = sorted((d, q, c) for (d, q, c), r in queries.items() if r.get("keras_confirms") is False)

    def time_of(r):
        return r["time_s"] if r["verdict"] in ("sat", "unsat") else max(r["time_s"], limit)

    stats = {}
    for c in configs:
        rs = [r for (_, _, cc), r in queries.items() if cc == c]
        times = [time_of(r) for r in rs]
        stats[c] = {"queries": len(rs), "median_s": _median(times), "max_s": max(times, default=0.0),
                    "undecided": sum(r["verdict"] not in ("sat", "unsat") for r in rs),
                    "within_10s": sum(r["verdict"] in ("sat", "unsat") and r["time_s"] <= 10
                                      for r in rs)}
    # ratios on the questions every configuration answered (the clausal ones see fewer)
    full = [c for c in configs if stats[c]["queries"] == max(s["queries"] for s in stats.values())]
    fastest = min(full, key=lambda c: stats[c]["median_s"]) if full else None
    rows = []
    for c in configs:
        s = stats[c]
        ratio = s["median_s"] / max(stats[fastest]["median_s"], 1e-9) if fastest and c in full else float("nan")
        s["ratio_to_fastest"] = ratio
        what = f" ({':'.join(DEFAULT_INTEGER)})" if integer else " (MiniCard 0.5 s, then portfolio)"
        rows.append([c + (what if c == DEFAULT else ""), s["queries"],
                     s["queries"] - s["undecided"], s["undecided"], s["median_s"], s["max_s"],
                     s["within_10s"], ratio])
    table = markdown_table(["configuration", "queries", "decided", "undecided", "median s",
                            "max s", "decided ≤ 10 s", "median / fastest"], rows)
    per_q = []
    for q in sorted({q for (_, q) in by_question}, key=lambda q: (q[0], float(q.split("=")[1]))):
        row = [q]
        for c in configs:
            row.append(_median([time_of(r) for (d, qq, cc), r in queries.items() if qq == q and cc == c]))
        row.append(sum(1 for (d, qq), rs in by_question.items()
                       if qq == q and any(r["verdict"] == "sat" for r in rs.values())))
        row.append(_median([sum(r["unstable"]) for (d, qq, cc), r in queries.items() if qq == q]))
        per_q.append(row)
    per_q_table = markdown_table(["question"] + [f"{c} median s" for c in configs]
                                 + ["digits with an example", "unstable neurons (median)"], per_q)
    flips = _latest(records, "min_flips")
    min_configs = sorted({c for (_, _, c) in flips})
    min_rows, min_stats = [], {}
    for c in min_configs:
        rs = [r for (_, _, cc), r in flips.items() if cc == c]
        proven = [r for r in rs if r["status"] in ("optimal", "infeasible")]
        times = [r["time_s"] if r in proven else max(r["time_s"], min_limit) for r in rs]
        min_stats[c] = {"digits": len(rs), "proven": len(proven), "median_s": _median(times),
                        "mean_bound": _median([r["bound"] or 0 for r in rs])}
        min_rows.append([c, len(rs), len(proven), _median(times),
                         _median([r["bound"] or 0 for r in rs]),
                         sum(r.get("keras_confirms") is False for r in rs)])
    min_table = markdown_table(["configuration", "digits", "proven minimal", "median s",
                                "median proven bound", "examples Keras rejects"], min_rows)
    per_digit = []
    for d in sorted({d for (d, _, _) in flips}):
        row = [d]
        for c in min_configs:
            r = flips.get((d, None, c))
            row += [f"{r['status']} {r['flips']} ≥{r['bound']} {r['time_s']:.3g}s" if r else ""]
        per_digit.append(row)
    digit_table = markdown_table(["digit"] + min_configs, per_digit)
    d, dm = stats.get(DEFAULT), min_stats.get(DEFAULT)
    targets = markdown_table(["target", "measured", "met"], [
        ["every query decided within 10 s by the default configuration",
         f"{d['within_10s']} of {d['queries']}" if d else "—",
         "yes" if d and d["within_10s"] == d["queries"] else "MISSED"],
        ["minimal flips proven on ≥ 90 % of digits (18 of 20; default configuration)",
         f"{dm['proven']} of {dm['digits']} within {min_limit:g} s" if dm else "—",
         "yes" if dm and dm["proven"] >= 0.9 * dm["digits"] else "MISSED"],
        ["0 disagreements between configurations", str(len(disagreements)),
         "yes" if not disagreements else "MISSED"],
        ["default's median within 1.5× of the fastest's",
         f"{d['ratio_to_fastest']:.2f}× ({fastest} fastest)" if d else "—",
         "yes" if d and d["ratio_to_fastest"] <= 1.5 else "MISSED"]])
    text = (f"## {name}\n\n### Targets\n\n{targets}\n\n### Queries (time limit {limit:g} s; a timeout counts as {limit:g} s)\n\n"
            f"{table}\n\nDisagreements between decided verdicts: {len(disagreements)} "
            f"{disagreements or ''}. SAT answers the Keras model rejected: {len(keras_bad)} "
            f"{keras_bad or ''}.\n\n### Per question\n\n{per_q_table}\n\n"
            f"### Minimal flips (time limit {min_limit:g} s; status, flips, proven bound, time)\n\n"
            f"{min_table}\n\n{digit_table}\n")
    return text, {"queries": stats, "min_flips": min_stats, "disagreements": disagreements,
                  "keras_rejected": keras_bad, "fastest": fastest}


def report(args) -> None:
    log = RESULTS / f"{args.name}.jsonl"
    records = [r for r in read_records(log) if r.get("version") == VERSION]
    parts, data = [], {}
    for name in args.models.split(","):
        mine = [r for r in records if r.get("model") == name]
        if not mine:
            continue
        text, data[name] = _model_report(name, mine, args.time_limit, args.min_time_limit)
        parts.append(text)
    write_results(args.name, "BNN verification: every configuration on the same questions",
                  "python benchmarks/bnn.py " + " ".join(sys.argv[1:]),
                  "\n".join(parts) or "(no records)", data,
                  notes="`default` is what `verify certify` runs without options: on `bnn` "
                        "MiniCard for 0.5 s, then the portfolio; on `bnn-int8` "
                        f"{':'.join(DEFAULT_INTEGER)} (verify.tasks.bnn_int). Minimal flips "
                        "`default`: `min_adversarial(norm='card')` without options (the "
                        "portfolio on `bnn`, the MIP on HiGHS on `bnn-int8`).\n\n"
                        "How the committed results were run, on the otherwise idle 2-core "
                        "machine: the queries and the single-threaded configurations one "
                        "process per core (`--resume --start 0 --digits 10 --min-digits 10` and "
                        "`--start 10` alike); the two-thread portfolio (`default` minimal flips "
                        "on `bnn`) alone, with both cores (`--models bnn --no-queries "
                        "--min-configs default`). After the portfolio's HiGHS member changed "
                        "its row order and stopped presolving (2026-11-30, fifth session), the "
                        "portfolio and default queries were re-run "
                        "(`--configs default,portfolio --min-configs none`, one process per "
                        "core) and so were the `bnn` default minimal flips (alone). The "
                        "`bnn-int8` default queries (single-threaded HiGHS) were re-run in one "
                        "process on the idle machine (`--models bnn-int8 --configs default "
                        "--min-configs none`): with a second benchmark process on the other "
                        "core the slowest of them (digit 12, k=2) took 10.06 s, alone "
                        "7.6 s.")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated; models not bundled are skipped")
    p.add_argument("--digits", type=int, default=20)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=10.0, help="seconds per query")
    p.add_argument("--clausal-digits", type=int, default=2,
                   help="run the clausal (pysat.card) configuration on this many digits")
    p.add_argument("--min-digits", type=int, default=20, help="minimal flips on this many digits")
    p.add_argument("--min-time-limit", type=float, default=60.0)
    p.add_argument("--min-configs", default="",
                   help="comma-separated minimal-flips configurations to run (default: all of "
                        "default, cpsat, portfolio, ip:highs); e.g. the 2-thread default alone, "
                        "in one process, after the single-threaded ones ran one per core")
    p.add_argument("--configs", default="",
                   help="comma-separated query configurations to run (default: all); the "
                        "report takes each question's latest record per configuration")
    p.add_argument("--no-queries", dest="queries", action="store_false",
                   help="minimal flips only")
    p.add_argument("--name", default="bnn", help="results/<name>.jsonl, .md, .json")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--report", action="store_true")
    args = p.parse_args()
    if not args.report:
        run(args)
    report(args)


if __name__ == "__main__":
    main()
