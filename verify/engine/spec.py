"""Output specifications: the unsafe set as a disjunction of conjunctions of linear rows.

A :class:`Spec` is the form the VNN-LIB encoder uses (:mod:`verify.encodings.properties`):
the outputs ``y`` (logits) are *unsafe* when, for some disjunct ``k``, every row of
``A_k y ≤ b_k`` holds. With a ``margin`` (see :func:`verify.engine.decide`) the unsafe set is
``A_k y ≤ b_k − margin``: a positive margin asks a counterexample for room to spare, a
negative one relaxes the rows (a proof then covers a slightly larger set).

The engine proves a disjunct impossible over a region when *some* row has a lower bound of
``(A_k y)_i`` above ``b_{k,i} − margin`` (plus the round-off allowance); the spec is verified
when every disjunct is. A disjunct with no rows is always satisfied: any input is a
counterexample.

For robustness of label ``c`` (:meth:`Spec.label_change`): one disjunct per other label ``j``,
the single row ``y_c − y_j ≤ 0``; proving it means ``y_c − y_j > −margin`` everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError


@dataclass(eq=False)
class Spec:
    """Unsafe outputs: ``A_k y ≤ b_k`` for some ``(A_k, b_k)`` in ``disjuncts``."""

    disjuncts: list
    names: list | None = None          # optional label per disjunct (e.g. the other label)

    def __post_init__(self):
        clean = []
        for A, b in self.disjuncts:
            A = np.atleast_2d(np.asarray(A, dtype=np.float64))
            b = np.atleast_1d(np.asarray(b, dtype=np.float64)).ravel()
            if A.size == 0:
                A = A.reshape(0, A.shape[-1] if A.ndim == 2 else 0)
            if A.shape[0] != b.size:
                raise InvalidInputError(f"spec disjunct has {A.shape[0]} rows but {b.size} bounds")
            if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
                raise InvalidInputError("spec rows must be finite")
            clean.append((A, b))
        self.disjuncts = clean

    @property
    def num_outputs(self) -> int | None:
        sizes = {A.shape[1] for A, _ in self.disjuncts if A.shape[0]}
        return sizes.pop() if len(sizes) == 1 else None

    def check(self, num_outputs: int) -> None:
        for A, _ in self.disjuncts:
            if A.shape[0] and A.shape[1] != num_outputs:
                raise InvalidInputError(f"spec rows have {A.shape[1]} columns, the network has "
                                        f"{num_outputs} outputs")

    @classmethod
    def label_change(cls, num_outputs: int, label: int, target: int | None = None) -> "Spec":
        """"The label is not ``label``" (untargeted: one disjunct per other label) or "the
        label is ``target``" (one disjunct, a row per other label). One-logit networks
        (class 1 iff y > 0): the single row ``±y ≤ 0``."""
        from ..encodings.properties import label_change_cases

        cases, labels = label_change_cases(num_outputs, label, target)
        names = labels if (target is None and num_outputs > 1) else None
        return cls([(A, b) for A, b in cases], names)

    @classmethod
    def from_cases(cls, cases) -> "Spec":
        """From ``[(A, b), ...]`` as in :class:`verify.vnnlib.PropertyCase` ``.disjuncts``."""
        return cls(list(cases))

    def violation(self, y: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Per output vector of a batch: ``min_k max_i (A_k y − b_k + margin)_i`` — ≤ 0 exactly
        when some disjunct holds (with the margin)."""
        y = np.atleast_2d(y)
        worst = np.full(y.shape[0], np.inf)
        for A, b in self.disjuncts:
            if A.shape[0] == 0:
                return np.full(y.shape[0], -np.inf)
            worst = np.minimum(worst, (y @ A.T - b + margin).max(axis=1))
        return worst

    def holds(self, y: np.ndarray, margin: float = 0.0) -> int | None:
        """Index of the first disjunct that the output vector ``y`` satisfies, or None."""
        y = np.asarray(y, dtype=np.float64).ravel()
        for k, (A, b) in enumerate(self.disjuncts):
            if np.all(A @ y <= b - margin):
                return k
        return None
