"""Checks of the numbers a user passes in, in one place and with one wording.

Every public entry point (``min_adversarial``, ``certify``, ``explain``, ``attack``,
``compare``, ``certify_vnnlib``, ...) checks its numeric arguments here before any work
starts, and the command line applies the same rules while it parses its flags
(:mod:`verify.cli.args`). A value that breaks its rule is an
:class:`~verify.errors.InvalidInputError` that names the parameter, the rule and the value,
e.g. ``margin must be a finite number ≥ 0, not -1``.

The rules (``None`` always means "not given / the default", except for ``margin`` and
``seed``, which always have a value):

============== ==========================================================================
time_limit     seconds, a finite number > 0 (also total_time_limit)
threads        a whole number ≥ 1
margin         logit margin, a finite number ≥ 0 (0: a tie with the new label counts)
rel_gap        a finite number ≥ 0
eps            a radius, a finite number ≥ 0; in the ``linf`` norm also ≤ 1, because pixel
               values lie in [0, 1] (a larger radius is the whole pixel range, and usually
               means 0..255 units were meant: 8/255 is 0.0314)
pixels         a whole number ≥ 0 (0 is the trivial budget: nothing may change)
pixel_levels   a whole number ≥ 2
seed           a whole number ≥ 0
timeout_cap    seconds, a finite number > 0
workers        a whole number ≥ 1
============== ==========================================================================
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .errors import InvalidInputError


@dataclass(frozen=True)
class Rule:
    """What a number must be: bounds (``low_open``: strictly above ``low``), whole or not."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        """The rule in words, e.g. ``a finite number > 0`` or ``a whole number ≥ 1``."""
        text = "a whole number" if self.integer else "a finite number"
        if self.low is not None and self.high is not None:
            return f"{text} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"{text} {'>' if self.low_open else '≥'} {self.low:g}"
        if self.high is not None:
            return f"{text} ≤ {self.high:g}"
        return text

    def admits(self, value: float) -> bool:
        """Whether the (already numeric, finite) ``value`` satisfies the bounds."""
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


POSITIVE = Rule(low=0, low_open=True)
NON_NEGATIVE = Rule(low=0)

#: The rule of each named parameter (see the module docstring).
RULES: dict[str, Rule] = {
    "time_limit": POSITIVE,
    "total_time_limit": POSITIVE,
    "timeout_cap": POSITIVE,
    "threads": Rule(low=1, integer=True),
    "workers": Rule(low=1, integer=True),
    "margin": NON_NEGATIVE,
    "rel_gap": NON_NEGATIVE,
    "eps": NON_NEGATIVE,
    "pixels": Rule(low=0, integer=True),
    "pixel_levels": Rule(low=2, integer=True),
    "seed": Rule(low=0, integer=True),
}

#: Parameters for which None is not a "not given" but an error.
REQUIRED = frozenset({"margin", "seed"})


def as_number(value: object, rule: Rule) -> float | int | None:
    """``value`` as an int (whole-number rules) or a float when it is a finite real number
    that ``rule`` admits, else None. Bools are not numbers here; an integral float is
    accepted where a whole number is asked for (``2.0`` → ``2``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    if not math.isfinite(number) or not rule.admits(number):
        return None
    if rule.integer:
        if number != int(number):
            return None
        return int(value) if isinstance(value, numbers.Integral) else int(number)
    return number


def check_number(value: object, name: str, rule: Rule, hint: str = "") -> float | int:
    """``value`` converted (see :func:`as_number`), or an InvalidInputError
    ``"{name} must be {rule}, not {value}"`` (plus ``hint``)."""
    number = as_number(value, rule)
    if number is None:
        shown = repr(value) if isinstance(value, str) else str(value)
        raise InvalidInputError(f"{name} must be {rule.describe()}, not {shown}"
                                + (f" ({hint})" if hint else ""))
    return number


def check(**values: object) -> None:
    """Check each named value against its rule in :data:`RULES` (``None`` is skipped, except
    for the :data:`REQUIRED` names); raises InvalidInputError for the first that breaks it.

    Example: ``check(time_limit=time_limit, threads=threads, margin=margin)``.
    """
    for name, value in values.items():
        if value is None and name not in REQUIRED:
            continue
        check_number(value, name, RULES[name])


LINF_NAMES = frozenset({"linf", "l_inf", "inf", "l∞"})


def check_eps(eps: object, norm: str | None = "linf", name: str = "eps",
              positive: bool = False) -> float | None:
    """A radius: None, or a finite number ≥ 0 (> 0 with ``positive``); in the ``linf`` norm
    (``norm=None`` means a per-pixel ±eps, also linf) at most 1, the whole pixel range."""
    if eps is None:
        return None
    value = check_number(eps, name, POSITIVE if positive else NON_NEGATIVE)
    if (norm is None or str(norm).lower().replace("-", "_") in LINF_NAMES) and value > 1:
        raise InvalidInputError(
            f"{name} must be ≤ 1 in the linf norm, not {eps}: pixel values lie in [0, 1], so "
            f"{name} is in those units (8/255 is 0.0314)")
    return float(value)


#: Attack options (``attack(..., **options)``) that count steps or items: whole numbers ≥ 1.
COUNT_OPTIONS = frozenset({"steps", "search_steps", "restarts", "max_pixels", "max_flips",
                           "l1_coordinates", "iterations", "max_iterations"})


def check_options(options: dict) -> None:
    """Check the numeric options of an attack: step and item counts (:data:`COUNT_OPTIONS`)
    must be whole numbers ≥ 1, any other number must be finite (and ≥ 0 when it is a step
    size, a constant or an overshoot). Non-numeric options are left to the method."""
    for name, value in options.items():
        if name in COUNT_OPTIONS:
            check_number(value, name, Rule(low=1, integer=True))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            check_number(value, name, NON_NEGATIVE if name in ("step_size", "initial_const",
                                                               "overshoot") else Rule())
