"""CLI commands of the exact tasks: ``verify min-adv-{card,l1,l2,linf}`` and ``verify certify``."""
from __future__ import annotations

import argparse
import sys

from .errors import InvalidInputError
from .outdir import prepare_output_dir
from . import cli_args, interrupts
from .cli_args import add_scale_arg

NORM_COMMANDS = {
    "min-adv-card": ("card", "fewest changed pixels"),
    "min-adv-l1": ("l1", "smallest L1 change"),
    "min-adv-l2": ("l2", "smallest sum of squared changes (L2²; needs an MIQP backend: scip)"),
    "min-adv-sum": ("l2", "alias of min-adv-l2 (the seed's name)"),
    "min-adv-linf": ("linf", "smallest L∞ change"),
}


def _dump(obj) -> str:
    # imported here, not at import: `verify --help` needs no numpy
    from .results import dumps

    return dumps(obj)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def emit(args, payload, text: str, always_text: bool = False) -> None:
    """A command's result on stdout: the one JSON document with ``--json``; otherwise ``text``,
    unless ``--out`` already saved the result (``always_text``: print it anyway)."""
    if args.json:
        print(_dump(payload))
    elif always_text or not args.out:
        print(text)


#: ``--target`` takes a class as outputs print it, not an index (they differ for twoclass).
TARGET_HELP = ("only a change to this class counts: a class as the outputs print it (`verify info "
               "MODEL` lists them): the digit for the ten-class models, 1 or 3 for twoclass")


def target_index(model, image, value) -> int | None:
    """The label index of ``--target`` (a class name), refusing a class that is not the
    model's or that the model already predicts for ``image`` (the message lists the choices)."""
    return None if value is None else model.target_index(value, model.label(image))


def adversarial_outputs(result, suffix: str = "") -> dict:
    """The files of one minimal adversarial result, for :meth:`verify.outdir.OutputDir.commit`:
    adversarial.npy (float32, model shape) and adversarial.png when there is an example, and
    figure.png."""
    from functools import partial

    from .figures import adversarial_figure
    from .outdir import image_files

    files = image_files(f"adversarial{suffix}", result.adversarial) if result.adversarial is not None else {}
    files[f"figure{suffix}.png"] = partial(adversarial_figure, result)
    return files


def _describe(r) -> str:
    unit = {"card": "changed pixels", "l1": "L1", "l2": "squared L2", "linf": "L∞"}[r.norm]
    if "encoding" in r.stats:
        unit = f"flipped pixel bits ({r.stats['encoding']} encoding)"
    name = lambda l: r.classes[l] if l is not None and l < len(r.classes) else l  # noqa: E731
    head = f"{r.model}: {name(r.original_label)}"
    if r.adversarial is None:
        what = "no adversarial example exists" if r.status == "infeasible" else "no adversarial example found"
        return f"{head} -> {what} ({r.status}; {r.time_s:.2f} s)"
    proof = "proven minimal" if r.minimal else f"NOT proven minimal: {r.status}, lower bound {r.bound}"
    rounded = r.stats.get("rounded_8bit_adversarial")
    note = "" if rounded is None else f"; saved as 8-bit PNG it is {'still' if rounded else 'NOT'} adversarial"
    return (f"{head} -> {name(r.adversarial_label)} with {unit} {r.objective:.6g} ({proof}; "
            f"{r.time_s:.2f} s, {r.backend}{note})")


def cmd_min_adv(args) -> int:
    from .data import read_image
    from .models import load_model
    from .tasks.adversarial import min_adversarial

    norm = NORM_COMMANDS[args.command][0]
    out = prepare_output_dir(args.out)   # checked and locked before any work
    model = load_model(args.model)
    image = read_image(args.image, resize=args.resize, scale=args.scale)
    if args.all_targets and args.target is not None:
        raise InvalidInputError("give either --target L or --all-targets, not both")
    label = model.label(image)
    targets = ([t for t in range(model.network.num_classes) if t != label] if args.all_targets
               else [target_index(model, image, args.target)])
    from .budget import Deadline, part_limit
    from .progress import report, reporting, stderr_reporter

    results = []
    total = Deadline(args.total_time_limit, "--total-time-limit")   # all targets together
    with reporting(None if args.quiet else stderr_reporter()):
        for i, target in enumerate(targets):
            limit = part_limit(args.time_limit, total, len(targets) - i)
            if len(targets) > 1:
                report(f"[{i + 1}/{len(targets)}] target {model.class_name(target)}"
                       + ("" if limit is None else f", time limit {limit:.1f} s") + " ...")
            r = min_adversarial(model, image, norm=norm, target=target, backend=args.backend,
                                time_limit=limit, margin=args.margin,
                                pixel_levels=args.pixel_levels, threads=args.threads,
                                encoding=args.encoding)
            _log(_describe(r))
            results.append(r)
            if interrupts.stop_requested():
                break       # Ctrl-C: the finished targets and the interrupted one are kept
    payload = [dict(r.to_dict(), image=args.image) for r in results]
    payload_out = payload if args.all_targets else payload[0]
    if out is not None:
        files = {}
        for r in results:
            files.update(adversarial_outputs(r, f"-target{r.target}" if args.all_targets else ""))
        files["result.json"] = _dump(payload_out)
        out.commit(files)
        _log(f"wrote {out.path}/result.json, adversarial*.npy/.png, figure*.png")
    emit(args, payload_out, "\n".join(_describe(r) for r in results))
    return 0


def cmd_certify(args) -> int:
    from .data import read_image
    from .models import load_model
    from .tasks.robustness import certify

    if args.vnnlib:
        from .cli_vnnlib import certify_vnnlib_command

        return certify_vnnlib_command(args)
    if args.image is None:
        raise InvalidInputError("give an IMAGE (with --eps or --pixels), or a property with --vnnlib")
    out = prepare_output_dir(args.out)   # checked and locked before any work
    model = load_model(args.model)
    image = read_image(args.image, resize=args.resize, scale=args.scale)
    from .progress import reporting, stderr_reporter

    with reporting(None if args.quiet else stderr_reporter()):
        r = certify(model, image, eps=args.eps, norm=args.norm or "linf", pixels=args.pixels,
                    target=target_index(model, image, args.target), backend=args.backend,
                    time_limit=args.time_limit, threads=args.threads, encoding=args.encoding)
    name = lambda l: r.classes[l] if l is not None and l < len(r.classes) else l  # noqa: E731
    line = (f"{r.model}: label {name(r.original_label)} within {r.region}: {r.status.upper()}"
            + (f" by {r.method}" if r.method else "")
            + (f" (counterexample labelled {name(r.adversarial_label)})" if r.counterexample is not None else "")
            + f" ({r.time_s:.2f} s)")
    _log(line)
    payload = dict(r.to_dict(), image=args.image)
    if out is not None:
        from functools import partial

        from .figures import certify_figure
        from .outdir import image_files

        files = image_files("adversarial", r.counterexample) if r.counterexample is not None else {}
        files["figure.png"] = partial(certify_figure, r)   # original | changed pixels | counterexample
        files["result.json"] = _dump(payload)
        out.commit(files)   # replaces every file of an earlier run (no stale adversarial.npy)
    emit(args, payload, line)
    return 0


def add_encoding_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoding", choices=("cnf", "mip", "ip"), default=None,
                   help="binarized networks (BNNs) only: cnf (default; SAT with cardinality "
                        "constraints), mip (big-M with continuous pre-activations, as Narodytska "
                        "et al.) or ip (pure 0-1 cardinality rows); ReLU networks are always MIP")


def _common(p: argparse.ArgumentParser, image_optional: bool = False) -> None:
    p.add_argument("image", nargs="?" if image_optional else None,
                   help="28x28 digit: PNG/JPEG (RGB converted to grayscale) or .npy"
                        + (" (not with --vnnlib)" if image_optional else ""))
    p.add_argument("--resize", action="store_true", help="scale an image of another size to 28x28")
    add_scale_arg(p)
    p.add_argument("--model", "-m", default=None,
                   help="bundled model name or path to .keras/.h5/.onnx (default: multiclass)")
    p.add_argument("--target", default=None, metavar="CLASS", help=TARGET_HELP)
    p.add_argument("--backend", "-b", default=None,
                   help="solver: highs (default), scip (default for L2), cplex, pyomo:<solver>; "
                        "BNNs with --encoding cnf: sat:minicard (default), sat:gluecard4, "
                        "sat:glucose4+totalizer, ...")
    add_encoding_arg(p)
    p.add_argument("--time-limit", type=cli_args.seconds, default=None, metavar="S",
                   help="seconds; on timeout the best example and the proven bound are returned"
                        + ("" if image_optional else " (with --all-targets: per target)"))
    p.add_argument("--threads", type=cli_args.threads, default=None, help="solver threads")
    p.add_argument("--json", action="store_true", help="print result.json to stdout")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress lines on stderr (heuristic, bounds, solver, descent rounds)")
    p.add_argument("--out", "-o", default=None, metavar="DIR",
                   help="write result.json, adversarial.npy/.png and figure.png here")


def register(sub: argparse._SubParsersAction) -> None:
    from .cli_solver import add_region_args

    for name, (norm, what) in NORM_COMMANDS.items():
        p = sub.add_parser(
            name, help=f"provably minimal adversarial example: {what}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            description=f"Find the adversarial example with the {what}, with a proof that "
                        "nothing smaller exists (status 'optimal'). A fast heuristic bounds the "
                        "search, the solver proves the optimum, and the model itself (Keras or onnxruntime) re-checks "
                        "the example.",
            epilog=f"example:\n  verify {name} examples/images/digit-9.png --model cnn --out out/")
        _common(p)
        p.add_argument("--all-targets", action="store_true",
                       help="one minimal example per other label (--time-limit then applies to "
                            "each target; see --total-time-limit)")
        p.add_argument("--total-time-limit", type=cli_args.seconds, default=None, metavar="S",
                       help="with --all-targets: seconds for all targets together; each target "
                            "gets an even split of what is left (time a target does not use "
                            "passes on to the next), and at most --time-limit if that is given")
        p.add_argument("--pixel-levels", type=cli_args.pixel_levels, default=None, metavar="N",
                       help="restrict pixels to N levels (256: 8-bit, so the saved PNG is adversarial)")
        p.add_argument("--margin", type=cli_args.margin, default=1e-3,
                       help="logit margin by which the new label must win (default 1e-3)")
        p.set_defaults(run=cmd_min_adv)

    p = sub.add_parser(
        "certify", help="prove robustness within a budget, or find a counterexample",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Is there an input within the budget (--eps in --norm, or --pixels K) that "
                    "changes the label? Answers verified / counterexample / unknown (time limit), "
                    "by the cheapest means that settles it: attack, bounds, or solver.",
        epilog="examples:\n  verify certify examples/images/digit-7.png --norm linf --eps 0.05\n"
               "  verify certify examples/images/digit-7.png --pixels 3 --model cnn\n"
               "  verify certify examples/images/digit-7.png --pixels 3 --model bnn --encoding cnf"
               "   (BNN: at most 3 flipped pixel bits)\n"
               "  verify certify --model mlp.onnx --vnnlib examples/properties/digit-7-eps0.3.vnnlib --time-limit 60"
               "   (prints sat / unsat / timeout)")
    _common(p, image_optional=True)
    add_region_args(p)
    p.add_argument("--vnnlib", default=None, metavar="FILE",
                   help="decide this VNN-LIB property (.vnnlib or .vnnlib.gz) instead of a budget "
                        "around an image: prints sat (a counterexample, re-checked by the model's "
                        "runtime; --out DIR writes it in VNN-COMP's format), unsat (proved) or "
                        "timeout")
    p.set_defaults(run=cmd_certify)
