"""``verify attack`` (one heuristic attack) and ``verify compare`` (the attacks beside the
proven minimum)."""
from __future__ import annotations

import argparse

from ..tasks.table import TASKS
from . import args as a
from .output import Output, class_label, lower_bound_text, progress


def cmd_attack(args: argparse.Namespace) -> int:
    from ..figures import UNITS

    output = Output(args)   # checked and locked before any work
    model = a.load_model(args)
    image = a.read_image(args)
    with progress(args):
        r = TASKS["attack"](model, image, method=args.method, norm=args.norm, eps=args.eps,
                            target=a.target_index(model, image, args.target), seed=args.seed,
                            time_limit=args.time_limit)
    label = class_label(r.classes, int(r.labels[0]))
    how = f"eps {args.eps:g}" if args.eps is not None else "smallest distance found"
    if r.success[0]:
        line = (f"{r.model}: {label} -> {class_label(r.classes, int(r.adversarial_labels[0]))} by {r.method} "
                f"({r.norm}, {how}): {UNITS[r.norm]} {r.distances[0]:.6g} "
                f"(re-checked by {model.runtime}; an upper bound, not a minimum; {r.time_s:.2f} s)")
    else:
        line = f"{r.model}: {label}: {r.method} ({r.norm}, {how}) FAILED to change the label ({r.time_s:.2f} s)"

    def files() -> dict:
        from functools import partial

        from ..figures import attack_figure
        from ..outdir import image_files

        made = image_files("adversarial", r.adversarial[0]) if r.success[0] else {}
        made["figure.png"] = partial(attack_figure, r)
        return made

    output.write(dict(r.to_dict(), image=args.image), line, files, always_text=True,
                 wrote="result.json, figure.png" + (", adversarial.npy/.png" if r.success[0] else ""))
    return 0 if r.success[0] else 3


def cmd_compare(args: argparse.Namespace) -> int:
    from ..figures import UNITS
    from ..progress import stderr_reporter

    output = Output(args)   # checked and locked before any work
    model = a.load_model(args)
    image = a.read_image(args)
    methods = tuple(args.methods.split(",")) if args.methods else None
    r = TASKS["compare"](model, image, norm=args.norm, methods=methods,
                         target=a.target_index(model, image, args.target),
                         backend=args.backend, time_limit=args.time_limit, seed=args.seed,
                         progress=None if args.quiet else stderr_reporter())
    e = r.exact
    unit = UNITS[r.norm]
    lines = [f"{r.model}: label {class_label(r.classes, e.original_label)}, smallest {unit} change"]
    if e.objective is None:
        lines.append(f"  exact      : no adversarial example ({e.status}, {e.time_s:.2f} s)")
    else:
        proof = "proven minimal" if e.minimal else f"NOT proven: {e.status}, lower bound {lower_bound_text(e.bound)}"
        lines.append(f"  exact      : {e.objective:<10.6g} -> {class_label(r.classes, e.adversarial_label)}"
                     f"  ({proof}; {e.time_s:.2f} s, {e.backend})")
    for row in r.rows():
        if not row["success"]:
            lines.append(f"  {row['method']:<11s}: failed  ({row['time_s']:.2f} s)")
            continue
        ratio = "" if row["ratio"] is None else f"x{row['ratio']:.3f} of exact"
        flag = "  !! BELOW THE PROVEN BOUND: report this as a bug" if row["below_bound"] else ""
        lines.append(f"  {row['method']:<11s}: {row['distance']:<10.6g} -> "
                     f"{class_label(r.classes, row['adversarial_label'])}  ({ratio}; {row['time_s']:.2f} s){flag}")

    def files() -> dict:
        from functools import partial

        from ..figures import comparison_figure

        return {"figure.png": partial(comparison_figure, r)}

    output.write(dict(r.to_dict(), image=args.image), "\n".join(lines), files, always_text=True,
                 wrote="result.json and figure.png")
    return 0


def _image_and_model(p: argparse.ArgumentParser) -> None:
    a.add_image(p)
    a.add_model(p)
    a.add_target(p)
    p.add_argument("--seed", type=a.seed, default=0, help="random seed (attacks are deterministic under it)")
    a.add_output_options(p, out="write result.json and figure.png here", quiet="no progress on stderr")


def register(sub: argparse._SubParsersAction) -> None:
    from ..attacks.catalog import CATALOG as METHODS
    from ..attacks.catalog import COMPARE_METHODS

    listing = "\n".join(f"  {m.name:<15s}{m.kind:<13s}{'/'.join(m.norms):<14s}{m.summary}"
                        for m in METHODS.values())
    p = sub.add_parser(
        "attack", help="run a gradient/saliency attack (an upper bound, not a proof)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one heuristic attack on the same network the exact tasks use. A fixed-eps "
                    "attack with --eps stays within that radius; without --eps it searches for "
                    "its smallest eps. Success means the model itself (Keras or onnxruntime) gives another label (or --target). "
                    "Distances are in the exact tasks' unit: changed pixels, L1, squared L2, Linf. "
                    "Exit code 3 if the attack failed.",
        epilog=f"methods (name, kind, norms):\n{listing}\n\nexamples:\n"
               "  verify attack examples/images/digit-7.png --method pgd --norm linf --eps 0.1\n"
               "  verify attack examples/images/digit-7.png --method cw --norm l2 --out out/")
    _image_and_model(p)
    p.add_argument("--method", default="pgd", choices=list(METHODS), help="attack (default pgd)")
    p.add_argument("--norm", default="linf", choices=("card", "l1", "l2", "linf"),
                   help="distance (default linf)")
    p.add_argument("--eps", type=a.radius, default=None,
                   help="radius in the norm (L2: Euclidean, not squared); default: smallest found")
    a.add_solver_options(
        p, backend=None, with_threads=False,
        time_limit="seconds for the search (default: none); on the limit the attack stops "
                   "between two of its steps and reports the best point found so far "
                   "(status time_limit)")
    p.set_defaults(run=cmd_attack)

    per_norm = "\n".join(f"  {n:<5s} {', '.join(ms)}" for n, ms in COMPARE_METHODS.items())
    p = sub.add_parser(
        "compare", help="the exact minimal adversarial example beside each attack's",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="How far is each attack from the optimum? Runs the exact minimal adversarial "
                    "example (a proof, or the best example and bound on --time-limit) and the "
                    "attacks of the norm (fixed-eps attacks search their smallest eps), and prints "
                    "each distance with the ratio attack / exact.",
        epilog=f"attacks per norm:\n{per_norm}\n\nexample:\n"
               "  verify compare examples/images/digit-7.png --norm linf --out out/")
    _image_and_model(p)
    p.add_argument("--norm", default="card", choices=("card", "l1", "l2", "linf"),
                   help="distance (default card; l2 = sum of squares, solved by scip)")
    p.add_argument("--methods", default=None, metavar="A,B",
                   help="comma-separated attacks (default: those of the norm, below)")
    a.add_solver_options(
        p, backend="solver for the exact minimum", with_threads=False, time_limit_default=40.0,
        time_limit="seconds for the whole comparison (default 40): the attacks share at most "
                   "half of it, each an even part of what is left of that half; the exact "
                   "minimum gets the rest. A part stopped by its budget says so (status "
                   "time_limit; the exact part shows its best example and proven bound)")
    p.set_defaults(run=cmd_compare)
