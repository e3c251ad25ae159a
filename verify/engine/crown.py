"""Linear bounds by back-substitution (CROWN), with optimised slopes (α) and split
multipliers (β), in JAX.

Maths
-----
Write ``values[j]`` for the input of layer ``j`` (``values[0] = x``). To bound a linear
function ``Aᵀ values[k]`` from below, walk backwards from ``k`` keeping ``A`` (coefficients
on the current values) and a constant ``c``:

* **affine** ``v' = W v + b``: ``c += A b``, ``A ← A W``;
* **ReLU** with input bounds ``l ≤ z ≤ u`` (pass-through entries of a masked ReLU layer,
  :mod:`verify.graph`, are the identity: slope 1, intercept 0, no α, never split):
  ``relu(z) = z`` if ``l ≥ 0``, ``0`` if ``u ≤ 0``;
  otherwise (unstable) ``α z ≤ relu(z) ≤ u (z − l)/(u − l)`` for **any** ``α ∈ [0, 1]``.
  A positive coefficient takes the lower relaxation and a negative one the upper:
  ``A ← A⁺·s_l + A⁻·s_u``, ``c += A⁻·t_u`` (``s_l = α``, ``s_u = u/(u−l)``,
  ``t_u = −u l/(u − l)``). Because every α is sound, α is a free parameter per spec row and
  neuron (α-CROWN), optimised by projected gradient ascent;
* **max-pool** ``y = max_q z_q`` over a window: lower ``y ≥ Σ_q λ_q z_q`` for any λ on the
  simplex (optimised too, starting at the window's input with the largest lower bound ``w``);
  upper ``y ≤ z_w`` when ``l_w ≥ u_q`` for every other ``q`` (then ``y = z_w``), else the
  constant ``y ≤ max_q u_q``;
* **split constraints** (β-CROWN): a subdomain may fix a ReLU input ``z_j`` active
  (``s_j = +1``: ``z_j ≥ 0``) or inactive (``s_j = −1``: ``z_j ≤ 0``); the neuron's bounds
  are clamped (``l_j ← max(l_j, 0)`` or ``u_j ← min(u_j, 0)``) so its relaxation is exact,
  and the constraint enters as a Lagrangian term: for ``β_j ≥ 0``,
  ``min_{x feasible} obj(x) ≥ min_{x ∈ region} obj(x) − Σ_j β_j s_j z_j(x)``, i.e. the
  coefficient on ``z_j`` gains ``−β_j s_j``. Any β ≥ 0 is sound; β is optimised jointly
  with α (one β per spec row, subdomain and split neuron).

At ``values[0]`` the bound is ``min_{x ∈ region} Aᵀx + c``, see
:mod:`verify.engine.concretize`.

Intermediate bounds (:func:`root_bounds`): layer by layer, the inputs of every ReLU and
max-pool are bounded by the same back-substitution (rows ``±e_i`` for the neurons that
interval arithmetic leaves unstable; every neuron for max-pool inputs and the first layer),
intersected with interval bounds; with ``steps > 0`` their α are optimised too.

Float round-off
---------------
Everything is computed in float64 (under ``jax.enable_x64``, thread-local, see
:mod:`verify.engine.model`). Alongside each bound the pass accumulates a magnitude ``S``: the
sum of ``|A||b|`` over affine layers, ``|A|·max(|l|, |u|)`` over nonlinear layers and
``|A|·max(|lo|, |hi|)`` at the input — every term the bound is a sum of. The round-off of the
whole computation is far below ``1e-12·S``; the engine widens each intermediate bound by
:data:`SAFETY` ``·(1 + S + |bound|)`` and calls a spec row proved only when its lower bound
exceeds the threshold by that much. The *search* for good α / β may run in float32 (several
times faster on CPUs): soundness never depends on the parameters, only on the final float64
evaluation at them (α clamped to [0, 1], β to ≥ 0 and max-pool weights renormalised onto the
simplex inside that evaluation).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInputError
from ..regions import Region
from .concretize import concretize, region_arrays, region_kind
from .model import CompiledNetwork, Plan, affine_left, compile_network, x64

#: Relative safety margin against float64 round-off (see the module docstring).
SAFETY = 1e-9


def as_dtype(tree, dtype):
    """Every floating array of a pytree cast to ``dtype`` (integer and boolean arrays kept)."""
    def cast(a):
        if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.floating):
            return jnp.asarray(a, dtype=dtype)
        return a
    return jax.tree_util.tree_map(cast, tree)


def safety(scale, value=0.0):
    """The round-off allowance of a bound with magnitude ``scale``."""
    return SAFETY * (1.0 + scale + jnp.abs(value))


# -- relaxations -------------------------------------------------------------------------------

def relu_relaxation(l, u, alpha):
    """Lower slope, upper slope and upper intercept of the ReLU relaxation on [l, u]."""
    unstable = (l < 0) & (u > 0)
    active = l >= 0
    den = jnp.where(unstable, u - l, 1.0)
    on = jnp.where(active, 1.0, 0.0)
    s_u = jnp.where(unstable, u / den, on)
    t_u = jnp.where(unstable, -u * l / den, 0.0)
    # α outside [0, 1] would be unsound: clamp (with gradient 1 inside the interval)
    alpha = jnp.where((alpha >= 0) & (alpha <= 1), alpha, jnp.clip(alpha, 0.0, 1.0))
    s_l = jnp.where(unstable, alpha, on)
    return s_l, s_u, t_u


def adaptive_alpha(l, u):
    """The CROWN/DeepPoly choice of lower slope: 1 where ``u ≥ −l``, else 0."""
    return jnp.where(u >= -l, 1.0, 0.0)


def split_bounds(l, u, split):
    """Bounds clamped by split decisions (``+1``: z ≥ 0, ``−1``: z ≤ 0, ``0``: none)."""
    return (jnp.where(split > 0, jnp.maximum(l, 0.0), l),
            jnp.where(split < 0, jnp.minimum(u, 0.0), u))


def _pool_windows(index, mask, l, u):
    """Window lower/upper bounds (padding -inf), the winner by lower bound, and dominance."""
    gl = jnp.where(mask, l[..., index], -jnp.inf)
    gu = jnp.where(mask, u[..., index], -jnp.inf)
    best = jnp.argmax(gl, axis=-1)
    onehot = jax.nn.one_hot(best, index.shape[-1], dtype=gl.dtype)
    l_best = jnp.max(gl, axis=-1)
    u_others = jnp.max(jnp.where(onehot > 0, -jnp.inf, gu), axis=-1)
    dominated = l_best >= u_others
    u_max = jnp.max(gu, axis=-1)
    mag = jnp.max(jnp.where(mask, jnp.maximum(jnp.abs(l[..., index]), jnp.abs(u[..., index])), 0.0),
                  axis=-1)
    return onehot, dominated, u_max, mag


def initial_pool_weights(index, mask, l, u):
    """One-hot weights on each window's input with the largest lower bound."""
    return _pool_windows(index, mask, l, u)[0]


def project_simplex(v, mask):
    """Euclidean projection of each window's weights onto the simplex (padding kept at 0)."""
    v = jnp.where(mask, v, -1e30)
    s = -jnp.sort(-v, axis=-1)
    css = jnp.cumsum(s, axis=-1)
    j = jnp.arange(1, v.shape[-1] + 1)
    cond = s * j > css - 1.0
    rho = jnp.max(jnp.where(cond, j, 1), axis=-1, keepdims=True)
    theta = (jnp.take_along_axis(css, rho - 1, axis=-1) - 1.0) / rho
    return jnp.where(mask, jnp.maximum(v - theta, 0.0), 0.0)


# -- back-substitution -----------------------------------------------------------------------

def backward(plan: Plan, arrays: tuple, start: int, A, bnd: tuple, alphas: tuple,
             pools: tuple, splits: tuple | None = None, betas: tuple | None = None):
    """Back-substitute the rows ``A`` (B, m, sizes[start]) on ``values[start]`` to the input.

    ``bnd[j]`` is ``(l, u)`` of ``values[j]`` for every ReLU / max-pool layer ``j < start``
    (shape (B|1, n); ReLU bounds already clamped by the splits); ``alphas[r]`` (B|1, m|1, n)
    the lower slopes of ReLU number r, ``pools[q]`` (B|1, m|1, n_out, width) the max-pool
    weights; ``splits[r]`` (B, n) and ``betas[r]`` (B, m, n) the split signs and multipliers
    (None: no splits). Returns ``(A_in, c, mag, coefs)``: the coefficients on the input, the
    constant, the round-off magnitude, and per ReLU number the coefficients on its *output*
    (for branching heuristics).
    """
    B, m = A.shape[0], A.shape[1]
    c = jnp.zeros((B, m), dtype=A.dtype)
    mag = jnp.zeros((B, m), dtype=A.dtype)
    coefs = [None] * len(plan.relu_layers)
    for j in range(start - 1, -1, -1):
        kind = plan.kinds[j]
        if kind in ("dense", "sparse"):
            A, cb, mb = affine_left(plan, arrays, j, A)
            c, mag = c + cb, mag + mb
        elif kind == "relu":
            r = plan.relu_number(j)
            l, u = bnd[j]
            l, u = l[:, None, :], u[:, None, :]
            coefs[r] = A
            s_l, s_u, t_u = relu_relaxation(l, u, alphas[r])
            if arrays[j]:     # pass-through entries: the identity (slope 1, intercept 0, no α)
                relu = arrays[j][0]
                s_l = jnp.where(relu, s_l, 1.0)
                s_u = jnp.where(relu, s_u, 1.0)
                t_u = jnp.where(relu, t_u, 0.0)
            pos, neg = jnp.maximum(A, 0.0), jnp.minimum(A, 0.0)
            c = c + jnp.sum(neg * t_u, axis=-1)
            mag = mag + jnp.sum(jnp.abs(A) * jnp.maximum(jnp.abs(l), jnp.abs(u)), axis=-1)
            A = pos * s_l + neg * s_u
            if betas is not None:
                beta = jnp.where(betas[r] >= 0, betas[r], 0.0)      # any β ≥ 0 is sound
                A = A - beta * splits[r][:, None, :].astype(A.dtype)
        else:   # max-pool
            q = plan.pool_number(j)
            index, mask = arrays[j]
            l, u = bnd[j]
            onehot, dominated, u_max, wmag = _pool_windows(index, mask, l, u)   # (B|1, n_out, ...)
            pos, neg = jnp.maximum(A, 0.0), jnp.minimum(A, 0.0)
            # weights exactly on the simplex (any weights optimised elsewhere, e.g. in float32)
            lam = jnp.where(mask, jnp.maximum(pools[q], 0.0), 0.0)           # (B|1, m|1, n_out, w)
            total = jnp.sum(lam, axis=-1, keepdims=True)
            lam = jnp.where(total > 0, lam / jnp.where(total > 0, total, 1.0), onehot[:, None])
            contrib = pos[..., None] * lam
            contrib = contrib + jnp.where(dominated[:, None, :, None], neg[..., None] * onehot[:, None], 0.0)
            c = c + jnp.sum(jnp.where(dominated[:, None, :], 0.0, neg * u_max[:, None, :]), axis=-1)
            mag = mag + jnp.sum(jnp.abs(A) * wmag[:, None, :], axis=-1)
            contrib = jnp.where(mask, contrib, 0.0).reshape(B, m, -1)
            A = jnp.zeros((B, m, plan.sizes[j]), dtype=A.dtype).at[..., index.reshape(-1)].add(contrib)
    return A, c, mag, tuple(coefs)


def _domain_bnd(plan: Plan, start: int, root_bnd: tuple, splits: tuple | None) -> tuple:
    """Per-layer bounds for back-substitution: root bounds (1, n), ReLU ones clamped by the
    splits (B, n)."""
    out = []
    for j in range(start):
        if j >= len(root_bnd) or root_bnd[j] is None:
            out.append(None)
            continue
        l, u = root_bnd[j]
        l, u = l[None], u[None]
        if splits is not None and plan.kinds[j] == "relu":
            l, u = split_bounds(l, u, splits[plan.relu_number(j)])
        out.append((l, u))
    return tuple(out)


def _bound(plan, rkind, start, arrays, reg, C, root_bnd, alphas, pools, splits, betas, B):
    A0 = jnp.broadcast_to(C, (B,) + C.shape[-2:]) if C.ndim == 2 else C
    bnd = _domain_bnd(plan, start, root_bnd, splits)
    A_in, c, mag, coefs = backward(plan, arrays, start, A0, bnd, alphas, pools, splits, betas)
    lb, mag_in = concretize(rkind, reg, A_in, c)
    return lb, mag + mag_in, A_in, coefs


@partial(jax.jit, static_argnames=("plan", "rkind", "start", "batch"))
def evaluate(plan, rkind, start, batch, arrays, reg, C, root_bnd, alphas, pools, splits, betas):
    """Lower bounds (batch, m) of the rows ``C`` on ``values[start]`` and their round-off
    magnitudes, for fixed α / λ / β (no optimisation)."""
    lb, mag, _, _ = _bound(plan, rkind, start, arrays, reg, C, root_bnd, alphas, pools, splits,
                           betas, batch)
    return lb, mag


def _adam(g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    mh = m / (1 - b1 ** t)
    vh = v / (1 - b2 ** t)
    return lr * mh / (jnp.sqrt(vh) + eps), m, v


@partial(jax.jit, static_argnames=("plan", "rkind", "start", "batch"))
def optimize(plan, rkind, start, batch, arrays, reg, C, thr, root_bnd, alphas, pools, splits,
             betas, valid, steps, lr_alpha, lr_beta, decay, slack=SAFETY):
    """Projected Adam ascent on the lower bounds of the rows ``C`` ((m, n) shared, or (B, m, n)
    per subdomain) over α (in [0, 1]) and β (≥ 0, when ``betas`` is not None), and projected
    gradient ascent over the max-pool weights (on the simplex), per row and subdomain.

    Evaluates the bound ``steps + 1`` times (each evaluation also gives the gradient for the
    next step; ``steps = 0`` is a plain evaluation at the given parameters) or stops earlier
    once every valid subdomain has a row above its threshold ``thr`` by the relative ``slack``.
    The arrays may be float32 (faster; the caller then re-evaluates the bound in float64 at the
    returned parameters, since only that evaluation is sound).
    Returns the best bounds seen and, at the parameters that
    gave them: magnitudes, input coefficients (B, m, n_in), ReLU output coefficients, and the
    parameters themselves ``(alphas, pools, betas)``.
    """
    pool_masks = tuple(arrays[j][1] for j in plan.pool_layers if j < start)
    use_beta = betas is not None
    na, npl = len(alphas), len(pools)

    def split_params(flat):
        flat = tuple(flat)
        return flat[:na], flat[na:na + npl], flat[na + npl:]

    def bound(flat):
        a, p, bt = split_params(flat)
        return _bound(plan, rkind, start, arrays, reg, C, root_bnd, a, p, splits,
                      bt if use_beta else None, batch)

    def loss(flat):
        lb, mag, A_in, coefs = bound(flat)
        return -jnp.sum(jnp.where(valid[:, None], lb, 0.0)), (lb, mag, A_in, coefs)

    def project(flat):
        a, p, bt = split_params(flat)
        a = tuple(jnp.clip(x, 0.0, 1.0) for x in a)
        p = tuple(project_simplex(x, mk) for x, mk in zip(p, pool_masks))
        bt = tuple(jnp.maximum(x, 0.0) for x in bt)
        return a + p + bt

    def done(lb, mag):
        ok = jnp.any(lb - thr > slack * (1.0 + mag + jnp.abs(lb)), axis=1)
        return jnp.all(ok | ~valid)

    flat0 = tuple(alphas) + tuple(pools) + (tuple(betas) if use_beta else ())
    rates = (0,) * na + (2,) * npl + (1,) * (len(flat0) - na - npl)
    zeros = tuple(jnp.zeros_like(x) for x in flat0)
    grad_fn = jax.grad(loss, has_aux=True)
    # shapes of the evaluation outputs, to initialise the "best so far" slots
    shapes = jax.eval_shape(bound, flat0)
    blank = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    best0 = (jnp.full(shapes[0].shape, -jnp.inf, shapes[0].dtype),) + tuple(blank[1:])

    def cond(state):
        t, _, _, _, best, _ = state
        return (t <= steps) & ~done(best[0], best[1])

    def pick(better, new, old):
        return jnp.where(better.reshape(better.shape + (1,) * (new.ndim - 2)), new, old)

    def body(state):
        # one evaluation per step: the bound at the current parameters (kept if it is the
        # best so far, row by row) and its gradient (the step to the next parameters)
        t, flat, m, v, best, best_flat = state
        g, out = grad_fn(flat)
        lb = out[0]
        better = lb > best[0]
        best = jax.tree_util.tree_map(lambda x, y: pick(better, x, y), out, best)
        best_flat = tuple(pick(better, x, y) for x, y in zip(flat, best_flat))
        tf = (t + 1).astype(lb.dtype)
        lrs = (lr_alpha * decay ** tf, lr_beta * decay ** tf)
        new, ms, vs = [], [], []
        for i, (x, gx, mx, vx, which) in enumerate(zip(flat, g, m, v, rates)):
            if which == 2:
                # max-pool weights live on a simplex: Adam's per-coordinate scaling would
                # erase the differences between a window's gradients, so take a plain
                # gradient step scaled by the spread of the window's gradient (then project)
                mk = pool_masks[i - na]
                spread = (jnp.max(jnp.where(mk, gx, -jnp.inf), axis=-1, keepdims=True)
                          - jnp.min(jnp.where(mk, gx, jnp.inf), axis=-1, keepdims=True))
                new.append(x - lrs[0] * gx / jnp.where(spread > 0, spread, 1.0))
                ms.append(mx)
                vs.append(vx)
                continue
            step, mx, vx = _adam(gx, mx, vx, tf, lrs[which])
            new.append(x - step)
            ms.append(mx)
            vs.append(vx)
        return t + 1, project(new), tuple(ms), tuple(vs), best, best_flat

    state = (jnp.asarray(0), flat0, zeros, zeros, best0, flat0)
    state = jax.lax.while_loop(cond, body, state)
    (lb, mag, A_in, coefs), best_flat = state[4], state[5]
    best_params = split_params(best_flat)
    return lb, mag, A_in, coefs, best_params


# -- intermediate bounds -------------------------------------------------------------------------

@dataclass
class RootBounds:
    """Bounds of every value vector (``lower[j]``, ``upper[j]`` for ``values[j]``, float64)
    of a compiled network over a region, and the JAX form the bound functions take."""

    lower: list
    upper: list

    def jax_bounds(self, plan: Plan, upto: int | None = None) -> tuple:
        """``(l, u)`` for each ReLU / max-pool layer input (layers before ``upto``), None
        elsewhere (call under x64)."""
        upto = plan.num_layers if upto is None else upto
        return tuple((jnp.asarray(self.lower[j]), jnp.asarray(self.upper[j]))
                     if plan.kinds[j] in ("relu", "pool") else None for j in range(upto))

    def relu_bounds(self, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
        """Flat lower / upper bounds of every ReLU input (the engine's neuron order)."""
        if not plan.relu_layers:
            return np.zeros(0), np.zeros(0)
        return (np.concatenate([self.lower[j] for j in plan.relu_layers]),
                np.concatenate([self.upper[j] for j in plan.relu_layers]))


def _interval(plan: Plan, arrays: tuple, j: int, l: np.ndarray, u: np.ndarray, net):
    layer = net.layers[j]
    kind = plan.kinds[j]
    if kind in ("dense", "sparse"):
        W = layer.weight
        pos, neg = (W.maximum(0), W.minimum(0)) if sp.issparse(W) else (np.maximum(W, 0), np.minimum(W, 0))
        lo = np.asarray(pos @ l + neg @ u).ravel() + layer.bias
        hi = np.asarray(pos @ u + neg @ l).ravel() + layer.bias
        # the same round-off allowance as back-substitution
        mag = np.asarray(abs(W) @ np.maximum(np.abs(l), np.abs(u))).ravel() + np.abs(layer.bias)
        tol = SAFETY * (1 + mag)
        return lo - tol, hi + tol
    if kind == "relu":
        if layer.mask is not None:       # pass-through entries are copied
            return (np.where(layer.mask, np.maximum(l, 0.0), l),
                    np.where(layer.mask, np.maximum(u, 0.0), u))
        return np.maximum(l, 0.0), np.maximum(u, 0.0)
    padded_l, padded_u = np.append(l, -np.inf), np.append(u, -np.inf)
    return padded_l[layer.index].max(axis=1), padded_u[layer.index].max(axis=1)


def _bucket(count: int, n: int, least: int = 8) -> int:
    """Row counts are padded to powers of two (fewer distinct shapes to compile)."""
    size = least
    while size < count:
        size *= 2
    return min(size, n)


#: Most rows bounded in one back-substitution call (memory: rows × inputs × 8 bytes).
MAX_ROWS = 2048


def initial_params(plan: Plan, arrays: tuple, bnd_np: RootBounds, start: int, batch: int, m: int,
                   splits: tuple | None = None):
    """CROWN's starting α (adaptive) and one-hot max-pool weights, shaped (batch, m, ...)."""
    alphas, pools = [], []
    for r, j in enumerate(plan.relu_layers):
        if j >= start:
            break
        l, u = jnp.asarray(bnd_np.lower[j]), jnp.asarray(bnd_np.upper[j])
        a = adaptive_alpha(l, u)
        alphas.append(jnp.broadcast_to(a, (batch, m, a.shape[-1])))
    for q, j in enumerate(plan.pool_layers):
        if j >= start:
            break
        index, mask = arrays[j]
        w = initial_pool_weights(index, mask, jnp.asarray(bnd_np.lower[j]), jnp.asarray(bnd_np.upper[j]))
        pools.append(jnp.broadcast_to(w, (batch, m) + w.shape))
    return tuple(alphas), tuple(pools)


def _rows_bounds(cnet: CompiledNetwork, rkind: str, reg: tuple, bnds: RootBounds, start: int,
                 idx: np.ndarray, steps: int, lr: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of ``values[start][idx]`` by back-substitution (α optimised
    for ``steps`` steps), already widened by the safety margin."""
    plan, arrays = cnet.plan, cnet.arrays
    n = plan.sizes[start]
    root_bnd = bnds.jax_bounds(plan, start)
    lower, upper = np.empty(idx.size), np.empty(idx.size)
    chunk = _bucket(idx.size, n)
    chunk = min(chunk, MAX_ROWS // 2)
    for s in range(0, idx.size, chunk):
        part = idx[s:s + chunk]
        padded = np.concatenate([part, np.full(chunk - part.size, part[0])])
        eye = np.zeros((2 * chunk, n))
        eye[np.arange(chunk), padded] = 1.0
        eye[chunk + np.arange(chunk), padded] = -1.0
        C = jnp.asarray(eye)[None]
        has_params = any(j < start for j in plan.relu_layers + plan.pool_layers)
        alphas, pools = initial_params(plan, arrays, bnds, start, 1, 2 * chunk)
        if steps > 0 and has_params:
            thr = jnp.full((2 * chunk,), jnp.inf)
            lb, mag, _, _, _ = optimize(plan, rkind, start, 1, arrays, reg, C, thr, root_bnd,
                                        alphas, pools, None, None, jnp.ones(1, dtype=bool),
                                        steps, lr, 0.0, 0.98)
        else:
            lb, mag = evaluate(plan, rkind, start, 1, arrays, reg, C, root_bnd, alphas, pools,
                               None, None)
        lb, mag = np.asarray(lb[0]), np.asarray(mag[0])
        lb = lb - SAFETY * (1 + mag + np.abs(lb))
        lower[s:s + part.size] = lb[:part.size]
        upper[s:s + part.size] = -lb[chunk:chunk + part.size]
    return lower, upper


class Aborted(Exception):
    """Raised by :func:`root_bounds` when its ``abort`` callable asks it to stop."""


def root_bounds(cnet: CompiledNetwork, region: Region, steps: int = 0, lr: float = 0.1,
                deadline=None, all_neurons: bool = False, output: bool = True,
                prior=None, abort=None) -> RootBounds:
    """Sound bounds of every value of the compiled network over the region: interval
    arithmetic intersected with back-substitution (α optimised for ``steps`` steps) wherever
    a ReLU or max-pool consumes the values, and for the logits. ReLU inputs that interval
    arithmetic already shows stable keep their interval bounds unless ``all_neurons``; the
    logits keep their interval bounds unless ``output``. ``prior`` (anything with ``lower`` /
    ``upper`` lists indexed like the values, e.g. LP-refined :class:`verify.bounds.Bounds` of
    the same network) is trusted as sound and intersected layer by layer, so that later layers
    profit from it. ``deadline()`` true: no more α steps; ``abort()`` (optional, polled before
    each layer's back-substitution) true: :class:`Aborted` is raised."""
    plan, arrays, net = cnet.plan, cnet.arrays, cnet.network
    rkind = region_kind(region)
    with x64():
        reg = region_arrays(region)
        bnds = RootBounds([region.lo.copy()], [region.hi.copy()])
        if prior is not None and (len(prior.lower) != plan.num_layers + 1
                                  or any(np.shape(prior.lower[j]) != (plan.sizes[j],)
                                         for j in range(plan.num_layers + 1))):
            raise InvalidInputError("prior bounds do not match the network's layers (give "
                                    "bounds of the merged network, as decide() uses)")
        for j in range(plan.num_layers):
            lo, hi = _interval(plan, arrays, j, bnds.lower[j], bnds.upper[j], net)
            k = j + 1
            if prior is not None:
                lo = np.maximum(lo, np.asarray(prior.lower[k], dtype=np.float64))
                hi = np.minimum(hi, np.asarray(prior.upper[k], dtype=np.float64))
                lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
            bnds.lower.append(lo)
            bnds.upper.append(hi)
            if plan.kinds[j] not in ("dense", "sparse"):
                continue
            consumer = plan.kinds[k] if k < plan.num_layers else "output"
            if consumer in ("dense", "sparse") or (consumer == "output" and not output):
                continue
            if j == 0 or all_neurons or consumer in ("pool", "output"):
                idx = np.arange(plan.sizes[k])
            else:
                unstable = (lo < 0) & (hi > 0)
                if arrays[k]:      # a masked ReLU: its pass-through entries are never unstable
                    unstable &= np.asarray(arrays[k][0], dtype=bool)
                idx = np.flatnonzero(unstable)
            if idx.size == 0:
                continue
            if abort is not None and abort():
                raise Aborted()
            use_steps = steps if consumer == "relu" and (deadline is None or not deadline()) else 0
            l2, u2 = _rows_bounds(cnet, rkind, reg, bnds, k, idx, use_steps, lr)
            bnds.lower[k][idx] = np.maximum(lo[idx], l2)
            bnds.upper[k][idx] = np.minimum(hi[idx], u2)
            bad = bnds.lower[k] > bnds.upper[k]
            if np.any(bad):      # round-off between the two bounds: never an empty interval
                mid = 0.5 * (bnds.lower[k][bad] + bnds.upper[k][bad])
                bnds.lower[k][bad], bnds.upper[k][bad] = mid, mid
    return bnds


def layer_bounds(network, region: Region, steps: int = 20, lr: float = 0.1):
    """Optimised bounds of every value of ``network`` (layers as given, not merged) over
    ``region``, as a :class:`verify.bounds.Bounds` (``lower[j]``/``upper[j]`` for the input of
    ``network.layers[j]``; the last entry the logits) — e.g. for MIP big-M values.

    Each ReLU / max-pool input is bounded by α-CROWN with ``steps`` Adam steps (0: plain
    CROWN), intersected with interval bounds, and widened by the round-off margin."""
    from ..bounds import Bounds, StageReport
    import time

    if region.size != network.num_inputs:
        raise InvalidInputError(f"region has {region.size} values, network {network.name} takes "
                                f"{network.num_inputs}")
    t0 = time.perf_counter()
    cnet = compile_network(network)
    rb = root_bounds(cnet, region, steps=steps, lr=lr, all_neurons=True)
    b = Bounds([np.asarray(v, dtype=np.float64) for v in rb.lower],
               [np.asarray(v, dtype=np.float64) for v in rb.upper])
    b.stages.append(StageReport("alpha-crown" if steps else "crown", b.unstable(network),
                                network.num_relus, time.perf_counter() - t0))
    return b


def spec_bounds(cnet: CompiledNetwork, region: Region, bnds: RootBounds, C: np.ndarray,
                alphas=None, pools=None, splits=None, betas=None, steps: int = 0,
                lr_alpha: float = 0.1, lr_beta: float = 0.05) -> np.ndarray:
    """Lower bounds (B, m) of the rows ``C`` (m, n_out) of the logits over the region, for a
    batch of B parameter sets: ``alphas`` (list per ReLU layer, (B, m, n_r); None: CROWN's
    choice), ``pools`` (per max-pool layer, (B, m, n_out, width); None: one-hot), ``splits``
    (flat (B, N) signs over all ReLU neurons; None: none) with ``betas`` (per ReLU layer,
    (B, m, n_r)); ``steps > 0`` optimises them first. Bounds are net of the round-off
    allowance, so ``C f(x) ≥`` the result at every x of the region (within the splits)."""
    plan = cnet.plan
    C = np.atleast_2d(np.asarray(C, dtype=np.float64))
    m = C.shape[0]
    B = 1
    for group in (alphas, pools, betas):
        if group:
            B = np.asarray(group[0]).shape[0]
    if splits is not None:
        B = np.asarray(splits).shape[0]
    L = plan.num_layers
    with x64():
        reg = region_arrays(region)
        rkind = region_kind(region)
        a0, p0 = initial_params(plan, cnet.arrays, bnds, L, B, m)
        a = a0 if alphas is None else tuple(jnp.asarray(np.broadcast_to(x, (B, m, x.shape[-1]))
                                                         , dtype=jnp.float64) for x in alphas)
        p = p0 if pools is None else tuple(
            project_simplex(jnp.asarray(x, dtype=jnp.float64), cnet.arrays[j][1])
            for x, j in zip(pools, plan.pool_layers))
        # always with (possibly empty) splits and multipliers: one compiled form per batch size
        splits = np.zeros((B, plan.num_relus), dtype=np.int8) if splits is None else np.asarray(splits)
        offs = plan.relu_offsets
        sp_t = tuple(jnp.asarray(splits[:, x:y].astype(np.int8)) for x, y in zip(offs[:-1], offs[1:]))
        if betas is None:
            betas = [np.zeros((B, m, n)) for n in plan.relu_sizes]
        b_t = tuple(jnp.asarray(x, dtype=jnp.float64) for x in betas)
        root_bnd = bnds.jax_bounds(plan)
        jC = jnp.asarray(C)
        if steps > 0:
            lb, mag, _, _, _ = optimize(plan, rkind, L, B, cnet.arrays, reg, jC,
                                        jnp.full((m,), jnp.inf), root_bnd, a, p, sp_t, b_t,
                                        jnp.ones(B, dtype=bool), steps, lr_alpha, lr_beta, 0.98)
        else:
            lb, mag = evaluate(plan, rkind, L, B, cnet.arrays, reg, jC, root_bnd, a, p, sp_t, b_t)
        lb, mag = np.asarray(lb), np.asarray(mag)
    return lb - SAFETY * (1 + mag + np.abs(lb))
