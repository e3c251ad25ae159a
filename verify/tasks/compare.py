"""How far is each heuristic attack from the proven optimum? One image, one norm.

:func:`compare` runs the exact minimal adversarial example (:func:`verify.min_adversarial`)
and the attacks of that norm (:data:`verify.attacks.api.COMPARE_METHODS`; fixed-ε attacks
search for their smallest ε) on the same network and image, and reports every distance in the
exact objective's unit (changed pixels, L1, squared L2, L∞) with the ratio attack / exact.

The ratio is against a *proven* minimum only when the exact status is ``optimal``; otherwise
it is against the best known example and the proven lower bound is given beside it. An attack
with an adversarial example below a proven lower bound would be a soundness bug, so it is
flagged (``below_bound``) and never hidden.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..attacks.api import COMPARE_METHODS, AttackResult, attack
from ..encodings.objectives import normalise_norm
from ..models import LoadedModel, load_model
from ..results import AdversarialResult, _num
from .adversarial import _as_input, min_adversarial


@dataclass
class ComparisonResult:
    model: str
    norm: str
    exact: AdversarialResult
    attacks: list[AttackResult]
    time_s: float
    classes: list = field(default_factory=list)

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
                 "below_bound": self.below_bound(a), "time_s": round(a.time_s, 4)}
                for a in self.attacks]

    def to_dict(self) -> dict:
        return {"model": self.model, "norm": self.norm, "exact": self.exact.to_dict(),
                "exact_proven": self.exact.minimal, "attacks": self.rows(),
                "time_s": round(self.time_s, 4)}


def compare(model: Any, image: np.ndarray, norm: str = "card", methods: tuple | None = None,
            target: int | None = None, backend: str | None = None, time_limit: float | None = None,
            seed: int = 0, progress: Callable[[str], None] | None = None) -> ComparisonResult:
    """The exact minimum in ``norm`` beside each attack's distance on one ``image``.

    ``methods``: attack names (default :data:`COMPARE_METHODS` for the norm). ``backend`` and
    ``time_limit`` go to the exact task (on a time limit the best example and its proven bound
    are used, labelled as not proven)."""
    t0 = time.perf_counter()
    model = model if isinstance(model, LoadedModel) else load_model(model)
    norm = normalise_norm(norm)
    x = _as_input(model, image)
    methods = tuple(methods or COMPARE_METHODS[norm])
    say = progress or (lambda msg: None)
    results = []
    for name in methods:
        say(f"attack {name} ({norm}) ...")
        results.append(attack(model, x, name, norm, target=target, seed=seed))
    say(f"exact minimum ({norm}) ...")
    exact = min_adversarial(model, x, norm=norm, target=target, backend=backend, time_limit=time_limit)
    return ComparisonResult(model.name, norm, exact, results, time.perf_counter() - t0,
                            list(model.classes))
