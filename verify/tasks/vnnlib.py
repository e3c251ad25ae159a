"""Deciding VNN-LIB properties: ``sat`` (a counterexample, re-checked), ``unsat`` (proved) or
``timeout``.

A property (:class:`verify.vnnlib.VnnProperty`) is a list of cases, each an input box and a
disjunction over the outputs, ``A_k y ≤ b_k`` for some k; it is ``sat`` when some input of
some case's box makes some disjunct hold. Each case is decided in the cheapest way that
settles it, and the first ``sat`` case ends the search:

1. **bounds** — interval → symbolic (→ LP, see 4) bounds over the box; a case whose every
   disjunct has a row that cannot hold, even relaxed by :data:`PROOF_SLACK`, is proved;
2. **engine** (``engine="auto"``, the default, or ``"bab"``) — :mod:`verify.engine` (PGD,
   CROWN, α-CROWN, branch and bound over ReLU phases) on the relaxed rows, within half the
   time left under ``auto`` (all of it under ``bab``, which is this step alone); its
   counterexamples must pass the runtime check of step 3. Under ``auto`` it is skipped when
   the bounds leave at most :data:`~verify.tasks.engine_stage.SMALL_MIP_RELUS` ReLUs
   unstable (a tiny MIP is faster);
3. **attack** (when the engine did not run) — signed-gradient descent from the box centre
   and random starts on the violation ``min_k max_i (A_k y − b_k)_i``; a point where it is
   ≤ 0 by the logits *and* by the model's own runtime (onnxruntime, or Keras) is a
   counterexample;
4. **solver** — LP bounds (from the engine's intermediate bounds when it ran: tighter big-M
   values), then a feasibility MIP (the first feasible point ends the search) of the
   *relaxed* disjunction ``A_k y ≤ b_k + PROOF_SLACK``: infeasible proves the case; a point
   is re-checked by the runtime; if it only touches the boundary, a second MIP asks for room to
   spare (``A_k y ≤ b_k − margin``) before the case is left undecided.

``engine="mip"`` is the pipeline before the engine existed: the attack, interval → symbolic →
LP bounds, the MIP. The result's
``stage`` names what settled it (``attack``, ``bounds``, ``crown``, ``alpha-crown``, ``bab``,
``mip``; see :mod:`verify.tasks.engine_stage`), ``method`` the older coarse word.

So ``unsat`` is a proof (up to the solver's feasibility tolerances) with a slack of
:data:`PROOF_SLACK` in the outputs, and ``sat`` is never reported unless the model's own
runtime, fed the float32 counterexample inside the box, satisfies the output constraints
exactly: with zero tolerance, in float64 and float32 arithmetic, and for ONNX files both in
the unoptimised session and in onnxruntime's default (optimising) one, whose outputs are the
ones written (what a checker recomputes). A candidate that misses only by rounding is nudged
toward the violated side and replayed again (:func:`_confirm`). The result file uses the words of the property's VNN-LIB version (1.0:
``sat``/``unsat``; 2.0: ``violated``/``holds``; both ``timeout``, ``unknown``) and, for 2.0,
names the counterexample's values by the declared tensors' elements. Anything else is
``timeout`` (time limit) or ``unknown`` (all candidates sat on the boundary, or the property
is not one this toolkit can decide). Stopped by Ctrl-C or SIGTERM
(:mod:`verify.interrupts`), the verdict is ``timeout`` too, with ``interrupted`` set.

Outputs are the network's *logits*: a model that ends in softmax or sigmoid is accepted only
for properties that compare outputs pairwise (``Y_i ≤ Y_j``), which the final activation does
not change; binarized networks (BNNs) are decided exactly through their cardinality formula instead
(:mod:`verify.tasks.bnn_vnnlib`; ``backend`` a formula or a MIP backend, no engine).
"""
from __future__ import annotations

import os
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import interrupts
from ..attacks.gradients import logit_form_and_gradient
from ..backends import SolveOptions, Status, get_backend
from ..encodings.tightening import compute_bounds
from ..encodings.properties import DEFAULT_MARGIN, possible_cases
from ..encodings.query import build_case_query
from ..engine import Spec
from ..errors import InvalidInputError
from ..models import LoadedModel, load_model
from ..network import Network
from ..regions import InputBox
from ..results import Result
from .common import bound_budget
from .engine_stage import (SMALL_MIP_RELUS, check_engine, cheap_bounds, engine_summary,
                           engine_time, method_of, mip_bounds, run_engine)
from ..vnnlib import (PropertyCase, VnnProperty, counterexample_text, parse_vnnlib,
                      result_word)

#: Slack on the output rows when proving that no counterexample exists.
PROOF_SLACK = 1e-6

SAT, UNSAT, TIMEOUT, UNKNOWN = "sat", "unsat", "timeout", "unknown"


@dataclass
class PropertyResult(Result):
    """The verdict on a VNN-LIB property, and how it was reached."""

    verdict: str                          # "sat", "unsat", "timeout" or "unknown"
    model: str
    property: str                         # the property's source (path)
    backend: str
    method: str                           # "attack", "bounds", "solver" or "" (undecided)
    time_s: float
    counterexample: np.ndarray | None = None   # flat input (float32 values), inside the box
    outputs: np.ndarray | None = None          # the model's own outputs on it
    case: int | None = None                    # the case it satisfies
    cases: list[dict] = field(default_factory=list)   # per case: verdict, method, time, sizes
    #: stopped by Ctrl-C or SIGTERM (:mod:`verify.interrupts`) before a verdict: the verdict
    #: is then ``timeout`` (or ``unknown``), as VNN-COMP knows no other word for it
    interrupted: bool = False
    #: the stage that settled it (``attack``, ``bounds``, ``crown``, ``alpha-crown``, ``bab``,
    #: ``mip``; ``""`` undecided) and the engine option it ran with
    stage: str = ""
    engine: str = "auto"
    #: the property's VNN-LIB version ("1.0" or "2.0"): the words and names of the result file
    vnnlib_version: str = "1.0"
    vnnlib_property: VnnProperty | None = field(default=None, repr=False, compare=False)

    @property
    def decided(self) -> bool:
        return self.verdict in (SAT, UNSAT)

    @property
    def result_word(self) -> str:
        """The verdict as the property's version writes it: 1.0 ``sat``/``unsat``, 2.0
        ``violated``/``holds`` (``timeout``, ``unknown`` in both)."""
        return result_word(self.verdict, self.vnnlib_version)

    def vnncomp_text(self) -> str:
        """The VNN-COMP result file: the verdict line in the property's version (``sat`` or
        ``violated``, …), then the counterexample if there is one (2.0: tensor elements
        ``X[0,3]``)."""
        if self.verdict == SAT:
            return counterexample_text(self.counterexample, self.outputs, self.vnnlib_property)
        return self.result_word + "\n"

    def to_dict(self) -> dict:
        out = {"task": "certify-vnnlib", "verdict": self.verdict, "model": self.model,
               "property": self.property, "backend": self.backend, "method": self.method,
               "time_s": round(float(self.time_s), 4), "case": self.case, "cases": self.cases,
               "interrupted": self.interrupted, "stage": self.stage, "engine": self.engine,
               "vnnlib_version": self.vnnlib_version, "result": self.result_word}
        if self.counterexample is not None:
            out["counterexample"] = [float(v) for v in self.counterexample]
            out["outputs"] = [float(v) for v in self.outputs]
        return out


@interrupts.scoped
def certify_vnnlib(model: Any, prop: VnnProperty | str | os.PathLike, backend: str | None = None,
                   time_limit: float | None = None, threads: int | None = None,
                   margin: float = DEFAULT_MARGIN, seed: int = 0,
                   engine: str | None = None) -> PropertyResult:
    """Decide a VNN-LIB property on a model (a bundled name, a ``.keras``/``.onnx`` path or a
    :class:`LoadedModel`): ``sat`` with a counterexample re-checked by the model's runtime,
    ``unsat`` (proved), ``timeout``, or ``unknown`` (see the module docstring). ``engine``:
    ``"auto"`` (default), ``"bab"`` or ``"mip"`` (see the module docstring); ``threads``
    limits the MIP solver."""
    t0 = time.perf_counter()
    from ..validate import check
    check(time_limit=time_limit, threads=threads, margin=margin, seed=seed)
    engine = check_engine(engine)
    model = load_model(model) if not isinstance(model, LoadedModel) else model
    if not isinstance(prop, VnnProperty):
        prop = parse_vnnlib(prop)
    net = model.network
    _check_property(model, prop)
    if net.is_binarized:                # exact, through the BNN formula (tasks/bnn_vnnlib)
        return _certify_bnn(model, prop, backend, time_limit, threads, engine, t0)
    solver = get_backend(backend or "highs")
    if engine != "bab":
        solver.check_kind("milp")
    merged = net.merged_affine()
    rng = np.random.default_rng(seed)

    def decide(k, case, remaining):
        return _decide_case(model, merged, case, solver, remaining, threads, margin, rng, engine)

    return _decide_cases(model, prop, time_limit, t0, engine, decide,
                         "engine" if engine == "bab" else solver.name)


def _decide_cases(model: LoadedModel, prop: VnnProperty, time_limit: float | None, t0: float,
                  engine: str, decide, backend_name: str) -> PropertyResult:
    """The property's verdict from its cases, in order: ``decide(k, case, remaining)`` gives
    ``(verdict, stage, x, y, stats)`` for one case. The first ``sat`` case ends it; all
    ``unsat`` is ``unsat`` (the stage: the strongest any case needed); otherwise ``timeout``
    if the time ran out or a case timed out, else ``unknown``."""
    reports: list[dict] = []

    def result(verdict, stage="", x=None, y=None, case=None):
        stopped = verdict not in (SAT, UNSAT) and interrupts.stop_requested()
        return PropertyResult(verdict, model.name, prop.source, backend_name, method_of(stage),
                              time.perf_counter() - t0, x, y, case, reports, stopped, stage, engine,
                              prop.version, prop)

    undecided = UNSAT
    for k, case in enumerate(prop.cases):
        remaining = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if (remaining is not None and remaining <= 0) or interrupts.stop_requested():
            undecided = TIMEOUT
            break
        verdict, stage, x, y, stats = decide(k, case, remaining)
        reports.append({"case": k, "verdict": verdict, "method": method_of(stage), "stage": stage,
                        **stats})
        if verdict == SAT:
            return result(SAT, stage, x, y, k)
        if verdict != UNSAT:
            undecided = TIMEOUT if undecided == TIMEOUT or verdict == TIMEOUT else UNKNOWN
    if undecided == UNSAT:
        # the strongest stage any case needed
        stages = [r["stage"] for r in reports]
        return result(UNSAT, max(stages, key=_STAGE_ORDER.index) if stages else "bounds")
    return result(undecided)


#: Stages that prove a case, cheapest first.
_STAGE_ORDER = ["bounds", "crown", "alpha-crown", "bab", "mip"]


def _certify_bnn(model: LoadedModel, prop: VnnProperty, backend: str | None,
                 time_limit: float | None, threads: int | None, engine: str, t0: float) -> PropertyResult:
    """A property on a binarized network: :mod:`verify.tasks.bnn_vnnlib`."""
    from .bnn_vnnlib import bnn_case_decider

    decide, name = bnn_case_decider(model, backend, threads, _confirm)
    return _decide_cases(model, prop, time_limit, t0, engine, decide, name)


def _check_property(model: LoadedModel, prop: VnnProperty) -> None:
    net = model.network
    if prop.num_inputs != net.num_inputs or prop.num_outputs != net.num_outputs:
        raise InvalidInputError(
            f"property {prop.source} has {prop.num_inputs} inputs and {prop.num_outputs} outputs; "
            f"model {model.name} has {net.num_inputs} inputs and {net.num_outputs} outputs")
    final = model.reference_activation
    if final != "linear":
        for case in prop.cases:
            for a, b in case.disjuncts:
                if not _pairwise(a, b):
                    raise InvalidInputError(
                        f"model {model.name} ends in {final}, and property {prop.source} "
                        "constrains its outputs beyond comparing them pairwise (Y_i <= Y_j); "
                        "verify decides properties of the logits: give a model without the "
                        f"final {final} (verify export writes one)")


def _pairwise(a: np.ndarray, b: np.ndarray) -> bool:
    """Rows ``y_i − y_j ≤ 0`` (times a positive factor): unchanged by a final softmax."""
    a = np.atleast_2d(a)
    if np.any(np.asarray(b) != 0):
        return False
    return all(np.count_nonzero(r) == 2 and r.max() > 0 and r.min() == -r.max() for r in a)


def _decide_case(model: LoadedModel, net: Network, case: PropertyCase, solver, time_limit,
                 threads, margin: float, rng: np.random.Generator, engine: str = "mip"):
    """(verdict, stage, counterexample, outputs, stats) for one case."""
    t0 = time.perf_counter()
    stats: dict = {}
    region = InputBox(case.lower, case.upper)
    cases = [(np.atleast_2d(a), np.asarray(b, dtype=np.float64)) for a, b in case.disjuncts]
    if not cases:
        return UNSAT, "bounds", None, None, stats

    def checked(x):
        return _confirm(model, x, region, cases, net)

    def run(bounds=None, unstable=None):
        r = run_engine(net, region, Spec.from_cases(cases),
                       engine_time(engine, time_limit, t0, net, region, unstable),
                       -PROOF_SLACK, lambda x: checked(x) is not None, "certify --vnnlib",
                       initial_bounds=bounds)
        stats["engine_result"] = engine_summary(r)
        stats["time_s"] = round(time.perf_counter() - t0, 4)
        if r.status == "verified":
            return (UNSAT, r.stage, None, None, stats), r
        hit = checked(r.x) if r.status == "counterexample" and r.x is not None else None
        if hit is not None:
            return (SAT, r.stage) + hit + (stats,), r
        if r.status == "interrupted" or engine == "bab":
            return (TIMEOUT if r.status in ("time_limit", "interrupted") else UNKNOWN,
                    "", None, None, stats), r
        return None, r

    if engine == "bab":
        return run()[0]
    engine_result, bounds = None, None
    if engine == "auto" and not interrupts.stop_requested():
        # 1. cheap bounds, 2. the engine (its own attack first); 4. the MIP on what is left
        bounds = cheap_bounds(net, region)
        if not possible_cases(net, region, bounds, cases, -PROOF_SLACK):
            stats["bounds"] = bounds.report()
            stats["time_s"] = round(time.perf_counter() - t0, 4)
            return UNSAT, "bounds", None, None, stats
        unstable = bounds.unstable(net)
        if unstable > SMALL_MIP_RELUS:
            answer, engine_result = run(bounds, unstable)
            if answer is not None:
                return answer
    if engine_result is None:
        # 3. attack (the engine, when it ran, began with a stronger one)
        for x in _attack(net, region, cases, margin, rng):
            hit = checked(x)
            if hit is not None:
                stats["time_s"] = round(time.perf_counter() - t0, 4)
                return (SAT, "attack") + hit + (stats,)
    if interrupts.stop_requested():
        return TIMEOUT, "", None, None, stats
    # 4. bounds, LP-tightened (from the engine's when it ran), then the solver
    if bounds is not None:
        bounds = mip_bounds(net, region, bounds, engine_result, bound_budget(time_limit, t0))
    else:
        bounds = compute_bounds(net, region, time_limit=bound_budget(time_limit, t0))
    stats["bounds"] = bounds.report()
    if not possible_cases(net, region, bounds, cases, -PROOF_SLACK):
        stats["time_s"] = round(time.perf_counter() - t0, 4)
        return UNSAT, "bounds", None, None, stats
    # the solver: the relaxed rows first (a proof if infeasible), then room to spare
    for phase_margin in (-PROOF_SLACK, margin):
        if interrupts.stop_requested():
            return TIMEOUT, "", None, None, stats
        query = build_case_query(net, region, cases, phase_margin, bounds)
        stats["problem"] = query.problem.summary()
        remaining = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - t0))
        res = solver.solve(query.problem, SolveOptions(time_limit=remaining, threads=threads))
        stats.setdefault("solver_status", []).append(res.status)
        stats["time_s"] = round(time.perf_counter() - t0, 4)
        if res.x is not None:
            hit = checked(query.decode(res.x))
            if hit is not None:
                return (SAT, "mip") + hit + (stats,)
            continue                      # a boundary point: look for one with room to spare
        if res.status in (Status.INFEASIBLE, Status.CUTOFF):
            return (UNSAT, "mip", None, None, stats) if phase_margin < 0 else \
                (UNKNOWN, "", None, None, stats)
        return TIMEOUT, "", None, None, stats
    return UNKNOWN, "", None, None, stats


def violation(net: Network, cases, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per input of a batch: ``min_k max_i (A_k z − b_k)_i`` (≤ 0: some case holds) and its
    (sub)gradient with respect to the inputs."""
    values = net.forward_all(x)
    z = values[-1]
    per_case = [(z @ a.T - b) for a, b in cases]                   # each (batch, rows)
    worst = np.stack([p.max(axis=1) for p in per_case], axis=1)    # (batch, cases)
    k = np.argmin(worst, axis=1)
    rows = np.array([np.argmax(per_case[kk][i]) for i, kk in enumerate(k)])
    coef = np.stack([cases[kk][0][r] for kk, r in zip(k, rows)])
    _, grad = logit_form_and_gradient(net, values, coef)
    return worst[np.arange(len(x)), k], grad


def _attack(net: Network, region: InputBox, cases, margin: float, rng: np.random.Generator,
            restarts: int = 8, steps: int = 60):
    """Candidates from signed-gradient descent on the violation (best first); stops early once
    some start reaches ``−margin``."""
    lo, hi = region.lo, region.hi
    width = hi - lo
    x = np.vstack([region.center, rng.uniform(lo, hi, size=(restarts - 1, lo.size))])
    best_x, best_v = x.copy(), np.full(len(x), np.inf)
    for step in range(steps):
        v, grad = violation(net, cases, x)
        better = v < best_v
        best_x[better], best_v[better] = x[better], v[better]
        if np.any(best_v <= -margin):
            break
        size = 0.25 * (1 - step / steps) + 0.01
        x = np.clip(x - size * width * np.sign(grad), lo, hi)
    order = np.argsort(best_v)
    return [best_x[i] for i in order if best_v[i] <= 0]


#: Steps, as fractions of the box's width, by which a candidate that misses the property in
#: the runtime by rounding is moved toward the violated side (along the gradient's sign).
NUDGE_STEPS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3)
#: Nudging is tried only for near misses: the runtime's violation at most this (plus as much
#: relative to the right-hand sides).
NUDGE_WITHIN = 1e-3

_default_sessions: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _confirm(model: LoadedModel, x: np.ndarray, region: InputBox, cases,
             net: Network | None = None):
    """``(x32, outputs)`` when the point *replays*: the model's own runtime, fed ``x`` as
    float32 moved inside the box, satisfies some case with zero tolerance (see
    :func:`_replay`); else None.

    A near miss (rounding in float32 left a row just above its bound) is moved toward the
    violated side by :data:`NUDGE_STEPS` along the sign of the violation's gradient on
    ``net`` and replayed again; only a point that replays is ever returned."""
    hit, miss = _replay(model, x, region, cases)
    if hit is not None or net is None or miss is None or miss > NUDGE_WITHIN:
        return hit
    lo, hi = region.lo, region.hi
    start = np.clip(np.asarray(x, dtype=np.float64).reshape(-1), lo, hi)
    _, grad = violation(net, cases, start[None])
    step = -np.sign(grad[0]) * (hi - lo)
    if not np.any(step):
        return None
    for t in NUDGE_STEPS:
        hit, _ = _replay(model, np.clip(start + t * step, lo, hi), region, cases)
        if hit is not None:
            return hit
    return None


def _replay(model: LoadedModel, x: np.ndarray, region: InputBox, cases):
    """``((x32, outputs), None)`` when ``x``, rounded to float32 inside the box, satisfies some
    case in the model's runtime exactly, else ``(None, miss)`` (``miss``: by how much the
    closest case failed, relative to its right-hand side; None when nothing was run).

    What a VNN-COMP checker with zero output tolerance does, and more: every row of the case
    holds in float64 and in float32 arithmetic on the runtime's float32 outputs; for an ONNX
    file it must hold both on the unoptimised session (the toolkit's reference) and on
    onnxruntime with its default graph optimisations (what a checker runs; fused Conv/Add
    kernels round differently in the last bits), and the outputs returned, to be written in
    the result file, are the latter's, exactly."""
    x32 = _inside_float32(x, region.lo, region.hi)
    if x32 is None:
        return None, None
    y32 = model.reference_outputs(x32.reshape((1,) + tuple(model.input_shape)))[0]
    outputs = [np.asarray(y32, dtype=np.float32)]
    hit, miss = _satisfied(outputs[0], cases)
    if hit is None:
        return None, miss
    other = _default_runtime_outputs(model, x32)
    if other is not None:
        outputs.append(other)
        hit, miss = _satisfied(other, cases)
        if hit is None:
            return None, miss
    return (x32.astype(np.float64), outputs[-1].astype(np.float64)), None


def _satisfied(y32: np.ndarray, cases) -> tuple[int | None, float]:
    """``(k, 0)`` for the first case whose rows all hold on ``y32`` in float64 and in float32
    arithmetic, else ``(None, miss)`` with the relative miss of the closest case."""
    y = y32.astype(np.float64)
    miss = np.inf
    for k, (a, b) in enumerate(cases):
        if np.all(a @ y <= b) and np.all(a.astype(np.float32) @ y32 <= b.astype(np.float32)):
            return k, 0.0
        miss = min(miss, float(np.max((a @ y - b) / (1.0 + np.abs(b)))))
    return None, miss


def _default_runtime_outputs(model: LoadedModel, x32: np.ndarray) -> np.ndarray | None:
    """The outputs of onnxruntime with its default graph optimisations (what a checker runs),
    for an ONNX model loaded from a file; None otherwise."""
    if model.onnx is None or model.path is None:
        return None
    session = _default_sessions.get(model.onnx)
    if session is None:
        from ..onnx.runtime import OnnxReference
        session = _default_sessions[model.onnx] = OnnxReference(model.path, optimize=True)
    return np.asarray(session.outputs(x32.reshape((1,) + tuple(model.input_shape)))[0],
                      dtype=np.float32)


def _inside_float32(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    """``x`` rounded to float32 and nudged by one ulp where rounding left the box ``[lo, hi]``."""
    x32 = np.clip(x, lo, hi).astype(np.float32)
    low = x32.astype(np.float64) < lo
    x32[low] = np.nextafter(x32[low], np.float32(np.inf))
    high = x32.astype(np.float64) > hi
    x32[high] = np.nextafter(x32[high], np.float32(-np.inf))
    inside = np.all(x32.astype(np.float64) >= lo) and np.all(x32.astype(np.float64) <= hi)
    return x32 if inside else None
