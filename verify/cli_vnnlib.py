"""CLI commands of the verification community's formats: ``verify certify --vnnlib``,
``verify vnncomp DIR`` and ``verify export MODEL OUT.onnx``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import InvalidInputError
from . import cli_args


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def certify_vnnlib_command(args) -> int:
    """``verify certify --model M --vnnlib P``: prints the verdict (sat / unsat / timeout /
    unknown); ``--out DIR`` writes result.txt (VNN-COMP format) and result.json."""
    from .models import load_model
    from .tasks.vnnlib import certify_vnnlib
    from .vnnlib import parse_vnnlib

    extra = (["IMAGE"] if args.image is not None else []) + [
        f"--{n}" for n in ("eps", "norm", "pixels", "target", "encoding") if getattr(args, n, None) is not None]
    if extra:
        raise InvalidInputError("--vnnlib takes the input region and the output condition from "
                                f"the property file; drop {', '.join(extra)}")
    from .outdir import prepare_output_dir

    out = prepare_output_dir(args.out)   # checked and locked before any work
    model = load_model(args.model)
    prop = parse_vnnlib(args.vnnlib, model.network.num_inputs, model.network.num_outputs)
    r = certify_vnnlib(model, prop, backend=args.backend, time_limit=args.time_limit,
                       threads=args.threads)
    _log(f"{r.model}: {args.vnnlib}: {r.verdict}" + (f" by {r.method}" if r.method else "")
         + f" ({len(prop.cases)} case(s), {r.time_s:.2f} s)")
    if out is not None:
        out.commit({"result.txt": r.vnncomp_text(), "result.json": json.dumps(r.to_dict(), indent=2)})
    if args.json:
        print(json.dumps(r.to_dict(), indent=2))
    else:
        print(r.verdict)
    return 0


def cmd_vnncomp(args) -> int:
    from tqdm import tqdm

    from .vnncomp import read_instances, read_results, run_vnncomp, summary

    total = len(read_instances(args.directory))
    results = Path(args.out) if args.out else Path(args.directory) / "results.csv"
    from .outdir import AppendFile

    # checked and locked (a second run on the same CSV is refused) before any instance runs
    lock = AppendFile(results, "--out" if args.out else "results",
                      folders=(results.parent / f"{results.stem}-counterexamples",))
    already = len(read_results(results))
    bar = tqdm(total=total, initial=min(already, total), unit="instance", disable=args.quiet,
               file=sys.stderr, dynamic_ncols=True)

    def progress(inst, row):
        bar.set_postfix_str(f"{Path(inst.vnnlib).name}: {row['verdict']}")
        bar.update(1)

    try:
        rows = run_vnncomp(args.directory, results, backend=args.backend, threads=args.threads,
                           timeout_cap=args.timeout_cap, progress=progress)
    finally:
        lock.release()
    bar.close()
    s = summary(rows)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        counts = ", ".join(f"{k} {s[k]}" for k in ("sat", "unsat", "timeout", "unknown", "error") if k in s)
        med = "—" if s["median_decided_s"] is None else f"{s['median_decided_s']:.2f} s"
        top = "—" if s["max_decided_s"] is None else f"{s['max_decided_s']:.2f} s"
        print(f"{s['instances']} instances: {counts}; decided in median {med}, max {top}")
        print(f"results: {results}")
    return 0


def cmd_export(args) -> int:
    from .models import load_model
    from .models import export_model

    out = Path(args.output)
    if not str(out).lower().endswith((".onnx", ".onnx.gz")):
        raise InvalidInputError(f"output {out} must end in .onnx or .onnx.gz")
    from .outdir import prepare_output_file

    target = prepare_output_file(out, option="output")   # checked before the model is loaded
    model = load_model(args.model_spec)
    target.commit(lambda path: export_model(model, path, opset=args.opset))
    _log(f"wrote {out}: {model.name} ({model.network.num_inputs} inputs -> "
         f"{model.network.num_outputs} logits, without the final {model.network.output_activation})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "vnncomp", help="decide every instance of a VNN-COMP benchmark folder (instances.csv)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reads DIR/instances.csv (rows: model.onnx, property.vnnlib, timeout in "
                    "seconds; paths relative to DIR, .gz accepted), decides each property and "
                    "appends one row per finished instance to the results CSV (onnx, vnnlib, "
                    "timeout, verdict, method, time_s, counterexample, error). Re-running the "
                    "same command skips what is done; counterexamples (VNN-COMP format) go to "
                    "RESULTS-counterexamples/ beside the results CSV.",
        epilog="example:\n  verify vnncomp benchmarks/vnncomp/mlp-256x2 --out results.csv")
    p.add_argument("directory", metavar="DIR", help="benchmark folder with instances.csv")
    p.add_argument("--out", "-o", default=None, metavar="CSV",
                   help="results CSV (default DIR/results.csv)")
    p.add_argument("--backend", "-b", default=None, help="MIP solver (default highs)")
    p.add_argument("--threads", type=cli_args.threads, default=None, help="solver threads")
    p.add_argument("--timeout-cap", type=cli_args.seconds, default=None, metavar="S",
                   help="use at most S seconds per instance, whatever instances.csv says")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_vnncomp)

    p = sub.add_parser(
        "export", help="write a model (bundled name or .keras) as ONNX",
        description="Writes the model's network (its logits, without the final sigmoid/softmax) "
                    "as an ONNX graph with input shape (N, ...) like the model's; Conv2D stays a "
                    "Conv, BNN blocks become exact Where/GreaterOrEqual patterns. The written "
                    "file loads back with --model out.onnx everywhere.",
        epilog="example: verify export mlp-256x2 mlp-256x2.onnx")
    p.add_argument("model_spec", metavar="MODEL", help="bundled model name or path")
    p.add_argument("output", metavar="OUT", help="output file, .onnx or .onnx.gz")
    p.add_argument("--opset", type=cli_args.opset, default=17, help="ONNX opset (default 17)")
    p.set_defaults(run=cmd_export)
