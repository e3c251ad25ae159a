"""Exact evidence for a sparse judge: the provably most persuasive pixels to reveal.

A *judge* (:mod:`verify.debate`) classifies a digit from a few revealed pixels; every other
pixel reads 0. :func:`evidence` answers, for one digit: which at most ``k`` more of its
non-zero pixels, revealed on top of those already shown, make the judge output ``claim``
with the largest margin — or prefer ``claim`` over ``against`` — and proves it; or proves
that no such set exists.

**Margin.** On the logits ``z`` of the judge's view: ``z_claim − max_{j ≠ claim} z_j``, or
``z_claim − z_against`` with ``against``. The judge outputs the claim (prefers it) exactly
when the margin is positive. (A one-logit sigmoid network: ``±z``.)

**How it is solved** (all exact; the first that applies):

1. *enumeration* — when there are at most :data:`ENUMERATION_LIMIT` reveal sets (every subset
   of at most ``k`` candidates: ``k = 1`` or ``2`` on an MNIST digit), all are scored. The
   first affine layer is linear in the revealed pixels, so a set's first-layer values are a
   sum of per-pixel contributions; only the rest of the network runs per set.
2. *greedy + local search* gives a good set quickly (an incumbent): pixels added one at a
   time, each the best next one, then single-pixel swaps while they improve the margin.
3. *bounds* over the region :class:`~verify.regions.PixelReveal` (interval, symbolic and LP
   stages of :mod:`verify.bounds`; the first layer is exact: the ``k`` largest gains) bound
   the margin from above; if the incumbent reaches the bound, it is optimal.
4. *MIP*: binary ``r_i`` per candidate, ``x_i = v_i r_i``, ``Σ r_i ≤ k`` (the region's
   encoding), the network by the big-M encoders of :mod:`verify.encodings.relu` with those
   bounds, and a margin column ``t ≤ z_claim − z_j`` for every competitor ``j`` (one row each:
   the max over competitors needs no binaries, because the margin is their *minimum* and is
   maximised). Objective: maximise ``t``. The incumbent's margin is the solver's cutoff, so
   only strictly better sets are searched for; a solver that finds none proves the
   incumbent optimal.

**Statuses** (as the other exact tasks): ``optimal`` — ``pixels`` is a provably best set
(within :data:`TOLERANCE` of the best margin) and its margin is positive; ``infeasible`` —
proven: no set of at most ``k`` more pixels gives the claim a positive margin (``pixels``
is then the most persuasive set found, which falls short); ``time_limit`` — the best set
found and a proven upper ``bound`` on the margin. Every answer is re-checked by the model's
own runtime (Keras or onnxruntime, float32): ``convinces`` is its verdict on the view.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from ..backends import SolveOptions, Status, backends_for, get_backend
from ..encodings.tightening import compute_bounds
from ..encodings.properties import difference_bounds
from ..encodings.relu import encode_network
from ..errors import InvalidInputError, ProblemTooLargeError, SolveError
from ..network import Affine, Network
from ..problem import Problem, ProblemBuilder
from ..progress import report
from ..regions import PixelReveal
from ..results import Outcome, Result, _num, json_value
from .context import TaskContext, prepare

#: At most this many reveal sets are scored one by one instead of solving a MIP.
ENUMERATION_LIMIT = 600_000
#: Sets scored per batch during enumeration and search.
CHUNK = 50_000
#: Optimality tolerance on the margin: the solver looks only for sets at least this much
#: better than the incumbent, so a returned set is within it of the best.
TOLERANCE = 1e-6
#: ``backend="auto"``: the first installed of these (CPLEX measured about twice as fast as
#: HiGHS on the judge's MIPs); one that refuses the problem's size hands over to the next.
AUTO_BACKENDS = ("cplex", "highs")
METHODS = ("auto", "mip", "enumerate")


@dataclass
class EvidenceResult(Result):
    """The best pixels to reveal for a claim (see the module docs for the statuses)."""

    model: str
    claim: int
    against: int | None
    k: int
    revealed: list[int]             # pixels shown before (flat indices)
    status: str                     # optimal | infeasible | time_limit
    pixels: list[int]               # the extra pixels to reveal (best found), sorted
    margin: float                   # margin of the view with ``pixels`` revealed (network IR)
    bound: float | None             # proven upper bound on the best margin
    convinces: bool                 # the model's runtime outputs the claim (prefers it) on the view
    judge_label: int                # the runtime's label on the view
    scores: list[float]             # the judge's outputs on the view (runtime: probabilities)
    method: str                     # enumeration | bounds | mip
    proven: bool                    # the search finished: ``pixels`` is a best set (within TOLERANCE)
    backend: str | None
    candidates: int                 # pixels that could be revealed
    time_s: float
    image: np.ndarray               # the digit, model shape
    view: np.ndarray                # what the judge sees with revealed + pixels, model shape
    classes: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def optimal(self) -> bool:
        """True when ``pixels`` is proven the most persuasive set (status optimal, or
        infeasible after a finished search: the best set, which still falls short)."""
        return self.proven

    def class_name(self, label: int | None) -> str:
        if label is None:
            return "-"
        return str(self.classes[label]) if label < len(self.classes) else str(label)

    def describe(self) -> str:
        """One line for people."""
        vs = "every other label" if self.against is None else f"{self.class_name(self.against)}"
        head = (f"{self.model}: claim {self.class_name(self.claim)} vs {vs}, at most {self.k} "
                f"more of {self.candidates} pixels" +
                (f" ({len(self.revealed)} already revealed)" if self.revealed else ""))
        shown = ", ".join(map(str, self.pixels)) or "none"
        if self.status == Outcome.INFEASIBLE:
            what = (f"NO set convinces the judge (proven: margin at most {_fmt(self.bound)}); "
                    f"{'the best' if self.proven else 'the best found'}: pixels {shown}, "
                    f"margin {self.margin:+.4f}")
        elif self.status == Outcome.OPTIMAL:
            what = f"reveal pixels {shown}: margin {self.margin:+.4f} (proven best)"
        else:
            what = (f"reveal pixels {shown}: margin {self.margin:+.4f} (NOT proven best: "
                    f"{self.status}, bound {_fmt(self.bound)})")
        verdict = (f"judge says {self.class_name(self.judge_label)}"
                   + (" (convinced)" if self.convinces else " (not convinced)"))
        return f"{head}: {what}; {verdict}; {self.method}, {self.time_s:.2f} s"

    def to_dict(self) -> dict:
        return json_value({
            "task": "evidence", "model": self.model, "claim": _num(self.claim),
            "against": _num(self.against), "k": self.k, "revealed": list(self.revealed),
            "status": self.status, "optimal": self.optimal, "pixels": list(self.pixels),
            "margin": _num(self.margin), "bound": _num(self.bound), "convinces": self.convinces,
            "judge_label": _num(self.judge_label), "scores": [float(s) for s in self.scores],
            "method": self.method, "proven": self.proven, "backend": self.backend,
            "candidates": self.candidates,
            "time_s": round(float(self.time_s), 4), "tolerance": TOLERANCE,
            **self.stats,
        })


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:+.4f}"


# -- the margin -------------------------------------------------------------------------------

def margin_rows(num_outputs: int, claim: int, against: int | None) -> np.ndarray:
    """Rows ``R`` over the logits with margin ``min(R z)``: ``z_claim − z_j`` for every
    competitor ``j`` (all others, or ``against``); for one logit (sigmoid), ``±z``."""
    if num_outputs == 1:
        return np.array([[1.0 if claim == 1 else -1.0]])
    others = [j for j in range(num_outputs) if j != claim] if against is None else [against]
    rows = np.zeros((len(others), num_outputs))
    rows[:, claim] = 1.0
    rows[np.arange(len(others)), others] = -1.0
    return rows


class Scorer:
    """Margins of many reveal sets of one region, fast: the first affine layer's output is
    its value on the region's centre plus one contribution per revealed pixel."""

    def __init__(self, network: Network, region: PixelReveal, rows: np.ndarray):
        self.net, self.region, self.rows = network, region, rows
        self.cand = region.candidates
        first = network.layers[0] if network.layers else None
        self.linear = isinstance(first, Affine)
        self.padded = None
        if self.linear:
            W = first.weight
            cols = W[:, self.cand]
            cols = cols.toarray() if hasattr(cols, "toarray") else np.asarray(cols)
            self.base = first.forward(region.center[None])[0]
            self.contrib = (cols * region.image[self.cand]).T      # (candidates, n_out)
            self.padded = np.vstack([self.contrib, np.zeros((1, self.contrib.shape[1]))])

    def margins_of_logits(self, z: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(z) @ self.rows.T).min(axis=1)

    def score(self, sets: np.ndarray) -> np.ndarray:
        """Margins of reveal sets given as an (m, s) array of positions into the candidates
        (``-1``: no pixel, so sets of different sizes fit one array)."""
        sets = np.asarray(sets, dtype=np.int64).reshape(len(sets), -1)
        out = np.empty(len(sets))
        for a in range(0, len(sets), CHUNK):
            part = sets[a:a + CHUNK]
            if self.linear:           # position -1 picks the zero row of `padded`
                first = self.base + self.padded[part].sum(axis=1)
                z = self.net.forward_from(1, first)
            else:
                z = self.net.forward(self.views(part))
            out[a:a + CHUNK] = self.margins_of_logits(z)
        return out

    def views(self, sets: np.ndarray) -> np.ndarray:
        x = np.tile(self.region.center, (len(sets), 1))
        for row, s in zip(x, np.atleast_2d(sets)):
            idx = self.cand[s[s >= 0]]
            row[idx] = self.region.image[idx]
        return x

    def pixels(self, positions: Iterable[int]) -> list[int]:
        return sorted(int(self.cand[p]) for p in positions if p >= 0)


def count_sets(n: int, k: int) -> int:
    """Number of subsets of at most ``k`` of ``n`` candidates."""
    return sum(math.comb(n, s) for s in range(min(k, n) + 1))


def enumerate_best(scorer: Scorer, k: int) -> tuple[list[int], float]:
    """The best set of at most ``k`` candidates by scoring every one (positions, margin)."""
    n = scorer.cand.size
    best, best_margin = [], float(scorer.score(np.full((1, 1), -1))[0])
    for size in range(1, min(k, n) + 1):
        combos = itertools.combinations(range(n), size)
        while True:
            block = np.fromiter(itertools.chain.from_iterable(itertools.islice(combos, CHUNK)),
                                dtype=np.int64)
            if block.size == 0:
                break
            block = block.reshape(-1, size)
            m = scorer.score(block)
            i = int(np.argmax(m))
            if m[i] > best_margin:
                best, best_margin = list(block[i]), float(m[i])
    return best, best_margin


def _padded(sets: list[np.ndarray], width: int) -> np.ndarray:
    """Stack (m_i, s_i) position arrays into one (Σm, width) array padded with -1."""
    return np.vstack([np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=-1)
                      for a in sets])


def greedy_best(scorer: Scorer, k: int, swaps: int = 20) -> tuple[list[int], float]:
    """A good set of at most ``k`` candidates: add the best next pixel ``k`` times (keeping the
    best prefix), then improve by single-pixel swaps or additions (at most ``swaps`` rounds)."""
    n = scorer.cand.size
    chosen: list[int] = []
    best, best_margin = [], float(scorer.score(np.full((1, 1), -1))[0])
    for _ in range(min(k, n)):
        rest = np.setdiff1d(np.arange(n), chosen)
        sets = np.column_stack([np.tile(np.array(chosen, dtype=np.int64), (rest.size, 1)), rest])
        m = scorer.score(sets)
        i = int(np.argmax(m))
        chosen.append(int(rest[i]))
        if m[i] > best_margin:
            best, best_margin = list(chosen), float(m[i])
    for _ in range(swaps):
        rest = np.setdiff1d(np.arange(n), best)
        if rest.size == 0:
            break
        base = np.array(best, dtype=np.int64)
        trials = []
        for p in range(base.size):              # replace one pixel
            sets = np.tile(base, (rest.size, 1))
            sets[:, p] = rest
            trials.append(sets)
        if base.size < k:                       # or add one
            trials.append(np.column_stack([np.tile(base, (rest.size, 1)), rest]))
        sets = _padded(trials, min(k, base.size + 1))
        m = scorer.score(sets)
        i = int(np.argmax(m))
        if m[i] <= best_margin + TOLERANCE:
            break
        best, best_margin = [int(p) for p in sets[i] if p >= 0], float(m[i])
    return best, best_margin


# -- the MIP ------------------------------------------------------------------------------------

def build_evidence_mip(network: Network, region: PixelReveal, rows: np.ndarray, bounds):
    """The MIP "maximise the margin over the region" (minimise its negative): returns the
    problem, the network encoding, and the margin's upper bound from the bounds."""
    builder = ProblemBuilder(f"{network.name}-evidence")
    enc = encode_network(builder, network, region, bounds)
    lo, hi = difference_bounds(network, region, bounds, rows)
    top = float(hi.min())
    t = builder.add_vars("margin", 1, float(lo.min()), top, cost=-1.0)[0]
    z = enc.logits
    var = z.is_var
    for row, row_lo in zip(rows, lo):
        if row_lo >= top:
            continue                  # this competitor can never be the closest one
        const = float(row[~var] @ z.const[~var])
        used = var & (row != 0)
        # t − row·z ≤ const part of row·z
        builder.add_rows(np.zeros(1 + used.sum()), np.r_[t, z.cols[used]], np.r_[1.0, -row[used]],
                         -np.inf, const, count=1)
    return builder.build(), enc, top


def _solvers(backend: str | None) -> list:
    name = (backend or "auto").strip().lower()
    if name != "auto":
        solver = get_backend(name)
        solver.check_kind("milp")
        return [solver]
    names = [b.name for b in backends_for("milp") if b.name in AUTO_BACKENDS]
    names.sort(key=AUTO_BACKENDS.index)
    return [get_backend(n) for n in names] or [get_backend("highs")]


# -- the task -----------------------------------------------------------------------------------

def check_evidence_args(num_classes: int, claim: Any, k: Any, against: Any = None) -> None:
    """The checks of :func:`evidence` that need only the number of classes (one-line
    InvalidInputError each)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k (pixels to reveal) must be a whole number ≥ 1, not {k!r}")
    for name, value in (("claim", claim), ("against", against)):
        if value is None and name == "against":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not 0 <= value < num_classes:
            raise InvalidInputError(f"{name} must be a label in 0..{num_classes - 1}, not {value!r}")
    if against is not None and int(against) == int(claim):
        raise InvalidInputError(f"against must differ from claim (both are {claim})")


def evidence(model: Any, image: np.ndarray, claim: int, k: int, against: int | None = None,
             revealed: Iterable[int] = (), time_limit: float | None = None,
             backend: str | None = None, method: str = "auto",
             threads: int | None = None) -> EvidenceResult:
    """The provably best set of at most ``k`` more pixels of ``image`` to reveal so that the
    judge ``model`` outputs ``claim`` (or prefers ``claim`` over ``against``), on top of the
    pixels ``revealed`` (flat indices of non-zero pixels), with its margin; or the proof that
    no set of at most ``k`` pixels does it (status ``infeasible``).

    ``time_limit`` (seconds): the best set found and a proven bound (status ``time_limit``).
    ``backend``: the MIP solver (``auto``: CPLEX if installed and the problem fits its
    Community Edition, else HiGHS; or ``highs``, ``scip``, ``cplex``, ``pyomo:<solver>``).
    ``method``: ``auto`` (enumerate small cases, else bounds and MIP), ``mip`` or
    ``enumerate`` (score every set, however many). See the module docs.
    """
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k (pixels to reveal) must be a whole number ≥ 1, not {k!r}")
    ctx = prepare(model, image, backend=backend, time_limit=time_limit, threads=threads)
    q = _Question.of(ctx, claim, k, against, revealed)
    region, scorer = q.region, q.scorer
    k = q.k
    n = scorer.cand.size
    stats: dict = {"reveal_sets": count_sets(n, k)}
    solver_name = None

    report(f"evidence: {region.describe()}, {stats['reveal_sets']:,} reveal sets")
    if method == "enumerate" or (method == "auto" and stats["reveal_sets"] <= ENUMERATION_LIMIT):
        report("evidence: scoring every reveal set ...")
        best, margin = enumerate_best(scorer, k)
        bound, how, finished = margin, "enumeration", True
    else:
        best, margin = greedy_best(scorer, k)
        stats["greedy_margin"] = margin
        report(f"evidence: greedy search: margin {margin:+.4f}; bounds over the region ...")
        problem, top = q.mip(ctx)
        stats["problem"] = problem.summary()
        stats["bound_from_bounds"] = top
        bound, how, finished = top, "bounds", False
        if margin >= top - TOLERANCE:
            finished = True
        else:
            how = "mip"
            report(f"evidence: margin at most {top:+.4f} by the bounds; MIP with "
                   f"{problem.num_integer} binaries for a better set than {margin:+.4f} ...")
            res, solver_name = _solve(ctx, problem, margin)
            stats["solver_status"] = res.status
            stats["nodes"] = res.extra.get("nodes")
            if res.x is not None:
                r = np.round(problem.block(res.x, "region.revealed")) > 0.5
                found = [int(p) for p in np.flatnonzero(r)]
                if len(found) <= k:
                    m = float(scorer.score(np.array([found or [-1]]))[0])
                    if m > margin:
                        best, margin = found, m
            if res.status == Status.OPTIMAL:
                finished = True
                bound = min(top, max(margin, -float(res.bound) if res.bound is not None else margin))
            elif res.status in (Status.CUTOFF, Status.INFEASIBLE):
                finished = True                 # nothing beats the incumbent by TOLERANCE
                bound = min(top, margin + TOLERANCE)
            elif res.status in (Status.TIME_LIMIT, Status.INTERRUPTED):
                if res.bound is not None:
                    bound = min(top, -float(res.bound))
            else:
                raise SolveError(f"{solver_name} failed on the evidence MIP: {res.message}")
    answer = _Answer(scorer.pixels(best), margin, bound, finished, how, solver_name)
    return _result(ctx, q, answer, stats)


@dataclass(frozen=True)
class _Question:
    """The question of :func:`evidence` / :func:`can_convince` on a prepared context: the
    claim (and the one label it must beat, or None: all others), at most ``k`` more pixels
    of the region, the margin rows and the scorer of reveal sets."""

    claim: int
    against: int | None
    k: int
    region: PixelReveal
    net: Network
    rows: np.ndarray
    scorer: Scorer

    @classmethod
    def of(cls, ctx: TaskContext, claim: Any, k: Any, against: Any,
           revealed: Iterable[int]) -> "_Question":
        """Checks the judge (a ReLU network) and the claim, then builds the question."""
        if ctx.binarized:
            raise InvalidInputError(f"evidence needs a ReLU network; {ctx.model.name} is binarized")
        check_evidence_args(ctx.model.network.num_classes, claim, k, against)
        region = PixelReveal(ctx.image, int(k), revealed)
        against = None if against is None else int(against)
        net = ctx.model.network.merged_affine()
        rows = margin_rows(net.num_outputs, int(claim), against)
        return cls(int(claim), against, int(k), region, net, rows, Scorer(net, region, rows))

    def mip(self, ctx: TaskContext) -> tuple[Problem, float]:
        """The MIP of the question, with bounds computed in at most half the time left, and
        the margin's upper bound from those bounds."""
        left = ctx.remaining()
        bounds = compute_bounds(self.net, self.region, time_limit=None if left is None else left / 2)
        problem, _, top = build_evidence_mip(self.net, self.region, self.rows, bounds)
        return problem, top

    def verdict(self, ctx: TaskContext, pixels: list[int]) -> tuple[np.ndarray, np.ndarray, int, bool]:
        """The view with ``pixels`` revealed, the model's own runtime's outputs on it, its label,
        and whether it outputs the claim (prefers it over ``against``)."""
        view = self.region.view(pixels)
        out = ctx.model.reference_outputs(view)[0]
        if out.size == 1:
            label = int(out[0] > (0.5 if ctx.model.reference_activation == "sigmoid" else 0.0))
            return view, out, label, label == self.claim
        label = int(np.argmax(out))
        convinces = label == self.claim if self.against is None \
            else bool(out[self.claim] > out[self.against])
        return view, out, label, convinces


@dataclass(frozen=True)
class _Answer:
    """The best set found and what is known about it (see :class:`EvidenceResult`)."""

    pixels: list[int]
    margin: float
    bound: float | None
    finished: bool
    method: str
    backend: str | None


def can_convince(model: Any, image: np.ndarray, claim: int, k: int, against: int | None = None,
                 revealed: Iterable[int] = (), time_limit: float | None = None,
                 backend: str | None = None) -> tuple[str, list[int], float | None]:
    """Decide whether *some* set of at most ``k`` more pixels makes the judge output ``claim``
    (prefer it over ``against``), without looking for the best one.

    Returns ``(verdict, pixels, bound)``: ``"yes"`` with a set whose view the model's own
    runtime labels as claimed (preferred); ``"no"`` when proven that no set gives the claim a
    positive margin (``bound`` ≤ 0 is the proven best margin bound); ``"unknown"`` on the time
    limit. Cheapest first: enumeration when the sets are few, else greedy search, bounds, and a
    MIP with cutoff 0 (only sets with a positive margin are searched for).
    """
    ctx = prepare(model, image, backend=backend, time_limit=time_limit)
    q = _Question.of(ctx, claim, k, against, revealed)
    scorer = q.scorer

    def confirmed(best: list[int]) -> bool:
        return q.verdict(ctx, scorer.pixels(best))[3]

    if count_sets(scorer.cand.size, int(k)) <= ENUMERATION_LIMIT:
        best, margin = enumerate_best(scorer, int(k))
        if margin > 0 and confirmed(best):
            return "yes", scorer.pixels(best), None
        return ("no" if margin <= 0 else "unknown"), [], margin
    best, margin = greedy_best(scorer, int(k))
    if margin > 0 and confirmed(best):
        return "yes", scorer.pixels(best), None
    problem, top = q.mip(ctx)
    if top <= 0:
        return "no", [], top
    res, _ = _solve(ctx, problem, -TOLERANCE)
    if res.x is not None:
        r = np.round(problem.block(res.x, "region.revealed")) > 0.5
        found = [int(p) for p in np.flatnonzero(r)]
        if 0 < len(found) <= k and scorer.score(np.array([found]))[0] > 0 and confirmed(found):
            return "yes", scorer.pixels(found), None
    if res.status in (Status.CUTOFF, Status.INFEASIBLE):
        return "no", [], 0.0
    if res.status == Status.OPTIMAL and res.bound is not None and -float(res.bound) <= 0:
        return "no", [], -float(res.bound)
    return "unknown", [], None if res.bound is None else -float(res.bound)


def _solve(ctx: TaskContext, problem: Problem, incumbent: float):
    """Solve with the first solver that takes the problem (``ctx``'s backend, threads and
    time left); only sets better than the incumbent (by more than TOLERANCE) are looked for."""
    solvers = _solvers(ctx.options.backend)
    for i, solver in enumerate(solvers):
        left = ctx.remaining()
        options = SolveOptions(time_limit=None if left is None else max(0.01, left),
                               threads=ctx.options.threads,
                               cutoff=-(incumbent + TOLERANCE))
        try:
            return solver.solve(problem, options), solver.name
        except ProblemTooLargeError:
            if i == len(solvers) - 1:
                raise
    raise SolveError("no MIP backend available")   # unreachable: _solvers is never empty


def _result(ctx: TaskContext, q: _Question, answer: _Answer, stats: dict) -> EvidenceResult:
    """The result of :func:`evidence`: the answer, re-checked by the model's own runtime."""
    view, out, label, convinces = q.verdict(ctx, answer.pixels)
    margin, bound, finished = answer.margin, answer.bound, answer.finished
    if bound is not None and bound <= 0 and margin <= 0:
        status = Outcome.INFEASIBLE
    elif finished:
        status = Outcome.OPTIMAL
    else:
        status = Outcome.TIME_LIMIT
    if finished and status != Outcome.INFEASIBLE and margin <= 0:
        status = Outcome.INFEASIBLE        # proven best and still not positive
    model = ctx.model
    stats["model_runtime"] = model.runtime
    return EvidenceResult(model.name, q.claim, q.against, q.k, [int(i) for i in q.region.revealed],
                          status, answer.pixels, float(margin),
                          None if bound is None else float(bound), bool(convinces), label,
                          [float(v) for v in out], answer.method, bool(finished), answer.backend,
                          q.scorer.cand.size, ctx.elapsed(), ctx.shaped(ctx.image),
                          ctx.shaped(view), list(model.classes), stats)
