"""The verification community's formats: ``verify vnncomp DIR`` and ``verify export MODEL
OUT.onnx`` (``verify certify --vnnlib`` is with ``certify``, in :mod:`.tasks`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InvalidInputError
from . import args as a
from .output import Output, log


def cmd_vnncomp(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..outdir import AppendFile
    from ..vnncomp import read_instances, read_results, run_vnncomp, summary

    total = len(read_instances(args.directory))
    results = Path(args.out) if args.out else Path(args.directory) / "results.csv"
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
                           timeout_cap=args.timeout_cap, progress=progress, engine=args.engine)
    finally:
        lock.release()
    bar.close()
    s = summary(rows)
    counts = ", ".join(f"{k} {s[k]}" for k in ("sat", "unsat", "timeout", "unknown", "error") if k in s)
    med = "—" if s["median_decided_s"] is None else f"{s['median_decided_s']:.2f} s"
    top = "—" if s["max_decided_s"] is None else f"{s['max_decided_s']:.2f} s"
    Output(args, folder=False).emit(
        s, f"{s['instances']} instances: {counts}; decided in median {med}, max {top}\n"
           f"results: {results}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..models import export_model, load_model
    from ..outdir import OutputFile

    out = Path(args.output)
    if not str(out).lower().endswith((".onnx", ".onnx.gz")):
        raise InvalidInputError(f"output {out} must end in .onnx or .onnx.gz")
    target = OutputFile(out, option="output")   # checked before the model is loaded
    model = load_model(args.model_spec)
    target.commit(lambda path: export_model(model, path, opset=args.opset))
    log(f"wrote {out}: {model.name} ({model.network.num_inputs} inputs -> "
         f"{model.network.num_outputs} logits, without the final {model.network.output_activation})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "vnncomp", help="decide every instance of a VNN-COMP benchmark folder (instances.csv)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reads DIR/instances.csv (rows: model.onnx, property.vnnlib, timeout in "
                    "seconds; paths relative to DIR, .gz accepted), decides each property and "
                    "appends one row per finished instance to the results CSV (onnx, vnnlib, "
                    "timeout, verdict, method, time_s, counterexample, error, stage). Re-running the "
                    "same command skips what is done; counterexamples (VNN-COMP format) go to "
                    "RESULTS-counterexamples/ beside the results CSV.",
        epilog="example:\n  verify vnncomp benchmarks/vnncomp/mlp-256x2 --out results.csv")
    p.add_argument("directory", metavar="DIR", help="benchmark folder with instances.csv")
    p.add_argument("--out", "-o", default=None, metavar="CSV",
                   help="results CSV (default DIR/results.csv)")
    a.add_solver_options(p, backend="MIP solver (default highs)", time_limit=None)
    a.add_engine(p)
    p.add_argument("--timeout-cap", type=a.seconds, default=None, metavar="S",
                   help="use at most S seconds per instance, whatever instances.csv says")
    a.add_output_options(p, json="print the summary as JSON", quiet="no progress bar")
    p.set_defaults(run=cmd_vnncomp)

    p = sub.add_parser(
        "export", help="write a model (bundled name or .keras) as ONNX",
        description="Writes the model's network (its logits, without the final sigmoid/softmax) "
                    "as an ONNX graph with input shape (N, ...) like the model's; Conv2D stays a "
                    "Conv, BNN blocks become exact Where/GreaterOrEqual patterns. The written "
                    "file loads back with --model out.onnx everywhere.",
        epilog="example: verify export mlp-256x2 mlp-256x2.onnx")
    a.add_model_spec(p)
    p.add_argument("output", metavar="OUT", help="output file, .onnx or .onnx.gz")
    p.add_argument("--opset", type=a.opset, default=17, help="ONNX opset (default 17)")
    p.set_defaults(run=cmd_export)
