"""The bound engine (verify.engine) is sound and complete on small networks.

* Soundness: on a random network with a convolution (a sparse affine layer), a max-pool and
  dense layers, and on every region type (with and without fixed pixels), the intermediate
  bounds, CROWN bounds with random slopes / max-pool weights, optimised bounds, and bounds of
  subdomains with random split constraints and multipliers β all contain the network's values
  at thousands of sampled points (region corners included; for subdomains, the points that
  satisfy the splits).
* Completeness: on tiny networks, ``decide`` agrees with brute force (every ReLU phase
  pattern, one LP each) on hundreds of random properties near the decision boundary, both
  verdicts represented, and every counterexample is confirmed by the network.
"""
from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from brute_force import _affine_pieces, brute_force_property
from verify.bounds import compute_bounds
from verify.engine import EngineOptions, Spec, decide, layer_bounds
from verify.engine.concretize import contains
from verify.engine.crown import root_bounds, spec_bounds
from verify.engine.model import compile_network
from verify.errors import InvalidInputError
from verify.network import Affine, MaxPool, Network, ReLU
from verify.regions import Box, InputBox, L0Ball, L1Ball, L2Ball, LinfBall

TOL = 1e-9


# -- networks ------------------------------------------------------------------------------------

def conv_pool_network(rng) -> Network:
    """6×6×1 input → conv 3×3 (2 filters, sparse) → ReLU → max-pool 2×2 (padded index) →
    dense 6 → ReLU → dense 3."""
    rows, cols, vals = [], [], []
    kernel = rng.normal(size=(3, 3, 2))
    for i, j, f in itertools.product(range(4), range(4), range(2)):
        for di, dj in itertools.product(range(3), range(3)):
            rows.append((i * 4 + j) * 2 + f)
            cols.append((i + di) * 6 + (j + dj))
            vals.append(kernel[di, dj, f])
    conv = sp.csr_matrix((vals, (rows, cols)), shape=(32, 36))
    index = np.full((8, 5), -1)
    for p, q, f in itertools.product(range(2), range(2), range(2)):
        index[(p * 2 + q) * 2 + f, :4] = [((2 * p + a) * 4 + (2 * q + b)) * 2 + f
                                          for a, b in itertools.product(range(2), range(2))]
    layers = [Affine(conv, rng.normal(size=32) * 0.3, (4, 4, 2), "conv", "conv2d"), ReLU((4, 4, 2)),
              MaxPool(index, 32, (2, 2, 2)),
              Affine(rng.normal(size=(6, 8)), rng.normal(size=6) * 0.3, (6,)), ReLU((6,)),
              Affine(rng.normal(size=(3, 6)), rng.normal(size=3), (3,))]
    return Network((6, 6, 1), layers, name="conv-pool")


def tiny_network(rng, n_in=3, hidden=(4, 3), n_out=3):
    """A dense ReLU network and its weights in tests/brute_force.py's format."""
    layers, weights, prev = [], [], n_in
    for i, h in enumerate(list(hidden) + [n_out]):
        W, b = rng.normal(size=(h, prev)), rng.normal(size=h) * 0.5
        layers.append(Affine(W, b, (h,)))
        weights += [W.T, b]
        if i < len(hidden):
            layers.append(ReLU((h,)))
        prev = h
    return Network((n_in,), layers, name="tiny"), weights


def regions(center) -> dict:
    """Every region type, grouped by how the engine concretises it."""
    free = np.zeros(center.size, dtype=bool)
    free[::2] = True
    return {
        "box": [Box(center), LinfBall(center, 0.1), Box(center, free=free),
                LinfBall(center, 0.2, free=free), InputBox(center - 1.5, center + 0.5)],
        "l1": [L1Ball(center, 1.0), L1Ball(center, 0.8, free=free)],
        "l2": [L2Ball(center, 0.5), L2Ball(center, 0.7, free=free)],
        "l0": [L0Ball(center, 3), L0Ball(center, 2, free=free)],
    }


# -- soundness -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def conv_net():
    return conv_pool_network(np.random.default_rng(3))


def _check_region(net, region, rng):
    pts = region.sample(rng, 3000)
    assert all(contains(region, p) for p in pts[:50])
    values = net.forward_all(pts)
    cnet = compile_network(net)
    plan = cnet.plan

    # intermediate bounds (CROWN), every value vector
    rb = root_bounds(cnet, region, output=False)
    for v, lo, hi in zip(values, rb.lower, rb.upper):
        assert np.all(v >= lo - TOL) and np.all(v <= hi + TOL)
    relu_l, relu_u = rb.relu_bounds(plan)
    unstable = np.flatnonzero((relu_l < 0) & (relu_u > 0))
    assert unstable.size > 0                       # a non-trivial relaxation

    B, m = 3, 4
    C = rng.normal(size=(m, 3))
    out = values[-1] @ C.T                         # (points, m)

    # CROWN, random slopes and max-pool weights, optimised slopes
    crown = spec_bounds(cnet, region, rb, C, alphas=[np.asarray(a) for a in _crown_alphas(rb, plan, B, m)])
    alphas = [rng.uniform(size=(B, m, n)) for n in plan.relu_sizes]
    pools = []
    for j in plan.pool_layers:
        mask = net.layers[j].index >= 0
        w = rng.exponential(size=(B, m) + mask.shape) * mask
        pools.append(w / w.sum(axis=-1, keepdims=True))
    rand = spec_bounds(cnet, region, rb, C, alphas=alphas, pools=pools)
    opt = spec_bounds(cnet, region, rb, C, alphas=alphas, pools=pools, steps=12)
    for lb in (crown, rand, opt):
        assert np.all(out[None] >= lb[:, None, :] - TOL)
    assert np.all(opt >= rand - 1e-9)              # the best parameters seen include the start

    # subdomains: split some unstable neurons the way the sampled minimiser of a row has them
    # (the split constraints then matter: a wrong sign of the β term would show)
    pre = np.concatenate([values[j] for j in plan.relu_layers], axis=1)   # (points, N)
    splits = np.zeros((B, plan.num_relus), dtype=np.int8)
    anchors = np.argmin(out[:, :B], axis=0)
    for b, a in enumerate(anchors):
        pick = rng.choice(unstable, size=min(4, unstable.size), replace=False)
        splits[b, pick] = np.where(pre[a, pick] >= 0, 1, -1)
    betas = [rng.uniform(0, 2, size=(B, m, n)) for n in plan.relu_sizes]
    fixed = spec_bounds(cnet, region, rb, C, alphas=alphas, pools=pools, splits=splits, betas=betas)
    tuned = spec_bounds(cnet, region, rb, C, alphas=alphas, pools=pools, splits=splits,
                        betas=betas, steps=25, lr_beta=0.5)
    checked = 0
    for b, a in enumerate(anchors):
        # the region's points plus points on the segment from the centre to the anchor
        t = rng.uniform(0.0, 1.0, size=(500, 1))
        cand = np.vstack([pts, region.center + t * (pts[a] - region.center), pts[a][None]])
        vals = net.forward_all(cand)
        z = np.concatenate([vals[j] for j in plan.relu_layers], axis=1)
        ok = np.all((splits[b] == 0) | (splits[b] * z >= 0), axis=1)
        y = vals[-1][ok] @ C.T
        checked += int(ok.sum())
        for lb in (fixed, tuned):
            assert np.all(y >= lb[b][None] - TOL), b
    assert checked >= 3 * B


def _crown_alphas(rb, plan, B, m):
    from verify.engine.crown import adaptive_alpha

    return [np.broadcast_to(np.asarray(adaptive_alpha(rb.lower[j], rb.upper[j])), (B, m, rb.lower[j].size))
            for j in plan.relu_layers]


@pytest.mark.parametrize("kind", ["box", "l1", "l2", "l0"])
def test_bounds_contain_sampled_values(conv_net, kind):
    """Every region of the kind (plain, with fixed pixels; boxes, L∞ balls, input boxes)."""
    rng = np.random.default_rng(11)
    for region in regions(rng.uniform(0.1, 0.9, 36))[kind]:
        _check_region(conv_net, region, rng)


def test_concretisation_is_exact_and_attained():
    """For an affine network the bound is the exact minimum over every region type, and the
    minimiser the engine proposes as a candidate lies in the region and attains it."""
    from verify.engine.concretize import minimizer, region_kind

    rng = np.random.default_rng(13)
    n = 12
    W, b = rng.normal(size=(3, n)), rng.normal(size=3)
    net = Network((n,), [Affine(W, b, (3,))])
    cnet = compile_network(net)
    c = rng.uniform(0.3, 0.7, n)
    free = rng.random(n) < 0.6
    for region in [Box(c), LinfBall(c, 0.1), L1Ball(c, 0.7), L1Ball(c, 5.0), L2Ball(c, 0.2),
                   L0Ball(c, 3), L0Ball(c, 2, free=free), L1Ball(c, 0.4, free=free),
                   L2Ball(c, 0.25, free=free), InputBox(c - 2, c + 1)]:
        rb = root_bounds(cnet, region, output=False)
        C = rng.normal(size=(5, 3))
        lb = spec_bounds(cnet, region, rb, C)[0]
        A = C @ W
        exact = region.linear_bounds(A, C @ b)[0]
        assert np.allclose(lb, exact, atol=1e-7), type(region).__name__
        points = minimizer(region_kind(region), region, A)
        for x, a, want in zip(points, A, exact - C @ b):
            assert contains(region, x)
            assert a @ x <= want + 1e-6 * (1 + abs(want)), type(region).__name__


def _l2_box_minimum(a: np.ndarray, region: L2Ball) -> float:
    """min aᵀx over the L2 ball within its box, independently: bisection on the multiplier λ
    of the maximiser t_i = min(cap_i, λ|a_i|) of the fall Σ|a_i| t_i (KKT)."""
    rate = np.abs(a)
    cap = np.where(a >= 0, region.center - region.lo, region.hi - region.center)

    def used(lam: float) -> float:
        return float(np.sum(np.minimum(cap, lam * rate) ** 2))

    lo, hi = 0.0, 1e9
    if used(hi) <= region.eps ** 2:          # every pixel reaches its cap
        lo = hi
    else:
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if used(mid) <= region.eps ** 2 else (lo, mid)
    return float(a @ region.center - np.sum(rate * np.minimum(cap, lo * rate)))


def test_l2_ball_bounds_are_exact_where_the_box_cuts_the_ball():
    """Images sit on the box's edges (most MNIST pixels are 0): a pixel at 0 can only rise, so
    the ball's dual-norm bound alone is loose. Interval bounds and the engine's concretisation
    both give the exact minimum over ball ∩ box, the engine's minimiser attains it, and no
    sampled point (boundary included) is below it."""
    from verify.engine.concretize import minimizer

    rng = np.random.default_rng(21)
    n = 30
    W, b = rng.normal(size=(4, n)), rng.normal(size=4)
    cnet = compile_network(Network((n,), [Affine(W, b, (4,))]))
    c = np.where(rng.random(n) < 0.6, 0.0, np.where(rng.random(n) < 0.5, 1.0, rng.random(n)))
    free = rng.random(n) < 0.8
    looser = 0
    for region in [L2Ball(c, 0.3), L2Ball(c, 1.5), L2Ball(c, 0.8, free=free), L2Ball(c, 20.0)]:
        C = rng.normal(size=(6, 4))
        A = C @ W
        want = np.array([_l2_box_minimum(a, region) for a in A]) + C @ b
        lower, upper = region.linear_bounds(A, C @ b)
        assert np.allclose(lower, want, atol=1e-9)
        assert np.allclose(upper, -np.array([_l2_box_minimum(-a, region) for a in A]) + C @ b,
                           atol=1e-9)
        rb = root_bounds(cnet, region, output=False)
        assert np.allclose(spec_bounds(cnet, region, rb, C)[0], want, atol=1e-7)
        for x, a, w in zip(minimizer("l2", region, A), A, want - C @ b):
            assert contains(region, x) and a @ x <= w + 1e-7 * (1 + abs(w))
        values = region.sample(rng, 400) @ A.T + C @ b
        assert np.all(values >= lower - 1e-9) and np.all(values <= upper + 1e-9)
        dual_norm = A @ c + C @ b - region.eps * np.linalg.norm(A * region.free, axis=1)
        looser += int(np.sum(want > np.maximum(dual_norm, region._box_bounds(A, C @ b)[0]) + 1e-6))
    assert looser > 0          # the case the old max(ball, box) rule left loose does occur


def test_single_layer_relaxations_are_exact_where_they_should_be():
    """On one ReLU layer (or one max-pool layer) applied to a box, CROWN's bound of a linear
    function with optimised slopes is the exact minimum; with any slopes it is below the
    function's value at every vertex of the box. A relaxation too tight by a little fails."""
    rng = np.random.default_rng(8)
    n = 8
    index = np.array([[0, 1, 2, -1], [3, 4, 5, -1], [6, 7, -1, -1]])     # disjoint windows
    nets = {"relu": Network((n,), [ReLU((n,))]), "pool": Network((n,), [MaxPool(index, n, (3,))])}
    lo, hi = rng.uniform(-2, 0.5, n), rng.uniform(-0.5, 2, n)
    lo, hi = np.minimum(lo, hi - 0.1), np.maximum(hi, lo + 0.1)
    region = InputBox(lo, hi)
    vertices = np.array(list(itertools.product(*zip(lo, hi))))
    for name, net in nets.items():
        cnet = compile_network(net)
        rb = root_bounds(cnet, region, output=False)
        C = rng.normal(size=(6, net.num_outputs))
        values = net.forward(vertices) @ C.T
        exact = values.min(axis=0)                 # separable: a vertex attains the minimum
        B = 3
        alphas = [rng.uniform(size=(B, 6, n)) for _ in cnet.plan.relu_layers]
        pools = []
        for j in cnet.plan.pool_layers:
            w = rng.exponential(size=(B, 6) + index.shape) * (index >= 0)
            pools.append(w / w.sum(axis=-1, keepdims=True))
        rand = spec_bounds(cnet, region, rb, C, alphas=alphas, pools=pools)
        best = spec_bounds(cnet, region, rb, C, alphas=alphas, pools=pools, steps=60, lr_alpha=0.3)
        assert np.all(rand <= exact[None] + TOL) and np.all(best <= exact[None] + TOL), name
        assert np.allclose(best, exact[None], atol=1e-6), (name, best - exact)


def test_layer_bounds_match_symbolic_bounds():
    rng = np.random.default_rng(5)
    net, _ = tiny_network(rng, n_in=5, hidden=(8, 6))
    region = LinfBall(rng.uniform(0.1, 0.9, 5), 0.2)
    ours = layer_bounds(net, region, steps=5)
    theirs = compute_bounds(net, region, ("interval", "symbolic"))
    values = net.forward_all(region.sample(rng, 3000))
    assert ours.contains(values, tol=1e-9)
    for lo0, hi0, lo1, hi1 in zip(theirs.lower, theirs.upper, ours.lower, ours.upper):
        # CROWN with optimised slopes is never looser than the symbolic stage (round-off aside)
        assert np.all(lo1 >= lo0 - 1e-6) and np.all(hi1 <= hi0 + 1e-6)
    assert ours.unstable(net) <= theirs.unstable(net)


def test_engine_leaves_jax_default_precision_alone():
    net, _ = tiny_network(np.random.default_rng(0))
    layer_bounds(net, Box(np.full(3, 0.5)), steps=0)
    assert jnp.zeros(1).dtype == jnp.float32
    assert jnp.asarray(np.zeros(1)).dtype == jnp.float32


# -- completeness against brute force ------------------------------------------------------------

def _pieces(weights, region):
    """The phase patterns' affine pieces that are non-empty over the region's box."""
    out = []
    for A, a, G, g in _affine_pieces(weights):
        res = linprog(np.zeros(region.size), A_ub=-G, b_ub=g, bounds=list(zip(region.lo, region.hi)),
                      method="highs")
        if res.status == 0:
            out.append((A, a, G, g))
    return out


def _piece_min(c, A, a, G, g, region, free_set=None):
    """min of c·(A x + a) over the piece within the region (L1: auxiliary columns)."""
    n = region.size
    lo, hi = region.lo.copy(), region.hi.copy()
    if free_set is not None:                     # L0: only these pixels may change
        fixed = ~free_set
        lo[fixed] = hi[fixed] = region.center[fixed]
    if isinstance(region, L1Ball):
        I = np.eye(n)
        A_ub = np.vstack([np.hstack([-G, np.zeros((G.shape[0], n))]), np.hstack([I, -I]),
                          np.hstack([-I, -I]), np.r_[np.zeros(n), np.ones(n)][None]])
        b_ub = np.r_[g, region.center, -region.center, region.eps]
        res = linprog(np.r_[c @ A, np.zeros(n)], A_ub=A_ub, b_ub=b_ub,
                      bounds=list(zip(lo, hi)) + [(0, None)] * n, method="highs")
    else:
        res = linprog(c @ A, A_ub=-G, b_ub=g, bounds=list(zip(lo, hi)), method="highs")
    return res.fun + c @ a if res.status == 0 else np.inf


def brute_min(pieces, c, region) -> float:
    """The exact minimum of c·f(x) over the region."""
    if isinstance(region, L0Ball):
        subsets = [np.isin(np.arange(region.size), s)
                   for s in itertools.combinations(np.flatnonzero(region.free), min(region.k, int(region.free.sum())))]
        return min(_piece_min(c, *p, region, s) for p in pieces for s in subsets)
    return min(_piece_min(c, *p, region) for p in pieces)


OPTIONS = EngineOptions(batch_size=8, attack_restarts=6, attack_steps=30, root_steps=20,
                        bab_steps=10, attack_every=2)


def _check_answer(res, net, region, spec, margin, expected, kind):
    if res.status == "counterexample":
        assert contains(region, res.x)
        assert spec.holds(net.forward(res.x[None])[0], margin) is not None
    if kind == "l0":        # every leaf is decidable by the LP over the region's box only sometimes
        assert res.status in (expected, "unknown"), (res.status, expected, res.stats)
    else:
        assert res.status == expected, (res.status, expected, res.stage, res.stats)


@pytest.mark.parametrize("kind", ["box", "linf", "l1", "l0"])
def test_decide_agrees_with_brute_force(kind):
    rng = np.random.default_rng({"box": 1, "linf": 2, "l1": 3, "l0": 4}[kind])
    verdicts = {"verified": 0, "counterexample": 0}
    stages = set()
    for trial in range(12):
        net, weights = tiny_network(rng)
        c = rng.uniform(0.2, 0.8, 3)
        region = {"box": lambda: InputBox(c - 0.6, c + 0.4), "linf": lambda: LinfBall(c, 0.25),
                  "l1": lambda: L1Ball(c, 0.5), "l0": lambda: L0Ball(c, 1)}[kind]()
        pieces = _pieces(weights, region)
        label = int(np.argmax(net.forward(c[None])[0]))
        for _ in range(5):
            # one row: unsafe iff a·f(x) ≤ b, b near the exact minimum (either side)
            a = rng.normal(size=3)
            low = brute_min(pieces, a, region)
            gap = rng.choice([-1, 1]) * 10 ** rng.uniform(-3, -0.5) * (1 + abs(low))
            spec = Spec([(a[None], np.array([low + gap]))])
            expected = "counterexample" if gap > 0 else "verified"
            res = decide(net, region, spec, options=OPTIONS)
            _check_answer(res, net, region, spec, 0.0, expected, kind)
            verdicts[res.status] = verdicts.get(res.status, 0) + 1
            stages.add(res.stage)
        # robustness of the centre's label: unsafe iff some y_j − y_label ≥ margin
        spec = Spec.label_change(3, label)
        low = min(brute_min(pieces, A[0], region) for A, _ in spec.disjuncts)   # min of y_label − y_j
        gap = rng.choice([-1, 1]) * 10 ** rng.uniform(-3, -0.5) * (1 + abs(low))
        margin = -(low + gap)
        expected = "counterexample" if gap > 0 else "verified"
        res = decide(net, region, spec, margin=margin, options=OPTIONS)
        _check_answer(res, net, region, spec, margin, expected, kind)
        verdicts[res.status] = verdicts.get(res.status, 0) + 1
    assert verdicts["verified"] >= 10 and verdicts["counterexample"] >= 10, verdicts
    if kind == "box":
        assert "bab" in stages, stages


def test_decide_conjunctions_agree_with_brute_force():
    """Disjuncts of several rows (as VNN-LIB properties have) on box regions."""
    rng = np.random.default_rng(9)
    verdicts = {}
    for trial in range(30):
        net, weights = tiny_network(rng)
        c = rng.uniform(0.2, 0.8, 3)
        region = InputBox(c - 0.3, c + 0.3)
        x0 = region.sample(rng, 1)[0]
        y0 = net.forward(x0[None])[0]
        disjuncts = []
        for _ in range(rng.integers(1, 3)):
            A = rng.normal(size=(2, 3))
            disjuncts.append((A, A @ y0 + rng.normal(size=2) * 0.5))
        sat = brute_force_property(weights, region.lo, region.hi, disjuncts, slack=-1e-4)
        if sat != brute_force_property(weights, region.lo, region.hi, disjuncts, slack=1e-4):
            continue                              # too close to the boundary to tell
        spec = Spec(disjuncts)
        res = decide(net, region, spec, options=OPTIONS)
        _check_answer(res, net, region, spec, 0.0, "counterexample" if sat else "verified", "box")
        verdicts[res.status] = verdicts.get(res.status, 0) + 1
    assert len(verdicts) == 2, verdicts


def test_decide_l2_never_wrong():
    rng = np.random.default_rng(21)
    for trial in range(6):
        net, _ = tiny_network(rng)
        c = rng.uniform(0.2, 0.8, 3)
        region = L2Ball(c, 0.3)
        a = rng.normal(size=3)
        pts = region.sample(rng, 4000)
        sampled_min = float((net.forward(pts) @ a).min())
        for thr, can in ((sampled_min + 0.05, "counterexample"), (sampled_min - 0.5, None)):
            spec = Spec([(a[None], np.array([thr]))])
            res = decide(net, region, spec, options=OPTIONS)
            if can == "counterexample":           # a sampled point already violates it
                assert res.status in ("counterexample", "unknown")
            if res.status == "verified":
                assert sampled_min > thr
            if res.status == "counterexample":
                assert contains(region, res.x) and spec.holds(net.forward(res.x[None])[0]) is not None


@pytest.mark.parametrize("seed", [5, 7])
def test_resumed_search_agrees_with_brute_force(seed):
    """A search stopped after its first batch leaves a frontier; continuing from it over the
    same ball or a smaller one (``resume``) gives the brute-force verdict of that ball."""
    rng = np.random.default_rng(seed)
    # the first search branches one subdomain per batch: most stop with a frontier
    ONE_PARENT = EngineOptions(**{**OPTIONS.__dict__, "batch_size": 2})
    verdicts: dict = {}
    for trial in range(40):
        net, weights = tiny_network(rng, n_in=4, hidden=(6, 5), n_out=3)
        c = rng.uniform(0.3, 0.7, 4)
        big, small = LinfBall(c, 0.3), LinfBall(c, rng.choice([0.3, 0.27]))
        a = rng.normal(size=3)
        sampled = float((net.forward(big.sample(rng, 2000)) @ a).min())
        thr = sampled + rng.choice([-1, 1]) * 10 ** rng.uniform(-3, -1.5) * (1 + abs(sampled))
        spec = Spec([(a[None], np.array([thr]))])
        batches: list = []
        first = decide(net, big, spec, options=ONE_PARENT, on_progress=batches.append,
                       should_stop=lambda: len(batches) >= 1)
        if first.frontier is None:
            continue                 # settled before branching, or within one batch
        assert first.status == "interrupted"
        low = brute_min(_pieces(weights, small), a, small)
        if abs(low - thr) < 1e-4 * (1 + abs(low)):
            continue                 # too close to the boundary to tell
        res = decide(net, small, spec, options=OPTIONS, resume=first.frontier)
        assert "resumed_subdomains" in res.stats or res.stage == "attack", res.stats
        _check_answer(res, net, small, spec, 0.0, "counterexample" if low < thr else "verified", "linf")
        verdicts[res.status] = verdicts.get(res.status, 0) + 1
        # a frontier of another spec is ignored: the search starts from the root
        other = Spec([(a[None], np.array([thr - 1.0]))])
        assert "resumed_subdomains" not in decide(net, small, other, options=OPTIONS,
                                                  resume=first.frontier).stats
    assert verdicts.get("verified", 0) >= 3 and sum(verdicts.values()) >= 8, verdicts


# -- search controls -----------------------------------------------------------------------------

def _hard_instance():
    """A tiny network and a spec that only branch and bound proves."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        net, weights = tiny_network(rng)
        c = rng.uniform(0.2, 0.8, 3)
        region = InputBox(c - 0.5, c + 0.5)
        a = rng.normal(size=3)
        low = brute_min(_pieces(weights, region), a, region)
        spec = Spec([(a[None], np.array([low - 0.01 * (1 + abs(low))]))])
        res = decide(net, region, spec, options=OPTIONS)
        if res.stage == "bab" and res.subdomains >= 6:
            return net, region, spec
    pytest.fail("no instance needs branch and bound")


def test_search_controls():
    net, region, spec = _hard_instance()
    stopped = decide(net, region, spec, should_stop=lambda: True, options=OPTIONS)
    assert stopped.status == "interrupted" and stopped.x is None
    timed = decide(net, region, spec, time_limit=0.0, options=OPTIONS)
    assert timed.status == "time_limit"
    # a tiny memory cap: depth-first, still the same verdict
    tiny_cap = EngineOptions(**{**OPTIONS.__dict__, "max_memory_mb": 1e-4})
    res = decide(net, region, spec, options=tiny_cap)
    assert res.status == "verified" and res.stats["bab"]["depth_first_batches"] > 0
    babsr = EngineOptions(**{**OPTIONS.__dict__, "branching": "babsr"})
    assert decide(net, region, spec, options=babsr).status == "verified"
    # a counterexample the caller's runtime refuses is not returned
    a = spec.disjuncts[0][0]
    at_centre = Spec([(-a, -a @ net.forward(region.center[None])[0])])    # holds at the centre
    assert decide(net, region, at_centre, options=OPTIONS).status == "counterexample"
    refused = decide(net, region, at_centre, confirm=lambda x: False, time_limit=20, options=OPTIONS)
    assert refused.status in ("unknown", "time_limit") and refused.x is None


def test_rejects_what_it_cannot_handle():
    from verify.network import Binarize

    rng = np.random.default_rng(0)
    net, _ = tiny_network(rng)
    region = Box(np.full(3, 0.5))
    with pytest.raises(InvalidInputError):
        decide(net, Box(np.full(4, 0.5)), Spec.label_change(3, 0))
    with pytest.raises(InvalidInputError):
        decide(net, region, Spec([(np.ones((1, 4)), np.zeros(1))]))
    bnn = Network((3,), [Binarize(0.5, (3,))] + net.layers)
    with pytest.raises(InvalidInputError):
        decide(bnn, region, Spec.label_change(3, 0))
    # a disjunct without rows: every input is a counterexample
    res = decide(net, region, Spec([(np.zeros((0, 3)), np.zeros(0))]))
    assert res.status == "counterexample" and res.stage == "attack"


def test_time_limit_ends_the_search_with_a_sound_bound():
    """A branch and bound cut short by its time limit answers ``time_limit`` with a bound that
    no sampled point beats (after a warm-up run, so that JIT compilation is not what ends it)."""
    rng = np.random.default_rng(2)
    net, _ = tiny_network(rng, n_in=8, hidden=(48, 48, 48), n_out=2)
    c = rng.uniform(0.3, 0.7, 8)
    region = InputBox(c - 0.5, c + 0.5)
    a = np.array([1.0, -1.0])
    values = net.forward(region.sample(rng, 20000)) @ a
    thr = values.min() - 0.2 * (values.max() - values.min())     # far from any sampled point
    spec = Spec([(a[None], np.array([thr]))])
    batches = []
    warm = decide(net, region, spec, options=OPTIONS, on_progress=batches.append,
                  should_stop=lambda: len(batches) >= 2)
    assert warm.status == "interrupted" and warm.stats["bab"]["batches"] >= 2
    res = decide(net, region, spec, time_limit=1.0, options=OPTIONS)
    assert res.status == "time_limit" and res.x is None and "bab" in res.stats
    assert np.isfinite(res.bound) and res.bound <= values.min() - thr


def test_targeted_attack_finds_what_the_untargeted_one_misses():
    """Disjunct A (``y_0 ≤ −0.1``) is nearer at every start but impossible; disjunct B
    (``y_1 ≤ 0``) holds only near the all-ones corner. Untargeted descent on the minimum
    follows A and stalls; aiming at B finds a counterexample, which the exact check accepts."""
    from verify.engine.attack import Attack
    from verify.engine.concretize import region_arrays
    from verify.engine.model import x64

    n = 20
    W1 = np.zeros((2, n))
    W1[0, 0] = 1.0
    W1[1] = -10.0 / n
    # y = relu(W1 x + b1) − 10: both ReLUs always active, y_0 = x_0, y_1 = 10 (0.97 − mean x)
    net = Network((n,), [Affine(W1, np.array([10.0, 19.7]), (2,)), ReLU((2,)),
                         Affine(np.eye(2), np.full(2, -10.0), (2,))], name="two-ways")
    region = Box(np.full(n, 0.5))
    spec = Spec([(np.array([[1.0, 0.0]]), np.array([-0.1])), (np.array([[0.0, 1.0]]), np.array([0.0]))])
    checked = []

    def check(x):
        checked.append(x)
        return contains(region, x) and spec.holds(net.forward(x[None])[0]) is not None

    cnet = compile_network(net)
    with x64():
        atk = Attack(cnet.plan, "box", cnet.arrays, region_arrays(region), spec.disjuncts, 0.0,
                     region, check, np.random.default_rng(0))
        starts = np.vstack([region.center[None], atk.random_starts(31)])
        assert atk.run(starts, np.full(32, -1), 100) is None
        x = atk.campaign([1, 0], {}, 30.0, 100, 400)
    assert x is not None and spec.holds(net.forward(x[None])[0]) == 1
