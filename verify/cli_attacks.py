"""CLI commands ``verify attack`` (one heuristic attack) and ``verify compare`` (the attacks
beside the proven minimum)."""
from __future__ import annotations

import argparse

from . import cli_args
from .cli_args import add_scale_arg


def _name(classes: list, label) -> str:
    return str(classes[label]) if label is not None and label < len(classes) else str(label)


def cmd_attack(args) -> int:
    from .attacks.api import attack
    from .cli_tasks import _dump, _log, emit, target_index
    from .data import read_image
    from .figures import UNITS, attack_figure
    from .models import load_model
    from .outdir import prepare_output_dir

    out = prepare_output_dir(args.out)   # checked and locked before any work
    model = load_model(args.model)
    image = read_image(args.image, resize=args.resize, scale=args.scale)
    from .progress import reporting, stderr_reporter

    with reporting(None if args.quiet else stderr_reporter()):
        r = attack(model, image, method=args.method, norm=args.norm, eps=args.eps,
                   target=target_index(model, image, args.target), seed=args.seed,
                   time_limit=args.time_limit)
    label = _name(r.classes, int(r.labels[0]))
    how = f"eps {args.eps:g}" if args.eps is not None else "smallest distance found"
    if r.success[0]:
        line = (f"{r.model}: {label} -> {_name(r.classes, int(r.adversarial_labels[0]))} by {r.method} "
                f"({r.norm}, {how}): {UNITS[r.norm]} {r.distances[0]:.6g} "
                f"(re-checked by {model.runtime}; an upper bound, not a minimum; {r.time_s:.2f} s)")
    else:
        line = f"{r.model}: {label}: {r.method} ({r.norm}, {how}) FAILED to change the label ({r.time_s:.2f} s)"
    payload = dict(r.to_dict(), image=args.image)
    if out is not None:
        from functools import partial

        from .outdir import image_files

        files = image_files("adversarial", r.adversarial[0]) if r.success[0] else {}
        files["figure.png"] = partial(attack_figure, r)
        files["result.json"] = _dump(payload)
        out.commit(files)
        _log(f"wrote {out.path}/result.json, figure.png" + (", adversarial.npy/.png" if r.success[0] else ""))
    emit(args, payload, line, always_text=True)
    return 0 if r.success[0] else 3


def cmd_compare(args) -> int:
    from .cli_tasks import _dump, _log, emit, target_index
    from .data import read_image
    from .figures import UNITS, comparison_figure
    from .models import load_model
    from .outdir import prepare_output_dir
    from .progress import stderr_reporter
    from .tasks.compare import compare

    out = prepare_output_dir(args.out)   # checked and locked before any work
    model = load_model(args.model)
    image = read_image(args.image, resize=args.resize, scale=args.scale)
    methods = tuple(args.methods.split(",")) if args.methods else None
    r = compare(model, image, norm=args.norm, methods=methods,
                target=target_index(model, image, args.target),
                backend=args.backend, time_limit=args.time_limit, seed=args.seed,
                progress=None if args.quiet else stderr_reporter())
    e = r.exact
    unit = UNITS[r.norm]
    lines = [f"{r.model}: label {_name(r.classes, e.original_label)}, smallest {unit} change"]
    if e.objective is None:
        lines.append(f"  exact      : no adversarial example ({e.status}, {e.time_s:.2f} s)")
    else:
        proof = "proven minimal" if e.minimal else f"NOT proven: {e.status}, lower bound {e.bound}"
        lines.append(f"  exact      : {e.objective:<10.6g} -> {_name(r.classes, e.adversarial_label)}"
                     f"  ({proof}; {e.time_s:.2f} s, {e.backend})")
    for row in r.rows():
        if not row["success"]:
            lines.append(f"  {row['method']:<11s}: failed  ({row['time_s']:.2f} s)")
            continue
        ratio = "" if row["ratio"] is None else f"x{row['ratio']:.3f} of exact"
        flag = "  !! BELOW THE PROVEN BOUND: report this as a bug" if row["below_bound"] else ""
        lines.append(f"  {row['method']:<11s}: {row['distance']:<10.6g} -> "
                     f"{_name(r.classes, row['adversarial_label'])}  ({ratio}; {row['time_s']:.2f} s){flag}")
    text = "\n".join(lines)
    payload = dict(r.to_dict(), image=args.image)
    if out is not None:
        from functools import partial

        out.commit({"figure.png": partial(comparison_figure, r), "result.json": _dump(payload)})
        _log(f"wrote {out.path}/result.json and figure.png")
    emit(args, payload, text, always_text=True)
    return 0


def _image_and_model(p: argparse.ArgumentParser) -> None:
    from .cli_tasks import TARGET_HELP

    p.add_argument("image", help="28x28 digit: PNG/JPEG (RGB converted to grayscale) or .npy")
    p.add_argument("--resize", action="store_true", help="scale an image of another size to 28x28")
    add_scale_arg(p)
    p.add_argument("--model", "-m", default=None,
                   help="bundled model name or path to .keras/.h5 (default: multiclass)")
    p.add_argument("--target", default=None, metavar="CLASS", help=TARGET_HELP)
    p.add_argument("--seed", type=cli_args.seed, default=0, help="random seed (attacks are deterministic under it)")
    p.add_argument("--json", action="store_true", help="print result.json to stdout")
    p.add_argument("--out", "-o", default=None, metavar="DIR", help="write result.json and figure.png here")


def register(sub: argparse._SubParsersAction) -> None:
    from .attacks.catalog import CATALOG as METHODS
    from .attacks.catalog import COMPARE_METHODS

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
    p.add_argument("--eps", type=cli_args.radius, default=None,
                   help="radius in the norm (L2: Euclidean, not squared); default: smallest found")
    p.add_argument("--time-limit", type=cli_args.seconds, default=None, metavar="S",
                   help="seconds for the search (default: none); on the limit the attack stops "
                        "between two of its steps and reports the best point found so far "
                        "(status time_limit)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
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
    p.add_argument("--backend", "-b", default=None, help="solver for the exact minimum")
    p.add_argument("--time-limit", type=cli_args.seconds, default=40.0, metavar="S",
                   help="seconds for the whole comparison (default 40): the attacks share at most "
                        "half of it, each an even part of what is left of that half; the exact "
                        "minimum gets the rest. A part stopped by its budget says so (status "
                        "time_limit; the exact part shows its best example and proven bound)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(run=cmd_compare)
