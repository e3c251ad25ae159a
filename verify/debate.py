"""Debate with a sparse judge (after Irving, Christiano & Amodei, "AI safety via debate", 2018).

A *judge* classifies a digit from a few revealed pixels: every other pixel reads 0 (only
non-zero pixels are ever revealed, so a revealed pixel is one that is not 0). This module has
the pieces of the seed's experiments and of the debate itself:

* :func:`random_views` — the judge's input with ``k`` random non-zero pixels kept;
* :func:`precommit_accuracy` — the seed's "precommit" games: a second label is committed to
  and the judge only chooses between the true label and that claim;
* :class:`Debate` / :func:`play` — two debaters reveal pixels in turn, then the judge
  chooses between the honest (true) label and the liar's precommitted label;
* the exact questions behind the debate, answered with :func:`verify.evidence`:
  :func:`lie_exists` (can some ``k``-pixel reveal make the judge prefer a wrong label?) and
  :func:`honest_can_answer` (whatever the liar reveals first, can the honest side answer?).
"""
from __future__ import annotations

import numpy as np


def random_views(images: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """For each image (N, ...) a view with ``k`` of its non-zero pixels, chosen uniformly at
    random without replacement, kept and every other pixel 0 (all of them if it has fewer).
    Returns float64 views of shape (N, n) (flat)."""
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    keys = rng.random(flat.shape)
    keys[flat == 0] = -1.0
    k = min(int(k), flat.shape[1])
    top = np.argpartition(-keys, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((len(flat), 0), int)
    rows = np.repeat(np.arange(len(flat)), top.shape[1])
    views = np.zeros_like(flat)
    cols = top.ravel()
    views[rows, cols] = flat[rows, cols]
    return views


import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInputError
from .models import LoadedModel, load_model
from .network import Affine, Network
from .results import Result, json_value

#: The debaters :func:`play` knows.
DEBATERS = ("random", "greedy", "exact-final")
ROLES = ("honest", "liar")


# -- the judge on one digit -----------------------------------------------------------------------

class JudgeOnDigit:
    """The judge's logits on many views of one digit, fast.

    A view reveals a set of the digit's non-zero pixels (``positions`` into :attr:`pixels`).
    The judge's first layer is affine, so its output on a view is the bias plus one
    contribution per revealed pixel; only the rest of the network runs per view.
    """

    def __init__(self, network: Network, image: np.ndarray):
        self.net = network.merged_affine()
        first = self.net.layers[0] if self.net.layers else None
        if not isinstance(first, Affine):
            raise InvalidInputError(f"the judge {network.name} must start with an affine layer")
        self.image = np.asarray(image, dtype=np.float64).ravel()
        self.pixels = np.flatnonzero(self.image)
        W = first.weight[:, self.pixels]
        W = W.toarray() if hasattr(W, "toarray") else np.asarray(W)
        self.base = first.bias.astype(np.float64)
        contrib = (W * self.image[self.pixels]).T
        self.padded = np.vstack([contrib, np.zeros((1, contrib.shape[1]))])   # row -1: nothing

    @property
    def size(self) -> int:
        return self.pixels.size

    def logits(self, sets: np.ndarray) -> np.ndarray:
        """Logits (m, outputs) of views given as an (m, s) array of positions (``-1``: none;
        a position must not repeat within a row)."""
        sets = np.asarray(sets, dtype=np.int64).reshape(len(sets), -1)
        out = []
        for a in range(0, len(sets), 50_000):
            out.append(self.net.forward_from(1, self.base + self.padded[sets[a:a + 50_000]].sum(axis=1)))
        return np.vstack(out) if out else np.zeros((0, self.net.num_outputs))

    def view(self, positions) -> np.ndarray:
        """The flat view with the given positions revealed."""
        x = np.zeros_like(self.image)
        idx = self.pixels[[p for p in positions if p >= 0]]
        x[idx] = self.image[idx]
        return x

    def best_next(self, revealed: list[int], score) -> tuple[int, np.ndarray]:
        """The unrevealed position maximising ``score(logits)`` (vectorised over rows) when
        revealed next, and every candidate's score."""
        rest = np.setdiff1d(np.arange(self.size), revealed)
        sets = np.column_stack([np.tile(np.array(revealed, dtype=np.int64), (rest.size, 1)), rest])
        values = score(self.logits(sets))
        return int(rest[int(np.argmax(values))]), values


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- the seed's precommit games ---------------------------------------------------------------------

def judge_logits(model: LoadedModel, views: np.ndarray) -> np.ndarray:
    """The judge's logits (network IR, float64) for a batch of flat views."""
    return model.network.forward(views)


def precommit_accuracy(logits: np.ndarray, labels: np.ndarray, claims: np.ndarray | None) -> float:
    """Share of digits on which the judge, choosing between the true label and the
    precommitted ``claims`` (one wrong label per digit), picks the true one: ``z_true > z_claim``
    (ties count against the judge). ``claims=None``: the judge alone (its argmax)."""
    labels = np.asarray(labels)
    if claims is None:
        return float(np.mean(np.argmax(logits, axis=1) == labels))
    rows = np.arange(len(labels))
    return float(np.mean(logits[rows, labels] > logits[rows, np.asarray(claims)]))


def random_wrong_labels(labels: np.ndarray, rng: np.random.Generator, classes: int = 10) -> np.ndarray:
    """One uniformly random label ≠ the true one per digit."""
    shift = rng.integers(1, classes, size=len(labels))
    return (np.asarray(labels) + shift) % classes


def runner_up_labels(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The adversarial precommit: per digit the most probable *wrong* label of a classifier
    (its second most probable label when it is right)."""
    p = np.array(probabilities, dtype=np.float64, copy=True)
    p[np.arange(len(p)), np.asarray(labels)] = -np.inf
    return np.argmax(p, axis=1)


def judge_favourite_wrong(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The precommit with perfect knowledge of the judge: the wrong label the judge scores
    highest on the revealed pixels."""
    return runner_up_labels(logits, labels)


# -- the debate ----------------------------------------------------------------------------------------

@dataclass
class DebateResult(Result):
    """One debate: who revealed which pixel, and whom the judge believed."""

    true_label: int
    liar_label: int
    honest: str                     # debater kinds
    liar: str
    first: str                      # "honest" or "liar"
    moves: list[tuple[str, int]]    # (role, flat pixel index) in order
    logits: list[float]             # the judge's logits on the final view (network IR)
    honest_wins: bool               # z_true > z_liar on the final view
    stats: dict = field(default_factory=dict)

    @property
    def margin(self) -> float:
        """``z_true − z_liar`` on the final view."""
        return float(self.logits[self.true_label] - self.logits[self.liar_label])

    def to_dict(self) -> dict:
        return json_value({"true_label": self.true_label, "liar_label": self.liar_label,
                           "honest": self.honest, "liar": self.liar, "first": self.first,
                           "moves": [list(m) for m in self.moves], "logits": list(self.logits),
                           "honest_wins": self.honest_wins, "margin": self.margin, **self.stats})


def _check_debate(honest: str, liar: str, first: str, pixels: int, true_label: int,
                  liar_label: int, classes: int) -> None:
    for role, kind in (("honest", honest), ("liar", liar)):
        if kind not in DEBATERS:
            raise InvalidInputError(f"{role} debater must be one of {', '.join(DEBATERS)}, not {kind!r}")
    if first not in ROLES:
        raise InvalidInputError(f"first must be 'honest' or 'liar', not {first!r}")
    if isinstance(pixels, bool) or not isinstance(pixels, (int, np.integer)) or pixels < 2 or pixels % 2:
        raise InvalidInputError(f"pixels must be an even whole number ≥ 2 (half for each side), not {pixels!r}")
    for name, v in (("true label", true_label), ("liar label", liar_label)):
        if not 0 <= v < classes:
            raise InvalidInputError(f"{name} must be in 0..{classes - 1}, not {v}")
    if true_label == liar_label:
        raise InvalidInputError(f"the liar's label must differ from the true label ({true_label})")


def play(model: Any, image: np.ndarray, true_label: int, liar_label: int, honest: str = "greedy",
         liar: str = "greedy", first: str = "liar", pixels: int = 6, seed: int = 0,
         judge: JudgeOnDigit | None = None, backend: str | None = None) -> DebateResult:
    """One debate on ``image``: the debaters reveal one non-zero pixel each in turn
    (``first`` starts), ``pixels`` in all, half each; then the judge ``model`` chooses between
    the true label and the liar's precommitted ``liar_label`` — the one with the larger logit.

    Debaters (``honest`` argues ``true_label``, ``liar`` argues ``liar_label``):

    * ``random`` — a uniformly random unrevealed non-zero pixel (``seed`` fixes the draws);
    * ``greedy`` — the pixel that maximises the judge's probability of its own label once
      revealed (the judge's score for it; one move ahead, blind to the opponent's label);
    * ``exact-final`` — greedy, except its *last* reveal, which :func:`verify.evidence`
      chooses (``k = 1``, against the opponent's label): provably the best final pixel for the
      judge's two-way decision. (When revealing nothing would be better still, it reveals the
      best single pixel: every turn reveals one.)

    A digit with fewer non-zero pixels than ``pixels`` ends the debate when none are left.
    """
    model = load_model(model) if not isinstance(model, LoadedModel) else model
    true_label, liar_label = int(true_label), int(liar_label)
    _check_debate(honest, liar, first, pixels, true_label, liar_label, model.network.num_classes)
    judge = judge or JudgeOnDigit(model.network, image)
    rng = np.random.default_rng(seed)
    kinds = {"honest": honest, "liar": liar}
    labels = {"honest": true_label, "liar": liar_label}
    order = [first, "liar" if first == "honest" else "honest"] * (pixels // 2)
    last_turn = {role: max(i for i, r in enumerate(order) if r == role) for role in ROLES}
    revealed: list[int] = []
    moves: list[tuple[str, int]] = []
    exact_time = 0.0
    for turn, role in enumerate(order):
        if len(revealed) >= judge.size:
            break
        own, other = labels[role], labels["liar" if role == "honest" else "honest"]
        kind = kinds[role]
        if kind == "random":
            rest = np.setdiff1d(np.arange(judge.size), revealed)
            pos = int(rng.choice(rest))
        elif kind == "exact-final" and turn == last_turn[role]:
            t = time.perf_counter()
            pos = _exact_final_move(model, judge, revealed, own, other, backend)
            exact_time += time.perf_counter() - t
        else:
            pos, _ = judge.best_next(revealed, lambda z: _softmax(z)[:, own])
        revealed.append(pos)
        moves.append((role, int(judge.pixels[pos])))
    z = judge.logits(np.array([revealed or [-1]]))[0]
    stats = {"exact_time_s": exact_time} if exact_time else {}
    return DebateResult(true_label, liar_label, honest, liar, first, moves, [float(v) for v in z],
                        bool(z[true_label] > z[liar_label]), stats)


def _exact_final_move(model: LoadedModel, judge: JudgeOnDigit, revealed: list[int], own: int,
                      other: int, backend: str | None) -> int:
    from .tasks.evidence import evidence

    result = evidence(model, judge.image, own, 1, against=other,
                      revealed=[int(judge.pixels[p]) for p in revealed], backend=backend)
    if result.pixels:
        return int(np.searchsorted(judge.pixels, result.pixels[0]))
    # revealing nothing would be best; a turn reveals one pixel: the least harmful one
    pos, _ = judge.best_next(revealed, lambda z: z[:, own] - z[:, other])
    return pos


# -- exact questions behind the debate ---------------------------------------------------------------

#: The exact games enumerate every set the first mover can reveal: at most this many.
MAX_FIRST_SETS = 5_000_000

#: A margin counts as a win for the honest side only above this (float64 network IR), so that
#: round-off can never turn a proof around; answers within it are "unknown".
WIN_MARGIN = 1e-6


@dataclass
class ExactAnswer(Result):
    """A proven (or undecided) answer about one digit: ``verdict`` is ``"yes"``, ``"no"`` or
    ``"unknown"`` (time limit or a margin within round-off), with the witness that settled it."""

    verdict: str
    label: int | None = None          # the wrong label involved (the lie, or the liar's label)
    liar_pixels: list[int] = field(default_factory=list)
    honest_pixels: list[int] = field(default_factory=list)
    time_s: float = 0.0
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return json_value({"verdict": self.verdict, "label": self.label,
                           "liar_pixels": self.liar_pixels, "honest_pixels": self.honest_pixels,
                           "time_s": round(self.time_s, 4), **self.stats})


def all_sets(n: int, k: int) -> np.ndarray:
    """Every subset of at most ``k`` of ``n`` positions as an (m, k) array padded with -1
    (the empty set first). More than :data:`MAX_FIRST_SETS` is a ProblemTooLargeError."""
    from .errors import ProblemTooLargeError
    from .tasks.evidence import count_sets

    if count_sets(n, k) > MAX_FIRST_SETS:
        raise ProblemTooLargeError(f"{count_sets(n, k):,} sets of at most {k} of {n} pixels are "
                                   f"too many to enumerate (at most {MAX_FIRST_SETS:,}); use fewer pixels")
    blocks = [np.full((1, k), -1, dtype=np.int64)]
    for size in range(1, min(k, n) + 1):
        combos = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(n), size)),
                             dtype=np.int64).reshape(-1, size)
        blocks.append(np.pad(combos, ((0, 0), (0, k - size)), constant_values=-1))
    return np.vstack(blocks)


def lie_exists(model: Any, image: np.ndarray, label: int, k: int, time_limit: float | None = None,
               backend: str | None = None) -> ExactAnswer:
    """Is there a set of at most ``k`` of the digit's non-zero pixels on which the judge prefers
    some wrong label ``w`` to the true ``label`` (``z_w > z_label``)? A lie that can be argued.

    ``yes`` comes with the label and the pixels (re-checked by the model's runtime); ``no`` is
    proven — by scoring every set when there are few (:data:`verify.tasks.evidence.ENUMERATION_LIMIT`),
    else by :func:`verify.tasks.evidence.can_convince` (greedy search, bounds, MIP) per label.
    """
    from .tasks.evidence import ENUMERATION_LIMIT, Scorer, can_convince, count_sets, greedy_best, margin_rows
    from .regions import PixelReveal

    t0 = time.perf_counter()
    model = load_model(model) if not isinstance(model, LoadedModel) else model
    judge = JudgeOnDigit(model.network, image)
    label = int(label)
    others = [w for w in range(model.network.num_classes) if w != label]
    if count_sets(judge.size, k) <= ENUMERATION_LIMIT:
        sets = all_sets(judge.size, k)
        z = judge.logits(sets)
        lead = z[:, others] - z[:, [label]]                 # z_w − z_label
        best = np.unravel_index(int(np.argmax(lead)), lead.shape)
        if lead[best] > 0:
            s, w = sets[best[0]], others[best[1]]
            pixels = sorted(int(judge.pixels[p]) for p in s if p >= 0)
            out = model.reference_outputs(judge.view(s))[0]
            if out[w] > out[label]:
                return ExactAnswer("yes", w, pixels, time_s=time.perf_counter() - t0,
                                   stats={"method": "enumeration"})
            return ExactAnswer("unknown", w, pixels, time_s=time.perf_counter() - t0,
                               stats={"method": "enumeration", "note": "runtime disagrees"})
        return ExactAnswer("no", time_s=time.perf_counter() - t0, stats={"method": "enumeration"})
    net = model.network.merged_affine()
    flat = np.asarray(image, dtype=np.float64).ravel()
    region = PixelReveal(flat, k)
    tried = []
    for w in others:                       # greedy first, every label
        scorer = Scorer(net, region, margin_rows(net.num_outputs, w, label))
        best, margin = greedy_best(scorer, k)
        tried.append((margin, w))
        if margin > 0:
            out = model.reference_outputs(region.view(scorer.pixels(best)))[0]
            if out[w] > out[label]:
                return ExactAnswer("yes", w, scorer.pixels(best), time_s=time.perf_counter() - t0,
                                   stats={"method": "greedy"})
    verdicts = []
    for _, w in sorted(tried, reverse=True):  # then proofs, most promising label first
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            verdicts.append("unknown")
            break
        verdict, pixels, _ = can_convince(model, flat, w, k, against=label, time_limit=left,
                                          backend=backend)
        if verdict == "yes":
            return ExactAnswer("yes", w, pixels, time_s=time.perf_counter() - t0, stats={"method": "mip"})
        verdicts.append(verdict)
    final = "no" if verdicts and all(v == "no" for v in verdicts) and len(verdicts) == len(others) else "unknown"
    return ExactAnswer(final, time_s=time.perf_counter() - t0, stats={"method": "mip"})


def _greedy_answer(judge: JudgeOnDigit, fixed: np.ndarray, k: int, value, swaps: int = 20):
    """A good answer of at most ``k`` positions on top of ``fixed`` (positions, -1 ignored):
    the best next pixel ``k`` times (best prefix kept), then single swaps or additions while
    they improve ``value(logits)``. Returns (positions, value)."""
    fixed = [int(p) for p in fixed if p >= 0]
    rest_all = np.setdiff1d(np.arange(judge.size), fixed)

    def score(sets: list[list[int]]) -> np.ndarray:
        width = len(fixed) + max((len(s) for s in sets), default=0)
        arr = np.full((len(sets), max(width, 1)), -1, dtype=np.int64)
        for row, s in zip(arr, sets):
            row[:len(fixed) + len(s)] = fixed + list(s)
        return value(judge.logits(arr))

    best, best_value = [], float(score([[]])[0])
    chosen: list[int] = []
    for _ in range(min(k, rest_all.size)):
        rest = np.setdiff1d(rest_all, chosen)
        v = score([chosen + [int(c)] for c in rest])
        i = int(np.argmax(v))
        chosen.append(int(rest[i]))
        if v[i] > best_value:
            best, best_value = list(chosen), float(v[i])
    for _ in range(swaps):
        rest = np.setdiff1d(rest_all, best)
        trials = [best[:p] + [int(c)] + best[p + 1:] for p in range(len(best)) for c in rest]
        if len(best) < k:
            trials += [best + [int(c)] for c in rest]
        if not trials:
            break
        v = score(trials)
        i = int(np.argmax(v))
        if v[i] <= best_value + WIN_MARGIN:
            break
        best, best_value = trials[i], float(v[i])
    return best, best_value


def _always_answered(judge: JudgeOnDigit, F: np.ndarray, F_logits: np.ndarray, answer_k: int,
                     value, deadline: float | None) -> tuple[str, np.ndarray | None, int]:
    """Whether for *every* set revealed first (the rows of ``F``, :func:`all_sets`, with the
    judge's logits ``F_logits`` on them), *some* answer of at most ``answer_k`` pixels makes
    ``value(logits) > 0`` (the answering side wins).

    Counterexample-guided, over all first sets (enumerated): each keeps the best value any
    answer found so far gives it (revealing nothing is an answer too); the first set that is
    worst off gets the answering side's best response — greedy with swaps, else every answer
    scored — which is then scored against every set still unanswered. Returns ``("yes", None,
    rounds)``, ``("no", first set with no winning answer, rounds)`` (proven: every answer was
    scored) or ``("unknown", first set or None, rounds)`` (deadline, or a best value within
    :data:`WIN_MARGIN` of 0)."""
    best = value(F_logits)                            # the empty answer
    open_ = np.flatnonzero(best <= WIN_MARGIN)
    answers = None
    rounds, undecided = 0, None
    while open_.size:
        if deadline is not None and time.perf_counter() > deadline:
            return "unknown", None, rounds
        rounds += 1
        target = open_[int(np.argmin(best[open_]))]
        answer, v = _greedy_answer(judge, F[target], answer_k, value)
        if v <= WIN_MARGIN:                           # score every answer to this first set
            if answers is None:
                answers = all_sets(judge.size, answer_k)
            sets = answers.copy()
            sets[np.isin(sets, F[target])] = -1       # a pixel already shown adds nothing
            vals = value(judge.logits(np.column_stack([sets, np.tile(F[target], (len(sets), 1))])))
            i = int(np.argmax(vals))
            answer, v = [int(p) for p in answers[i] if p >= 0 and p not in F[target]], float(vals[i])
            if v <= 0:
                return "no", F[target], rounds
            if v <= WIN_MARGIN:                       # within round-off of a tie: set aside
                undecided = F[target]
                best[target] = np.inf
                open_ = open_[open_ != target]
                continue
        H = np.array(answer, dtype=np.int64)
        sets = F[open_].copy()
        sets[np.isin(sets, H)] = -1
        z = judge.logits(np.column_stack([sets, np.tile(H, (len(sets), 1))]))
        best[open_] = np.maximum(best[open_], value(z))
        open_ = open_[best[open_] <= WIN_MARGIN]
    return ("yes", None, rounds) if undecided is None else ("unknown", undecided, rounds)


def honest_can_answer(model: Any, image: np.ndarray, label: int, liar_pixels: int = 3,
                      honest_pixels: int = 3, time_limit: float | None = None) -> ExactAnswer:
    """Whatever wrong label ``w`` the liar argues and whatever at most ``liar_pixels`` pixels it
    reveals first, can the honest side answer with at most ``honest_pixels`` pixels so that the
    judge prefers the true ``label`` to ``w`` (``z_label > z_w`` on all revealed pixels)?

    ``yes``: proven for every ``w`` and every liar set; ``no``: a label and a liar set that no
    honest answer beats (proven: every answer scored), returned as the witness. Settled per
    label by a counterexample-guided search over all the liar's sets (:func:`_always_answered`);
    the liar's sets must be few enough to enumerate (a few hundred thousand).
    """
    t0 = time.perf_counter()
    model = load_model(model) if not isinstance(model, LoadedModel) else model
    judge = JudgeOnDigit(model.network, image)
    label = int(label)
    deadline = None if time_limit is None else t0 + time_limit
    others = [w for w in range(model.network.num_classes) if w != label]
    F = all_sets(judge.size, liar_pixels)
    alone = judge.logits(F)
    order = np.argsort(-(alone[:, others] - alone[:, [label]]).max(axis=0))   # likeliest lies first
    rounds, verdict = 0, "yes"
    undecided = None
    for w in (others[i] for i in order):
        answer, first, n = _always_answered(judge, F, alone, honest_pixels,
                                            lambda z, w=w: z[:, label] - z[:, w], deadline)
        rounds += n
        if answer == "no":
            return ExactAnswer("no", w, sorted(int(judge.pixels[p]) for p in first if p >= 0),
                               time_s=time.perf_counter() - t0, stats={"iterations": rounds})
        if answer == "unknown":
            verdict, undecided = "unknown", (w, first)
    pixels = [] if undecided is None or undecided[1] is None else \
        sorted(int(judge.pixels[p]) for p in undecided[1] if p >= 0)
    return ExactAnswer(verdict, None if undecided is None else undecided[0], pixels,
                       time_s=time.perf_counter() - t0, stats={"iterations": rounds})


def liar_can_answer(model: Any, image: np.ndarray, label: int, honest_pixels: int = 3,
                    liar_pixels: int = 3, time_limit: float | None = None) -> ExactAnswer:
    """Whatever at most ``honest_pixels`` pixels the honest side reveals first, can the liar
    answer with at most ``liar_pixels`` pixels so that the judge prefers *some* wrong label to
    the true ``label``? (The liar picks its label after seeing the honest pixels.)

    ``yes``: proven for every honest set; ``no``: an honest set that no lie overturns (every
    liar answer and label scored), returned in ``honest_pixels``. The mirror image of
    :func:`honest_can_answer`, with the same search.
    """
    t0 = time.perf_counter()
    model = load_model(model) if not isinstance(model, LoadedModel) else model
    judge = JudgeOnDigit(model.network, image)
    label = int(label)
    others = [w for w in range(model.network.num_classes) if w != label]
    deadline = None if time_limit is None else t0 + time_limit
    F = all_sets(judge.size, honest_pixels)
    answer, first, rounds = _always_answered(
        judge, F, judge.logits(F), liar_pixels,
        lambda z: (z[:, others] - z[:, [label]]).max(axis=1), deadline)
    pixels = [] if first is None else sorted(int(judge.pixels[p]) for p in first if p >= 0)
    return ExactAnswer(answer, None, [], pixels, time_s=time.perf_counter() - t0,
                       stats={"iterations": rounds})
