"""Solver backends, by name: ``highs`` (default), ``scip``, ``cplex``, ``pyomo:<solver>``,
and ``sat:<solver>[+<encoding>]`` for BNN formulas (python-sat).

>>> from verify.backends import get_backend
>>> get_backend("highs").solve(problem)
"""
from __future__ import annotations

from ..errors import BackendUnavailableError
from .base import Backend, SolveOptions, SolveResult, Status
from .cplex import CplexBackend
from .highs import HighsBackend
from .pyomo import PyomoBackend
from .sat import NATIVE, SatBackend
from .scip import ScipBackend

__all__ = ["Backend", "SolveOptions", "SolveResult", "Status", "get_backend", "list_backends",
           "backends_for", "DEFAULT_BACKEND"]

DEFAULT_BACKEND = "highs"
#: Backends addressed by a plain name. ``pyomo:<solver>`` is built on demand.
_FIXED: dict[str, type[Backend]] = {
    "highs": HighsBackend,
    "scip": ScipBackend,
    "cplex": CplexBackend,
}
#: Solvers listed by ``verify backends`` under Pyomo (any other Pyomo solver name works too).
PYOMO_LISTED = ("appsi_highs", "scip", "cplex_direct", "gurobi_direct", "cbc", "glpk")


def get_backend(name: str | None = None) -> Backend:
    """The backend called ``name`` (default ``highs``). Unknown names are a clear error."""
    name = (name or DEFAULT_BACKEND).strip().lower()
    if name in _FIXED:
        return _FIXED[name]()
    if name.startswith("pyomo:") and len(name) > len("pyomo:"):
        return PyomoBackend(name.split(":", 1)[1])
    if name.startswith("sat:"):
        return SatBackend(name)
    raise BackendUnavailableError(
        f"unknown backend {name!r}; choose one of {', '.join(_FIXED)}, pyomo:<solver> "
        "(e.g. pyomo:appsi_highs) or sat:<solver> (BNNs, e.g. sat:minicard); "
        "`verify backends` lists what is installed")


def list_backends() -> list[Backend]:
    """Every backend ``verify backends`` reports on, installed or not."""
    return ([cls() for cls in _FIXED.values()] + [PyomoBackend(s) for s in PYOMO_LISTED]
            + [SatBackend(s) for s in NATIVE] + [SatBackend("glucose4+totalizer")])


def backends_for(kind: str) -> list[Backend]:
    """Installed backends (with fixed names) that can solve a problem of ``kind``."""
    return [b for b in (cls() for cls in _FIXED.values())
            if kind in b.capabilities and b.available()]
