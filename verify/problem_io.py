"""Write a :class:`~verify.problem.Problem` to an MPS or CPLEX-LP file, for any solver to read.

``write_problem(problem, "model.mps")`` writes free MPS; ``"model.lp"`` writes CPLEX LP format.
Pure Python and numpy: no solver is needed. Column names come from ``problem.blocks``
(block ``"layer1.relu"`` → ``layer1_relu_0``, ``layer1_relu_1``, ...), other columns are
``x<j>``; rows are ``r<i>``.

Conventions (both read back identically by HiGHS, CPLEX and SCIP):

* MPS: ranged rows are ``G`` rows with a ``RANGES`` entry ``hi − lo``; free rows are extra
  ``N`` rows (readers drop them); integer columns sit between ``'MARKER' 'INTORG'`` /
  ``'INTEND'`` lines and always get explicit bounds (some readers default unbounded integer
  columns to binary); the objective constant is the negated ``RHS`` of the objective row;
  ``QUADOBJ`` lists each entry of the upper triangle of ``P`` once, for ``½ xᵀPx`` (the reader
  mirrors off-diagonal entries).
* LP: the quadratic part is ``[ Σ P_ii x_i ^2 + Σ_{i<j} 2 P_ij x_i * x_j ] / 2`` (``^2``
  without a space: SCIP's reader needs it), the objective constant comes last; a ranged
  row ``lo ≤ a·x ≤ hi`` becomes two rows ``r<i>_lo`` and ``r<i>_hi``; free rows are left out.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .errors import InvalidInputError
from .problem import Problem

#: Terms per line in LP files (CPLEX caps line length; 8 terms stay well below it).
_TERMS_PER_LINE = 8


def write_problem(problem: Problem, path: str | Path) -> Path:
    """Write ``problem`` to ``path``; the suffix (``.mps`` or ``.lp``) picks the format."""
    path = check_problem_path(path)
    suffix = path.suffix.lower()
    if np.any(problem.row_lb > problem.row_ub):
        bad = int(np.flatnonzero(problem.row_lb > problem.row_ub)[0])
        raise InvalidInputError(f"row r{bad} has lower bound > upper bound; it cannot be written")
    text = _mps_text(problem) if suffix == ".mps" else _lp_text(problem)
    path.write_text(text)
    return path


def check_problem_path(path: str | Path) -> Path:
    """``path`` as a Path if its suffix names a format we write, else InvalidInputError."""
    path = Path(path)
    if path.suffix.lower() not in (".mps", ".lp"):
        raise InvalidInputError(
            f"cannot write {path.name!r}: unknown problem file suffix {path.suffix!r} "
            "(use .mps or .lp)")
    return path


def column_names(problem: Problem) -> list[str]:
    """One name per column: ``<block>_<k>`` where a block covers it, else ``x<j>``. Unique."""
    names: list[str | None] = [None] * problem.num_cols
    taken: set[str] = set()
    for block, idx in problem.blocks.items():
        base = re.sub(r"[^A-Za-z0-9_]", "_", str(block)) or "v"
        if not base[0].isalpha() or re.match(r"[eE][0-9eE]", base):
            base = "v_" + base  # LP format: no leading digit, nothing that reads as an exponent
        for k, j in enumerate(np.asarray(idx, dtype=np.int64).ravel().tolist()):
            name = f"{base}_{k}"
            if names[j] is None and name not in taken:
                names[j] = name
                taken.add(name)
    return [n if n is not None else f"x{j}" for j, n in enumerate(names)]


def _num(v: float) -> str:
    """Shortest text that reads back as exactly ``v``."""
    return repr(float(v))


def _canonical(A) -> sp.csr_matrix:
    A = sp.csr_matrix(A, dtype=np.float64)
    if not A.has_canonical_format:
        A = A.copy()
        A.sum_duplicates()
    return A


def upper_triangle(P) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, v)`` with ``i ≤ j`` of the symmetrised ``P`` (``(P + Pᵀ)/2``), zeros dropped.

    ``½ xᵀPx = Σ_i ½ v_ii x_i² + Σ_{i<j} v_ij x_i x_j`` for these triplets. Solvers that
    store one triangle of the Hessian (HiGHS, MPS ``QUADOBJ``) take them as they are.
    """
    if P is None:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    P = sp.csr_matrix(P, dtype=np.float64)
    S = sp.triu((P + P.T) * 0.5, format="coo")
    S.sum_duplicates()
    keep = S.data != 0.0
    return S.row[keep].astype(np.int64), S.col[keep].astype(np.int64), S.data[keep]


# ---------------------------------------------------------------------------------- MPS

def _mps_text(problem: Problem) -> str:
    n, m = problem.num_cols, problem.num_rows
    cols = column_names(problem)
    rows = [f"r{i}" for i in range(m)]
    lo, hi = np.asarray(problem.row_lb, float), np.asarray(problem.row_ub, float)
    lo_f, hi_f = np.isfinite(lo), np.isfinite(hi)
    both = lo_f & hi_f
    kind = np.full(m, "N")
    kind[lo_f & ~hi_f] = "G"
    kind[~lo_f & hi_f] = "L"
    kind[both] = "G"
    kind[both & (lo == hi)] = "E"
    rhs = np.where(lo_f, lo, np.where(hi_f, hi, 0.0))
    ranged = both & (lo < hi)

    title = re.sub(r"\s+", "_", problem.name or "verify")
    out = [f"NAME {title}", "ROWS", " N  obj"]
    out += [f" {k}  {r}" for k, r in zip(kind.tolist(), rows)]

    out.append("COLUMNS")
    A = _canonical(problem.A).tocsc()
    A.sort_indices()
    ptr, ridx, vals = A.indptr.tolist(), A.indices.tolist(), A.data.tolist()
    c = np.asarray(problem.c, dtype=np.float64).tolist()
    integ = np.asarray(problem.integrality, dtype=bool).tolist()
    in_int, marker = False, 0
    for j in range(n):
        if integ[j] != in_int:
            out.append(f"    MARKER{marker}  'MARKER'  '{'INTORG' if integ[j] else 'INTEND'}'")
            marker += 1
            in_int = integ[j]
        name = cols[j]
        s, e = ptr[j], ptr[j + 1]
        if c[j] != 0.0 or s == e:
            out.append(f"    {name}  obj  {_num(c[j])}")
        out += [f"    {name}  {rows[i]}  {_num(v)}" for i, v in zip(ridx[s:e], vals[s:e])]
    if in_int:
        out.append(f"    MARKER{marker}  'MARKER'  'INTEND'")

    out.append("RHS")
    if problem.offset:
        out.append(f"    RHS  obj  {_num(-problem.offset)}")  # RHS of the objective = −constant
    nz = np.flatnonzero((kind != "N") & (rhs != 0.0)).tolist()
    out += [f"    RHS  {rows[i]}  {_num(rhs[i])}" for i in nz]
    if ranged.any():
        out.append("RANGES")
        out += [f"    RNG  {rows[i]}  {_num(hi[i] - lo[i])}"
                for i in np.flatnonzero(ranged).tolist()]

    out.append("BOUNDS")
    lb, ub = np.asarray(problem.lb, float), np.asarray(problem.ub, float)
    special = np.flatnonzero(np.asarray(problem.integrality, bool) | (lb != 0.0) | (ub != np.inf))
    for j in special.tolist():
        name, l, u = cols[j], lb[j], ub[j]
        if l == u:
            out.append(f" FX BND  {name}  {_num(l)}")
        elif integ[j]:
            out.append(f" MI BND  {name}" if l == -np.inf else f" LO BND  {name}  {_num(l)}")
            out.append(f" PL BND  {name}" if u == np.inf else f" UP BND  {name}  {_num(u)}")
        elif l == -np.inf and u == np.inf:
            out.append(f" FR BND  {name}")
        else:
            if l == -np.inf:
                out.append(f" MI BND  {name}")
            elif l != 0.0 or u < 0.0:  # an UP < 0 alone would make some readers drop lb = 0
                out.append(f" LO BND  {name}  {_num(l)}")
            if u != np.inf:
                out.append(f" UP BND  {name}  {_num(u)}")

    qi, qj, qv = upper_triangle(problem.P)
    if qv.size:
        out.append("QUADOBJ")
        out += [f"    {cols[a]}  {cols[b]}  {_num(v)}"
                for a, b, v in zip(qi.tolist(), qj.tolist(), qv.tolist())]
    out.append("ENDATA")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------- LP

def _signed_terms(coefs: list[float], names: list[str]) -> list[str]:
    return [f"{'-' if v < 0 else '+'} {_num(abs(v))} {nm}" for v, nm in zip(coefs, names)]


def _wrap(head: str, terms: list[str], tail: str = "") -> list[str]:
    """``head`` + terms, a few per line, + ``tail`` (LP lines must stay short)."""
    lines, k = [], _TERMS_PER_LINE
    for s in range(0, max(len(terms), 1), k):
        lines.append("   " + " ".join(terms[s:s + k]))
    lines[0] = head + lines[0][2:]
    lines[-1] += tail
    return lines


def _lp_text(problem: Problem) -> str:
    n, m = problem.num_cols, problem.num_rows
    cols = column_names(problem)
    A = _canonical(problem.A)
    ptr, cidx, vals = A.indptr.tolist(), A.indices.tolist(), A.data.tolist()
    out = [f"\\ {problem.name or 'verify'}: written by verify.problem_io", "Minimize"]

    c = np.asarray(problem.c, dtype=np.float64)
    qi, qj, qv = upper_triangle(problem.P)
    used = np.zeros(n, dtype=bool)
    used[A.indices] = True
    used[qi] = True
    used[qj] = True
    obj_cols = np.flatnonzero((c != 0.0) | ~used)  # unused columns appear with cost 0
    if obj_cols.size == 0 and n and not qv.size:
        obj_cols = np.array([0])
    terms = _signed_terms(c[obj_cols].tolist(), [cols[j] for j in obj_cols.tolist()])
    if qv.size:
        qc = np.where(qi == qj, qv, 2.0 * qv).tolist()
        qt = [f"{'-' if v < 0 else '+'} {_num(abs(v))} "
              + (f"{cols[a]} ^2" if a == b else f"{cols[a]} * {cols[b]}")
              for a, b, v in zip(qi.tolist(), qj.tolist(), qc)]
        qt[0] = qt[0][2:] if qt[0].startswith("+ ") else qt[0]
        qt[0] = "+ [ " + qt[0]
        qt[-1] += " ] / 2"
        terms += qt
    if problem.offset:  # last, as CPLEX writes it (CPLEX rejects a constant before a term)
        terms.append(f"{'-' if problem.offset < 0 else '+'} {_num(abs(problem.offset))}")
    out += _wrap(" obj:", terms)

    out.append("Subject To")
    lo, hi = problem.row_lb.tolist(), problem.row_ub.tolist()
    first = cols[0] if n else "x0"
    for i in range(m):
        l, u = lo[i], hi[i]
        lf, uf = np.isfinite(l), np.isfinite(u)
        if not lf and not uf:
            continue
        s, e = ptr[i], ptr[i + 1]
        terms = (_signed_terms(vals[s:e], [cols[j] for j in cidx[s:e]]) if e > s
                 else [f"0 {first}"])
        if lf and uf and l == u:
            out += _wrap(f" r{i}:", terms, f" = {_num(l)}")
        elif lf and uf:
            out += _wrap(f" r{i}_lo:", terms, f" >= {_num(l)}")
            out += _wrap(f" r{i}_hi:", terms, f" <= {_num(u)}")
        elif lf:
            out += _wrap(f" r{i}:", terms, f" >= {_num(l)}")
        else:
            out += _wrap(f" r{i}:", terms, f" <= {_num(u)}")

    out.append("Bounds")
    lb, ub = np.asarray(problem.lb, float), np.asarray(problem.ub, float)
    for j in np.flatnonzero((lb != 0.0) | (ub != np.inf)).tolist():
        l, u = lb[j], ub[j]
        if l == u:
            out.append(f" {cols[j]} = {_num(l)}")
        elif l == -np.inf and u == np.inf:
            out.append(f" {cols[j]} free")
        else:
            ls = "-inf" if l == -np.inf else _num(l)
            us = "+inf" if u == np.inf else _num(u)
            out.append(f" {ls} <= {cols[j]} <= {us}")

    ints = [cols[j] for j in np.flatnonzero(problem.integrality).tolist()]
    if ints:
        out.append("General")
        out += [" " + " ".join(ints[s:s + 10]) for s in range(0, len(ints), 10)]
    out.append("End")
    return "\n".join(out) + "\n"
