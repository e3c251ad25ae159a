"""How far is each heuristic attack from the proven optimum? One image, one norm.

:func:`compare` runs the exact minimal adversarial example (:func:`verify.min_adversarial`)
and the attacks of that norm (:data:`verify.attacks.api.COMPARE_METHODS`; fixed-ε attacks
search for their smallest ε) on the same network and image, and reports every distance in the
exact objective's unit (changed pixels, L1, squared L2, L∞) with the ratio attack / exact.

The ratio is against a *proven* minimum only when the exact status is ``optimal``; otherwise
it is against the best known example and the proven lower bound is given beside it. An attack
with an adversarial example below a proven lower bound would be a soundness bug, so it is
flagged (``below_bound``) and never hidden.

**Time limit.** ``time_limit`` is the budget of the whole comparison (after the model is
loaded), shared out so that it holds for the attacks too: the attacks run first and together
get at most :data:`ATTACK_SHARE` of it; each gets an even split of what is left of that share
(an attack that finishes early leaves its time to the next ones; at least
:data:`verify.budget.MIN_PART_S`). The exact minimum then gets
everything that is left of the total (at least :data:`MIN_EXACT_S`). A part stopped by its
budget says so: an attack's ``status`` is ``time_limit``, and the exact result's status is
``time_limit`` with its best example and proven bound. Each part may overrun its budget by
one step of its loop (and the attacks by their final re-check with the model's runtime); the
next parts' budgets are computed from what is really left, so the total holds to that slack.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, cast

import numpy as np

from ..attacks.api import COMPARE_METHODS, AttackResult, attack
from ..budget import Deadline, part_limit
from ..vocabulary import normalise_norm
from ..progress import report, reporting, seconds
from ..results import AdversarialResult, Result, _num
from ..validate import check
from .adversarial import min_adversarial
from .context import prepare

#: The largest fraction of ``time_limit`` that the attacks of a comparison may use together.
ATTACK_SHARE = 0.5
#: The exact minimum gets at least this many seconds, even when the attacks used more than
#: their share.
MIN_EXACT_S = 1.0


@dataclass
class ComparisonResult(Result):
    model: str
    norm: str
    exact: AdversarialResult
    attacks: list[AttackResult]
    time_s: float
    classes: list = field(default_factory=list)
    time_limit: float | None = None       # the budget of the whole comparison
    exact_time_limit: float | None = None  # the part of it the exact minimum was given

    def ratio(self, a: AttackResult) -> float | None:
        """Attack distance / exact distance (the exact example's, proven minimal or not)."""
        if not a.success[0] or self.exact.objective is None or self.exact.objective <= 0:
            return None
        return float(a.distances[0] / self.exact.objective)

    def below_bound(self, a: AttackResult) -> bool:
        """True if the attack beat the proven lower bound (must never happen)."""
        bound = self.exact.bound
        return bool(a.success[0] and bound is not None and a.distances[0] < bound * (1 - 1e-6) - 1e-9)

    def rows(self) -> list[dict]:
        return [{"method": a.method, "distance": _num(a.distances[0]) if a.success[0] else None,
                 "success": bool(a.success[0]), "ratio": self.ratio(a),
                 "adversarial_label": int(a.adversarial_labels[0]) if a.success[0] else None,
                 "below_bound": self.below_bound(a), "time_s": round(a.time_s, 4),
                 "time_limit": _rounded(a.time_limit), "status": a.status}
                for a in self.attacks]

    def to_dict(self) -> dict:
        return {"model": self.model, "norm": self.norm, "exact": self.exact.to_dict(),
                "exact_proven": self.exact.minimal, "attacks": self.rows(),
                "time_s": round(self.time_s, 4), "time_limit": self.time_limit,
                "exact_time_limit": _rounded(self.exact_time_limit)}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def compare(model: Any, image: np.ndarray, norm: str = "card", methods: tuple | None = None,
            target: int | None = None, backend: str | None = None, time_limit: float | None = None,
            seed: int = 0, progress: Callable[[str], None] | None = None) -> ComparisonResult:
    """The exact minimum in ``norm`` beside each attack's distance on one ``image``.

    ``methods``: attack names (default :data:`COMPARE_METHODS` for the norm). ``backend`` goes
    to the exact task. ``time_limit``: seconds for the whole comparison, attacks included,
    shared out as the module docstring says (on a time limit the exact part returns its best
    example and proven bound, labelled as not proven). ``progress``: a receiver of progress
    lines (see :mod:`verify.progress`), one per attack and per stage of the exact task."""
    check(seed=seed)
    ctx = prepare(model, image, backend=backend, time_limit=time_limit)
    t0, model, x = ctx.started, ctx.model, ctx.image
    norm = normalise_norm(norm)
    methods = tuple(methods or COMPARE_METHODS[norm])
    total = Deadline(time_limit)
    attacks_budget = Deadline(None if total.seconds is None else ATTACK_SHARE * total.seconds)
    results = []
    with reporting(progress):
        for i, name in enumerate(methods):
            limit = part_limit(None, attacks_budget, len(methods) - i)
            report(f"compare: attack {i + 1}/{len(methods)} {name} ({norm}), budget {seconds(limit)}")
            results.append(attack(model, x, name, norm, target=target, seed=seed, time_limit=limit))
        left = total.remaining()
        exact_limit = None if left is None else max(left, MIN_EXACT_S)
        report(f"compare: exact minimum ({norm}), budget {seconds(exact_limit)}")
        exact = cast(AdversarialResult, min_adversarial(       # one target: one result
            model, x, norm=norm, target=target, backend=backend, time_limit=exact_limit))
    return ComparisonResult(model.name, norm, exact, results, time.perf_counter() - t0,
                            list(model.classes), total.seconds, exact_limit)
