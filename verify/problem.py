"""The solver-neutral optimisation problem, in matrix form.

    minimise    ½ xᵀ P x + cᵀ x + offset
    subject to  row_lb ≤ A x ≤ row_ub
                lb ≤ x ≤ ub
                x_j integer where integrality[j]

``A`` is a scipy CSR matrix, ``P`` (optional) a symmetric positive semi-definite CSR matrix.
Bounds may be infinite. Named *blocks* map column ranges back to what they mean
(``"input"`` → the pixels, ``"layer1.relu"`` → neurons, ...), so a solution vector can be
read back without knowing how it was built. No solver library is imported here: backends
(``verify.backends``) translate a :class:`Problem` into their own API.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .errors import InvalidInputError

INF = np.inf


@dataclass
class Problem:
    c: np.ndarray
    A: sp.csr_matrix
    row_lb: np.ndarray
    row_ub: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    integrality: np.ndarray
    P: sp.csr_matrix | None = None
    offset: float = 0.0
    blocks: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "verify"

    @property
    def num_cols(self) -> int:
        return len(self.c)

    @property
    def num_rows(self) -> int:
        return self.A.shape[0]

    @property
    def num_integer(self) -> int:
        return int(np.count_nonzero(self.integrality))

    @property
    def is_quadratic(self) -> bool:
        return self.P is not None and self.P.nnz > 0

    @property
    def kind(self) -> str:
        """``"lp"``, ``"milp"``, ``"qp"`` or ``"miqp"``: what a backend must support."""
        if self.is_quadratic:
            return "miqp" if self.num_integer else "qp"
        return "milp" if self.num_integer else "lp"

    def objective_value(self, x: np.ndarray) -> float:
        x = np.asarray(x, dtype=np.float64)
        value = float(self.c @ x) + self.offset
        if self.is_quadratic:
            value += 0.5 * float(x @ (self.P @ x))
        return value

    def max_violation(self, x: np.ndarray) -> float:
        """Largest violation of any row, column bound or integrality by ``x`` (0 if feasible)."""
        x = np.asarray(x, dtype=np.float64)
        ax = self.A @ x
        parts = [
            np.maximum(self.row_lb - ax, 0.0),
            np.maximum(ax - self.row_ub, 0.0),
            np.maximum(self.lb - x, 0.0),
            np.maximum(x - self.ub, 0.0),
            np.abs(x - np.round(x)) * self.integrality,
        ]
        return float(max((p.max() if p.size else 0.0) for p in parts))

    def block(self, x: np.ndarray, name: str) -> np.ndarray:
        """The values of block ``name`` in the solution vector ``x``."""
        if name not in self.blocks:
            raise InvalidInputError(f"no block {name!r}; blocks are {sorted(self.blocks)}")
        return np.asarray(x)[self.blocks[name]]

    def summary(self) -> dict:
        return {
            "kind": self.kind,
            "columns": self.num_cols,
            "integer_columns": self.num_integer,
            "rows": self.num_rows,
            "nonzeros": int(self.A.nnz),
            "quadratic_nonzeros": int(self.P.nnz) if self.P is not None else 0,
        }


class ProblemBuilder:
    """Assembles a :class:`Problem` from blocks of columns and rows given as arrays.

    Everything is vectorised: a block of ``n`` columns or ``k`` rows is one call, and rows
    are given as COO triplets with row numbers local to the call.
    """

    def __init__(self, name: str = "verify"):
        self.name = name
        self._lb: list[np.ndarray] = []
        self._ub: list[np.ndarray] = []
        self._cost: list[np.ndarray] = []
        self._int: list[np.ndarray] = []
        self._rows_i: list[np.ndarray] = []
        self._rows_j: list[np.ndarray] = []
        self._rows_v: list[np.ndarray] = []
        self._row_lb: list[np.ndarray] = []
        self._row_ub: list[np.ndarray] = []
        self._q_i: list[np.ndarray] = []
        self._q_j: list[np.ndarray] = []
        self._q_v: list[np.ndarray] = []
        self.num_cols = 0
        self.num_rows = 0
        self.offset = 0.0
        self.blocks: dict[str, np.ndarray] = {}

    def add_vars(self, name: str | None, n: int, lb=0.0, ub=INF, integer: bool = False,
                 cost=0.0) -> np.ndarray:
        """Add ``n`` columns; returns their indices. ``lb``/``ub``/``cost`` broadcast."""
        idx = np.arange(self.num_cols, self.num_cols + n)
        self._lb.append(np.broadcast_to(np.asarray(lb, dtype=np.float64), (n,)).copy())
        self._ub.append(np.broadcast_to(np.asarray(ub, dtype=np.float64), (n,)).copy())
        self._cost.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), (n,)).copy())
        self._int.append(np.full(n, bool(integer)))
        self.num_cols += n
        if name is not None:
            if name in self.blocks:
                raise InvalidInputError(f"block {name!r} defined twice")
            self.blocks[name] = idx
        return idx

    def add_rows(self, rows, cols, vals, lo, hi, count: int | None = None) -> np.ndarray:
        """Add rows ``lo ≤ Σ vals·x[cols] ≤ hi`` from COO triplets (row numbers from 0).

        ``count`` is the number of rows (default: ``max(rows) + 1``); ``lo``/``hi`` broadcast.
        Returns the global row indices.
        """
        rows = np.asarray(rows, dtype=np.int64)
        k = int(count if count is not None else (rows.max() + 1 if rows.size else 0))
        self._rows_i.append(rows + self.num_rows)
        self._rows_j.append(np.asarray(cols, dtype=np.int64))
        self._rows_v.append(np.asarray(vals, dtype=np.float64))
        self._row_lb.append(np.broadcast_to(np.asarray(lo, dtype=np.float64), (k,)).copy())
        self._row_ub.append(np.broadcast_to(np.asarray(hi, dtype=np.float64), (k,)).copy())
        idx = np.arange(self.num_rows, self.num_rows + k)
        self.num_rows += k
        return idx

    def add_matrix_rows(self, matrix, cols: np.ndarray, lo, hi) -> np.ndarray:
        """Add rows ``lo ≤ M · x[cols] ≤ hi`` for a dense or sparse matrix ``M``."""
        coo = sp.coo_matrix(matrix)
        return self.add_rows(coo.row, np.asarray(cols)[coo.col], coo.data, lo, hi,
                             count=coo.shape[0])

    def add_quadratic(self, i, j, v) -> None:
        """Add ``½ Σ v·x_i·x_j`` to the objective (give both (i,j) and (j,i) for symmetry)."""
        self._q_i.append(np.asarray(i, dtype=np.int64))
        self._q_j.append(np.asarray(j, dtype=np.int64))
        self._q_v.append(np.asarray(v, dtype=np.float64))

    def set_cost(self, cols, cost) -> None:
        """Add ``cost`` to the linear objective coefficients of ``cols``."""
        c = self._flat(self._cost, self.num_cols)
        np.add.at(c, np.asarray(cols), cost)
        self._cost = [c]

    @staticmethod
    def _flat(parts: list[np.ndarray], n: int, dtype=np.float64) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(n, dtype=dtype)

    def build(self) -> Problem:
        n, m = self.num_cols, self.num_rows
        cat = lambda parts, dt=np.float64: (np.concatenate(parts).astype(dt)  # noqa: E731
                                            if parts else np.zeros(0, dtype=dt))
        A = sp.csr_matrix((cat(self._rows_v), (cat(self._rows_i, np.int64),
                                               cat(self._rows_j, np.int64))), shape=(m, n))
        A.sum_duplicates()
        P = None
        if self._q_v:
            P = sp.csr_matrix((cat(self._q_v), (cat(self._q_i, np.int64), cat(self._q_j, np.int64))),
                              shape=(n, n))
            P.sum_duplicates()
        return Problem(
            c=self._flat(self._cost, n), A=A, row_lb=cat(self._row_lb), row_ub=cat(self._row_ub),
            lb=self._flat(self._lb, n), ub=self._flat(self._ub, n),
            integrality=self._flat(self._int, n, bool), P=P, offset=self.offset,
            blocks=dict(self.blocks), name=self.name,
        )
