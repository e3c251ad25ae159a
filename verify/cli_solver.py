"""CLI commands of the solver layer: ``verify backends`` and ``verify encode``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import cli_args
from .cli_args import add_scale_arg

ENCODE_TASKS = {
    "min-adv-card": "card", "min-adv-l1": "l1", "min-adv-l2": "l2", "min-adv-sum": "l2",
    "min-adv-linf": "linf", "certify": None,
}


def cmd_backends(args) -> int:
    from .backends import list_backends

    rows = []
    for b in list_backends():
        ok = b.available()
        rows.append({"name": b.name, "installed": ok, "solves": sorted(b.capabilities),
                     "note": "" if ok else b.install_hint, "doc": (b.__doc__ or "").strip().splitlines()[0]})
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'backend':<22} {'installed':<10} {'solves':<22} notes")
    for r in rows:
        print(f"{r['name']:<22} {'yes' if r['installed'] else 'no':<10} "
              f"{', '.join(s.upper() for s in r['solves']):<22} {r['note'] or r['doc']}")
    print("\nDefault: highs. L2 (sum of squares) objectives need MIQP: scip or cplex. "
          "Any Pyomo solver: --backend pyomo:<name>. Binarized networks: --encoding cnf with "
          "--backend sat:<solver>[+<encoding>] (default sat:minicard), or --encoding mip/ip.")
    return 0


def region_from_args(args, center):
    """The input region given by --eps/--norm or --pixels (default: the full box)."""
    from .regions import Box, budget_region

    if args.eps is None and getattr(args, "pixels", None) is None:
        return Box(center)
    return budget_region(center, args.eps, (args.norm or "linf").lower(), getattr(args, "pixels", None))


def add_region_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eps", type=cli_args.radius, default=None,
                   help="restrict the input to a ball of this radius around the image")
    p.add_argument("--norm", default=None, choices=["linf", "l1", "l2"],
                   help="norm of the --eps ball (default linf)")
    p.add_argument("--pixels", type=cli_args.pixels, default=None, metavar="K",
                   help="restrict the input to at most K changed pixels")


def cmd_encode(args) -> int:
    from .data import read_image
    from .encodings.query import build_query
    from .models import load_model
    from .outdir import prepare_output_file
    from .problem_io import check_problem_path, write_problem
    from .results import dumps

    check_problem_path(args.out)
    # both files checked before any work; each written atomically at the end
    problem_file = prepare_output_file(args.out)
    sidecar_file = prepare_output_file(Path(args.out).with_suffix(".json"))
    model = load_model(args.model_spec)
    image = read_image(args.image, resize=args.resize, scale=args.scale)
    center = model.network.flatten_input(image)[0]
    region = region_from_args(args, center)
    stages = tuple(s.strip() for s in args.bounds.split(",") if s.strip())
    target = None if args.target is None else model.target_index(args.target, model.label(image))
    query = build_query(model.network, image, norm=ENCODE_TASKS[args.task], target=target,
                        region=region, margin=args.margin, bound_stages=stages)
    out, sidecar = problem_file.path, sidecar_file.path
    summary = {"task": args.task, "model": model.name, "image": args.image,
               "problem_file": str(out), **query.summary(),
               "free_pixels": query.encoding.free_idx.tolist(),
               "blocks": {k: [int(v[0]), int(v[-1]) + 1] for k, v in query.problem.blocks.items() if len(v)}}
    problem_file.commit(lambda path: write_problem(query.problem, path))
    sidecar_file.commit(dumps(summary, indent=1))
    s = summary
    print(f"wrote {out} ({s['kind'].upper()}: {s['columns']} columns, {s['integer_columns']} integer, "
          f"{s['rows']} rows, {s['nonzeros']} nonzeros) and {sidecar}", file=sys.stderr)
    for st in s["bounds"]:
        print(f"  bounds {st['stage']:<9} unstable ReLUs {st['unstable']:>4}/{st['relus']:<4} "
              f"{1000 * st['time_s']:8.1f} ms", file=sys.stderr)
    if s["proven_infeasible_by_bounds"]:
        print("  note: the bounds already prove the property impossible (the problem is infeasible)",
              file=sys.stderr)
    if args.json:
        json.dump({k: v for k, v in summary.items() if k != "free_pixels"}, sys.stdout, indent=2,
                  default=str)
        print()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backends", help="installed solver backends and what each can solve")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_backends)

    p = sub.add_parser(
        "encode", help="write an exact query as an .mps/.lp file for any solver",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Encode a verification query (network + region + property + objective) as a "
                    "MIP/MIQP and write it in MPS or CPLEX-LP format, with a .json beside it "
                    "that maps columns back to pixels and neurons.",
        epilog="example:\n  verify encode multiclass examples/images/digit-7.png "
               "--task min-adv-card --out query.mps")
    p.add_argument("model_spec", metavar="MODEL", help="bundled model name or path")
    p.add_argument("image", help="28x28 digit: PNG/JPEG or .npy")
    p.add_argument("--resize", action="store_true", help="scale an image of another size to 28x28")
    add_scale_arg(p)
    p.add_argument("--task", required=True, choices=sorted(ENCODE_TASKS),
                   help="min-adv-*: minimal adversarial example in that norm (min-adv-sum = l2); "
                        "certify: feasibility of a label change in the region")
    p.add_argument("--target", default=None, metavar="CLASS",
                   help="target class, as outputs print it (default: any other); see verify info MODEL")
    add_region_args(p)
    p.add_argument("--margin", type=cli_args.margin, default=1e-3,
                   help="logit margin by which the new label must win (default 1e-3)")
    p.add_argument("--bounds", default="interval,symbolic,lp",
                   help="bound stages, comma-separated (default interval,symbolic,lp)")
    p.add_argument("--out", "-o", required=True, help="output file: .mps or .lp")
    p.add_argument("--json", action="store_true", help="print the query summary as JSON")
    p.set_defaults(run=cmd_encode)
