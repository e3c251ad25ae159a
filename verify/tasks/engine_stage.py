"""The bound engine (:mod:`verify.engine`) as a stage of the yes/no tasks (``certify``,
``certify_vnnlib``, ``verify vnncomp``), and the MIP that takes over what it leaves open.

``engine`` picks how a question is settled (:data:`ENGINES`, from
:mod:`verify.tasks.context`):

* ``auto`` (default): the task's quick attack and interval / symbolic bounds, then the
  engine (PGD, CROWN, α-CROWN, branch and bound over ReLU phases) within
  :data:`ENGINE_SHARE` of the time left (:data:`ENGINE_SHARE_LARGE` when more than
  :data:`LARGE_RELUS` ReLUs are unstable: the MIP does not finish such questions in the time
  the engine would give up) — skipped when at most :data:`SMALL_MIP_RELUS` ReLUs are
  unstable — then, only if the engine leaves the question open (a time limit, or leaves
  it cannot decide: max-pool subdomains), the MIP pipeline, whose
  big-M values are the engine's intermediate bounds intersected with the interval,
  symbolic and LP bounds;
* ``bab``: the engine only (with the whole time limit); what it cannot decide is ``unknown``;
* ``mip``: the MIP pipeline only, as before the engine existed.

Results name the stage that settled the question (``stage``): ``attack`` (a gradient or
greedy search; the engine's PGD too), ``crown`` / ``alpha-crown`` (the engine's bounds
alone), ``bab`` (branch and bound), ``bounds`` (interval / symbolic / LP bounds of the MIP
pipeline), ``mip`` (the MIP solver); ``""`` while undecided. The older ``method`` keeps its
words (``attack``, ``bounds``, ``solver``): see :func:`method_of`.

Every counterexample the engine returns has passed the caller's ``confirm`` (the model's own
runtime, Keras or onnxruntime, in float32) before the task reports it.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .. import interrupts
from ..bounds import Bounds
from ..bounds import compute_bounds as relaxation_bounds
from ..bounds import symbolic_pass
from ..encodings.tightening import lp_pass
from ..engine import EngineResult, Spec, decide
from ..errors import InvalidInputError
from ..network import Network
from ..progress import active, report, seconds
from ..regions import Region
from .context import ENGINES

__all__ = ["ENGINES", "ENGINE_SHARE", "ENGINE_SHARE_LARGE", "LARGE_RELUS", "SMALL_MIP_RELUS",
           "STALL_CAP_S", "check_engine", "cheap_bounds", "engine_summary", "engine_time",
           "method_of", "mip_bounds", "run_engine"]

#: Share of the time left that ``auto`` gives the engine (the MIP keeps the rest).
ENGINE_SHARE = 0.5
#: ... when the cheap bounds leave more than :data:`LARGE_RELUS` ReLUs unstable. Measured on
#: the engine benchmark (naturally trained 784-256×k MLPs and a CNN, 120 s per instance, the
#: engine in half the time): the MIP half settled none of the 120 instances; the engine
#: settled every one ``auto`` decided.
ENGINE_SHARE_LARGE = 0.9
#: Unstable ReLUs beyond which ``auto`` gives the engine :data:`ENGINE_SHARE_LARGE`.
LARGE_RELUS = 200
#: Under ``auto``, a question whose interval / symbolic bounds leave at most this many ReLUs
#: unstable goes straight to the MIP: with so few binaries it is solved in milliseconds, while
#: the engine's first call on a network pays seconds of JIT compilation.
SMALL_MIP_RELUS = 20
#: Without a time limit, ``auto`` gives the engine at most this many seconds where its
#: branch and bound may end in leaves it cannot decide (max-pool) or decides slowly (L2 /
#: k-pixel regions: a QP or a MILP per leaf).
STALL_CAP_S = 120.0
#: Seconds between two progress lines of a branch and bound.
PROGRESS_EVERY_S = 2.0

#: The ``method`` word (attack / bounds / solver) of each stage.
_METHOD = {"attack": "attack", "crown": "bounds", "alpha-crown": "bounds", "bounds": "bounds",
           "bab": "solver", "mip": "solver", "solver": "solver", "": ""}


def check_engine(engine: str | None) -> str:
    """``engine`` checked (None: ``auto``)."""
    engine = "auto" if engine is None else engine
    if engine not in ENGINES:
        raise InvalidInputError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    return engine


def method_of(stage: str) -> str:
    """The ``method`` word of a stage: ``attack``, ``bounds`` (a proof by bounds alone) or
    ``solver`` (a complete search: branch and bound or MIP); ``""`` when undecided."""
    return _METHOD.get(stage, "solver")


def engine_time(engine: str, time_limit: float | None, t0: float, network: Network | None = None,
                region: Region | None = None, unstable: int | None = None,
                engine_first: bool = False) -> float | None:
    """Seconds the engine may run: all that is left under ``bab``; under ``auto``
    :data:`ENGINE_SHARE` of it, or :data:`ENGINE_SHARE_LARGE` when ``unstable`` (the cheap
    bounds' unstable ReLUs) exceeds :data:`LARGE_RELUS` and the engine cannot stall (below),
    or when the caller says the MIP rarely finishes what the engine leaves open
    (``engine_first``, with a time limit).
    Without a time limit: None (no limit), except under ``auto`` where the engine may stall
    on leaves it cannot decide (a ``network`` with max-pool layers) or decides slowly (an L2
    or k-pixel ``region``: a QP or MILP per leaf): then :data:`STALL_CAP_S`, and the MIP
    has the rest."""
    stall = engine == "auto" and _may_stall(network, region)
    if time_limit is None:
        return STALL_CAP_S if stall else None
    left = max(0.0, time_limit - (time.perf_counter() - t0))
    if engine == "bab":
        return left
    large = engine_first or (unstable is not None and unstable > LARGE_RELUS and not stall)
    return (ENGINE_SHARE_LARGE if large else ENGINE_SHARE) * left


def _may_stall(network: Network | None, region: Region | None) -> bool:
    from ..network import MaxPool
    from ..regions import L0Ball, L2Ball

    return isinstance(region, (L0Ball, L2Ball)) or (
        network is not None and any(isinstance(layer, MaxPool) for layer in network.layers))


def progress_reporter(what: str) -> Callable[[dict], None] | None:
    """An ``on_progress`` for :func:`verify.engine.decide` that reports (see
    :mod:`verify.progress`) the subdomains left and the best bound, at most every
    :data:`PROGRESS_EVERY_S` seconds; None when nobody listens."""
    if not active():
        return None
    last = [time.perf_counter()]

    def on_progress(info: dict) -> None:
        now = time.perf_counter()
        if now - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = now
        report(f"{what}: branch and bound, {info.get('open', 0)} subdomains left, best bound "
               f"{info.get('bound', float('nan')):.4g}, {info.get('subdomains', 0)} bounded")

    return on_progress


def run_engine(network: Network, region: Region, spec: Spec, time_limit: float | None,
               margin: float, confirm: Callable[[np.ndarray], bool], what: str,
               initial_bounds: Bounds | None = None) -> EngineResult:
    """:func:`verify.engine.decide` with the task's stop request (Ctrl-C, SIGTERM) and
    progress lines; ``what`` names the task in them. ``initial_bounds`` (sound bounds of
    ``network``, which must be merged) are intersected with the engine's own."""
    report(f"{what}: bound engine (attack, CROWN, α-CROWN, branch and bound), time "
           f"{seconds(time_limit)} ...")
    r = decide(network, region, spec, time_limit=time_limit, margin=margin,
               should_stop=interrupts.stop_requested, confirm=confirm,
               on_progress=progress_reporter(what), initial_bounds=initial_bounds)
    report(f"{what}: engine: {r.status}" + (f" by {r.stage}" if r.stage else "")
           + f", bound {r.bound:.4g}, {r.subdomains} subdomains, {r.stats.get('time_s', 0):.1f} s")
    return r


def engine_summary(r: EngineResult) -> dict:
    """The engine's figures for a result's JSON (status, stage, bound, subdomains, time and
    the bounds of each stage)."""
    keep = ("time_s", "relus", "unstable_relus", "crown_bound", "alpha_crown_bound", "attack_s",
            "intermediate_s", "crown_s", "alpha_crown_s", "bab_s", "bab")
    out = r.to_dict()
    out.pop("x", None)              # the counterexample is the task's own (re-checked) field
    out["stats"] = {k: out["stats"][k] for k in keep if k in out["stats"]}
    return out


def mip_bounds(network: Network, region: Region, bounds: Bounds, engine: EngineResult | None,
               time_limit: float | None) -> Bounds:
    """Bounds for the MIP (big-M values) over ``region``, from interval / symbolic ``bounds``
    (:func:`cheap_bounds`; tightened in place and returned): intersected with the engine's
    intermediate bounds (``engine.bounds``, sound and usually tighter), propagated again,
    then LP-tightened (within ``time_limit`` seconds) from there. Without engine bounds the
    result is that of :func:`verify.encodings.tightening.compute_bounds`.

    ``network`` must be the merged network the engine bounded (``merged_affine()``)."""
    t0 = time.perf_counter()
    prior = engine.bounds if engine is not None else None
    if prior is not None and len(prior.lower) == len(bounds.lower) and all(
            np.shape(a) == np.shape(b) for a, b in zip(prior.lower, bounds.lower)):
        for i in range(1, len(bounds.lower)):
            bounds.tighten(i, prior.lower[i], prior.upper[i])
        symbolic_pass(network, region, bounds)
        bounds.record("engine", network, t0)
    t = time.perf_counter()
    deadline = None if time_limit is None else t0 + time_limit
    solves = lp_pass(network, region, bounds, deadline)
    bounds.record("lp", network, t, solves)
    return bounds


def cheap_bounds(network: Network, region: Region) -> Bounds:
    """Interval and symbolic bounds (no LP): milliseconds, and enough for easy questions."""
    return relaxation_bounds(network, region, ("interval", "symbolic"))
