"""Validating ``type=`` functions for the numeric flags of every ``verify`` command.

Each one turns the flag's text into a number and applies the rule of
:mod:`verify.validate`, so a bad value stops the command while its arguments are parsed,
before any model is loaded or solver started. argparse then prints the usage and
``argument --margin: must be a finite number ≥ 0, not 'nan'`` (the flag named) and exits
with code 2 (bad usage). The same rules are applied again by the Python API.
"""
from __future__ import annotations

import argparse
from typing import Callable

from .validate import NON_NEGATIVE, POSITIVE, RULES, Rule, as_number


def _parse(text: str, rule: Rule) -> float | int:
    """``text`` as a number that satisfies ``rule``; ArgumentTypeError (which argparse
    prefixes with the flag's name) if it is not one."""
    try:
        value: float | int = int(text) if rule.integer else float(text)
    except ValueError:
        try:
            value = float(text)          # "1e3" for a whole number; checked to be whole below
        except ValueError:
            value = None                 # type: ignore[assignment]
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


def add_scale_arg(p: argparse.ArgumentParser) -> None:
    """``--scale S`` for a command that reads an image (next to ``--resize``)."""
    p.add_argument("--scale", type=scale, default=None, metavar="S",
                   help="divide a .npy image's values by S (--scale 255 for 0..255 data); "
                        "without it float arrays must lie in [0, 1] and integer arrays are "
                        "8-bit 0..255. PNGs are scaled by their own bit depth")
