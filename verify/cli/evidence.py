"""``verify evidence``: the provably most persuasive pixels for a sparse judge."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InvalidInputError
from ..tasks.table import TASKS
from . import args as a
from .output import Output, progress

DEFAULT_JUDGE = "judge-6px"


def class_index(model, name: str, option: str) -> int:
    """The label index of a class given as the outputs print it (the digit for the bundled
    models); a one-line error listing the classes otherwise."""
    names = [model.class_name(i) for i in range(model.network.num_classes)]
    text = str(name).strip()
    if text not in names:
        raise InvalidInputError(f"{option} {text!r} is not a class of {model.name}; its classes "
                                f"are {', '.join(names)}")
    return names.index(text)


def parse_pixels(text: str | None, option: str = "--revealed") -> list[int]:
    """``"12,40,41"`` → [12, 40, 41]; a one-line error for anything else."""
    if text is None or not text.strip():
        return []
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part.lstrip("-").isdigit():
            raise InvalidInputError(f"{option} takes flat pixel indices separated by commas "
                                    f"(e.g. 320,515), not {text!r}")
        out.append(int(part))
    return out


def evidence_figure(result, path: str | Path) -> Path:
    """The digit with the revealed pixels marked (blue: already revealed, orange: chosen), the
    judge's view, and the judge's scores on it (claim green, against red)."""
    import numpy as np

    from ..figures import _image, _plt, _save

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    digit = _image(result.image)
    side = digit.shape[1]
    axes[0].imshow(digit, cmap="gray", vmin=0, vmax=1)
    for pixels, colour in ((result.revealed, (0.10, 0.45, 0.90)), (result.pixels, (0.95, 0.45, 0.05))):
        for p in pixels:
            r, c = divmod(int(p), side)
            axes[0].add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=1.8,
                                            edgecolor=colour))
    axes[0].set_title(f"digit; {len(result.pixels)} chosen (orange)"
                      + (f", {len(result.revealed)} before (blue)" if result.revealed else ""),
                      fontsize=8)
    axes[1].imshow(_image(result.view), cmap="gray", vmin=0, vmax=1)
    axes[1].set_title(f"what the judge sees: {len(result.pixels) + len(result.revealed)} pixels",
                      fontsize=8)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    scores = np.asarray(result.scores, dtype=np.float64)
    labels = [result.class_name(i) for i in range(scores.size)]
    colours: list[str | tuple[float, float, float]] = ["0.6"] * scores.size
    if scores.size > 1:
        colours[result.claim] = (0.15, 0.6, 0.2)
        if result.against is not None:
            colours[result.against] = (0.85, 0.2, 0.15)
    axes[2].bar(range(scores.size), scores, color=colours)
    axes[2].set_xticks(range(scores.size), labels)
    axes[2].set_title(f"judge's scores ({result.stats.get('model_runtime', 'runtime')}): "
                      f"says {result.class_name(result.judge_label)}", fontsize=8)
    vs = "all others" if result.against is None else result.class_name(result.against)
    proof = {"optimal": "proven best", "infeasible": "proven: no set convinces",
             "time_limit": f"time limit, bound {result.bound if result.bound is None else round(result.bound, 4)}"}
    fig.suptitle(f"{result.model}: claim {result.class_name(result.claim)} vs {vs}, at most "
                 f"{result.k} more pixels: margin {result.margin:+.4f} "
                 f"({proof.get(result.status, result.status)})", fontsize=9)
    return _save(plt, fig, path)


def cmd_evidence(args: argparse.Namespace) -> int:
    if args.pixels < 1:                   # every check before any work
        raise InvalidInputError(f"--pixels must be a whole number ≥ 1, not {args.pixels}")
    revealed = parse_pixels(args.revealed)
    output = Output(args)
    model = a.load_model(args, default=DEFAULT_JUDGE)
    claim = class_index(model, args.claim, "--claim")
    against = None if args.against is None else class_index(model, args.against, "--against")
    if against is not None and against == claim:
        raise InvalidInputError(f"--against must differ from --claim (both are {args.claim})")
    image = a.read_image(args)
    with progress(args):
        r = TASKS["evidence"](model, image, claim=claim, k=args.pixels, against=against,
                              revealed=revealed, time_limit=args.time_limit,
                              backend=args.backend, threads=args.threads)
    line = r.describe()
    output.summary(line)

    def files() -> dict:
        from functools import partial

        return {"figure.png": partial(evidence_figure, r)}

    output.write(dict(r.to_dict(), image=args.image), line, files, wrote="result.json, figure.png")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evidence", help="provably best pixels to reveal to a sparse judge (debate)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A sparse judge (default: the bundled judge-6px) classifies a digit from a "
                    "few revealed non-zero pixels, every other pixel 0. Find the set of at most "
                    "--pixels more of the digit's pixels that makes the judge output --claim "
                    "(or prefer it over --against) with the largest margin, with a proof that "
                    "no set does better (status optimal), or a proof that no set convinces the "
                    "judge (status infeasible). The model's own runtime re-checks the answer.",
        epilog="examples:\n"
               "  verify evidence examples/images/digit-7.png --claim 1 --pixels 6\n"
               "  verify evidence examples/images/digit-7.png --claim 1 --against 7 --pixels 3 "
               "--revealed 520,521 --out out/")
    a.add_image(p)
    a.add_model(p, default=DEFAULT_JUDGE, role="the judge: ")
    p.add_argument("--claim", required=True, metavar="CLASS",
                   help="the label to argue for, as the outputs print it (the digit)")
    p.add_argument("--against", default=None, metavar="CLASS",
                   help="only the judge's choice between --claim and this label counts "
                        "(default: the claim must beat every other label)")
    p.add_argument("--pixels", "-k", type=int, default=6, metavar="K",
                   help="reveal at most K more pixels (default 6)")
    p.add_argument("--revealed", default=None, metavar="I,J,...",
                   help="flat indices (row * 28 + column) of pixels already revealed; each must "
                        "be non-zero in the image")
    a.add_solver_options(
        p, backend="MIP solver when the sets are too many to enumerate: auto (default: "
                   "cplex if installed and the problem fits, else highs), highs, scip, "
                   "cplex, pyomo:<solver>",
        time_limit="seconds; on timeout the best set found and the proven bound (status time_limit)")
    a.add_output_options(p, out="write result.json and figure.png here",
                         quiet="no progress lines on stderr")
    p.set_defaults(run=cmd_evidence)
