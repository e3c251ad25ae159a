"""The arguments every ``verify`` command shares, defined once.

Two kinds of things live here:

* **Validating ``type=`` functions** for the numeric flags. Each turns the flag's text into a
  number and applies the rule of :mod:`verify.validate`, so a bad value stops the command
  while its arguments are parsed, before any model is loaded or solver started. argparse
  then prints the usage and ``argument --margin: must be a finite number ≥ 0, not 'nan'``
  (the flag named) and exits with code 2 (bad usage). The Python API applies the same rules.
* **Argument groups**: the image, the model, the solver options, the input region, the
  output options. A command adds the groups it needs; a new option that several commands
  share (a solver setting, an output format) is added to its group here, once, and every
  command that uses the group gets it.
"""
from __future__ import annotations

import argparse
from typing import Callable

from ..validate import NON_NEGATIVE, POSITIVE, RULES, Rule, as_number


# ------------------------------------------------------------------------------ number types

def _parse(text: str, rule: Rule) -> float | int:
    """``text`` as a number that satisfies ``rule``; ArgumentTypeError (which argparse
    prefixes with the flag's name) if it is not one."""
    value: float | int | None
    try:
        value = int(text) if rule.integer else float(text)
    except ValueError:
        try:
            value = float(text)          # "1e3" for a whole number; checked to be whole below
        except ValueError:
            value = None
    number = None if value is None else as_number(value, rule)
    if number is None:
        raise argparse.ArgumentTypeError(f"must be {rule.describe()}, not {text!r}")
    return number


def number_type(rule: Rule, name: str) -> Callable[[str], float | int]:
    """An argparse ``type=`` that accepts only numbers satisfying ``rule``; ``name`` is what
    argparse would call the type in its own messages."""
    def parse(text: str) -> float | int:
        return _parse(text, rule)

    parse.__name__ = name
    return parse


#: Seconds: a finite number > 0 (``--time-limit``, ``--timeout-cap``).
seconds = number_type(POSITIVE, "seconds")
#: A radius: a finite number ≥ 0 (``--eps``; the linf limit of 1 is checked with the norm).
radius = number_type(NON_NEGATIVE, "radius")
#: A logit margin: a finite number ≥ 0 (``--margin``).
margin = number_type(RULES["margin"], "margin")
#: Solver threads: a whole number ≥ 1 (``--threads``).
threads = number_type(RULES["threads"], "threads")
#: Worker processes: a whole number ≥ 1 (``--workers``).
workers = number_type(RULES["workers"], "workers")
#: A pixel budget: a whole number ≥ 0 (``--pixels``; 0 is the trivial budget).
pixels = number_type(RULES["pixels"], "pixels")
#: Pixel levels: a whole number ≥ 2 (``--pixel-levels``).
pixel_levels = number_type(RULES["pixel_levels"], "pixel_levels")
#: A random seed: a whole number ≥ 0 (``--seed``).
seed = number_type(RULES["seed"], "seed")
#: A class label: a whole number ≥ 0 (``--target``; its upper end depends on the model).
label = number_type(Rule(low=0, integer=True), "label")
#: An ONNX opset: a whole number ≥ 13 (``--opset``; the newest is checked by the exporter).
opset = number_type(Rule(low=13, integer=True), "opset")
#: An image scale: a finite number > 0 (``--scale``: 255 for 0..255 data).
scale = number_type(POSITIVE, "scale")


# ------------------------------------------------------------------------------ argument groups

Parser = argparse.ArgumentParser

#: What IMAGE may be, in every command's help.
IMAGE_HELP = "28x28 digit: PNG/JPEG (RGB converted to grayscale) or .npy"

#: ``--target`` takes a class as outputs print it, not an index (they differ for twoclass).
TARGET_HELP = ("only a change to this class counts: a class as the outputs print it (`verify info "
               "MODEL` lists them): the digit for the ten-class models, 1 or 3 for twoclass")


def add_scale_arg(p: Parser) -> None:
    """``--scale S`` for a command that reads an image (next to ``--resize``)."""
    p.add_argument("--scale", type=scale, default=None, metavar="S",
                   help="divide a .npy image's values by S (--scale 255 for 0..255 data); "
                        "without it float arrays must lie in [0, 1] and integer arrays are "
                        "8-bit 0..255. PNGs are scaled by their own bit depth")


def add_image(p: Parser, optional: str | None = None) -> None:
    """The image: ``IMAGE`` (``args.image``), ``--resize`` and ``--scale``. ``optional``: the
    image may be left out; the text says when (``"not with --vnnlib"``)."""
    p.add_argument("image", nargs="?" if optional else None,
                   help=IMAGE_HELP + (f" ({optional})" if optional else ""))
    p.add_argument("--resize", action="store_true",
                   help="scale an image of another size to 28x28 instead of refusing it")
    add_scale_arg(p)


def add_model(p: Parser, default: str = "multiclass", role: str = "") -> None:
    """``--model/-m`` (``args.model``; None means ``default``, which the command applies)."""
    p.add_argument("--model", "-m", default=None,
                   help=f"{role}bundled model name or path to a .keras/.h5/.onnx file "
                        f"(default: {default})")


def add_model_spec(p: Parser) -> None:
    """A model as the first positional argument, ``MODEL`` (``args.model_spec``)."""
    p.add_argument("model_spec", metavar="MODEL", help="bundled model name or path")


def add_target(p: Parser) -> None:
    """``--target CLASS`` (``args.target``: the class name as text, or None)."""
    p.add_argument("--target", default=None, metavar="CLASS", help=TARGET_HELP)


#: The ``--backend`` help of the exact tasks.
BACKEND_HELP = ("solver: highs (default), scip (default for L2), cplex, pyomo:<solver>; "
                "BNNs with --encoding cnf: sat:minicard (default), sat:gluecard4, "
                "sat:glucose4+totalizer, ..., cpsat (OR-tools CP-SAT), or portfolio "
                "(CP-SAT and a 0-1 IP on HiGHS racing on 2 threads)")


def add_solver_options(p: Parser, backend: str | None = BACKEND_HELP,
                       time_limit: str | None = "seconds", time_limit_default: float | None = None,
                       with_threads: bool = True) -> None:
    """The solver options: ``--backend/-b`` (its help ``backend``; None: no such flag),
    ``--time-limit S`` (its help ``time_limit``; None: no such flag) and ``--threads N``
    (unless ``with_threads`` is false).

    Every command that runs a solver takes its options from here, so an option for all of
    them (an engine choice, a solver setting) is one more ``add_argument`` in this function.
    """
    if backend is not None:
        p.add_argument("--backend", "-b", default=None, help=backend)
    if time_limit is not None:
        p.add_argument("--time-limit", type=seconds, default=time_limit_default, metavar="S",
                       help=time_limit)
    if with_threads:
        p.add_argument("--threads", type=threads, default=None, help="solver threads")


#: The ``--engine`` help of the yes/no commands (``certify``, ``certify --vnnlib``, ``vnncomp``).
ENGINE_HELP = ("how to decide: auto (default) = cheap bounds, then the bound engine (PGD "
               "attack, alpha-CROWN, branch and bound over ReLU phases) in half the time left "
               "(90%% when over 200 ReLUs are unstable and the region is a box or L1 ball), "
               "then LP bounds and a MIP built on the engine's bounds for what is still open "
               "(networks with few unstable ReLUs go straight to the MIP); bab = the bound "
               "engine only (unknown where it cannot decide, e.g. max-pool leaves); "
               "mip = attack, bounds and MIP only (no engine). The JSON's 'stage' says what "
               "settled it")


#: The ``--engine`` help of ``min-adv-*``.
MIN_ADV_ENGINE_HELP = ("how to prove minimality: auto (default) = a MIP for networks whose bounds "
                       "leave few ReLUs unstable, else a radius search on the bound engine "
                       "(attack, alpha-CROWN, branch and bound per radius) in 90%% of the "
                       "time left (half for L1, where the MIP often finishes), then the MIP "
                       "from its best example and proven bound; bab = the "
                       "engine's radius search only; mip = heuristic, bounds and MIP only")
#: The ``--engine`` help of ``explain``.
EXPLAIN_ENGINE_HELP = ("how each 'can the free pixels change the label?' check is settled after "
                       "the cheap ones: auto (default) = the MIP for checks with at most 64 "
                       "unstable ReLUs; else the bound engine (alpha-CROWN, branch and bound) "
                       "and the MIP take turns with growing time caps, the one cheaper so far "
                       "first (the engine, for 2 s, on an explanation's first such check); bab "
                       "= the engine only (an undecided pixel is kept without a witness); mip = "
                       "the MIP only")


def add_engine(p: Parser, help: str = ENGINE_HELP) -> None:
    """``--engine auto|bab|mip`` (see :mod:`verify.tasks.engine_stage`); ``help`` for
    commands other than the yes/no ones."""
    p.add_argument("--engine", choices=("auto", "bab", "mip"), default="auto", help=help)


def add_encoding(p: Parser) -> None:
    """``--encoding cnf|mip|ip`` (binarized networks only)."""
    p.add_argument("--encoding", choices=("cnf", "mip", "ip"), default=None,
                   help="binarized networks (BNNs) only: cnf (default; SAT with cardinality "
                        "constraints), mip (big-M with continuous pre-activations, as Narodytska "
                        "et al.) or ip (pure 0-1 cardinality rows); ReLU networks are always MIP. "
                        "BNNs with 8-bit integer inputs: mip (default; integer pixel columns), ip, "
                        "or cnf (an order encoding of each pixel's grey levels)")


def add_region(p: Parser) -> None:
    """The input region: ``--eps`` in ``--norm``, or ``--pixels K`` (see :func:`region`)."""
    p.add_argument("--eps", type=radius, default=None,
                   help="restrict the input to a ball of this radius around the image; on a "
                        "BNN with 8-bit integer inputs every pixel within floor(255 * EPS + "
                        "1e-9) grey levels (linf; l1: that many levels in all)")
    p.add_argument("--norm", default=None, choices=["linf", "l1", "l2"],
                   help="norm of the --eps ball (default linf)")
    p.add_argument("--pixels", type=pixels, default=None, metavar="K",
                   help="restrict the input to at most K changed pixels (each to any value; "
                        "on a BNN with binarised inputs: K flipped bits)")


def region(args: argparse.Namespace, center):
    """The input region of :func:`add_region`'s flags around ``center`` (default: the full box)."""
    from ..regions import Box, budget_region

    if args.eps is None and getattr(args, "pixels", None) is None:
        return Box(center)
    return budget_region(center, args.eps, (args.norm or "linf").lower(), getattr(args, "pixels", None))


def add_margin(p: Parser) -> None:
    """``--margin`` by which a new label must win."""
    p.add_argument("--margin", type=margin, default=1e-3,
                   help="logit margin by which the new label must win (default 1e-3)")


def add_output_options(p: Parser, out: str | None = None, json: str = "print result.json to stdout",
                       quiet: str | None = None, out_metavar: str = "DIR",
                       out_required: bool = False) -> None:
    """The output options: ``--json`` (its help ``json``), ``--out/-o`` (its help ``out``;
    None: no such flag) and ``--quiet/-q`` (its help ``quiet``; None: no such flag).
    :class:`verify.cli.output.Output` writes what they ask for."""
    p.add_argument("--json", action="store_true", help=json)
    if quiet is not None:
        p.add_argument("--quiet", "-q", action="store_true", help=quiet)
    if out is not None:
        p.add_argument("--out", "-o", default=None, required=out_required, metavar=out_metavar,
                       help=out)


# ------------------------------------------------------------------------------ reading them

def load_model(args: argparse.Namespace, default: str | None = None):
    """The model of :func:`add_model` (``default`` when ``--model`` is not given)."""
    from ..models import load_model as load

    return load(args.model or default)


def read_image(args: argparse.Namespace):
    """The image of :func:`add_image`, as ``--resize`` and ``--scale`` say."""
    from ..data import read_image as read

    return read(args.image, resize=args.resize, scale=args.scale)


def target_index(model, image, value) -> int | None:
    """The label index of ``--target`` (a class name), refusing a class that is not the
    model's or that the model already predicts for ``image`` (the message lists the choices)."""
    return None if value is None else model.target_index(value, model.label(image))
