"""Minimal explanations: the pixels that, held at their values, force the prediction.

An *explanation* E is a set of pixels. It is **sound** when every image that agrees with the
input on E — the other pixels free anywhere in [0, 1] (``eps=None``), or within ±eps of
their values (the ε-restricted, VeriX-style explanation) — gets the same label. It is
**subset-minimal** when freeing any one of its pixels as well lets another label win; each
kept pixel then has a recorded *witness*: an image, differing from the input only in
pixels outside E and that one pixel, that the Keras model labels differently.
``minimum=True`` then looks for a sound E of the smallest size (hitting-set duality).

How ``explain`` decides, pixel set by pixel set (the "free set" F = pixels \\ E):

1. **Order.** Pixels are tried least influential first (``order="influence"``: how far
   moving that pixel alone to either end of its range moves the margin), or in index
   order (``order="index"``, the seed's).
2. **Soundness at every moment.** F starts empty and only grows by sets whose freeing was
   *proven* harmless (by bounds or by an exact solve), so E = pixels \\ F is sound at any
   time — on a time limit or Ctrl-C too (status ``time_limit`` / ``interrupted``, see
   :mod:`verify.interrupts`); undecided pixels simply stay in E.
3. **Batches** (``method="batch"``, the default). The next ``s`` pixels in the order are
   freed together; if F stays robust they are all freed and ``s`` doubles, otherwise ``s``
   halves, down to a single pixel, which is then kept with its witness (divide and
   conquer, as in QuickXplain). ``method="sequential"`` tries one pixel at a time.
4. **Each check** ("is F ∪ B still robust?") asks the cheapest question first:

   * ``witness`` — an image found earlier changes only pixels in F ∪ B: not robust;
   * ``bounds`` — interval and symbolic bounds over the region prove no label change;
   * ``attack`` — gradient steps from the best point found so far reach another label
     (re-checked on the network): not robust;
   * ``alpha-crown`` / ``bab`` — the bound engine (:func:`verify.engine.decide`, with
     ``engine="auto"`` or ``"bab"``): CROWN and α-CROWN bounds over the region prove most
     checks without a split; branch and bound over ReLU phases settles more. Under ``auto``
     the engine is asked only where the bounds leave more than :data:`EXPLAIN_MIP_RELUS`
     ReLUs unstable (below that the MIP is faster); there the engine and the MIP take turns
     with growing time caps until one settles the check, the one that has cost less per
     check so far first
     (:meth:`RobustnessChecker.alternate`, :class:`StageCosts`); an engine counterexample is a
     witness once the network gives it a lead of :data:`WITNESS_MARGIN` and the model's own
     runtime labels it differently;
   * ``exact`` — a feasibility MIP, the one encoding built at the start narrowed to this
     region by changing bounds and big-M coefficients (:mod:`verify.encodings.narrowing`);
     under ``engine="bab"`` there is no MIP and what the engine leaves open stays undecided
     (the pixel is kept without a witness); under ``"mip"`` there is no engine.

   After every growth of F a *sweep* tries, for every undecided pixel u at once, moving u
   to an end of its range from the best point known in F's region; each hit keeps u with
   that image as its witness, without any solver call.
5. ``method="seed"`` is the seed's algorithm for comparison: one exact MIP per pixel in the
   given order, no cheap checks, no batches.

Robustness is proven with a logit margin of 1e-6 (another label must stay that far behind);
witnesses have another label ahead by at least 1e-3 on the network (1e-4 for solver solutions) and are re-checked, all
at once at the end, with the Keras model. A pixel whose check lands in the band between
(or on a time limit) is kept without a witness, and the explanation is then not called
minimal.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from .. import interrupts
from ..attacks.gradients import logit_form_and_gradient, margins
from ..attacks.search import prune_changes, single_pixel_moves
from ..backends import SolveOptions, Status, backends_for, get_backend
from ..encodings.narrowing import NarrowableQuery
from ..encodings.properties import DEFAULT_MARGIN, label_change_spec
from ..errors import InvalidInputError, ProblemTooLargeError
from ..models import LoadedModel
from ..problem import ProblemBuilder
from ..regions import Box
from ..results import Result, _num
from ..status import ExplanationStatus
from ..validate import check_eps
from .bnn import BnnChecker, BnnTask
from .bnn_int import explain_task, is_integer_bnn
from .common import VERIFY_MARGIN
from .context import TaskContext, prepare

from .explain_choices import METHODS, ORDERS  # noqa: E402  (also read by the CLI's help)
CHECK_KINDS = ("witness", "bounds", "attack", "alpha-crown", "bab", "exact")
#: Under ``engine="auto"`` (:meth:`RobustnessChecker.alternate`): seconds of the engine's
#: first turn on a hard check; the round cap (at least ``MIP_CAP_S``, at least
#: ``MIP_CAP_FACTOR`` times the MIP's running cost per check) and its growth per round.
ENGINE_CHECK_S = 2.0
#: Under ``engine="auto"``: a check whose interval / symbolic bounds leave at most this many
#: ReLUs unstable goes straight to the MIP. Measured (2026-12-02, one process, idle machine):
#: ``cnn`` checks leave 13–44 unstable (ε = 0.05 and full range), and the MIP settles them in
#: 0.1–0.3 s (median; 1 s at most), while the engine's turns cost about 2 s each; over 20
#: digits at ε = 0.05 the MIP alone took 4.4 s per explanation, ``auto`` with the engine's
#: turns 8.1 s. On 784-256-256-10 at ε = 0.02 the checks leave 175–190 unstable, the MIP
#: takes 3.5 s to over 35 s, and the engine settles them.
EXPLAIN_MIP_RELUS = 64
MIP_CAP_S = 10.0
MIP_CAP_FACTOR = 10.0
CAP_GROWTH = 4.0
#: Under ``engine="auto"`` (:class:`StageCosts`): weight of the newest check in the running
#: cost of each way, and how often a hard check tries the engine while the MIP goes first:
#: every PROBE_EVERY-th, or rarer when the engine costs more, so that its tries take about
#: 1/PROBE_RATIO of the MIP's time (cnn, ε = 0.05: MIP 0.14 s, engine 1.4 s per check).
COST_WEIGHT = 0.3
PROBE_EVERY = 8
PROBE_RATIO = 4.0
#: ``backend="auto"`` uses the first installed of these, fastest first as measured on the
#: explanation checks (benchmarks/results/explain.md); one that refuses the problem's size
#: (CPLEX Community Edition: 1000 columns) hands over to the next.
AUTO_BACKENDS = ("cplex", "scip", "highs")
#: Hitting-set search: how many extra witness sets one round may add by attacks alone.
EXTRA_SETS_PER_ROUND = 100
#: Least network margin a witness from an exact solve must have (100x the network's largest
#: measured float32 deviation from Keras), so that the Keras model confirms it.
WITNESS_MARGIN = 1e-4

#: progress(decided, total, kept): called after every decided pixel batch.
Progress = Callable[[int, int, int], None]


@dataclass
class StageCosts:
    """Under ``engine="auto"``: whether a *hard* check (one whose interval / symbolic bounds
    leave more than :data:`EXPLAIN_MIP_RELUS` ReLUs unstable) asks the bound engine before
    the MIP. Each way is timed per hard check, as an exponential moving average (weight
    :data:`COST_WEIGHT` on the newest): ``engine`` is the whole cost of a check that went to
    the engine first (with the MIP it handed an open check to), ``mip`` the MIP's time on
    every hard check that reached it (handed over or sent directly). The engine goes first
    while it has cost at most as much per check as the MIP (and before both are measured);
    otherwise the MIP does, and every :meth:`probe_every`-th hard check still tries the
    engine so that its cost stays current. Only the order changes: either way a check is
    settled by a sound proof or a confirmed witness."""

    engine: float | None = None
    mip: float | None = None
    skipped: int = 0        # hard checks sent straight to the MIP since the last engine try
    direct: int = 0         # all hard checks sent straight to the MIP (reported)

    def engine_first(self) -> bool:
        if self.engine is None or self.mip is None or self.engine <= self.mip \
                or self.skipped + 1 >= self.probe_every():
            self.skipped = 0
            return True
        self.skipped += 1
        self.direct += 1
        return False

    def probe_every(self) -> int:
        """While the MIP goes first: every how many hard checks the engine is tried."""
        ratio = PROBE_RATIO * (self.engine or 0.0) / max(self.mip or 0.0, 1e-3)
        return max(PROBE_EVERY, math.ceil(ratio))

    def record(self, engine_s: float | None, mip_s: float | None) -> None:
        """One hard check's cost: ``engine_s`` if it went to the engine first, ``mip_s`` if it
        reached the MIP."""
        if engine_s is not None:
            self.engine = engine_s if self.engine is None else \
                COST_WEIGHT * engine_s + (1 - COST_WEIGHT) * self.engine
        if mip_s is not None:
            self.mip = mip_s if self.mip is None else COST_WEIGHT * mip_s + (1 - COST_WEIGHT) * self.mip


@dataclass
class ExplanationResult(Result):
    task: str                      # "explain"
    model: str
    status: ExplanationStatus      # minimal | time_limit | interrupted | unproven  (see ``minimal``)
    pixels: list[int]              # flat indices into the input, sorted
    original_label: int
    eps: float | None
    method: str
    order: str
    backend: str
    time_s: float
    calls: int                     # exact solver calls
    checks: dict                   # how each robustness check was settled, by kind
    image: np.ndarray              # the input, in the model's input shape
    witnesses: dict = field(default_factory=dict)   # kept pixel → witness image (flat)
    minimum: dict | None = None    # minimum=True: size, lower_bound, status, pixels
    classes: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.pixels)

    @property
    def minimal(self) -> bool:
        """True only when every kept pixel has a witness confirmed by the Keras model."""
        return self.status == ExplanationStatus.MINIMAL

    @property
    def mask(self) -> np.ndarray:
        m = np.zeros(self.image.size, dtype=bool)
        m[self.pixels] = True
        return m.reshape(self.image.shape)

    def to_dict(self) -> dict:
        out = {
            "task": self.task, "model": self.model, "status": self.status,
            "minimal": self.minimal, "pixels": [int(p) for p in self.pixels], "size": self.size,
            "original_label": _num(self.original_label), "eps": _num(self.eps),
            "method": self.method, "order": self.order, "backend": self.backend,
            "time_s": round(float(self.time_s), 4), "calls": self.calls, "checks": dict(self.checks),
            "witnessed_pixels": len(self.witnesses),
        }
        if self.minimum is not None:
            out["minimum"] = {k: (_num(v) if not isinstance(v, list) else v) for k, v in self.minimum.items()}
        out.update(self.stats)
        return out


class RobustnessChecker:
    """Answers "with the pixels in ``free`` free (the rest fixed), can the label change?",
    cheapest way first, and remembers every witness it found."""

    def __init__(self, ctx: TaskContext, lo: np.ndarray, hi: np.ndarray, cheap: bool = True):
        self.model, self.center, self.label = ctx.model, ctx.image, ctx.label
        center, label = ctx.image, ctx.label
        self.net = ctx.model.network.merged_affine()
        self.lo, self.hi = lo, hi
        backend = ctx.options.backend or "auto"
        threads = ctx.options.threads
        limit = ctx.options.time_limit
        deadline = None if limit is None else ctx.started + limit
        names = [backend] if backend != "auto" else \
            [b.name for b in backends_for("milp") if b.name in AUTO_BACKENDS]
        names.sort(key=lambda b: AUTO_BACKENDS.index(b) if b in AUTO_BACKENDS else -1)
        self.solvers = [get_backend(b) for b in names]
        self.solvers[0].check_kind("milp")
        self.threads, self.deadline, self.cheap = threads, deadline, cheap
        self.engine = ctx.options.engine
        self.engine_time = 0.0
        self.counts = {k: 0 for k in CHECK_KINDS}
        self.calls = 0
        self.exact_time = 0.0
        self.witnesses: list[np.ndarray] = []
        self.changed = np.zeros((0, center.size), dtype=bool)
        # rows z_j − z_label (one per other label j; ±z for one logit), and per row the point
        # of the proven-robust region where it is highest as far as the attacks know
        self.spec = label_change_spec(self.net.num_outputs, label, None)[0]
        self.anchors = [center.copy() for _ in self.spec]
        self._queries: dict[float, NarrowableQuery] = {}
        self._best: list[np.ndarray] | None = None
        self._expect = "robust"       # how the last exact check ended (see exact)
        self._spec = None
        self._engine_options = None
        self.costs = StageCosts()

    @property
    def solver(self):
        return self.solvers[0]

    # -- helpers ---------------------------------------------------------------------------
    def region(self, free: np.ndarray) -> Box:
        return Box(self.center, self.lo, self.hi, free=free)

    def query(self, margin: float) -> NarrowableQuery:
        if margin not in self._queries:
            self._queries[margin] = NarrowableQuery(self.net, Box(self.center, self.lo, self.hi),
                                                    self.label, None, margin)
        return self._queries[margin]

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.perf_counter()

    def out_of_time(self) -> bool:
        """No more work: the time limit is reached, or a stop was requested (Ctrl-C)."""
        r = self.remaining()
        return (r is not None and r <= 0) or interrupts.stop_requested()

    def margin(self, x: np.ndarray) -> float:
        return float(margins(self.net, x[None], self.label)[0])

    def store(self, x: np.ndarray) -> int:
        """Keep a witness (pruned to the pixels it needs); returns its index."""
        m = self.margin(x)
        if m >= WITNESS_MARGIN:       # below that, Keras confirmed this very image: keep it
            x = prune_changes(self.net, x, self.center, self.label, None, min(DEFAULT_MARGIN, m))
        self.witnesses.append(x)
        self.changed = np.vstack([self.changed, (x != self.center)[None]])
        return len(self.witnesses) - 1

    def witnessed(self, free: np.ndarray) -> int | None:
        """A stored witness that only changes pixels in ``free``."""
        if not self.witnesses:
            return None
        inside = ~np.any(self.changed & ~free, axis=1)
        hit = np.flatnonzero(inside)
        return int(hit[0]) if hit.size else None

    # -- the check -------------------------------------------------------------------------
    def check(self, free: np.ndarray) -> tuple[bool | None, int | None]:
        """(True, None): proven robust; (False, w): witness ``w``; (None, None): undecided."""
        region = self.region(free)
        query = self.query(VERIFY_MARGIN)
        if self.cheap:
            w = self.witnessed(free)
            if w is not None:
                self.counts["witness"] += 1
                return False, w
        bounds = query.bounds(region)
        if self.cheap:
            if query.excluded_by_bounds(region, bounds):
                self.counts["bounds"] += 1
                self._accept(region)
                return True, None
            x = self.attack(region)
            if x is not None:
                self.counts["attack"] += 1
                return False, self.store(x)
            if self.engine == "bab":
                robust, x, _ = self.engine_check(region, bounds)
                return self._settled(region, robust, x)
            if self.engine == "auto" and not self.small(bounds):
                return self._settled(region, *self.alternate(region, bounds))
        if self.out_of_time():
            return None, None
        robust, x = self.exact(region, bounds)
        if robust is not None or x is not None:
            self.counts["exact"] += 1
        return self._settled(region, robust, x)

    def _settled(self, region: Box, robust: bool | None,
                 x: np.ndarray | None) -> tuple[bool | None, int | None]:
        if robust:
            self._accept(region)
            return True, None
        if x is not None:
            return False, self.store(x)
        return None, None

    def alternate(self, region: Box, bounds) -> tuple[bool | None, np.ndarray | None]:
        """A hard check under ``auto``: the engine and the MIP take turns, each with a time
        cap, until one settles it. The way :class:`StageCosts` picks goes first (the engine
        for :data:`ENGINE_CHECK_S`, the MIP for the *round* cap ``K``: :data:`MIP_CAP_S`, or
        :data:`MIP_CAP_FACTOR` times the MIP's running cost per check if larger); then the
        other way for ``K``; every round after that the cap grows :data:`CAP_GROWTH`-fold.
        The engine continues its own branch and bound from where its last turn stopped
        (:func:`~verify.engine.decide`'s ``resume``); the MIP starts over, so with the
        geometric caps what an unlucky first choice wastes stays a small multiple of what
        the better way needs: on 784-256-256-10 at ε = 0.02, one check took the MIP over
        290 s and the engine 20 s."""
        engine_first = self.costs.engine_first()
        round_cap = max(MIP_CAP_S, MIP_CAP_FACTOR * (self.costs.mip or 0.0))
        turns = ["engine", "mip"] if engine_first else ["mip", "engine"]
        started = time.perf_counter()
        mip_s, reached_mip, frontier = 0.0, False, None
        robust, x = None, None
        turn = 0
        while not self.out_of_time():
            way = turns[turn % 2]
            cap = ENGINE_CHECK_S if turn == 0 and way == "engine" else \
                round_cap * CAP_GROWTH ** ((turn - (1 if engine_first else 0)) // 2)
            with self.capped(cap):
                t = time.perf_counter()
                if way == "engine":
                    robust, x, frontier = self.engine_check(region, bounds, frontier)
                else:
                    robust, x = self.exact(region, bounds)
                    mip_s += time.perf_counter() - t
                    reached_mip = True
                    if robust is not None or x is not None:
                        self.counts["exact"] += 1
            if robust is not None or x is not None:
                break
            turn += 1
        self.costs.record(time.perf_counter() - started if engine_first else None,
                          mip_s if reached_mip else None)
        return robust, x

    @contextmanager
    def capped(self, seconds: float):
        """Within the block, the checker's time limit is at most ``seconds`` away."""
        saved = self.deadline
        until = time.perf_counter() + seconds
        self.deadline = until if saved is None else min(saved, until)
        try:
            yield
        finally:
            self.deadline = saved

    def small(self, bounds) -> bool:
        """Whether a check's interval / symbolic bounds leave so few ReLUs unstable
        (:data:`EXPLAIN_MIP_RELUS`) that ``auto`` goes straight to the MIP: on ``multiclass``
        (784-10-10-10) at ε = 0.05 the engine first made the explanations twice as slow
        (benchmarks/results/explain-eps05-multiclass-before.md), on ``cnn`` almost twice
        (explain-eps05-cnn-idle.md against explain-eps05-cnn-idle-mip.md)."""
        return bounds.unstable(self.net) <= EXPLAIN_MIP_RELUS

    def engine_check(self, region: Box, bounds, resume=None) -> tuple[bool | None, np.ndarray | None, Any]:
        """The bound engine on "can another label lead by 1e-6 in ``region``?": (True, None)
        proven robust, (False, x) a witness (a lead of :data:`WITNESS_MARGIN` on the network,
        confirmed by the model's runtime), (None, None) left open. ``bounds`` (interval /
        symbolic, sound) are intersected with the engine's own."""
        from ..engine import EngineOptions, decide

        if self.out_of_time():
            return None, None, None
        if self._spec is None:
            from ..engine import Spec

            self._spec = Spec.label_change(self.net.num_outputs, self.label)
            # the checker attacked already: a short attack of the engine's own
            self._engine_options = EngineOptions(attack_restarts=4, attack_steps=30,
                                                 attack_time=0.2, attack_share=0.05,
                                                 attack_rounds=2)

        def confirm(x: np.ndarray) -> bool:
            return self._strong(x) and self._runtime_flips(x)

        t = time.perf_counter()
        r = decide(self.net, region, self._spec, time_limit=self.remaining(), margin=VERIFY_MARGIN,
                   should_stop=interrupts.stop_requested, confirm=confirm,
                   options=self._engine_options, initial_bounds=bounds, resume=resume)
        self.engine_time += time.perf_counter() - t
        kind = "bab" if r.stage == "bab" or resume is not None else "alpha-crown"
        if r.status == "verified":
            self.counts[kind] += 1
            return True, None, None
        if r.status == "counterexample" and r.x is not None:
            self.counts["attack" if r.stage == "attack" else kind] += 1
            return False, np.asarray(r.x, dtype=np.float64), None
        return None, None, r.frontier if r.frontier is not None else resume

    def _accept(self, region: Box) -> None:
        """The region was proven robust: the best points the last attack saw in it (one per
        other label) are the new anchors."""
        if self._best is not None and all(np.all(b >= region.lo) and np.all(b <= region.hi)
                                          for b in self._best):
            self.anchors = self._best
        self._best = None

    def attack(self, region: Box, steps: int = 30) -> np.ndarray | None:
        """For every other label j at once (one batched pass per step): monotone
        sign-gradient ascent of ``z_j − z_label`` in the region's box from j's anchor (a step
        is taken only if it raises that difference, else j's step halves). Keeps each j's
        best point (the next anchors) and returns, at the first step where some j leads by
        1e-3, that input (the most promising such j at the start), or None."""
        lo, hi = region.lo, region.hi
        x = np.stack([np.clip(a, lo, hi) for a in self.anchors])
        m, g = logit_form_and_gradient(self.net, self.net.forward_all(x), self.spec)
        rank = np.empty(len(m), dtype=np.int64)
        rank[np.argsort(m)[::-1]] = np.arange(len(m))        # 0: most promising at the start
        step = np.full(len(m), 0.5 * float(np.max(hi - lo, initial=0.0)))
        for _ in range(steps):
            if np.any(m >= DEFAULT_MARGIN):
                break
            trial = np.clip(x + step[:, None] * np.sign(g), lo, hi)
            mt, gt = logit_form_and_gradient(self.net, self.net.forward_all(trial), self.spec)
            better = mt > m
            x[better], m[better], g[better] = trial[better], mt[better], gt[better]
            step[~better] *= 0.5
        self._best = list(x)
        won = np.flatnonzero(m >= DEFAULT_MARGIN)
        return x[won[np.argmin(rank[won])]].copy() if won.size else None

    def exact(self, region: Box, bounds) -> tuple[bool | None, np.ndarray | None]:
        """Exact solves on the narrowed encoding: "another label leads by 1e-3" (a witness),
        "... by 1e-6" (if infeasible: robust) and, after a solution of the latter with too
        little margin (``weak``: the solver stops on the constraint, and Keras may label such
        a float32 tie either way, or differently in a batch), :meth:`_best_lead`. The order
        follows how the last exact check ended (``_expect``):

        * ``robust``: 1e-6 first; if weak, 1e-3 (a witness, or the tolerance band), then in
          the band the best lead;
        * ``flip`` (a witness with margin): 1e-3 first; if infeasible, 1e-6 (robust, or weak:
          the best lead);
        * ``weak`` (the last witness came through a weak solution): 1e-6 first; if weak, the
          best lead at once, 1e-3 only if that gives no witness.

        On twoclass (full range) the 1e-3 question finds most witnesses at once; on cnn
        (ε = 0.05) most witnesses lie in the band, where asking it first costs a third solve.
        A check left without a witness or a proof is undecided."""
        weak = None
        if self._expect == "flip":
            verdict, x = self._solve(self.query(DEFAULT_MARGIN), region, bounds)
            if verdict is True:
                verdict, x = self._solve(self.query(VERIFY_MARGIN), region, bounds)
                if verdict is False and not self._strong(x):
                    weak = x
                    verdict, x = self._lead(region, bounds, weak)
        else:
            verdict, x = self._solve(self.query(VERIFY_MARGIN), region, bounds)
            if verdict is False and not self._strong(x):
                weak, verdict, x = x, None, None
                if self._expect == "weak":
                    verdict, x = self._lead(region, bounds, weak)
                if verdict is None:
                    verdict, x = self._solve(self.query(DEFAULT_MARGIN), region, bounds)
                    if verdict is False:
                        weak = None              # a witness with margin after all
                    elif self._expect != "weak":
                        verdict, x = self._lead(region, bounds, weak)
                    else:
                        verdict, x = None, None
        if verdict is True:
            self._expect = "robust"
        elif verdict is False:
            self._expect = "weak" if weak is not None else "flip"
        return verdict, x

    def _lead(self, region: Box, bounds, weak: np.ndarray) -> tuple[bool | None, np.ndarray | None]:
        """(False, x) with the witness :meth:`_best_lead` finds, else (None, None)."""
        x = None if self.out_of_time() else self._best_lead(region, bounds, weak)
        return (False, x) if x is not None else (None, None)

    def _best_lead(self, region: Box, bounds, weak: np.ndarray) -> np.ndarray | None:
        """The input of the region where the label leading at ``weak`` leads most, by an
        exact maximisation: a witness if the network gives that label the lead and the
        model's runtime agrees, else None."""
        query = self.query(VERIFY_MARGIN)
        problem = query.narrow(region, bounds)
        j = int(np.argmax(self.spec @ self.net.forward(weak[None])[0]))
        cols = query.query.encoding.logits.cols
        cost = np.zeros(problem.num_cols)
        np.add.at(cost, cols[cols >= 0], -self.spec[j][cols >= 0])
        t = time.perf_counter()
        best = self.solver.solve_light_first(replace(problem, c=cost),
                                             SolveOptions(time_limit=self.remaining(), threads=self.threads))
        self.calls += 1
        self.exact_time += time.perf_counter() - t
        if best.x is None:
            return None
        x = query.decode(best.x, region)
        return x if self._confirmed(x) else None

    def _confirmed(self, x: np.ndarray) -> bool:
        """Another label leads on the network and the model's runtime labels ``x`` so too."""
        return self.margin(x) > 0 and self._runtime_flips(x)

    def _runtime_flips(self, x: np.ndarray) -> bool:
        """The model's own runtime (Keras / onnxruntime) labels ``x`` other than the image."""
        return int(self.model.reference_labels(x)[0]) != self.label

    def _strong(self, x: np.ndarray) -> bool:
        """A solver solution is a witness if the network gives another label a lead of 1e-4
        (smaller leads are float32 ties: Keras may label the image either way)."""
        return self.margin(x) >= WITNESS_MARGIN

    def _solve(self, query: NarrowableQuery, region: Box, bounds) -> tuple[bool | None, np.ndarray | None]:
        """(True, None) infeasible; (False, x) a solution; (None, None) time limit."""
        if query.excluded_by_bounds(region, bounds):
            return True, None
        if self.out_of_time():
            return None, None
        t = time.perf_counter()
        options = SolveOptions(time_limit=self.remaining(), threads=self.threads, primal_heuristics=False)
        while True:
            try:
                res = self.solver.solve_light_first(query.narrow(region, bounds), options)
                break
            except ProblemTooLargeError:
                if len(self.solvers) == 1:
                    raise
                self.solvers.pop(0)       # e.g. CPLEX Community Edition: try the next one
        self.calls += 1
        self.exact_time += time.perf_counter() - t
        if res.status == Status.INFEASIBLE:
            return True, None
        if res.x is None:
            return None, None
        return False, query.decode(res.x, region)

    def sweep(self, free: np.ndarray, undecided: np.ndarray, after: int | None = None) -> dict[int, int]:
        """Undecided pixels u for which F ∪ {u} is shown not robust without a solver: by a
        stored witness, or by moving u alone to an end of its range from each anchor.
        ``after`` (the witness that just kept a pixel): from that witness alone, with every
        pixel outside F back at the centre, a point of F's region where another label nearly
        leads (on cnn at ε = 0.05 the anchors' moves missed most of the pixels that the
        exact solves then kept one by one)."""
        found: dict[int, int] = {}
        if not self.cheap or undecided.size == 0:
            return found
        starts = self.anchors
        if after is not None:
            start = self.witnesses[after].copy()
            start[~free] = self.center[~free]
            starts = [start]
        elif self.witnesses:
            outside = self.changed & ~free
            single = np.flatnonzero(outside.sum(axis=1) == 1)
            is_undecided = np.zeros(free.size, dtype=bool)
            is_undecided[undecided] = True
            for w in single:
                p = int(np.flatnonzero(outside[w])[0])
                if is_undecided[p] and p not in found:
                    found[p] = int(w)
                    self.counts["witness"] += 1
        for anchor in starts:
            rest = np.array([u for u in undecided if u not in found], dtype=np.int64)
            if rest.size == 0:
                break
            scores, cols, values = single_pixel_moves(self.net, anchor, rest, self.lo, self.hi,
                                                      self.label)
            for j in np.flatnonzero(scores >= DEFAULT_MARGIN):
                p = int(cols[j])
                if p in found:
                    continue
                x = anchor.copy()
                x[p] = values[j]
                found[p] = self.store(x)
                self.counts["attack"] += 1
        return found


def influence_order(net, center: np.ndarray, label: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Pixels, least influential first: the most that moving the pixel alone to either end of
    its range raises the margin (ties broken by index)."""
    n = center.size
    scores, cols, _ = single_pixel_moves(net, center, np.arange(n), lo, hi, label)
    per_pixel = np.maximum(scores[:n], scores[n:])
    return np.argsort(per_pixel, kind="stable")


@interrupts.scoped
def explain(model: Any, image: np.ndarray, eps: float | None = None, method: str = "batch",
            order: str = "influence", minimum: bool = False, backend: str | None = None,
            time_limit: float | None = None, threads: int | None = None,
            progress: Progress | None = None, encoding: str | None = None,
            engine: str | None = None) -> ExplanationResult:
    """A subset-minimal explanation of the model's label on ``image`` (see the module docs).

    ``eps=None`` frees pixels over the whole [0, 1] range; ``eps=e`` only within ±e of their
    values. ``method``: ``"batch"`` (default), ``"sequential"`` or ``"seed"``; ``order``:
    ``"influence"`` (default) or ``"index"``. ``minimum=True`` then searches for a smallest
    explanation (hitting sets), reported in ``result.minimum`` with a proven lower bound.
    ``time_limit`` (seconds) covers everything; on it the explanation is still sound, with
    status ``time_limit``. ``engine``: ``"auto"`` (default: where the cheap means leave a
    check open, the bound engine and the MIP take turns, the cheaper so far first, see
    :meth:`RobustnessChecker.alternate`), ``"bab"`` (the engine alone) or ``"mip"`` (no
    engine); ``method="seed"`` always uses the MIP alone.

    On a binarized network (BNN) pixels are bits: a free pixel may take either bit, ``eps``
    does not apply, and ``encoding`` (``"cnf"``, default, ``"mip"`` or ``"ip"``) picks how
    each check is solved (see :mod:`verify.tasks.bnn`).
    """
    if method not in METHODS:
        raise InvalidInputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if order not in ORDERS:
        raise InvalidInputError(f"unknown order {order!r}; choose from {', '.join(ORDERS)}")
    check_eps(eps, None, positive=True)
    from .engine_stage import check_engine

    ctx = prepare(model, image, backend=backend, time_limit=time_limit, threads=threads,
                  encoding=encoding, engine=check_engine(engine))
    plan = _Plan(eps, method, order, minimum, progress)
    if ctx.binarized:
        integer = is_integer_bnn(ctx.model.network)
        if eps is not None and not integer:
            raise InvalidInputError("a BNN sees each pixel as one bit (x > 0.5): eps does not "
                                    "apply; leave it out (free pixels take either bit)")
        task, checker = explain_task(ctx, eps) if integer else (None, None)
        task = task or BnnTask.from_context(ctx)
        checker = checker or BnnChecker(task)
        checker.cheap = method != "seed"
        try:
            n = ctx.image.size
            ranked = checker.influence_order() if order == "influence" else np.arange(n)
            return _explanation(ctx, plan, checker, ranked, np.zeros(n, dtype=bool),
                                {"encoding": task.encoding})
        finally:
            checker.close()
    center, label = ctx.image, ctx.label
    lo = np.zeros_like(center) if eps is None else np.clip(center - eps, 0.0, 1.0)
    hi = np.ones_like(center) if eps is None else np.clip(center + eps, 0.0, 1.0)
    checker = RobustnessChecker(ctx, lo, hi, cheap=method != "seed")
    movable = np.flatnonzero(hi > lo)          # pixels whose range is a single value explain nothing
    if order == "influence":
        ranked = influence_order(checker.net, center, label, lo, hi)
        ranked = ranked[np.isin(ranked, movable)]
    else:
        ranked = movable
    free = np.zeros(center.size, dtype=bool)
    free[np.setdiff1d(np.arange(center.size), movable)] = True     # nothing to fix there
    return _explanation(ctx, plan, checker, ranked, free, {})


@dataclass(frozen=True)
class _Plan:
    """What :func:`explain` was asked besides its context: the ±eps range of a free pixel
    (None: all of [0, 1]), the method and order, whether to search for a minimum, and the
    receiver of progress."""

    eps: float | None
    method: str
    order: str
    minimum: bool
    progress: Progress | None


def _explanation(ctx: TaskContext, plan: _Plan, checker: RobustnessChecker | BnnChecker,
                 ranked: np.ndarray, free: np.ndarray, extra: dict) -> ExplanationResult:
    """Run the destructive loop with ``checker`` and assemble the result."""
    model, center, label = ctx.model, ctx.image, ctx.label
    free, kept, undecided = _free_what_you_can(checker, free, ranked, plan.method, plan.progress)
    explanation = np.array(sorted(set(kept) | set(undecided.tolist())), dtype=np.int64)
    witnesses = {p: checker.witnesses[w] for p, w in kept.items() if w is not None}
    confirmed = _confirm_witnesses(model, witnesses, label)
    stats = {"kept_without_witness": int(len(explanation) - len(confirmed)),
             "undecided_pixels": int(undecided.size), "exact_time_s": round(checker.exact_time, 4),
             "engine": getattr(checker, "engine", None),
             "engine_time_s": round(getattr(checker, "engine_time", 0.0), 4),
             "mip_first_checks": getattr(getattr(checker, "costs", None), "direct", 0),
             "free_pixels": int(free.sum()), **extra}
    if undecided.size or len(confirmed) < len(explanation):
        status = _stopped_status(checker) or ExplanationStatus.UNPROVEN
    else:
        status = ExplanationStatus.MINIMAL
    result = ExplanationResult(
        "explain", model.name, status, explanation.tolist(), label, plan.eps, plan.method,
        plan.order, checker.solver.name, 0.0, 0, {}, ctx.shaped(center), confirmed,
        None, list(model.classes), stats)
    if plan.minimum:
        result.minimum = _minimum_explanation(checker, explanation)
    result.time_s = ctx.elapsed()
    result.calls = checker.calls
    result.checks = dict(checker.counts)
    return result


def _free_what_you_can(checker: RobustnessChecker | BnnChecker, free: np.ndarray, ranked: np.ndarray,
                       method: str, progress: Progress | None):
    """The destructive loop: returns (free mask, kept pixel → witness index, undecided)."""
    total = ranked.size
    undecided = list(ranked)
    kept: dict[int, int | None] = {}
    size = max(1, total // 16) if method == "batch" else 1

    def take(found: dict[int, int]) -> None:
        nonlocal undecided
        if found:
            kept.update(found)
            undecided = [u for u in undecided if u not in found]

    def report():
        if progress is not None:
            progress(total - len(undecided), total, len(kept))

    take(checker.sweep(free, np.array(undecided, dtype=np.int64)))
    report()
    while undecided and not checker.out_of_time():
        batch = undecided[:size]
        trial = free.copy()
        trial[batch] = True
        robust, w = checker.check(trial)
        if robust:
            free = trial
            undecided = undecided[len(batch):]
            if method == "batch":
                size *= 2
            take(checker.sweep(free, np.array(undecided, dtype=np.int64)))
        elif len(batch) == 1:
            if robust is None and checker.out_of_time():
                break
            kept[int(batch[0])] = w
            undecided = undecided[1:]
            if w is not None:
                take(checker.sweep(free, np.array(undecided, dtype=np.int64), after=w))
        else:
            size = max(1, len(batch) // 2)
            take(checker.sweep(free, np.array(undecided, dtype=np.int64)) if w is not None else {})
        report()
    return free, kept, np.array(undecided, dtype=np.int64)


def _confirm_witnesses(model: LoadedModel, witnesses: dict[int, np.ndarray], label: int) -> dict:
    """The witnesses the Keras model (float32) really labels differently, in one batch."""
    if not witnesses:
        return {}
    pixels = list(witnesses)
    labels = model.reference_labels(np.stack([witnesses[p] for p in pixels]))
    return {p: witnesses[p] for p, got in zip(pixels, labels) if int(got) != label}


def _stopped_status(checker: RobustnessChecker | BnnChecker) -> ExplanationStatus | None:
    """``interrupted`` after a stop request (Ctrl-C, SIGTERM), ``time_limit`` when the
    checker is out of time, else None."""
    if interrupts.stop_requested():
        return ExplanationStatus.INTERRUPTED
    return ExplanationStatus.TIME_LIMIT if checker.out_of_time() else None


def _minimum_explanation(checker: RobustnessChecker, explanation: np.ndarray) -> dict:
    """Smallest sound explanation by hitting-set duality: every witness's changed pixels form
    a set that any sound explanation must hit (fix at least one of). A MIP master picks a
    smallest set hitting all known ones; if freeing everything else is robust it is a
    minimum explanation, otherwise the new witness adds a set. The master's optimum is a
    proven lower bound throughout.

    Before the first round the master is seeded with many small adversarial pixel sets
    (:func:`_seed_sets`, at most :data:`SEED_SHARE` of the time left), so that its lower
    bound starts high instead of at one."""
    n = checker.center.size
    best = explanation
    lower, rounds, status = 0, 0, ExplanationStatus.TIME_LIMIT
    solver = get_backend("highs")
    t_seed = time.perf_counter()
    seeded = _seed_sets(checker)
    seed_s = round(time.perf_counter() - t_seed, 4)
    while not checker.out_of_time():
        if lower >= best.size:
            status = ExplanationStatus.MINIMUM
            break
        master = _hitting_set_problem(checker.changed)
        res = solver.solve(master, SolveOptions(time_limit=checker.remaining(), threads=checker.threads))
        rounds += 1
        if res.bound is not None:
            lower = max(lower, int(np.ceil(res.bound - 1e-6)))
        if lower >= best.size:
            status = ExplanationStatus.MINIMUM
            break
        if res.x is None or res.status != Status.OPTIMAL:
            break
        candidate = np.flatnonzero(res.x > 0.5)
        free = np.ones(n, dtype=bool)
        free[candidate] = False
        robust, w = checker.check(free)
        if robust:
            best, lower, status = candidate, candidate.size, ExplanationStatus.MINIMUM
            break
        if robust is None:
            break
        # more sets from the same round: attacks with the new sets' pixels fixed too (sets
        # that are pairwise disjoint each need their own pixel: the cheapest lower bound)
        for _ in range(EXTRA_SETS_PER_ROUND):
            free = free & ~checker.changed[w]
            x = checker.attack(checker.region(free))
            if x is None:
                break
            w = checker.store(x)
    if status != ExplanationStatus.MINIMUM and interrupts.stop_requested():
        status = ExplanationStatus.INTERRUPTED
    return {"size": int(best.size), "lower_bound": int(lower), "status": status,
            "pixels": [int(p) for p in best], "rounds": rounds, "sets": int(checker.changed.shape[0]),
            "seeded_sets": seeded, "seed_time_s": seed_s}


#: Hitting-set seeding: at most this many adversarial pixel sets ...
SEED_SETS = 400
#: ... in at most this share of the time left (without a time limit: :data:`SEED_TIME_S`).
SEED_SHARE = 0.3
SEED_TIME_S = 60.0
#: Seconds the card engine may spend making one seeded set smaller ...
SEED_ENGINE_S = 0.5
#: ... when it has at most this many pixels (the greedy search's limit too).
SEED_ENGINE_PIXELS = 40


def _small_set(checker: RobustnessChecker, free: np.ndarray, until: float) -> np.ndarray | None:
    """A small adversarial example changing only pixels of ``free`` (within their range): the
    checker's gradient attack (else a greedy pixel search), pruned by the checker when
    stored; for a set of at most :data:`SEED_ENGINE_PIXELS` pixels (unless
    ``engine="mip"``) the card engine is then asked for one with fewer changed pixels
    (:data:`SEED_ENGINE_S` seconds). None if none is found."""
    from ..attacks.search import greedy_pixels

    lo = np.where(free, checker.lo, checker.center)
    hi = np.where(free, checker.hi, checker.center)
    movable = int(np.count_nonzero(hi > lo))
    if movable == 0:
        return None
    x = checker.attack(checker.region(free & (checker.hi > checker.lo)))
    if x is None:
        x = greedy_pixels(checker.net, checker.center, checker.label, None, DEFAULT_MARGIN, lo, hi,
                          max_pixels=min(movable, SEED_ENGINE_PIXELS))
    if x is None:
        return None
    x = prune_changes(checker.net, x, checker.center, checker.label, None, DEFAULT_MARGIN)
    k = int(np.count_nonzero(x != checker.center))
    left = until - time.perf_counter()
    if checker.engine != "mip" and 1 < k <= SEED_ENGINE_PIXELS and left > 0:
        from ..engine import EngineOptions, Spec, decide
        from ..regions import L0Ball

        def confirm(y: np.ndarray) -> bool:
            return checker.margin(y) >= DEFAULT_MARGIN

        r = decide(checker.net, L0Ball(checker.center, k - 1, lo, hi), Spec.label_change(
            checker.net.num_outputs, checker.label), time_limit=min(SEED_ENGINE_S, left),
            margin=DEFAULT_MARGIN, should_stop=interrupts.stop_requested, confirm=confirm,
            options=EngineOptions(attack_restarts=8, attack_steps=50, attack_time=0.2))
        if r.status == "counterexample" and r.x is not None:
            y = prune_changes(checker.net, np.asarray(r.x, dtype=np.float64), checker.center,
                              checker.label, None, DEFAULT_MARGIN)
            if checker.margin(y) >= DEFAULT_MARGIN and np.count_nonzero(y != checker.center) < k:
                x = y
    return x


def _seed_sets(checker: RobustnessChecker, seconds: float | None = None,
               max_sets: int = SEED_SETS) -> int:
    """Witness sets for the hitting-set master (stored as the checker's witnesses): first a
    chain of pairwise disjoint small adversarial sets (each found with the earlier ones'
    pixels fixed: their number is already a lower bound), then, for each pixel p of each
    set found, a set that avoids p (sets that overlap in different ways raise the master's
    bound further). ``seconds``: the time to spend (default: :data:`SEED_SHARE` of the time
    left, :data:`SEED_TIME_S` without a time limit). Returns how many sets were added."""
    if not isinstance(checker, RobustnessChecker):
        return 0        # a BNN's checker: its sets come from its own witnesses only
    if seconds is None:
        left = checker.remaining()
        seconds = SEED_TIME_S if left is None else SEED_SHARE * max(0.0, left)
    until = time.perf_counter() + seconds
    movable = checker.hi > checker.lo
    added = 0

    def more() -> bool:
        return added < max_sets and time.perf_counter() < until and not checker.out_of_time()

    def find(fixed: np.ndarray) -> np.ndarray | None:
        nonlocal added
        x = _small_set(checker, movable & ~fixed, until)
        if x is None:
            return None
        added += 1
        w = checker.store(x)          # (store replaces the array: index it afterwards)
        return checker.changed[w]

    union = np.zeros(movable.size, dtype=bool)
    chain: list[np.ndarray] = []
    while more():
        S = find(union)
        if S is None:
            break
        chain.append(S)
        union |= S
    for S in chain:
        for p in np.flatnonzero(S):
            if not more():
                return added
            fixed = np.zeros(movable.size, dtype=bool)
            fixed[p] = True
            find(fixed)
    return added


def _hitting_set_problem(sets: np.ndarray):
    """min Σ e_i over binaries e, subject to Σ_{i ∈ S} e_i ≥ 1 for every set S (rows of ``sets``)."""
    b = ProblemBuilder("hitting-set")
    e = b.add_vars("fixed", sets.shape[1], 0.0, 1.0, integer=True, cost=1.0)
    rows, cols = np.nonzero(sets)
    b.add_rows(rows, e[cols], np.ones(rows.size), 1.0, np.inf, count=sets.shape[0])
    return b.build()
