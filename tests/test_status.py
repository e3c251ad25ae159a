"""The typed status vocabularies, the one Status -> Outcome mapping, the backends' status
tables, the shared solve rules and the backend registry (no solver runs here: fast)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from verify.backends import REGISTRY, SolveOptions, availability, get_backend, list_backends
from verify.backends.base import Raw
from verify.backends.cplex import CplexBackend
from verify.backends.highs import HighsBackend
from verify.backends.pyomo import PyomoBackend
from verify.backends.sat import SatBackend
from verify.backends.scip import ScipBackend
from verify.errors import BackendUnavailableError
from verify.problem import INF, ProblemBuilder
from verify.results import (AdversarialResult, CertifyResult, Outcome, Result, dumps,
                            json_value)
from verify.status import OUTCOME_OF_STATUS, Status, outcome_of


# ------------------------------------------------------------------ vocabulary and mapping

def test_every_status_maps_to_an_outcome():
    assert set(OUTCOME_OF_STATUS) == set(Status)
    assert all(isinstance(o, Outcome) for o in OUTCOME_OF_STATUS.values())
    for status in Status:
        assert outcome_of(status) is OUTCOME_OF_STATUS[status]
        assert outcome_of(str(status)) is OUTCOME_OF_STATUS[status]   # plain words too


def test_outcome_mapping_never_leaks_a_solver_word():
    assert outcome_of(Status.TIME_LIMIT, settled=False) is Outcome.TIME_LIMIT
    assert outcome_of(Status.INTERRUPTED, settled=False) is Outcome.INTERRUPTED
    # a proof the task could not use is undecided, not "optimal"
    assert outcome_of(Status.OPTIMAL, settled=False) is Outcome.UNKNOWN
    assert outcome_of(Status.CUTOFF, settled=False) is Outcome.UNKNOWN
    assert outcome_of(Status.UNBOUNDED) is Outcome.ERROR
    assert outcome_of("no-such-word") is Outcome.ERROR


def test_status_words_serialise_as_before():
    assert json.dumps([Status.OPTIMAL, Outcome.VERIFIED]) == '["optimal", "verified"]'
    assert Status.TIME_LIMIT == "time_limit" and f"{Outcome.INTERRUPTED}" == "interrupted"
    assert type(json_value(Outcome.OPTIMAL)) is str


def _adversarial(status) -> AdversarialResult:
    image = np.zeros((2, 2))
    return AdversarialResult("min-adv-card", "m", "card", "highs", status, 1.0, np.float64(1.0),
                             3, 5, None, 0.5, image, image + np.eye(2), 0.01,
                             stats={"solver_status": Status.OPTIMAL, "n": np.int64(2),
                                    "inf": np.float64(np.inf)})


def test_result_json_is_the_same_with_enum_or_string_statuses():
    typed, plain = _adversarial(Outcome.OPTIMAL), _adversarial("optimal")
    assert isinstance(typed, Result)
    assert dumps(typed.to_dict()) == dumps(plain.to_dict())
    assert typed.to_json() == plain.to_json()
    d = json.loads(typed.to_json())
    assert d["status"] == "optimal" and d["minimal"] is True and d["inf"] is None
    assert d["solver_status"] == "optimal" and d["n"] == 2
    cert = CertifyResult("certify", "m", "box", "highs", Outcome.VERIFIED, "bounds", 3, None,
                         0.1, np.zeros(4))
    assert json.loads(cert.to_json())["status"] == "verified"


def test_one_sanitiser_cleans_nested_values():
    v = json_value({"a": [np.float32(0.5), np.nan, np.bool_(True)], Status.CUTOFF: np.arange(2),
                    "t": (np.int8(1), None)})
    assert v == {"a": [0.5, None, True], "cutoff": [0, 1], "t": [1, None]}
    assert type(v["a"][2]) is bool


# ------------------------------------------------------------------ status tables

def test_highs_table_covers_every_model_status():
    highspy = pytest.importorskip("highspy")
    table = HighsBackend().status_table
    natives = {getattr(highspy.HighsModelStatus, n) for n in dir(highspy.HighsModelStatus)
               if n.startswith("k")}
    assert natives == set(table)
    assert all(isinstance(s, Status) for s in table.values())


def test_scip_table_covers_every_scip_status():
    pyscipopt = pytest.importorskip("pyscipopt")
    words = {n.lower() for n in dir(pyscipopt.SCIP_STATUS) if not n.startswith("_")}
    assert words <= set(ScipBackend.status_table)
    assert all(isinstance(s, Status) for s in ScipBackend.status_table.values())


def test_cplex_table_names_real_cplex_statuses():
    cplex = pytest.importorskip("cplex")
    cpx = cplex.Cplex()
    try:
        names = {n for n in dir(cpx.solution.status) if not n.startswith("_")}
    finally:
        cpx.end()
    assert set(CplexBackend.status_table) <= names
    assert all(isinstance(s, Status) for s in CplexBackend.status_table.values())


def test_pyomo_table_covers_every_termination_condition():
    opt = pytest.importorskip("pyomo.opt")
    assert {t.name for t in opt.TerminationCondition} == set(PyomoBackend.status_table)


def test_sat_table_maps_every_session_answer():
    assert set(SatBackend.status_table.values()) <= set(Status)
    assert SatBackend.status_table["sat"] is Status.OPTIMAL
    assert SatBackend.status_table["unsat"] is Status.INFEASIBLE


def test_no_table_yields_the_internal_infeasible_or_unbounded_word_in_a_result():
    # only a table entry: Backend._settle always settles it by a feasibility solve
    for backend in (ScipBackend, CplexBackend, PyomoBackend):
        assert Status.INFEASIBLE_OR_UNBOUNDED in set(backend.status_table.values())


# ------------------------------------------------------------------ the shared rules

def _knapsack(integer: bool = True):
    b = ProblemBuilder("knap")
    b.add_vars("x", 2, lb=0.0, ub=1.0, cost=[-3.0, -2.0], integer=integer)
    b.add_rows([0, 0], [0, 1], [1.0, 1.0], -INF, [1.5])
    return b.build()


def test_infeasible_below_a_cutoff_is_cutoff_with_the_cutoff_as_bound():
    res = ScipBackend()._settle(Raw("infeasible"), _knapsack(), SolveOptions(cutoff=-2.5), 0.1)
    assert res.status == Status.CUTOFF and res.bound == -2.5 and res.x is None
    # without a cutoff it stays infeasible; Pyomo is not given the cutoff at all
    assert ScipBackend()._settle(Raw("infeasible"), _knapsack(), SolveOptions(), 0.1).status \
        == Status.INFEASIBLE
    assert PyomoBackend("x")._settle(Raw("infeasible"), _knapsack(), SolveOptions(cutoff=1.0),
                                     0.1).status == Status.INFEASIBLE


def test_optimal_above_the_cutoff_is_cutoff_and_bounds_are_clamped():
    raw = Raw("optimal", x=np.array([1.0, 0.0]), objective=-3.0, bound=-2.0)
    res = ScipBackend()._settle(raw, _knapsack(), SolveOptions(cutoff=-4.0), 0.1)
    assert res.status == Status.CUTOFF and res.x is None and res.bound == -4.0
    raw = Raw("optimal", x=np.array([1.0, 0.0]), objective=-3.0, bound=-2.0)
    res = ScipBackend()._settle(raw, _knapsack(), SolveOptions(), 0.1)
    assert res.status == Status.OPTIMAL and res.bound == -3.0     # never above the objective


def test_unfinished_lp_has_no_bound_and_unknown_words_are_errors():
    raw = Raw("timelimit", bound=-7.0)
    assert ScipBackend()._settle(raw, _knapsack(False), SolveOptions(), 0.1).bound is None
    raw = Raw("timelimit", bound=-7.0)
    assert ScipBackend()._settle(raw, _knapsack(True), SolveOptions(), 0.1).bound == -7.0
    res = ScipBackend()._settle(Raw("no-such", message="no-such"), _knapsack(), SolveOptions(), 0.1)
    assert res.status == Status.ERROR and "no-such" in res.message


# ------------------------------------------------------------------ registry

def test_unknown_backend_lists_the_names():
    with pytest.raises(BackendUnavailableError) as err:
        get_backend("gurobi")
    text = str(err.value)
    assert "unknown backend 'gurobi'" in text
    for row in REGISTRY:
        assert row.name.rstrip(":") in text
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        get_backend("pyomo:")


def test_registry_rows_build_their_backends():
    assert type(get_backend("highs")) is HighsBackend and type(get_backend(None)) is HighsBackend
    assert get_backend("pyomo:appsi_highs").capabilities == frozenset({"lp", "milp"})
    assert "miqp" not in get_backend("pyomo:highs").capabilities
    assert get_backend("sat:glucose4+totalizer").name == "sat:glucose4+totalizer"
    assert [b.name for b in list_backends()] == [n for row in REGISTRY for n in row.listed]


def test_availability_says_why_and_what_to_install():
    assert availability("highs") is None           # installed by the [test] extra
    missing = [b for b in list_backends() if not b.available()]
    for b in missing:
        reason = availability(b.name)
        assert reason is not None and "not installed" in reason and "pip install" in reason
    with pytest.raises(BackendUnavailableError):
        availability("nope")


def test_sat_backend_solves_the_neutral_cnf_model():
    from verify.cnf import AtLeast, CnfFormula

    backend = get_backend("sat:minicard")
    if not backend.available():
        pytest.fail("python-sat is installed by the [test] extra")
    two_of_three = CnfFormula(3, [[-1, -2]], [AtLeast(np.array([1, 2, 3]), 2)])
    res = backend.solve_formula(two_of_three)
    assert res.status == Status.OPTIMAL and res.extra["native"] == "sat"
    assert res.x[3] and res.x[1] != res.x[2]          # ¬(1 ∧ 2), so 3 and one of 1, 2
    res = backend.solve_formula(CnfFormula(3, [[-1, -2]], [AtLeast(np.array([1, 2, 3]), 3)]))
    assert res.status == Status.INFEASIBLE
