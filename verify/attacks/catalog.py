"""The attacks by name: kind, norms and a one-line summary, as plain data.

Kept apart from :mod:`verify.attacks.api` (which holds the code that runs them) so that the
command line can list the methods in its help without importing numpy or the network code.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodInfo:
    name: str
    kind: str                    # "fixed-eps" or "minimum-norm"
    norms: tuple
    summary: str


CATALOG: dict[str, MethodInfo] = {m.name: m for m in [
    MethodInfo("fgsm", "fixed-eps", ("linf",),
               "one signed-gradient step of the cross-entropy (Goodfellow et al.)"),
    MethodInfo("pgd", "fixed-eps", ("linf", "l2", "l1"),
               "projected gradient ascent on the margin (Madry et al.; L1: sparse steps)"),
    MethodInfo("minmax", "fixed-eps", ("linf",),
               "MinMax (Hsu et al. 2022): c·f⁺ − MINE mutual information, c updated by the max player"),
    MethodInfo("minmax-penalty", "fixed-eps", ("linf",),
               "the penalty baseline of MinMax: fixed c, c·f⁺ + ‖δ‖²"),
    MethodInfo("cw", "minimum-norm", ("l2",), "Carlini-Wagner L2 with a binary search on the constant"),
    MethodInfo("deepfool", "minimum-norm", ("l2", "linf"),
               "DeepFool: steps to the nearest linearised boundary"),
    MethodInfo("jsma", "minimum-norm", ("card",),
               "JSMA-style saliency: one pixel at a time to its box end, by gradient gain"),
    MethodInfo("greedy", "minimum-norm", ("card",),
               "greedy exact single-pixel changes (the exact card task's starting point)"),
]}

#: The attacks :func:`verify.compare` runs per norm.
COMPARE_METHODS = {"card": ("jsma", "greedy"), "l1": ("pgd",), "l2": ("pgd", "cw", "deepfool"),
                   "linf": ("fgsm", "pgd", "deepfool", "minmax")}
