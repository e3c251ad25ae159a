"""The verdict API: :func:`decide` settles "no point of the region gives unsafe outputs".

Stages, cheapest first; the result says which one settled the question:

1. ``attack`` — untargeted APGD (:class:`verify.engine.attack.Attack`) from the region's
   centre and random points, on the spec's violation (the minimum over the disjuncts); a
   point is a counterexample only when the float64 IR
   (:meth:`verify.network.Network.forward`) puts it in some disjunct with the margin and it
   lies in the region (checked exactly), and when the caller's ``confirm`` (e.g. the model's
   own runtime in float32) accepts it;
2. ``crown`` — intermediate bounds (:func:`verify.engine.crown.root_bounds`), then one
   back-substitution of every spec row with CROWN's slopes;
3. ``alpha-crown`` — the same with the slopes optimised per row (Adam);
3b. ``attack`` again — targeted APGD on each disjunct still open, lowest bound first, from the
   centre, the points where its bound is lowest and random points (corners included), for at
   most ``attack_share`` of the time limit (``attack_time`` seconds without one), ending early
   when the search stops improving;
4. ``bab`` — every open disjunct together, branch and bound over ReLU phases
   (:mod:`verify.engine.bab`), with targeted APGD from the worst subdomains every
   ``attack_every`` batches (``EngineOptions.branch=False``: ``unknown`` instead; with
   ``attack_restarts=0`` as well, :func:`decide` is a bounds-only check).

A search stopped by its time limit (or ``should_stop``) returns its open subdomains as
``frontier``. Passed back as ``resume`` for the same network and spec over the same region or
one inside it, a later call skips stages 2–3b (after the attack and the intermediate bounds)
and continues branch and bound from them: every subdomain the first search dropped was proven
over its region, hence over any smaller one.

The time limit is checked between stages, between attack batches, before each layer of the
intermediate bounds and before each branch-and-bound batch (a batch that would end well past
the limit is not started), so a run ends close to its limit; only a JIT compilation of a new
network shape (first call per network, a few seconds) can run over.

A proof holds for the float64 IR with the round-off allowance of
:data:`verify.engine.crown.SAFETY`; counterexamples are returned in float64 for the caller to
re-check in the model's runtime (``confirm`` lets the search go on when that check fails).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import InvalidInputError
from ..bounds import Bounds
from ..network import Network
from ..regions import Region
from ..results import Result, json_value
from .attack import Attack, greedy_pixels
from .bab import BranchAndBound, Frontier
from .concretize import contains, region_arrays, region_kind
from .crown import Aborted, root_bounds
from .model import compile_network, x64
from .spec import Spec

VERIFIED, COUNTEREXAMPLE, UNKNOWN, TIME_LIMIT, INTERRUPTED = (
    "verified", "counterexample", "unknown", "time_limit", "interrupted")


@dataclass
class EngineOptions:
    """Tuning knobs of :func:`decide` (defaults suit MNIST-sized MLPs on a CPU)."""

    attack_restarts: int = 32        # untargeted APGD starts at the root (centre + random)
    attack_steps: int = 100          # steps of the root's untargeted APGD and of BaB's attacks
    attack_share: float = 0.15       # share of the time limit for the targeted root attack
    attack_time: float = 5.0         # ... its seconds without a time limit (and at most)
    attack_max_steps: int = 400      # steps of the targeted attack grow up to this
    attack_rounds: int = 12          # batches of the targeted attack at most
    attack_batch: int = 32           # APGD starts per compiled batch
    attack_float32: bool = True      # search in float32 (candidates are checked in float64)
    attack_every: int = 4            # APGD from the worst subdomains every this many batches (0: never)
    attack_starts: int = 8           # ... from this many of them
    intermediate_steps: int = 0      # α steps for intermediate bounds at the root (0: plain CROWN)
    root_steps: int = 60             # α steps for the spec rows at the root
    bab_steps: int = 15              # α/β steps per batch of subdomains
    batch_size: int = 128            # subdomains bounded per call (padded to this size)
    branching: str = "fsb"           # "fsb" (filtered smart branching) or "babsr"
    fsb_candidates: int = 4
    lr_alpha: float = 0.1
    lr_beta: float = 0.05
    decay: float = 0.98
    max_memory_mb: float = 1000.0    # stored subdomains beyond this: depth-first
    leaf_lp: bool = True             # decide fully split subdomains by one LP
    float32_search: bool = True      # optimise α/β and rank branches in float32 (bounds: float64)
    branch: bool = True              # False: stop after α-CROWN (``unknown`` if still open)
    seed: int = 0


@dataclass
class EngineResult(Result):
    """The engine's answer.

    ``status``: ``verified`` (no point of the region is unsafe), ``counterexample`` (``x``,
    float64, with the IR's outputs ``y`` and the ``disjunct`` it satisfies), ``unknown``
    (undecided leaves), ``time_limit`` or ``interrupted`` (``should_stop``). ``stage`` is the
    stage that settled it (``attack``, ``crown``, ``alpha-crown``, ``bab``). ``bound`` is the
    proven lower bound of ``min_k max_i (lb_{k,i} − b_{k,i} + margin)`` net of the round-off
    allowance (> 0 when verified; for undecided answers the best bound reached).

    ``bounds`` (once computed): sound bounds of every value of ``network.merged_affine()``
    over the region (:class:`verify.bounds.Bounds`, ``lower[j]`` / ``upper[j]`` the input of
    layer ``j``, widened by the round-off allowance) — e.g. big-M values for a MIP that takes
    over an undecided question.

    ``frontier`` (``time_limit`` / ``interrupted`` answers of branch and bound): its open
    subdomains, for :func:`decide`'s ``resume``.
    """

    status: str
    stage: str
    bound: float
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    disjunct: int | None = None
    subdomains: int = 0
    stats: dict = field(default_factory=dict)
    bounds: Bounds | None = field(default=None, repr=False)
    frontier: Frontier | None = field(default=None, repr=False)

    @property
    def verified(self) -> bool:
        return self.status == VERIFIED

    @property
    def counterexample(self) -> np.ndarray | None:
        return self.x

    def to_dict(self) -> dict:
        """The JSON form (through :func:`verify.results.json_value`: an infinite bound is
        ``null``); the bounds are left out."""
        return json_value({"status": self.status, "stage": self.stage, "bound": self.bound,
                           "disjunct": self.disjunct, "subdomains": self.subdomains,
                           "x": self.x, "stats": self.stats})


def decide(network: Network, region: Region, spec: Spec, time_limit: float | None = None,
           margin: float = 0.0, should_stop: Callable[[], bool] | None = None,
           confirm: Callable[[np.ndarray], bool] | None = None,
           options: EngineOptions | None = None,
           on_progress: Callable[[dict], None] | None = None,
           initial_bounds=None, resume: Frontier | None = None) -> EngineResult:
    """Decide whether some x in ``region`` makes ``network``'s outputs satisfy a disjunct of
    ``spec`` with ``margin`` (``A_k y ≤ b_k − margin``); see the module docstring.

    ``time_limit`` (seconds) and ``should_stop`` (polled between batches) end the search with
    the best bound; ``confirm(x)`` (optional) must accept a counterexample before it is
    returned; ``on_progress`` receives a dict (open subdomains, bound, counts) per batch.
    ``initial_bounds`` (optional, e.g. LP-refined :func:`verify.bounds.compute_bounds` of
    ``network.merged_affine()`` over ``region``) are trusted as sound and intersected with the
    engine's own intermediate bounds. ``resume`` (optional): the ``frontier`` of an earlier
    call with the same network, spec and margin over a region that contains this one (the
    caller vouches for the containment; a frontier of other disjuncts is ignored) — branch
    and bound continues from it (module docstring).
    """
    t0 = time.perf_counter()
    opt = options or EngineOptions()
    if not isinstance(spec, Spec):
        raise InvalidInputError("spec must be a verify.engine.Spec")
    if region.size != network.num_inputs:
        raise InvalidInputError(f"region has {region.size} values, network {network.name} takes "
                                f"{network.num_inputs}")
    spec.check(network.num_outputs)
    deadline = None if time_limit is None else t0 + float(time_limit)
    stats: dict = {}
    rng = np.random.default_rng(opt.seed)

    def elapsed() -> float:
        return round(time.perf_counter() - t0, 4)

    computed: list = []           # the intermediate bounds, once computed (as Bounds)

    def finish(status, stage, bound, x=None, y=None, k=None, subdomains=0,
               frontier=None) -> EngineResult:
        stats["time_s"] = elapsed()
        return EngineResult(status, stage, float(bound), x, y, k, subdomains, stats,
                            computed[0] if computed else None, frontier)

    def check_point(x: np.ndarray) -> bool:
        x = np.asarray(x, dtype=np.float64).ravel()
        if not contains(region, x):
            return False
        y = network.forward(x[None])[0]
        if spec.holds(y, margin) is None:
            return False
        return confirm is None or bool(confirm(x))

    def hit(x, stage, bound=-np.inf, subdomains=0):
        x = np.asarray(x, dtype=np.float64).ravel()
        y = network.forward(x[None])[0]
        return finish(COUNTEREXAMPLE, stage, bound, x, y, spec.holds(y, margin), subdomains)

    def stopped() -> str | None:
        if should_stop is not None and should_stop():
            return INTERRUPTED
        if deadline is not None and time.perf_counter() > deadline:
            return TIME_LIMIT
        return None

    # a disjunct without rows: every input is unsafe
    if any(A.shape[0] == 0 for A, _ in spec.disjuncts):
        if check_point(region.center):
            return hit(region.center, "attack")
    if not spec.disjuncts:
        return finish(VERIFIED, "crown", np.inf)

    net = network.merged_affine()
    cnet = compile_network(net)
    plan = cnet.plan
    rkind = region_kind(region)
    disjuncts = [(A, b) for A, b in spec.disjuncts]
    m = max(A.shape[0] for A, _ in disjuncts)
    Cs = np.zeros((len(disjuncts), m, network.num_outputs))
    thrs = np.full((len(disjuncts), m), np.inf)
    for k, (A, b) in enumerate(disjuncts):
        Cs[k, :A.shape[0]] = A
        thrs[k, :A.shape[0]] = b - margin
    with x64():
        reg = region_arrays(region)
        atk = Attack(plan, rkind, cnet.arrays, reg, disjuncts, margin, region, check_point, rng,
                     opt.attack_batch, opt.attack_float32)

        def halt() -> bool:
            return stopped() is not None

        # 1. attack: untargeted APGD from the centre and random points (cheap)
        t = time.perf_counter()
        starts = np.vstack([region.center[None], atk.random_starts(max(0, opt.attack_restarts - 1))])
        if rkind == "l0" and opt.attack_restarts > 0:
            # PGD is weak for pixel budgets: an exact greedy search first, then PGD from it
            g = greedy_pixels(net, region, lambda y: spec.violation(y, margin))
            if check_point(g):
                return hit(g, "attack")
            starts = np.vstack([g[None], starts[:-1]])
        x = (atk.run(starts, np.full(len(starts), -1), opt.attack_steps, halt)
             if opt.attack_restarts > 0 else None)
        stats["attack_s"] = round(time.perf_counter() - t, 4)
        if x is not None:
            return hit(x, "attack")
        why = stopped()
        if why:
            return finish(why, "", -np.inf)

        # 2. intermediate bounds, then CROWN on every disjunct
        t = time.perf_counter()
        try:
            rb = root_bounds(cnet, region, steps=opt.intermediate_steps, output=False,
                             deadline=halt, prior=initial_bounds, abort=halt)
        except Aborted:
            stats["intermediate_s"] = round(time.perf_counter() - t, 4)
            return finish(stopped() or TIME_LIMIT, "", -np.inf)
        computed.append(Bounds([np.asarray(v, dtype=np.float64) for v in rb.lower],
                               [np.asarray(v, dtype=np.float64) for v in rb.upper]))
        relu_l, relu_u = rb.relu_bounds(plan)
        real = ~cnet.passthrough()          # masked ReLU layers' pass-through entries excluded
        stats["relus"] = int(np.sum(real))
        stats["unstable_relus"] = int(np.sum((relu_l < 0) & (relu_u > 0) & real))
        stats["intermediate_s"] = round(time.perf_counter() - t, 4)
        why = stopped()
        if why:
            return finish(why, "", -np.inf)

        def attack_from(points: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
            """One batch of targeted APGD: from the points (of subdomains of the disjuncts
            ``targets``), the rest of the batch from random points aimed at the same ones."""
            points, targets = points[: atk.S], np.asarray(targets)[: atk.S]
            extra = atk.S - len(points)
            starts = np.vstack([points, atk.random_starts(extra)]) if extra else points
            aims = np.concatenate([targets, targets[np.arange(extra) % len(targets)]])
            if opt.attack_restarts <= 0:
                return None
            return atk.run(starts, aims, opt.attack_steps, halt)

        def screen(points: np.ndarray) -> np.ndarray:
            """Points whose outputs (float64 IR, one batched pass) satisfy some disjunct."""
            return spec.violation(network.forward(points), margin) <= 0

        bab = BranchAndBound(cnet, rkind, reg, region, rb, Cs, thrs, opt, check_point,
                             attack_from, deadline, should_stop, on_progress, screen)
        domains = bab.resumed(resume) if resume is not None and opt.branch else None
        if domains is not None:
            stats["resumed_subdomains"] = len(domains)
            return _branch(bab, domains, finish, hit, stats, atk, resumed=True)
        t = time.perf_counter()
        roots = bab.root_domains()
        values = bab.bound(roots, 0)[0]
        stats["crown_bound"] = float(values.min())
        stats["crown_s"] = round(time.perf_counter() - t, 4)
        if np.all(values > 0):
            return finish(VERIFIED, "crown", values.min())
        why = stopped()
        if why:
            return finish(why, "", values.min())

        # 3. α-CROWN on the open disjuncts
        t = time.perf_counter()
        todo = [d for d, v in zip(roots, values) if v <= 0]
        results = bab.bound(todo, opt.root_steps)
        open_, x = bab._settle(todo, *results)
        values_after = dict(zip([d.disjunct for d in todo], results[0]))
        settled = [float(v) for v in values if v > 0] + [float(v) for v in results[0] if v > 0]
        stats["alpha_crown_bound"] = float(min(min(values_after.values()),
                                               min(settled) if settled else np.inf))
        stats["alpha_crown_s"] = round(time.perf_counter() - t, 4)
        if x is not None:
            return hit(x, "alpha-crown", stats["alpha_crown_bound"])
        if not open_:
            return finish(VERIFIED, "alpha-crown", min(settled))
        why = stopped()
        if why:
            return finish(why, "", stats["alpha_crown_bound"])
        if not opt.branch:
            return finish(UNKNOWN, "", stats["alpha_crown_bound"])

        # 3b. targeted attack on the open disjuncts, most promising (lowest bound) first,
        # from the centre, the points where their bounds are lowest, and random points
        if opt.attack_restarts > 0:
            t = time.perf_counter()
            ranked = sorted(open_, key=lambda d: d.value)
            order = list(dict.fromkeys(d.disjunct for d in ranked))
            points = {d.disjunct: [d.point] for d in ranked if d.point is not None}
            budget = opt.attack_time if time_limit is None else opt.attack_share * float(time_limit)
            if deadline is not None:
                budget = min(budget, deadline - time.perf_counter())
            x = atk.campaign(order, points, budget, opt.attack_steps, opt.attack_max_steps, halt,
                             opt.attack_rounds)
            stats["targeted_attack_s"] = round(time.perf_counter() - t, 4)
            if x is not None:
                stats.update(atk.stats)
                return hit(x, "attack", stats["alpha_crown_bound"])
            why = stopped()
            if why:
                stats.update(atk.stats)
                return finish(why, "", stats["alpha_crown_bound"])

        # 4. branch and bound over every open disjunct together
        return _branch(bab, open_, finish, hit, stats, atk, settled=settled)


def _branch(bab: BranchAndBound, open_: list, finish: Callable, hit: Callable, stats: dict,
            atk: Attack, settled: list | None = None, resumed: bool = False) -> EngineResult:
    """Stage 4 of :func:`decide`: branch and bound from ``open_`` (bounded and branched
    subdomains; ``resumed``: a frontier's, still to be bounded over this region).
    ``settled``: proven values of disjuncts settled before it."""
    t = time.perf_counter()
    if resumed:               # bounded a batch at a time: the limit may come first
        todo, open_ = open_, []
        for s in range(0, len(todo), bab.B):
            why = bab._stop()
            if why:
                stats["bab"] = dict(bab.stats)
                return finish(why, "", -np.inf, subdomains=bab.stats["subdomains"],
                              frontier=Frontier(open_ + todo[s:], bab.Cs, bab.thrs))
            part = todo[s:s + bab.B]
            bounded, x = bab._settle(part, *bab.bound(part, bab.opt.bab_steps))
            if x is not None:
                return hit(x, "bab", -np.inf, bab.stats["subdomains"])
            open_ += bounded
    out = bab.run(open_)
    stats["bab"] = dict(bab.stats)
    stats.update(atk.stats)
    stats["bab_s"] = round(time.perf_counter() - t, 4)
    subdomains = bab.stats["subdomains"]
    if out.status == "counterexample":
        return hit(out.counterexample, "bab", out.bound, subdomains)
    if out.status == VERIFIED:
        return finish(VERIFIED, "bab", min((settled or []) + [out.bound]), subdomains=subdomains)
    return finish(out.status, "", out.bound, subdomains=subdomains, frontier=out.frontier)
