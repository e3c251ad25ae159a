"""Outside-peer baseline: the minimal-adversarial-example query through OMLT + Pyomo + HiGHS.

Formulation, so that the benchmark can cite it:

* OMLT 1.2.2 (``omlt.neuralnet.ReluBigMFormulation``, a full-space formulation) inside an
  ``omlt.OmltBlock`` on a Pyomo ``ConcreteModel``: per dense layer ``ẑ = W x + b`` as
  equalities, per hidden ReLU one binary ``q`` with OMLT's big-M rows ``z ≥ 0``, ``z ≥ ẑ``,
  ``z ≤ u·q``, ``z ≤ ẑ − l·(1 − q)``; the last Dense layer is given to OMLT with a *linear*
  activation, i.e. the query is on the logits (the model's sigmoid/softmax is dropped).
* The ``NetworkDefinition`` is built here from the Keras weights with OMLT's ``InputLayer`` /
  ``DenseLayer`` API: OMLT's Keras reader (``omlt.io.load_keras_sequential``) imports
  ``tensorflow.keras`` (absent under Keras 3 + JAX) and does not accept the ``Flatten`` layer
  the bundled models start with.
* Bounds: OMLT's own ones only. The input box is the full ``[0, 1]`` per pixel
  (``scaled_input_bounds``, no scaler) and OMLT derives every ``l``, ``u`` by interval
  arithmetic (Pyomo's ``compute_bounds_on_expr`` on each ``W x + b``) while building.
  The property's big-M values come from the logit intervals OMLT computed.
* Objective (``c`` = the image): ``card`` — binary ``d_i`` with ``x_i − c_i ≤ (1 − c_i) d_i``,
  ``c_i − x_i ≤ c_i d_i``, min ``Σ d_i``; ``l1`` — ``t_i ≥ |x_i − c_i|``, min ``Σ t_i``;
  ``linf`` — ``t ≥ |x_i − c_i|``, min ``t``. ``l2`` needs an MIQP, which HiGHS cannot solve:
  reported as ``{"status": "unsupported"}``.
* Property, with a logit margin (default 1e-3): untargeted on 10 logits — binary selector
  ``s_j`` (``j ≠ label``, ``Σ s_j = 1``) and ``z_j − z_label ≥ margin − M_j (1 − s_j)``,
  ``M_j = max(0, margin − (l_j − u_label))``; targeted — ``z_t − z_j ≥ margin`` for all
  ``j ≠ t``; one logit (sigmoid, class 1 iff ``z > 0``) — label 1: ``z ≤ −margin``,
  label 0: ``z ≥ margin``.
* Solver: ``pyo.SolverFactory("appsi_highs")`` (HiGHS through Pyomo's APPSI interface),
  ``time_limit`` as given, ``mip_rel_gap`` 1e-6 (the ``verify`` HiGHS backend's default).
  ``build_s`` is the OMLT/Pyomo model build; ``solve_s`` includes APPSI's translation of the
  Pyomo model to HiGHS, so ``time_s`` can exceed ``time_limit`` by a second or so.

>>> import keras
>>> from verify.data import test_digits
>>> model = keras.models.load_model("verify/assets/models/multiclass.keras")
>>> image = test_digits(1)[0][0]                     # a test digit the model labels 8
>>> r = omlt_min_adversarial(model, image, norm="l1", label=8)
>>> r["status"], r["objective"], r["time_s"]
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyomo.environ as pyo
from omlt import OmltBlock
from omlt.neuralnet import NetworkDefinition, ReluBigMFormulation
from omlt.neuralnet.layer import DenseLayer, InputLayer

NUM_PIXELS = 784
NORMS = ("card", "l1", "linf", "l2")
#: Output activations dropped so that OMLT sees the logits.
OUTPUT_ACTIVATIONS = ("linear", "sigmoid", "softmax")


def dense_weights(keras_model) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """``(W, b, activation)`` of each Dense layer of a ``Flatten → Dense(ReLU)… → Dense`` model.

    ``W`` has shape (inputs, outputs). Raises ``ValueError`` for any other architecture
    (convolutions, pooling, other activations, an input that is not 784 values).
    """
    layers: list[tuple[np.ndarray, np.ndarray, str]] = []
    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind in ("Flatten", "InputLayer") and not layers:
            continue
        if kind != "Dense":
            raise ValueError(f"omlt_peer supports dense models only (Flatten, Dense); "
                             f"layer {layer.name!r} is a {kind}")
        if not layer.get_config().get("use_bias", True):
            raise ValueError(f"Dense layer {layer.name!r} has no bias; not supported")
        kernel, bias = layer.get_weights()
        activation = str(layer.get_config().get("activation", "linear"))
        layers.append((np.asarray(kernel, dtype=np.float64), np.asarray(bias, dtype=np.float64),
                       activation))
    if not layers:
        raise ValueError("the model has no Dense layer")
    if layers[0][0].shape[0] != NUM_PIXELS:
        raise ValueError(f"the first Dense layer takes {layers[0][0].shape[0]} inputs, "
                         f"not {NUM_PIXELS}")
    for _, _, act in layers[:-1]:
        if act != "relu":
            raise ValueError(f"hidden Dense layers must use ReLU, found {act!r}")
    if layers[-1][2] not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"the last Dense layer's activation must be one of "
                         f"{OUTPUT_ACTIVATIONS}, found {layers[-1][2]!r}")
    return layers


def network_definition(keras_model) -> tuple[NetworkDefinition, DenseLayer]:
    """The OMLT ``NetworkDefinition`` of ``keras_model`` on the logits, input box [0, 1]^784.

    Returns the definition and its output layer (whose block holds OMLT's logit bounds).
    """
    weights = dense_weights(keras_model)
    net = NetworkDefinition(scaled_input_bounds={i: (0.0, 1.0) for i in range(NUM_PIXELS)})
    previous: InputLayer | DenseLayer = InputLayer([NUM_PIXELS])
    net.add_layer(previous)
    for k, (W, b, act) in enumerate(weights):
        last = k == len(weights) - 1
        layer = DenseLayer([W.shape[0]], [W.shape[1]], weights=W, biases=b,
                           activation="linear" if last else "relu")
        net.add_layer(layer)
        net.add_edge(previous, layer)
        previous = layer
    return net, previous


def _flat_image(image: Any) -> np.ndarray:
    c = np.asarray(image, dtype=np.float64).reshape(-1)
    if c.size != NUM_PIXELS:
        raise ValueError(f"image must have {NUM_PIXELS} values, got {c.size}")
    if not np.all(np.isfinite(c)) or c.min() < 0.0 or c.max() > 1.0:
        raise ValueError("image values must lie in [0, 1]")
    return c


def _add_objective(m: pyo.ConcreteModel, x: list, c: np.ndarray, norm: str) -> None:
    pixels = range(NUM_PIXELS)
    if norm == "card":
        m.changed = pyo.Var(pixels, within=pyo.Binary)
        m.change_up = pyo.Constraint(pixels, rule=lambda _, i:
                                     x[i] - c[i] <= (1.0 - c[i]) * m.changed[i])
        m.change_down = pyo.Constraint(pixels, rule=lambda _, i:
                                       c[i] - x[i] <= c[i] * m.changed[i])
        m.objective = pyo.Objective(expr=pyo.quicksum(m.changed[i] for i in pixels))
    elif norm == "l1":
        m.abs_change = pyo.Var(pixels, bounds=(0.0, None))
        m.abs_up = pyo.Constraint(pixels, rule=lambda _, i: m.abs_change[i] >= x[i] - c[i])
        m.abs_down = pyo.Constraint(pixels, rule=lambda _, i: m.abs_change[i] >= c[i] - x[i])
        m.objective = pyo.Objective(expr=pyo.quicksum(m.abs_change[i] for i in pixels))
    elif norm == "linf":
        m.max_change = pyo.Var(bounds=(0.0, None))
        m.max_up = pyo.Constraint(pixels, rule=lambda _, i: m.max_change >= x[i] - c[i])
        m.max_down = pyo.Constraint(pixels, rule=lambda _, i: m.max_change >= c[i] - x[i])
        m.objective = pyo.Objective(expr=m.max_change)
    else:
        raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")


def _add_property(m: pyo.ConcreteModel, z: list, lo: np.ndarray, hi: np.ndarray, label: int,
                  target: int | None, margin: float) -> None:
    n_out = len(z)
    if n_out == 1:                                   # sigmoid: class 1 iff z > 0
        sign = 1.0 if label == 0 else -1.0
        m.label_change = pyo.Constraint(expr=sign * z[0] >= margin)
        return
    if target is not None:
        rest = [j for j in range(n_out) if j != target]
        m.target_wins = pyo.Constraint(rest, rule=lambda _, j: z[target] - z[j] >= margin)
        return
    others = [j for j in range(n_out) if j != label]
    # z_j − z_label ≥ lo_j − hi_label over OMLT's box: a valid big-M for each row
    big_m = {j: max(0.0, margin - (lo[j] - hi[label])) for j in others}
    m.selector = pyo.Var(others, within=pyo.Binary)
    m.one_winner = pyo.Constraint(expr=pyo.quicksum(m.selector[j] for j in others) == 1)
    m.other_wins = pyo.Constraint(others, rule=lambda _, j: z[j] - z[label]
                                  >= margin - big_m[j] * (1 - m.selector[j]))


_STATUS = {"optimal": "optimal", "maxTimeLimit": "time_limit", "infeasible": "infeasible",
           "infeasibleOrUnbounded": "infeasible_or_unbounded", "unbounded": "unbounded",
           "maxIterations": "interrupted", "minFunctionValue": "cutoff", "error": "error"}


def _finite(v: Any) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def omlt_min_adversarial(keras_model, image, norm: str, label: int, target: int | None = None,
                         margin: float = 1e-3, time_limit: float = 60.0,
                         rel_gap: float = 1e-6) -> dict:
    """Minimal ``norm`` change of ``image`` that makes ``keras_model`` not predict ``label``
    (or predict ``target``), solved as an OMLT big-M MILP with HiGHS. See the module docstring.

    Returns ``status`` ("optimal", "time_limit", "infeasible", ..., "unsupported" for l2),
    ``objective`` and ``bound`` (None when absent), ``time_s`` (wall time, build included),
    ``build_s`` (Pyomo/OMLT model build), ``solve_s`` and ``adversarial`` (784 floats or None).
    """
    norm = str(norm).lower()
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")
    t0 = time.perf_counter()
    c = _flat_image(image)
    net, output_layer = network_definition(keras_model)
    n_out = output_layer.output_size[-1]
    n_classes = 2 if n_out == 1 else n_out
    if not 0 <= label < n_classes:
        raise ValueError(f"label {label} out of range 0..{n_classes - 1}")
    if target is not None:
        if not 0 <= target < n_classes or target == label:
            raise ValueError(f"target must be a label in 0..{n_classes - 1} other than {label}")
    if norm == "l2":
        return {"status": "unsupported", "objective": None, "bound": None,
                "time_s": time.perf_counter() - t0, "build_s": 0.0, "solve_s": 0.0,
                "adversarial": None,
                "message": "l2 is an MIQP; HiGHS solves MILPs and convex QPs only"}

    m = pyo.ConcreteModel()
    m.nn = OmltBlock()
    m.nn.build_formulation(ReluBigMFormulation(net))
    x = [m.nn.inputs[i] for i in range(NUM_PIXELS)]
    z = [m.nn.outputs[j] for j in range(n_out)]
    logit_vars = m.nn.layer[id(output_layer)].z      # carries OMLT's interval bounds
    lo = np.array([logit_vars[j].lb for j in range(n_out)], dtype=np.float64)
    hi = np.array([logit_vars[j].ub for j in range(n_out)], dtype=np.float64)
    _add_property(m, z, lo, hi, label, target, margin)
    _add_objective(m, x, c, norm)
    t1 = time.perf_counter()

    solver = pyo.SolverFactory("appsi_highs")
    solver.options["mip_rel_gap"] = float(rel_gap)
    results = solver.solve(m, load_solutions=False, timelimit=float(time_limit))
    condition = results.solver.termination_condition
    status = _STATUS.get(str(condition), str(condition))
    objective = _finite(results.problem.upper_bound)
    bound = _finite(results.problem.lower_bound)
    adversarial = None
    if objective is not None:
        values = solver.get_primals(x)
        adversarial = np.clip(np.array([values[v] for v in x], dtype=np.float64), 0.0, 1.0)
    t2 = time.perf_counter()
    return {"status": status, "objective": objective, "bound": bound, "time_s": t2 - t0,
            "build_s": t1 - t0, "solve_s": t2 - t1, "adversarial": adversarial}
