"""``verify explain``: a minimal set of pixels that forces the prediction."""
from __future__ import annotations

import argparse

from ..tasks.table import TASKS
from . import args as a
from .output import Output, class_label


def cmd_explain(args: argparse.Namespace) -> int:
    from tqdm import tqdm


    output = Output(args)   # checked and locked before any work
    model = a.load_model(args)
    image = a.read_image(args)
    bar = tqdm(total=model.network.num_inputs, unit="px", desc="pixels decided", leave=False,
               disable=args.quiet, dynamic_ncols=True)

    def progress(decided: int, total: int, kept: int) -> None:
        bar.total = total
        bar.n = decided
        bar.set_postfix_str(f"kept {kept}, remaining {total - decided}", refresh=True)

    try:
        r = TASKS["explain"](model, image, eps=args.eps, method=args.method, order=args.order,
                             minimum=args.minimum, backend=args.backend,
                             time_limit=args.time_limit, threads=args.threads,
                             progress=progress, encoding=args.encoding, engine=args.engine)
    finally:
        bar.close()
    name = class_label(r.classes, r.original_label)
    rng = "the full pixel range" if r.eps is None else f"±{r.eps:g}"
    proof = ("subset-minimal (proven: every kept pixel has a witness confirmed by the model)"
             if r.minimal else f"NOT proven minimal ({r.status}); still sound: the freed pixels were "
             "proven unable to change the label")
    line = (f"{r.model}: label {name} is forced by {r.size} of {r.image.size} pixels "
            f"(others free over {rng}); {proof}; {r.time_s:.2f} s, {r.calls} solver calls on "
            f"{r.backend}, checks {r.checks}")
    if r.minimum is not None:
        m = r.minimum
        line += (f"\nminimum explanation: {m['size']} pixels" +
                 (" (proven minimum)" if m["status"] == "minimum" else
                  f" (best found; proven lower bound {m['lower_bound']}, {m['status']})"))
    output.summary(line)

    def files() -> dict:
        from functools import partial

        import numpy as np

        from ..figures import explanation_figure

        return {"explanation_mask.npy": np.asarray(r.mask),
                "figure.png": partial(explanation_figure, r)}

    output.write(dict(r.to_dict(), image=args.image), line, files,
                 wrote="result.json, explanation_mask.npy, figure.png")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..tasks.explain_choices import METHODS, ORDERS

    p = sub.add_parser(
        "explain", help="minimal set of pixels that forces the predicted label",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Find a subset-minimal explanation: pixels that, held at their values, "
                    "guarantee the predicted label whatever the other pixels do (anywhere in "
                    "[0, 1], or within ±EPS with --eps). Every freed pixel is proven harmless "
                    "(bounds or an exact solve); every kept pixel has a witness image that the "
                    "model itself (Keras or onnxruntime) labels differently once that pixel is freed too. --minimum then "
                    "searches for the smallest explanation (hitting sets) and reports it with a "
                    "proven lower bound.",
        epilog="examples:\n  verify explain examples/images/digit-7.png --out out/\n"
               "  verify explain examples/images/digit-7.png --model twoclass --eps 0.1 --json\n"
               "  verify explain examples/images/digit-7.png --minimum --time-limit 120")
    a.add_image(p)
    a.add_model(p)
    p.add_argument("--eps", type=a.radius, default=None,
                   help="free pixels only within ±EPS of their value (default: the full range "
                        "[0, 1]); on a BNN with 8-bit integer inputs ±floor(255 * EPS + 1e-9) "
                        "grey levels")
    p.add_argument("--minimum", action="store_true",
                   help="also search for a cardinality-minimum explanation (use with --time-limit)")
    p.add_argument("--method", choices=METHODS, default="batch",
                   help="batch (default): free pixels in growing batches, bisect on failure; "
                        "sequential: one at a time; seed: one exact MIP per pixel, no cheap checks")
    p.add_argument("--order", choices=ORDERS, default="influence",
                   help="pixel order: least influential first (default) or index order")
    a.add_solver_options(
        p, backend="solver for the exact checks: auto (default: cplex, else scip, else highs), "
                   "highs, scip, cplex, pyomo:<solver>",
        time_limit="seconds; on timeout the explanation is still sound, with status time_limit")
    a.add_encoding(p)
    a.add_engine(p, a.EXPLAIN_ENGINE_HELP)
    a.add_output_options(p, out="write result.json, explanation_mask.npy and figure.png here",
                         quiet="no progress bar")
    p.set_defaults(run=cmd_explain)
