"""The solver-neutral CNF/cardinality model, beside :class:`verify.problem.Problem`.

A :class:`CnfFormula` is what the SAT backends (:mod:`verify.backends.sat`) solve: clauses
over variables ``1..num_vars`` (a literal is ``±var``) and cardinality constraints
:class:`AtLeast` (``guard ⇒ #true(lits) >= bound``), plus the literals the search should try
first. Encoders (the BNN encoder, :mod:`verify.encodings.bnn`) produce it; the backends know
nothing of the encoders' own types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

__all__ = ["AtLeast", "CnfFormula", "CnfSource", "as_cnf"]


@dataclass
class AtLeast:
    """``guard ⇒ #true(lits) >= bound`` (``guard`` 0: unconditional); the count is known to
    lie in [lo, hi] over the region."""

    lits: np.ndarray
    bound: int
    guard: int = 0
    lo: int = 0
    hi: int = -1

    def __post_init__(self):
        if self.hi < 0:
            self.hi = len(self.lits)


@dataclass
class CnfFormula:
    """Clauses and cardinality constraints over variables ``1..num_vars``.

    ``preferred``: literals whose values the search tries first (saved phases), e.g. "keep
    each pixel as in the input"."""

    num_vars: int
    clauses: list[list[int]]
    constraints: list[AtLeast]
    preferred: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class CnfSource(Protocol):
    """An encoder's formula that can state itself as a :class:`CnfFormula`."""

    def to_cnf(self) -> CnfFormula: ...


def as_cnf(formula: CnfFormula | CnfSource) -> CnfFormula:
    """``formula`` as the neutral model (a :class:`CnfFormula` is returned as it is)."""
    return formula if isinstance(formula, CnfFormula) else formula.to_cnf()
