"""Solver backends, by name: ``highs`` (default), ``scip``, ``cplex``, ``pyomo:<solver>``,
``sat:<solver>[+<encoding>]`` for BNN formulas (python-sat), ``cpsat`` for BNN formulas
(OR-Tools CP-SAT), and ``portfolio`` (CP-SAT and MiniCard racing on a BNN formula).

>>> from verify.backends import get_backend
>>> get_backend("highs").solve(problem)

Every name resolves through one table, :data:`REGISTRY`: a row is a plain name (``highs``)
or a family prefix (``pyomo:``, ``sat:``) with the class that builds the backend. Adding a
backend is one module implementing the contract of :class:`~verify.backends.base.Backend`
(build / run / extract and a status table) plus one row here.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import BackendUnavailableError, InvalidInputError
from .base import Backend, LpSession, Raw, SolveOptions, SolveResult, Status, set_alternatives
from .cplex import CplexBackend
from .cpsat import CpSatBackend
from .formula import FormulaBackend
from .highs import HighsBackend
from .portfolio import PortfolioBackend
from .pyomo import PyomoBackend
from .sat import DEFAULT_SAT, NATIVE, SatBackend
from .scip import ScipBackend

__all__ = ["DEFAULT_BACKEND", "REGISTRY", "Backend", "LpSession", "Raw", "Registered", "SolveOptions",
           "SolveResult", "Status", "availability", "backends_for", "check_cnf_backend", "get_backend",
           "list_backends"]

DEFAULT_BACKEND = "highs"


@dataclass(frozen=True)
class Registered:
    """One row of :data:`REGISTRY`.

    ``name``: the backend's name (a plain name: also offered by :func:`backends_for`), or
    for a family its prefix ending in ``:`` (``cls`` gets the rest of the name: Pyomo the
    solver, SAT the whole ``sat:...`` spec); ``listed``: the names ``verify backends``
    reports on; ``example``: how the unknown-name error shows a family."""

    name: str
    cls: type[Backend]
    listed: tuple[str, ...]
    example: str = ""

    @property
    def family(self) -> bool:
        return self.name.endswith(":")

    def make(self, name: str) -> Backend:
        if not self.family:
            return self.cls()
        rest = name[len(self.name):]
        return self.cls(rest) if self.cls is PyomoBackend else self.cls(name)


#: Every backend name, in the order ``verify backends`` lists them.
REGISTRY: tuple[Registered, ...] = (
    Registered("highs", HighsBackend, ("highs",)),
    Registered("scip", ScipBackend, ("scip",)),
    Registered("cplex", CplexBackend, ("cplex",)),
    Registered("pyomo:", PyomoBackend,
               tuple(f"pyomo:{s}" for s in ("appsi_highs", "scip", "cplex_direct",
                                            "gurobi_direct", "cbc", "glpk")),
               example="pyomo:<solver> (e.g. pyomo:appsi_highs)"),
    Registered("sat:", SatBackend,
               tuple(f"sat:{s}" for s in NATIVE) + ("sat:glucose4+totalizer",),
               example="sat:<solver> (BNNs, e.g. sat:minicard)"),
    Registered("cpsat", CpSatBackend, ("cpsat",)),
    Registered("portfolio", PortfolioBackend, ("portfolio",)),
)
#: Solvers listed by ``verify backends`` under Pyomo (any other Pyomo solver name works too).
PYOMO_LISTED = tuple(n.split(":", 1)[1] for n in REGISTRY[3].listed)


def _row(name: str) -> Registered:
    for row in REGISTRY:
        if name == row.name if not row.family else (name.startswith(row.name)
                                                    and len(name) > len(row.name)):
            return row
    raise BackendUnavailableError(
        f"unknown backend {name!r}; choose one of "
        + ", ".join(r.example or r.name for r in REGISTRY)
        + "; `verify backends` lists what is installed")


def get_backend(name: str | None = None) -> Backend:
    """The backend called ``name`` (default ``highs``). Unknown names are a clear error that
    lists the names there are."""
    name = (name or DEFAULT_BACKEND).strip().lower()
    return _row(name).make(name)


def availability(name: str) -> str | None:
    """None when backend ``name`` is installed, else why not and what to pip install
    (an unknown name raises :class:`BackendUnavailableError`)."""
    return get_backend(name).unavailable_reason()


def list_backends() -> list[Backend]:
    """Every backend ``verify backends`` reports on, installed or not."""
    return [row.make(n) for row in REGISTRY for n in row.listed]


def check_cnf_backend(name: str, threads: int | None = None) -> FormulaBackend:
    """The installed backend called ``name`` for the cnf encoding of BNNs: a SAT backend
    (``sat:...``), ``cpsat`` (with ``threads`` workers) or ``portfolio`` (both racing); a
    clear error otherwise (an unknown name: the registry's error, which lists the names)."""
    backend = get_backend(name)
    if not isinstance(backend, FormulaBackend):
        raise InvalidInputError(f"the cnf encoding needs a SAT backend (e.g. {DEFAULT_SAT}), "
                                f"cpsat or portfolio, not {name!r}")
    if not backend.available():
        raise BackendUnavailableError(
            f"backend {backend.name!r} is not installed ({backend.install_hint})")
    if isinstance(backend, (CpSatBackend, PortfolioBackend)):
        backend.threads = threads
    return backend


def backends_for(kind: str) -> list[Backend]:
    """Installed backends (with plain names) that can solve a problem of ``kind``."""
    return [b for b in (row.make(row.name) for row in REGISTRY if not row.family)
            if kind in b.capabilities and b.available()]


set_alternatives(lambda kind: [b.name for b in backends_for(kind)])
