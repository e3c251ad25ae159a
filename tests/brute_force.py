"""Exact minimal adversarial distances on tiny dense ReLU networks by enumeration, independent
of verify's encoders: every ReLU phase pattern makes the network affine on a polyhedron, so
the minimum over each (pattern, winning label) piece is an LP (card, L1, L∞; card also
enumerates the subset of changed pixels) or a convex QP (L2), and the answer is the least
over all pieces."""
from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import linprog


def _affine_pieces(weights):
    """For each phase pattern: (A, a) with logits = A x + a, and rows (G, g) with G x + g ≥ 0
    expressing the pattern's sign conditions."""
    layers = [(weights[i].T, weights[i + 1]) for i in range(0, len(weights), 2)]
    hidden = [W.shape[0] for W, _ in layers[:-1]]
    for pattern in itertools.product([0, 1], repeat=sum(hidden)):
        n_in = layers[0][0].shape[1]
        A, a = np.eye(n_in), np.zeros(n_in)
        G, g, pos = [], [], 0
        for W, b in layers[:-1]:
            Z, z = W @ A, W @ a + b
            phase = np.array(pattern[pos:pos + W.shape[0]])
            pos += W.shape[0]
            sign = np.where(phase == 1, 1.0, -1.0)
            G.append(sign[:, None] * Z)
            g.append(sign * z)
            A, a = Z * phase[:, None], z * phase
        W, b = layers[-1]
        yield W @ A, W @ a + b, np.vstack(G), np.concatenate(g)


def _property_rows(A, a, label, target, margin):
    """List of alternatives, each rows (H, h) with H x + h ≥ margin for all rows."""
    n_out = A.shape[0]
    if n_out == 1:
        s = 1.0 if label == 0 else -1.0
        return [(s * A, s * a)]
    if target is not None:
        rest = [j for j in range(n_out) if j != target]
        return [(A[target] - A[rest], a[target] - a[rest])]
    return [((A[j] - A[label])[None], np.array([a[j] - a[label]])) for j in range(n_out) if j != label]


def brute_force_min(weights, center, norm, label, target=None, margin=1e-3) -> float:
    """The minimal distance (changed pixels, L1, squared L2, L∞) or inf if none exists."""
    from verify.backends import get_backend
    from verify.problem import ProblemBuilder

    n = center.size
    best = np.inf
    subsets = ([np.array(s, dtype=bool) for s in itertools.product([0, 1], repeat=n)]
               if norm == "card" else [np.ones(n, dtype=bool)])
    for A, a, G, g in _affine_pieces(weights):
        for H, h in _property_rows(A, a, label, target, margin):
            # constraints over x: G x ≥ -g, H x ≥ margin - h, 0 ≤ x ≤ 1
            M = np.vstack([G, H])
            rhs = np.concatenate([-g, margin - h])
            for free in subsets:
                if norm == "card" and free.sum() >= best:
                    continue
                bounds = [(0, 1) if f else (c, c) for f, c in zip(free, center)]
                if norm == "card":
                    res = linprog(np.zeros(n), A_ub=-M, b_ub=-rhs, bounds=bounds, method="highs")
                    if res.status == 0:
                        best = min(best, float(free.sum()))
                    continue
                if norm == "l2":
                    b = ProblemBuilder()
                    x = b.add_vars("x", n, [lo for lo, _ in bounds], [hi for _, hi in bounds])
                    b.add_matrix_rows(M, x, rhs, np.inf)
                    b.add_quadratic(x, x, np.full(n, 2.0))
                    b.set_cost(x, -2 * center)
                    b.offset = float(center @ center)
                    r = get_backend("highs").solve(b.build())
                    if r.status == "optimal":
                        best = min(best, r.objective)
                    continue
                # L1 / L∞ via auxiliary t: variables [x, t]
                k = n if norm == "l1" else 1
                c = np.r_[np.zeros(n), np.ones(k)]
                T = np.eye(n) if norm == "l1" else np.ones((n, 1))
                A_ub = np.vstack([np.c_[-M, np.zeros((M.shape[0], k))],
                                  np.c_[np.eye(n), -T], np.c_[-np.eye(n), -T]])
                b_ub = np.r_[-rhs, center, -center]
                res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=bounds + [(0, None)] * k, method="highs")
                if res.status == 0:
                    best = min(best, float(res.fun))
    return best


def brute_force_property(weights, lower, upper, disjuncts, slack: float = 0.0) -> bool:
    """Whether some x in the box [lower, upper] has logits y with ``A y ≤ b + slack`` for some
    (A, b) of ``disjuncts`` (a VNN-LIB property is then sat): one LP per phase pattern and
    disjunct, by scipy alone."""
    bounds = list(zip(lower, upper))
    for A, a, G, g in _affine_pieces(weights):
        for P, b in disjuncts:
            P = np.atleast_2d(P)
            # G x + g ≥ 0 and P (A x + a) ≤ b + slack, as A_ub x ≤ b_ub
            M = np.vstack([-G, P @ A])
            rhs = np.concatenate([g, b + slack - P @ a])
            res = linprog(np.zeros(len(lower)), A_ub=M, b_ub=rhs, bounds=bounds, method="highs")
            if res.status == 0:
                return True
    return False
