"""What a test may skip for, and what it must not.

``make test`` installs the ``[test]`` extra (setup.cfg): highspy, pyscipopt, cplex, pyomo and
python-sat. A backend from those packages that is missing is a broken installation and FAILS
the test that needs it, so no missing solver can turn a failure into a silent skip. Only the
solvers that Pyomo drives but no pip extra installs (``pyomo:<solver>`` other than its HiGHS
bridge, e.g. glpk, cbc, gurobi_direct) are skipped when absent.
"""
from __future__ import annotations

import pytest

from verify.backends import get_backend


def require_backend(name: str):
    """The backend ``name``, available; otherwise a skip (external Pyomo solvers only) or a
    failure (every backend the test extra installs)."""
    backend = get_backend(name)
    if backend.available():
        return backend
    if name.startswith("pyomo:") and name != "pyomo:appsi_highs":
        pytest.skip(f"backend {name} not installed: {backend.install_hint}")
    pytest.fail(f"backend {name} is a test dependency (pip install -e '.[test]') but is not "
                f"available: {backend.install_hint}")
