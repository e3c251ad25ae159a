"""The bound engine: optimised linear bounds (α-CROWN) and branch and bound over ReLU phases
(β-CROWN style) on the network IR, in JAX, independent of any MIP backend.

* :func:`decide` — attack → CROWN → α-CROWN → branch and bound; an :class:`EngineResult`.
* :class:`Spec` — the unsafe outputs, a disjunction of conjunctions ``A_k y ≤ b_k``.
* :func:`layer_bounds` — optimised bounds of every layer (e.g. MIP big-M values).

Modules: :mod:`~verify.engine.model` (IR → JAX arrays), :mod:`~verify.engine.concretize`
(regions), :mod:`~verify.engine.crown` (back-substitution, α/β optimisation),
:mod:`~verify.engine.attack` (PGD), :mod:`~verify.engine.bab` (branch and bound),
:mod:`~verify.engine.decide` (the verdict API).
"""
from .crown import layer_bounds
from .decide import EngineOptions, EngineResult, decide
from .spec import Spec

__all__ = ["decide", "EngineOptions", "EngineResult", "Spec", "layer_bounds"]
