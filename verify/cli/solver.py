"""The solver layer's commands: ``verify backends`` and ``verify encode``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..tasks.table import encode_tasks
from . import args as a
from .output import Output, log

def cmd_backends(args: argparse.Namespace) -> int:
    from ..backends import list_backends

    rows: list[dict[str, Any]] = []
    for b in list_backends():
        ok = b.available()
        rows.append({"name": b.name, "installed": ok, "solves": sorted(b.capabilities),
                     "note": "" if ok else b.install_hint, "doc": (b.__doc__ or "").strip().splitlines()[0]})
    lines = [f"{'backend':<22} {'installed':<10} {'solves':<22} notes"]
    for r in rows:
        lines.append(f"{r['name']:<22} {'yes' if r['installed'] else 'no':<10} "
                     f"{', '.join(s.upper() for s in r['solves']):<22} {r['note'] or r['doc']}")
    lines.append("\nDefault: highs. L2 (sum of squares) objectives need MIQP: scip or cplex. "
                 "Any Pyomo solver: --backend pyomo:<name>. Binarized networks: --encoding cnf with "
                 "--backend sat:<solver>[+<encoding>] (default sat:minicard), cpsat or portfolio (CP-SAT and HiGHS racing), "
                 "or --encoding mip/ip.")
    Output(args).emit(rows, "\n".join(lines))
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    from ..models import load_model
    from ..outdir import OutputFile
    from ..problem_io import check_problem_path, write_problem
    from .output import dump

    check_problem_path(args.out)
    # both files checked before any work; each written atomically at the end
    problem_file = OutputFile(args.out)
    sidecar_file = OutputFile(Path(args.out).with_suffix(".json"))
    model = load_model(args.model_spec)
    image = a.read_image(args)
    center = model.network.flatten_input(image)[0]
    region = a.region(args, center)
    stages = tuple(s.strip() for s in args.bounds.split(",") if s.strip())
    target = None if args.target is None else model.target_index(args.target, model.label(image))
    encode = encode_tasks()[args.task].encode
    if encode is None:      # not reached: encode_tasks() lists only tasks with an encoder
        raise InvalidInputError(f"task {args.task} has no problem to write")
    query = encode(model, image, target=target, region=region, margin=args.margin,
                   bound_stages=stages)
    out, sidecar = problem_file.path, sidecar_file.path
    summary = {"task": args.task, "model": model.name, "image": args.image,
               "problem_file": str(out), **query.summary(),
               "free_pixels": query.encoding.free_idx.tolist(),
               "blocks": {k: [int(v[0]), int(v[-1]) + 1] for k, v in query.problem.blocks.items() if len(v)}}
    problem_file.commit(lambda path: write_problem(query.problem, path))
    sidecar_file.commit(dump(summary, indent=1))
    s = summary
    log(f"wrote {out} ({s['kind'].upper()}: {s['columns']} columns, {s['integer_columns']} integer, "
        f"{s['rows']} rows, {s['nonzeros']} nonzeros) and {sidecar}")
    for st in s["bounds"]:
        log(f"  bounds {st['stage']:<9} unstable ReLUs {st['unstable']:>4}/{st['relus']:<4} "
            f"{1000 * st['time_s']:8.1f} ms")
    if s["proven_infeasible_by_bounds"]:
        log("  note: the bounds already prove the property impossible (the problem is infeasible)")
    Output(args, folder=False).emit({k: v for k, v in summary.items() if k != "free_pixels"}, None)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backends", help="installed solver backends and what each can solve")
    a.add_output_options(p, json="print JSON")
    p.set_defaults(run=cmd_backends)

    p = sub.add_parser(
        "encode", help="write an exact query as an .mps/.lp file for any solver",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Encode a verification query (network + region + property + objective) as a "
                    "MIP/MIQP and write it in MPS or CPLEX-LP format, with a .json beside it "
                    "that maps columns back to pixels and neurons.",
        epilog="example:\n  verify encode multiclass examples/images/digit-7.png "
               "--task min-adv-card --out query.mps")
    a.add_model_spec(p)
    a.add_image(p)
    p.add_argument("--task", required=True, choices=sorted(encode_tasks()),
                   help="min-adv-*: minimal adversarial example in that norm (min-adv-sum = l2); "
                        "certify: feasibility of a label change in the region")
    p.add_argument("--target", default=None, metavar="CLASS",
                   help="target class, as outputs print it (default: any other); see verify info MODEL")
    a.add_region(p)
    a.add_margin(p)
    p.add_argument("--bounds", default="interval,symbolic,lp",
                   help="bound stages, comma-separated (default interval,symbolic,lp)")
    a.add_output_options(p, out="output file: .mps or .lp", out_metavar="FILE", out_required=True,
                         json="print the query summary as JSON")
    p.set_defaults(run=cmd_encode)
