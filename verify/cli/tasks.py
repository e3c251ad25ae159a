"""The exact tasks: ``verify min-adv-{card,l1,l2,linf}`` and ``verify certify``."""
from __future__ import annotations

import argparse
from typing import cast

from ..errors import InvalidInputError
from ..tasks.table import TASKS, TaskSpec, task
from . import args as a
from .output import Output, class_label, log, lower_bound_text, progress

def min_adv_commands() -> dict[str, TaskSpec]:
    """``verify min-adv-*`` command name → its task in the task table (aliases included)."""
    return {name: spec for spec in TASKS.values() if "norm" in spec.fixed
            for name in (spec.name, *spec.aliases)}


def adversarial_outputs(result, suffix: str = "") -> dict:
    """The files of one minimal adversarial result, for :meth:`verify.outdir.OutputDir.commit`:
    adversarial.npy (float32, model shape) and adversarial.png when there is an example, and
    figure.png."""
    from functools import partial

    from ..outdir import image_files
    from ..figures import adversarial_figure

    files = image_files(f"adversarial{suffix}", result.adversarial) if result.adversarial is not None else {}
    files[f"figure{suffix}.png"] = partial(adversarial_figure, result)
    return files


def _describe(r) -> str:
    unit = {"card": "changed pixels", "l1": "L1", "l2": "squared L2", "linf": "L∞"}[r.norm]
    if r.stats.get("unit") == "grey levels":       # a BNN with 8-bit integer inputs
        unit = {"card": "changed pixels", "l1": "L1 grey levels", "l2": "squared L2 grey levels",
                "linf": "L∞ grey levels"}[r.norm] + f" ({r.stats['encoding']} encoding)"
    elif "encoding" in r.stats:
        unit = f"flipped pixel bits ({r.stats['encoding']} encoding)"
    head = f"{r.model}: {class_label(r.classes, r.original_label)}"
    if r.adversarial is None:
        what = "no adversarial example exists" if r.status == "infeasible" else "no adversarial example found"
        if r.status != "infeasible" and r.stats.get("unit") == "grey levels" and r.bound:
            what += (f", proven lower bound {r.bound:g} "                        # integer-input BNN
                     + ("changed pixels" if r.norm == "card" else r.stats["unit"]))
        return f"{head} -> {what} ({r.status}; {r.time_s:.2f} s)"
    proof = "proven minimal" if r.minimal else f"NOT proven minimal: {r.status}, lower bound {lower_bound_text(r.bound)}"
    rounded = r.stats.get("rounded_8bit_adversarial")
    note = "" if rounded is None else f"; saved as 8-bit PNG it is {'still' if rounded else 'NOT'} adversarial"
    if r.stats.get("objective_01") is not None:
        note += f"; {r.stats['objective_01']:.6g} in [0, 1] units"
    return (f"{head} -> {class_label(r.classes, r.adversarial_label)} with {unit} {r.objective:.6g} ({proof}; "
            f"{r.time_s:.2f} s, {r.backend}{note})")


def cmd_min_adv(args: argparse.Namespace) -> int:
    from ..results import AdversarialResult

    min_adversarial = task(args.command)     # its norm fixed by the name
    output = Output(args)   # checked and locked before any work
    model = a.load_model(args)
    image = a.read_image(args)
    if args.all_targets and args.target is not None:
        raise InvalidInputError("give either --target L or --all-targets, not both")
    target = "all" if args.all_targets else a.target_index(model, image, args.target)
    with progress(args):
        # --all-targets: one call, so that the targets share the bound engine's bounds;
        # each target's line is logged as it finishes
        made = min_adversarial(model, image, target=target, backend=args.backend,
                               time_limit=args.time_limit, margin=args.margin,
                               pixel_levels=args.pixel_levels, threads=args.threads,
                               encoding=args.encoding, engine=args.engine,
                               total_time_limit=args.total_time_limit if args.all_targets else None,
                               on_result=lambda r: log(_describe(r)))
    results = cast(list[AdversarialResult], made) if args.all_targets else \
        [cast(AdversarialResult, made)]
    if not args.all_targets:
        output.summary(_describe(results[0]))
    payload = [dict(r.to_dict(), image=args.image) for r in results]

    def files() -> dict:
        made: dict = {}
        for r in results:
            made.update(adversarial_outputs(r, f"-target{r.target}" if args.all_targets else ""))
        return made

    output.write(payload if args.all_targets else payload[0],
                 "\n".join(_describe(r) for r in results), files,
                 wrote="result.json, adversarial*.npy/.png, figure*.png")
    return 0


def cmd_certify(args: argparse.Namespace) -> int:
    certify = TASKS["certify"]
    if args.vnnlib:
        return certify_vnnlib(args)
    if args.image is None:
        raise InvalidInputError("give an IMAGE (with --eps or --pixels), or a property with --vnnlib")
    output = Output(args)   # checked and locked before any work
    model = a.load_model(args)
    image = a.read_image(args)
    with progress(args):
        r = certify(model, image, eps=args.eps, norm=args.norm or "linf", pixels=args.pixels,
                    target=a.target_index(model, image, args.target), backend=args.backend,
                    time_limit=args.time_limit, threads=args.threads, encoding=args.encoding,
                    engine=args.engine)
    line = (f"{r.model}: label {class_label(r.classes, r.original_label)} within {r.region}: {r.status.upper()}"
            + (f" by {r.method}" if r.method else "")
            + (f" (counterexample labelled {class_label(r.classes, r.adversarial_label)})" if r.counterexample is not None else "")
            + f" ({r.time_s:.2f} s)")
    output.summary(line)

    def files() -> dict:
        from functools import partial

        from ..figures import certify_figure
        from ..outdir import image_files

        made = image_files("adversarial", r.counterexample) if r.counterexample is not None else {}
        made["figure.png"] = partial(certify_figure, r)   # original | changed pixels | counterexample
        return made

    # replaces every file of an earlier run (no stale adversarial.npy)
    output.write(dict(r.to_dict(), image=args.image), line, files)
    return 0


def certify_vnnlib(args: argparse.Namespace) -> int:
    """``verify certify --model M --vnnlib P``: prints the verdict (sat / unsat / timeout /
    unknown; for a VNN-LIB 2.0 property violated / holds / timeout / unknown); ``--out DIR``
    writes result.txt (VNN-COMP format, in the property's version) and result.json."""
    from ..vnnlib import parse_vnnlib

    decide = TASKS["certify-vnnlib"]

    extra = (["IMAGE"] if args.image is not None else []) + [
        f"--{n}" for n in ("eps", "norm", "pixels", "target", "encoding") if getattr(args, n, None) is not None]
    if extra:
        raise InvalidInputError("--vnnlib takes the input region and the output condition from "
                                f"the property file; drop {', '.join(extra)}")
    output = Output(args)   # checked and locked before any work
    model = a.load_model(args)
    prop = parse_vnnlib(args.vnnlib, model.network.num_inputs, model.network.num_outputs)
    with progress(args):
        r = decide(model, prop, backend=args.backend, time_limit=args.time_limit,
                   threads=args.threads, engine=args.engine)
    log(f"{r.model}: {args.vnnlib}: {r.result_word}" + (f" by {r.method}" if r.method else "")
        + f" ({len(prop.cases)} case(s), {r.time_s:.2f} s)")
    # the verdict in the words of the property's VNN-LIB version (2.0: violated / holds)
    output.write(r.to_dict(), r.result_word, {"result.txt": r.vnncomp_text()}, always_text=True)
    return 0


def _common(p: argparse.ArgumentParser, image_optional: bool = False) -> None:
    a.add_image(p, optional="not with --vnnlib" if image_optional else None)
    a.add_model(p)
    a.add_target(p)
    a.add_solver_options(
        p, time_limit="seconds; on timeout the best example and the proven bound are returned"
                      + ("" if image_optional else " (with --all-targets: per target)"))
    a.add_encoding(p)
    a.add_output_options(p, out="write result.json, adversarial.npy/.png and figure.png here",
                         quiet="no progress lines on stderr (heuristic, bounds, solver, descent rounds)")


def register(sub: argparse._SubParsersAction) -> None:
    for name, spec in min_adv_commands().items():
        what = spec.summary if name == spec.name else f"alias of {spec.name}"
        p = sub.add_parser(
            name, help=what, formatter_class=argparse.RawDescriptionHelpFormatter,
            description=f"Task {spec.name}: {spec.summary}, with a proof that nothing smaller "
                        "exists (status 'optimal'). A fast heuristic bounds the search, the solver "
                        "proves the optimum, and the model itself (Keras or onnxruntime) re-checks "
                        "the example.",
            epilog=f"example:\n  verify {name} examples/images/digit-9.png --model cnn --out out/")
        _common(p)
        p.add_argument("--all-targets", action="store_true",
                       help="one minimal example per other label (--time-limit then applies to "
                            "each target; see --total-time-limit)")
        p.add_argument("--total-time-limit", type=a.seconds, default=None, metavar="S",
                       help="with --all-targets: seconds for all targets together; each target "
                            "gets an even split of what is left (time a target does not use "
                            "passes on to the next), and at most --time-limit if that is given")
        p.add_argument("--pixel-levels", type=a.pixel_levels, default=None, metavar="N",
                       help="restrict pixels to N levels (256: 8-bit, so the saved PNG is adversarial)")
        a.add_margin(p)
        a.add_engine(p, a.MIN_ADV_ENGINE_HELP)
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
    a.add_engine(p)
    a.add_region(p)
    p.add_argument("--vnnlib", default=None, metavar="FILE",
                   help="decide this VNN-LIB property (.vnnlib or .vnnlib.gz) instead of a budget "
                        "around an image: prints sat (a counterexample, re-checked by the model's "
                        "runtime; --out DIR writes it in VNN-COMP's format), unsat (proved) or "
                        "timeout")
    p.set_defaults(run=cmd_certify)
