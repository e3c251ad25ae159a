"""Words every layer shares: the distance norms and the default logit margin.

This module sits at the bottom of the package (it imports nothing but :mod:`verify.errors`),
so the attacks, the encodings, the tasks and the command line all take these names from one
place instead of from each other.
"""
from __future__ import annotations

from .errors import InvalidInputError

#: The distances an adversarial example can be minimal in (``card``: number of changed pixels).
NORMS = ("card", "l1", "l2", "linf")
#: Other spellings accepted for :data:`NORMS`.
NORM_ALIASES = {"l0": "card", "sum": "l2", "inf": "linf", "l_inf": "linf"}

#: Logit margin by which the adversarial label must win.
DEFAULT_MARGIN = 1e-3


def normalise_norm(norm: str) -> str:
    """The canonical name (one of :data:`NORMS`) of ``norm`` or one of its aliases."""
    key = str(norm).lower().replace("-", "_")
    key = NORM_ALIASES.get(key, key)
    if key not in NORMS:
        raise InvalidInputError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
    return key
