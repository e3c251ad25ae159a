"""CLI commands of the exact tasks: ``verify min-adv-{card,l1,l2,linf}`` and ``verify certify``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .errors import InvalidInputError

NORM_COMMANDS = {
    "min-adv-card": ("card", "fewest changed pixels"),
    "min-adv-l1": ("l1", "smallest L1 change"),
    "min-adv-l2": ("l2", "smallest sum of squared changes (L2²; needs an MIQP backend: scip)"),
    "min-adv-sum": ("l2", "alias of min-adv-l2 (the seed's name)"),
    "min-adv-linf": ("linf", "smallest L∞ change"),
}


def _dump(obj) -> str:
    return json.dumps(obj, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def write_adversarial_outputs(result, out: Path, suffix: str = "") -> None:
    """adversarial.npy (float32, model shape), adversarial.png and figure.png."""
    from .data import write_png
    from .figures import adversarial_figure

    out.mkdir(parents=True, exist_ok=True)
    if result.adversarial is not None:
        np.save(out / f"adversarial{suffix}.npy", result.adversarial.astype(np.float32))
        write_png(result.adversarial, out / f"adversarial{suffix}.png")
    adversarial_figure(result, out / f"figure{suffix}.png")


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
    model = load_model(args.model)
    image = read_image(args.image, resize=args.resize)
    if args.all_targets and args.target is not None:
        raise InvalidInputError("give either --target L or --all-targets, not both")
    label = model.label(image)
    targets = ([t for t in range(model.network.num_classes) if t != label] if args.all_targets
               else [args.target])
    results = []
    for i, target in enumerate(targets):
        if len(targets) > 1:
            _log(f"[{i + 1}/{len(targets)}] target {target} ...")
        r = min_adversarial(model, image, norm=norm, target=target, backend=args.backend,
                            time_limit=args.time_limit, margin=args.margin,
                            pixel_levels=args.pixel_levels, threads=args.threads,
                            encoding=args.encoding)
        _log(_describe(r))
        results.append(r)
    payload = [dict(r.to_dict(), image=args.image) for r in results]
    payload_out = payload if args.all_targets else payload[0]
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for r in results:
            write_adversarial_outputs(r, out, f"-target{r.target}" if args.all_targets else "")
        (out / "result.json").write_text(_dump(payload_out))
        _log(f"wrote {out}/result.json, adversarial*.npy/.png, figure*.png")
    if args.json:
        print(_dump(payload_out))
    elif not args.out:
        for r in results:
            print(_describe(r))
    return 0


def cmd_certify(args) -> int:
    from .data import read_image, write_png
    from .models import load_model
    from .tasks.robustness import certify

    if args.vnnlib:
        from .cli_vnnlib import certify_vnnlib_command

        return certify_vnnlib_command(args)
    if args.image is None:
        raise InvalidInputError("give an IMAGE (with --eps or --pixels), or a property with --vnnlib")
    model = load_model(args.model)
    image = read_image(args.image, resize=args.resize)
    r = certify(model, image, eps=args.eps, norm=args.norm or "linf", pixels=args.pixels,
                target=args.target, backend=args.backend, time_limit=args.time_limit,
                threads=args.threads, encoding=args.encoding)
    name = lambda l: r.classes[l] if l is not None and l < len(r.classes) else l  # noqa: E731
    line = (f"{r.model}: label {name(r.original_label)} within {r.region}: {r.status.upper()}"
            + (f" by {r.method}" if r.method else "")
            + (f" (counterexample labelled {name(r.adversarial_label)})" if r.counterexample is not None else "")
            + f" ({r.time_s:.2f} s)")
    _log(line)
    payload = dict(r.to_dict(), image=args.image)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        if r.counterexample is not None:
            np.save(out / "adversarial.npy", r.counterexample.astype(np.float32))
            write_png(r.counterexample, out / "adversarial.png")
        (out / "result.json").write_text(_dump(payload))
    if args.json:
        print(_dump(payload))
    elif not args.out:
        print(line)
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
    p.add_argument("--model", "-m", default=None,
                   help="bundled model name or path to .keras/.h5/.onnx (default: multiclass)")
    p.add_argument("--target", type=int, default=None, help="only a change to this label counts")
    p.add_argument("--backend", "-b", default=None,
                   help="solver: highs (default), scip (default for L2), cplex, pyomo:<solver>; "
                        "BNNs with --encoding cnf: sat:minicard (default), sat:gluecard4, "
                        "sat:glucose4+totalizer, ...")
    add_encoding_arg(p)
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="seconds; on timeout the best example and the proven bound are returned")
    p.add_argument("--threads", type=int, default=None, help="solver threads")
    p.add_argument("--json", action="store_true", help="print result.json to stdout")
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
            epilog=f"example:\n  verify {name} examples/images/digit-7.png --model cnn --out out/")
        _common(p)
        p.add_argument("--all-targets", action="store_true",
                       help="one minimal example per other label")
        p.add_argument("--pixel-levels", type=int, default=None, metavar="N",
                       help="restrict pixels to N levels (256: 8-bit, so the saved PNG is adversarial)")
        p.add_argument("--margin", type=float, default=1e-3,
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
               "  verify certify --model net.onnx --vnnlib prop.vnnlib --time-limit 60"
               "   (prints sat / unsat / timeout)")
    _common(p, image_optional=True)
    add_region_args(p)
    p.add_argument("--vnnlib", default=None, metavar="FILE",
                   help="decide this VNN-LIB property (.vnnlib or .vnnlib.gz) instead of a budget "
                        "around an image: prints sat (a counterexample, re-checked by the model's "
                        "runtime; --out DIR writes it in VNN-COMP's format), unsat (proved) or "
                        "timeout")
    p.set_defaults(run=cmd_certify)
