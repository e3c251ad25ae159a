"""The MinMax attack of Hsu et al. (AAAI 2022) and its plain penalty baseline, on the IR.

Both attacks work on a batch of flat inputs ``x`` (shape ``(batch, n)``, values in [0, 1])
with their clean ``labels`` and search, per image, a perturbation ``δ`` in the L∞ box

    ``|δ| ≤ eps``  and  ``0 ≤ x + δ ≤ 1``

(every iterate is projected back onto this set, so every returned point lies in it). The
attacked function is the IR's exact margin (:mod:`verify.attacks.gradients`; ``m ≥ 0`` means
the adversarial label wins) through the hinge

    ``f⁺(x + δ) = max(0, κ − m(x + δ))``,

positive while the attack has not yet succeeded with confidence ``κ``.

``variant="minmax"`` (Hsu et al., "Adversarial examples can be effective data augmentation
for unsupervised machine learning", AAAI 2022, the supervised MinMax attack):

    ``min_δ max_{c ≥ 0}  c · f⁺(x + δ) − I(x, x + δ)``

solved by alternating a descent step on ``δ`` with the ascent step of the max player on the
per-image weight ``c``:

    ``c ← (1 − β / t^{1/4}) · c + β · f⁺(x + δ)``    (``t = 1, 2, …``; :func:`update_weight`).

``I`` is a MINE estimate (Belghazi et al. 2018, the Donsker–Varadhan bound
``I ≥ E_joint[T] − log E_marginal[e^T]``) of the mutual information between the *first-layer
features* of the clean and the perturbed images: the pre-activations ``W x + b`` of the
network's first :class:`~verify.network.Affine` layer (raw pixels when the first layer is not
affine), standardised by one mean and one standard deviation taken from the clean batch. The
pre-activations rather than the ReLU outputs are used because they are linear in ``δ``: the
gradient of ``I`` flows to every pixel, also through units that are off. The statistics
network is ``T(u, v) = τ · tanh(w₂ · tanh(U u + V v + b₁) / τ)`` (one hidden layer of
``mine_hidden`` units; a bias after ``w₂`` would cancel in the bound). The output squashing
(``τ = 5``, so the bound stays below about ``2τ``) is our addition: the features of ``x`` and
``x + δ`` are deterministic functions of each other, so their true MI is infinite and on a
finite batch the joint and marginal pairs are perfectly separable; an unbounded ``T`` then
lets the estimate (and the size of its gradient, which competes with ``c · ∇f⁺``) grow with
every training step. It is trained, with Adam, by
``mine_steps`` ascent steps on the bound per attack step (and ``_MINE_WARMUP`` steps before the
first), on the batch itself:

* joint pairs: ``(f(x_i), f(x_i + δ_i))``;
* marginal pairs: ``(f(x_i), f(x_j + δ_j))`` for ``j ≠ i`` (all other images, or a fresh
  random sample of ``_MAX_MARGINAL`` of them for large batches). With a batch of one image
  there is no other image, so the marginal pairs use ``_DECOYS`` *decoys* instead: the
  perturbed features with their entries randomly permuted (fresh permutations each step),
  which keeps the distribution of feature values but breaks their pairing with ``f(x)``.

Per image the attack uses its own row of the bound,
``I_i = T(f(x_i), f(x_i+δ_i)) − log mean_j exp T(f(x_i), f(x_j+δ_j))``, and the estimator is
trained on their mean. ``T`` and its gradients are written out in numpy (a one-hidden-layer
network needs no autodiff, compiles nothing and is deterministic); the tests check them
against finite differences. ``mine=False`` drops the MI term: then only ``c · f⁺`` and the
max player remain (with signed steps and ``c > 0`` the direction no longer depends on ``c``:
it is projected sign-gradient descent on the hinge, which stops once the hinge is zero).

``variant="penalty"``: the penalty baseline, with a fixed weight ``c = c0`` (no max player) and
a Carlini–Wagner style distortion penalty,

    ``min_δ  c · f⁺(x + δ) + ||δ||²₂``,

with the same steps and projections (``mine`` is ignored).

Steps on ``δ`` (``step_rule``): ``"sign"`` (default) takes signed gradient steps, the
steepest descent of the L∞ geometry of the box, ``δ ← Π(δ − lr · sign(∇))``; the relative
size of the two terms still matters, since they are added before taking the sign.
``"adam"`` takes Adam steps of size ``lr`` instead (the CW choice; with it the penalty
variant ends with smaller L2 distortions at the same success rate, the MinMax attack
behaves as with signed steps). ``lr = 2.5 · eps / steps`` unless given (a point can cross
the box 1.25 times). ``Π`` clips to the box ``max(x − eps, 0) ≤ x + δ ≤ min(x + eps, 1)``.
The weight ``c`` multiplies ``∇f⁺ = −∇m`` only while ``f⁺ > 0``: once an image is
adversarial with confidence ``κ``, only the MI term (MinMax) or the distortion penalty
(penalty) moves it, back towards the clean image. An image whose clean input is already
misclassified is returned unchanged. Binarized networks are refused: their steps have no
gradient.

Returned, per image: among all iterates (the clean input included) whose margin is at least
:data:`SUCCESS_MARGIN` (so ties do not count), the one with the smallest L2 distortion
(MINE estimates from a statistics network that keeps training are not comparable across
steps, distortion is); if no iterate succeeded, the final iterate. The result is
deterministic for a given ``seed`` (MINE's initialisation, the marginal samples and the
decoys come from ``numpy.random.default_rng(seed)``). Nothing here is checked with Keras: the
caller re-checks success on the returned points.

With a ``deadline`` (:class:`verify.budget.Deadline`) the clock is checked before every MINE
warm-up step and after every attack step (each step: one margin gradient, one δ step, the
MINE updates); once it has passed, the attack stops and returns what it has by the rule
above (the least distorted success so far, else the current iterate).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..budget import Deadline, expired
from ..vocabulary import DEFAULT_MARGIN
from ..errors import InvalidInputError
from ..network import Affine, Network
from .gradients import margin_and_gradient

#: A point counts as adversarial when its margin is at least this: the exact tasks' margin.
SUCCESS_MARGIN = DEFAULT_MARGIN
_MINE_WARMUP = 20       # MINE ascent steps before the first attack step
_MAX_MARGINAL = 64      # at most this many images give the marginal pairs of a step
_DECOYS = 16            # marginal samples of a single-image batch (permuted features)


def update_weight(c: np.ndarray | float, f_plus: np.ndarray | float, beta: float,
                  t: int) -> np.ndarray:
    """The max player's step on the weight ``c``: ``(1 − β / t^{1/4}) · c + β · f⁺``
    (``t ≥ 1``, the attack step)."""
    if t < 1:
        raise InvalidInputError(f"step t must be at least 1, not {t}")
    return (1.0 - beta / t ** 0.25) * np.asarray(c, dtype=np.float64) + beta * np.asarray(f_plus)


def hinge(m: np.ndarray, kappa: float) -> np.ndarray:
    """``f⁺ = max(0, κ − m)`` for margins ``m``."""
    return np.maximum(0.0, kappa - m)


# --------------------------------------------------------------------------- features

class _Features:
    """The first-layer features ``(W x + b − μ) / s`` and the back-propagation of their
    gradient to the input (identity features when the first layer is not affine)."""

    def __init__(self, network: Network, x: np.ndarray):
        first = network.layers[0] if network.layers else None
        self.layer = first if isinstance(first, Affine) else None
        raw = self._raw(x)
        self.mu = float(raw.mean())
        s = float(raw.std())
        self.s = s if s > 1e-12 else 1.0

    def _raw(self, x: np.ndarray) -> np.ndarray:
        return self.layer.forward(x) if self.layer is not None else np.array(x, dtype=np.float64)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (self._raw(x) - self.mu) / self.s

    def backward(self, g: np.ndarray) -> np.ndarray:
        """The input gradient given the gradient ``g`` with respect to the features."""
        g = g / self.s
        if self.layer is None:
            return g
        W = self.layer.weight
        return np.asarray((W.T @ g.T).T) if sp.issparse(W) else g @ W


# --------------------------------------------------------------------------- MINE

class _Mine:
    """The statistics network ``T(u, v) = w2 · tanh(u U + v V + b1)``, its per-row
    Donsker–Varadhan bounds and their gradients, and Adam ascent on its parameters."""

    def __init__(self, dim: int, hidden: int, rng: np.random.Generator, lr: float,
                 bound: float = 5.0):
        self.bound = bound
        scale = 1.0 / np.sqrt(2 * dim)
        self.params = {
            "U": rng.normal(0.0, scale, (dim, hidden)),
            "V": rng.normal(0.0, scale, (dim, hidden)),
            "b1": np.zeros(hidden),
            "w2": rng.normal(0.0, 1.0 / np.sqrt(hidden), hidden),
        }
        self.lr = lr
        self.t = 0
        self.m1 = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.m2 = {k: np.zeros_like(v) for k, v in self.params.items()}

    def rows(self, a: np.ndarray, b: np.ndarray, idx: np.ndarray, mask: np.ndarray,
             weights: np.ndarray | None = None, want_params: bool = False):
        """Per-row bounds ``I_i = T(a_i, b_i) − log mean_{m: mask[i,m]} exp T(a_i, col_m)``
        where ``col_m = b.ravel()[idx[m]]``. With ``weights`` (one per row), also the gradient
        of ``Σ_i weights_i I_i`` with respect to ``b`` and (``want_params``) the parameters."""
        p = self.params
        cols = b.ravel()[idx]                                    # (M, d)
        P = a @ p["U"] + p["b1"]                                 # (B, h)
        Hj = np.tanh(P + b @ p["V"])                             # (B, h)
        Hm = np.tanh(P[:, None, :] + (cols @ p["V"])[None])      # (B, M, h)
        Tj = self.bound * np.tanh(Hj @ p["w2"] / self.bound)
        Tall = self.bound * np.tanh(Hm @ p["w2"] / self.bound)   # (B, M)
        Tm = np.where(mask, Tall, -np.inf)
        top = Tm.max(axis=1, keepdims=True)
        e = np.exp(Tm - top)
        total = e.sum(axis=1)
        count = mask.sum(axis=1)
        I = Tj - (top[:, 0] + np.log(total) - np.log(count))
        if weights is None:
            return I
        soft = e / total[:, None]                                # masked softmax per row
        dTj = weights
        dTm = -weights[:, None] * soft                           # (B, M)
        # through the output squashing: dRaw = dT · (1 − (T/τ)²)
        dRj = dTj * (1.0 - (Tj / self.bound) ** 2)
        dRm = dTm * (1.0 - (Tall / self.bound) ** 2)             # 0 off the mask
        dZj = dRj[:, None] * p["w2"] * (1.0 - Hj ** 2)           # (B, h)
        dZm = dRm[:, :, None] * p["w2"] * (1.0 - Hm ** 2)        # (B, M, h)
        dQm = dZm.sum(axis=0)                                    # (M, h)
        grad_b = dZj @ p["V"].T
        np.add.at(grad_b.reshape(-1), idx, dQm @ p["V"].T)
        if not want_params:
            return I, grad_b
        dP = dZj + dZm.sum(axis=1)
        grads = {
            "U": a.T @ dP,
            "V": b.T @ dZj + cols.T @ dQm,
            "b1": dP.sum(axis=0),
            "w2": dRj @ Hj + np.einsum("bm,bmh->h", dRm, Hm),
        }
        return I, grad_b, grads

    def ascend(self, a: np.ndarray, b: np.ndarray, idx: np.ndarray, mask: np.ndarray) -> None:
        """One Adam step up the mean of the per-row bounds."""
        weights = np.full(a.shape[0], 1.0 / a.shape[0])
        _, _, grads = self.rows(a, b, idx, mask, weights, want_params=True)
        self.t += 1
        b1, b2 = 0.9, 0.999
        for k, g in grads.items():
            self.m1[k] = b1 * self.m1[k] + (1 - b1) * g
            self.m2[k] = b2 * self.m2[k] + (1 - b2) * g * g
            step = (self.m1[k] / (1 - b1 ** self.t)) / (np.sqrt(self.m2[k] / (1 - b2 ** self.t)) + 1e-8)
            self.params[k] = self.params[k] + self.lr * step


def _marginal(batch: int, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Marginal columns of a step as (idx into the flat perturbed features, mask of the
    (row, column) pairs that count): the other images, or decoys for a batch of one."""
    if batch == 1:
        idx = np.stack([rng.permutation(dim) for _ in range(_DECOYS)])
        return idx, np.ones((1, _DECOYS), dtype=bool)
    src = np.arange(batch) if batch <= _MAX_MARGINAL else np.sort(
        rng.choice(batch, _MAX_MARGINAL, replace=False))
    idx = src[:, None] * dim + np.arange(dim)[None, :]
    return idx, src[None, :] != np.arange(batch)[:, None]


# --------------------------------------------------------------------------- the attack

def minmax(network: Network, x: np.ndarray, labels: int | np.ndarray, eps: float,
           target: int | np.ndarray | None = None, steps: int = 100, lr: float | None = None,
           beta: float = 0.1, c0: float = 1.0, mine: bool = True, mine_hidden: int = 32,
           seed: int = 0, variant: str = "minmax", kappa: float = 2e-3,
           mine_steps: int = 2, mine_lr: float = 1e-2, step_rule: str = "sign",
           deadline: Deadline | None = None) -> np.ndarray:
    """The MinMax attack (``variant="minmax"``) or the penalty baseline (``"penalty"``) on a
    batch; returns the ``(batch, n)`` perturbed inputs (see the module docstring).

    ``x``: ``(batch, n)`` clean inputs in [0, 1] (any shape the network accepts is
    flattened); ``labels``: their clean labels; ``target``: ``None`` (untargeted) or a class for
    all rows or one per row; ``eps``: the L∞ radius; ``lr``: the step size (signed or
    Adam; default ``2.5·eps/steps``); ``beta``, ``c0``: the max player's step and the initial weight (the
    fixed weight of the penalty variant); ``kappa``: the hinge's confidence; ``mine``,
    ``mine_hidden``, ``mine_steps``, ``mine_lr``: the MI term and its estimator;
    ``step_rule``: ``"sign"`` or ``"adam"`` steps on ``δ``; ``deadline``: stop early (see the
    module docstring)."""
    if variant not in ("minmax", "penalty"):
        raise InvalidInputError(f"variant must be 'minmax' or 'penalty', not {variant!r}")
    if step_rule not in ("sign", "adam"):
        raise InvalidInputError(f"step_rule must be 'sign' or 'adam', not {step_rule!r}")
    if eps < 0:
        raise InvalidInputError(f"eps must be non-negative, not {eps}")
    if not 0.0 <= beta <= 1.0:
        raise InvalidInputError(f"beta must lie in [0, 1], not {beta}")
    if network.is_binarized:
        raise InvalidInputError("the MinMax attack needs gradients: binarized networks have none")
    x = network.flatten_input(x)
    batch = x.shape[0]
    labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), (batch,)).copy()
    if target is not None:
        target = np.broadcast_to(np.asarray(target, dtype=np.int64), (batch,)).copy()
    lo = np.maximum(x - eps, 0.0)
    hi = np.minimum(x + eps, 1.0)
    step = 2.5 * eps / max(steps, 1) if lr is None else float(lr)
    rng = np.random.default_rng(seed)
    use_mine = mine and variant == "minmax" and eps > 0 and steps > 0

    if use_mine:
        feats = _Features(network, x)
        a = feats(x)
        est = _Mine(a.shape[1], mine_hidden, rng, mine_lr)
        for _ in range(_MINE_WARMUP):
            if expired(deadline):
                break
            est.ascend(a, a, *_marginal(batch, a.shape[1], rng))

    c = np.full(batch, float(c0))
    xa = x.copy()
    best = x.copy()
    best_dist = np.full(batch, np.inf)
    mom1 = np.zeros_like(x)
    mom2 = np.zeros_like(x)
    for t in range(1, steps + 2):
        m, grad_m = margin_and_gradient(network, xa, labels, target)
        dist = np.sum((xa - x) ** 2, axis=1)
        better = (m >= SUCCESS_MARGIN) & (dist < best_dist)
        best[better] = xa[better]
        best_dist[better] = dist[better]
        if t > steps or expired(deadline):
            break
        fp = hinge(m, kappa)
        if variant == "minmax" and t > 1:
            c = update_weight(c, fp, beta, t - 1)               # the max player after step t−1
        grad = -(c * (fp > 0))[:, None] * grad_m                 # ∇ c·f⁺
        if variant == "penalty":
            grad = grad + 2.0 * (xa - x)
        elif use_mine:
            b = feats(xa)
            idx, mask = _marginal(batch, a.shape[1], rng)
            _, grad_b = est.rows(a, b, idx, mask, np.ones(batch))
            grad = grad - feats.backward(grad_b)                # ∇ (−Σ_i I_i)
        if step_rule == "sign":
            move = np.sign(grad)
        else:                                                   # Adam on δ
            mom1 = 0.9 * mom1 + 0.1 * grad
            mom2 = 0.999 * mom2 + 0.001 * grad * grad
            move = (mom1 / (1 - 0.9 ** t)) / (np.sqrt(mom2 / (1 - 0.999 ** t)) + 1e-12)
        xa = np.clip(xa - step * move, lo, hi)
        if use_mine:
            b = feats(xa)
            for _ in range(mine_steps):
                est.ascend(a, b, *_marginal(batch, a.shape[1], rng))
    done = np.isfinite(best_dist)
    return np.where(done[:, None], best, xa)
