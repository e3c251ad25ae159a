"""Branch and bound over ReLU phases (β-CROWN style).

The search works on pairs (disjunct, subdomain). A *subdomain* fixes some unstable ReLU
inputs active (``z ≥ 0``) or inactive (``z ≤ 0``). The lower bound of each of its disjunct's
rows ``c_iᵀ f(x)`` comes from :func:`verify.engine.crown.optimize`: the root's intermediate
bounds clamped by the splits, the split constraints as Lagrangian terms with multipliers
β ≥ 0, and α / β optimised jointly (warm-started from the parent). The disjunct is
impossible on the subdomain when some row's bound exceeds its threshold by the round-off
allowance; the subdomain is then dropped. Otherwise:

* its *concretising point* (the region point where the linear bound of the row closest to
  proving is lowest) is checked on the network — a real violation ends the search;
* it is split on the neuron chosen by the branching rule: **BaBSR-like** scores estimate each
  unstable neuron's effect on the bound from its back-substitution coefficient ``a`` (on the
  ReLU output) and its relaxation intercept ``t = −u l/(u − l)``:
  ``score = max(−a, 0)·t + ½·max(a, 0)·t``; **filtered smart branching** (``fsb``, default)
  then bounds both children of each of the top candidates (one batched back-substitution
  with the parent's α and β, no optimisation) and takes the candidate whose worse child is
  best;
* a subdomain with every unstable neuron split is linear: it is decided exactly by one LP
  (box, L∞ and L1 regions), or one convex QP for L2 regions (the leaf's nearest point to
  the centre), or one small MILP for k-pixel regions (a binary per free pixel); networks
  with max-pools: unknown leaf.

The α / β optimisation and the filtered-smart-branching evaluations run in float32 (option
``float32_search``); each subdomain's bound is then recomputed in float64 at the parameters
found, and only that value decides anything. Every call bounds a batch of fixed size (padded;
the jit-compiled function is traced once per network shape), taken best-first (lowest bound first) from a heap; when the stored subdomains
would exceed the memory cap, new children go to a stack that is worked depth-first until it is
empty again. Every few batches PGD starts from the concretising points of the worst
subdomains.
"""
from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from .concretize import minimizer
from .crown import SAFETY, as_dtype, evaluate, initial_params, optimize

#: Relative margin the float32 search asks for before it stops early (its bound is then
#: recomputed in float64, where :data:`SAFETY` applies).
SLACK32 = 1e-5
from .model import CompiledNetwork


@dataclass
class Domain:
    """One subdomain of one disjunct: split signs (flat over all ReLU neurons), warm-start
    parameters per row (float32), its proven value ``max_i (lb_i − thr_i − safety_i)`` (> 0:
    proved), the neuron to split next (flat index, −1: none left), its depth and its
    concretising point."""

    disjunct: int
    value: float
    splits: np.ndarray
    alphas: tuple
    pools: tuple
    betas: tuple
    branch: int = -1
    depth: int = 0
    point: np.ndarray | None = None


@dataclass
class Frontier:
    """The subdomains a search stopped by its time limit (or a stop request) left open, with
    the disjuncts ``Cs`` / ``thrs`` it was proving. Together with the subdomains it dropped
    (each proven over the whole region), they cover every ReLU phase pattern of every open
    disjunct; so a later search over a region *contained in* that one may start from these
    alone (:meth:`BranchAndBound.resumed`)."""

    domains: list
    Cs: np.ndarray
    thrs: np.ndarray


@dataclass
class BabOutcome:
    status: str                  # "verified", "counterexample", "unknown", "time_limit", "interrupted"
    bound: float                 # lowest value over the open subdomains (proved value if verified)
    counterexample: np.ndarray | None = None
    frontier: Frontier | None = None      # time_limit / interrupted: the open subdomains


class BranchAndBound:
    """Branch and bound over the disjuncts ``Cs`` (K, m, n_out) / ``thrs`` (K, m) (rows padded
    with zero coefficients and infinite thresholds): proves that for every disjunct some row
    has ``C_i f(x) > thr_i`` at every x of the region."""

    def __init__(self, cnet: CompiledNetwork, rkind: str, reg: tuple, region, bnds, Cs, thrs,
                 options, check_point, attack=None, deadline=None, should_stop=None,
                 on_progress=None, screen=None):
        self.cnet, self.plan = cnet, cnet.plan
        self.rkind, self.reg, self.region = rkind, reg, region
        self.bnds = bnds
        self.root_bnd = bnds.jax_bounds(cnet.plan)
        self.fast = bool(getattr(options, "float32_search", True))
        if self.fast:
            self.arrays32 = as_dtype(cnet.arrays, jnp.float32)
            self.reg32 = as_dtype(reg, jnp.float32)
            self.root_bnd32 = as_dtype(self.root_bnd, jnp.float32)
        self.relu_l, self.relu_u = bnds.relu_bounds(cnet.plan)
        self.passthrough = cnet.passthrough()      # identities of masked ReLU layers: never split
        self.Cs = np.asarray(Cs, dtype=np.float64)
        self.thrs = np.asarray(thrs, dtype=np.float64)
        self.m = self.Cs.shape[1]
        self.opt = options
        self.B = 2 * max(1, options.batch_size // 2)
        self.check_point = check_point        # x -> bool (a validated counterexample)
        self.screen = screen                  # points (P, n) -> bool mask worth checking (batched)
        self.attack = attack                  # (starts (S, n), disjuncts (S,)) -> validated point or None
        self.deadline, self.should_stop = deadline, should_stop
        self.on_progress = on_progress
        self.offsets = self.plan.relu_offsets
        self.N = self.offsets[-1]
        self.stats = {"subdomains": 0, "batches": 0, "max_queue": 0, "fsb_evaluations": 0,
                      "leaf_lps": 0, "depth_first_batches": 0, "max_depth": 0}
        self.counter = itertools.count()
        self.unknown_leaves: list[Domain] = []
        self.min_verified = np.inf            # lowest proven value of a dropped subdomain

    def resumed(self, frontier: Frontier) -> list[Domain] | None:
        """The open subdomains of an earlier search over a region containing this one, ready
        to be bounded here (None if it proved other disjuncts). Sound: every subdomain it
        dropped was proven over the larger region, hence over this one. A subdomain whose
        splits this region's bounds contradict (a ReLU fixed active whose input is below 0
        here, or inactive above 0) holds no point of this region and is dropped."""
        if frontier.Cs.shape != self.Cs.shape or not np.array_equal(frontier.Cs, self.Cs) \
                or not np.array_equal(frontier.thrs, self.thrs):
            return None
        out = []
        for d in frontier.domains:
            if np.any((d.splits > 0) & (self.relu_u < 0)) or np.any((d.splits < 0) & (self.relu_l > 0)):
                continue
            out.append(Domain(d.disjunct, -np.inf, d.splits, d.alphas, d.pools, d.betas, -1, d.depth))
        return out

    # -- batches ---------------------------------------------------------------------------------
    def _clamped(self, splits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        l = np.where(splits > 0, np.maximum(self.relu_l, 0.0), self.relu_l)
        u = np.where(splits < 0, np.minimum(self.relu_u, 0.0), self.relu_u)
        return l, u

    def root_domains(self) -> list[Domain]:
        """One unsplit domain per disjunct, with CROWN's starting parameters."""
        alphas, pools = initial_params(self.plan, self.cnet.arrays, self.bnds,
                                       self.plan.num_layers, 1, self.m)
        a0 = tuple(np.asarray(a[0], dtype=np.float32) for a in alphas)
        p0 = tuple(np.asarray(p[0], dtype=np.float32) for p in pools)
        b0 = tuple(np.zeros((self.m, n), dtype=np.float32) for n in self.plan.relu_sizes)
        return [Domain(k, -np.inf, np.zeros(self.N, dtype=np.int8), a0, p0, b0)
                for k in range(self.Cs.shape[0])]

    def bound(self, domains: list[Domain], steps: int) -> tuple:
        """Bound the domains (in padded batches of B) after ``steps`` optimisation steps.

        Returns ``(values, rows, A_rows, coefs, params)``: per domain the proven value, the
        row closest to proving, its input coefficients, its ReLU output coefficients (list
        per ReLU layer, (n_r,)), and the new float32 parameters ``(alphas, pools, betas)``."""
        out_v, out_r, out_A, out_c, out_p = [], [], [], [], []
        for s in range(0, len(domains), self.B):
            part = domains[s:s + self.B]
            v, r, A, c, p = self._bound_batch(part, steps)
            out_v.append(v), out_r.append(r), out_A.append(A), out_c.append(c), out_p.append(p)
        cat = np.concatenate
        coefs = [cat([c[i] for c in out_c]) for i in range(len(out_c[0]))]
        params = tuple([cat([p[g][i] for p in out_p]) for i in range(len(out_p[0][g]))]
                       for g in range(3))
        return cat(out_v), cat(out_r), cat(out_A), coefs, params

    def _bound_batch(self, part: list[Domain], steps: int):
        B, n = self.B, len(part)
        src = np.concatenate([np.arange(n), np.zeros(B - n, dtype=int)])
        ks = np.array([part[i].disjunct for i in src])
        splits = np.stack([part[i].splits for i in src])
        sp_t = tuple(jnp.asarray(splits[:, a:b]) for a, b in zip(self.offsets[:-1], self.offsets[1:]))

        def stacked(group: str):
            per = [getattr(part[i], group) for i in src]
            return tuple(jnp.asarray(np.stack([x[j] for x in per]), dtype=jnp.float64)
                         for j in range(len(per[0])))

        C, thr = jnp.asarray(self.Cs[ks]), jnp.asarray(self.thrs[ks])
        valid = jnp.asarray(np.arange(B) < n)
        L = self.plan.num_layers
        a, p, b = stacked("alphas"), stacked("pools"), stacked("betas")
        if self.fast:
            # optimise in float32 (several times faster), then bound once in float64 at the
            # parameters found: only that last evaluation is trusted
            _, _, A_in, coefs, params = optimize(
                self.plan, self.rkind, L, B, self.arrays32, self.reg32, as_dtype(C, jnp.float32),
                as_dtype(thr, jnp.float32), self.root_bnd32, *as_dtype((a, p), jnp.float32), sp_t,
                as_dtype(b, jnp.float32), valid, steps, self.opt.lr_alpha, self.opt.lr_beta,
                self.opt.decay, SLACK32)
            a, p, b = as_dtype(params, jnp.float64)
            lb, mag = evaluate(self.plan, self.rkind, L, B, self.cnet.arrays, self.reg, C,
                               self.root_bnd, a, p, sp_t, b)
            params = (a, p, b)
        else:
            lb, mag, A_in, coefs, params = optimize(
                self.plan, self.rkind, L, B, self.cnet.arrays, self.reg, C, thr, self.root_bnd,
                a, p, sp_t, b, valid, steps, self.opt.lr_alpha, self.opt.lr_beta, self.opt.decay)
        lb, mag = np.asarray(lb)[:n], np.asarray(mag)[:n]
        thr_np = self.thrs[ks[:n]]
        tol = SAFETY * (1.0 + mag + np.abs(lb))
        with np.errstate(invalid="ignore"):
            values = np.max(lb - thr_np - tol, axis=1)
            rows = np.argmax(lb - thr_np, axis=1)
        pick = np.arange(n)
        A_rows = np.asarray(A_in)[pick, rows]
        coefs = [np.asarray(c)[pick, rows] for c in coefs]
        params = tuple([np.asarray(x, dtype=np.float32)[:n] for x in group] for group in params)
        self.stats["subdomains"] += n if steps > 0 else 0
        return values, rows, A_rows, coefs, params

    def evaluate(self, ks: np.ndarray, splits: np.ndarray, alphas: list, pools: list,
                 betas: list) -> np.ndarray:
        """Proven values of subdomains given as stacked arrays (disjuncts (D,), splits (D, N),
        parameters per layer (D, m, ...)) — no optimisation, no gradient: one
        back-substitution each, in padded batches (of ``B · 2 · fsb_candidates``: the size
        one round of filtered smart branching needs)."""
        out = []
        B = self.B * 2 * max(1, self.opt.fsb_candidates)
        for s in range(0, len(ks), B):
            n = min(B, len(ks) - s)
            idx = np.concatenate([np.arange(s, s + n), np.full(B - n, s)])
            sp = splits[idx]
            sp_t = tuple(jnp.asarray(sp[:, a:b]) for a, b in zip(self.offsets[:-1], self.offsets[1:]))

            def pick(group):
                return tuple(jnp.asarray(x[idx], dtype=jnp.float64) for x in group)

            # a heuristic only: float32 where allowed
            dt = jnp.float32 if self.fast else jnp.float64
            lb, mag = evaluate(self.plan, self.rkind, self.plan.num_layers, B,
                               self.arrays32 if self.fast else self.cnet.arrays,
                               self.reg32 if self.fast else self.reg,
                               jnp.asarray(self.Cs[ks[idx]], dtype=dt),
                               self.root_bnd32 if self.fast else self.root_bnd,
                               as_dtype(pick(alphas), dt), as_dtype(pick(pools), dt), sp_t,
                               as_dtype(pick(betas), dt))
            lb, mag = np.asarray(lb)[:n], np.asarray(mag)[:n]
            tol = SAFETY * (1.0 + mag + np.abs(lb))
            with np.errstate(invalid="ignore"):
                out.append(np.max(lb - self.thrs[ks[s:s + n]] - tol, axis=1))
        return np.concatenate(out) if out else np.zeros(0)

    @staticmethod
    def _with_params(d: Domain, params, i: int, value: float) -> Domain:
        a, p, b = params
        return Domain(d.disjunct, float(value), d.splits, tuple(x[i] for x in a),
                      tuple(x[i] for x in p), tuple(x[i] for x in b), d.branch, d.depth, d.point)

    # -- branching -------------------------------------------------------------------------------
    def branch_scores(self, domains: list[Domain], coefs: list) -> np.ndarray:
        """BaBSR-like scores (D, N) of every neuron; −inf where not branchable."""
        scores = np.full((len(domains), self.N), -np.inf)
        a_all = np.concatenate(coefs, axis=1) if coefs else np.zeros((len(domains), 0))
        for i, d in enumerate(domains):
            l, u = self._clamped(d.splits)
            unstable = (l < 0) & (u > 0) & (d.splits == 0) & ~self.passthrough
            if not unstable.any():
                continue
            a = a_all[i]
            den = np.where(unstable, u - l, 1.0)
            t = np.where(unstable, -u * l / den, 0.0)
            s = np.maximum(-a, 0.0) * t + 0.5 * np.maximum(a, 0.0) * t
            scores[i] = np.where(unstable, s + 1e-12 * t, -np.inf)
        return scores

    def choose_branches(self, domains: list[Domain], coefs: list) -> None:
        """Set ``branch`` of each domain (−1 when every unstable neuron is split)."""
        scores = self.branch_scores(domains, coefs)
        has = np.isfinite(scores.max(axis=1)) if scores.size else np.zeros(len(domains), bool)
        for i, d in enumerate(domains):
            d.branch = int(np.argmax(scores[i])) if has[i] else -1
        K = self.opt.fsb_candidates
        todo = [i for i in range(len(domains)) if has[i]]
        if self.opt.branching != "fsb" or K <= 1 or not todo:
            return
        cand = np.argsort(-scores[todo], axis=1)[:, :K]
        ok = np.take_along_axis(np.isfinite(scores[todo]), cand, axis=1)
        K = cand.shape[1]
        # every (domain, candidate, side): the parent's parameters, one more split
        U = len(todo)
        src = np.repeat(np.asarray(todo), 2 * K)
        ks = np.array([domains[i].disjunct for i in todo])[np.repeat(np.arange(U), 2 * K)]
        splits = np.stack([domains[i].splits for i in todo])[np.repeat(np.arange(U), 2 * K)].copy()
        splits[np.arange(src.size), np.repeat(cand.ravel(), 2)] = np.tile(np.array([1, -1], np.int8), U * K)
        rep = np.repeat(np.arange(U), 2 * K)

        def group(name):
            per = [getattr(domains[i], name) for i in todo]
            return [np.stack([p[j] for p in per])[rep] for j in range(len(per[0]))]

        values = self.evaluate(ks, splits, group("alphas"), group("pools"), group("betas"))
        trials = src
        self.stats["fsb_evaluations"] += len(trials)
        vals = np.where(ok, values.reshape(len(todo), K, 2).min(axis=2), -np.inf)
        for row, i in enumerate(todo):
            domains[i].branch = int(cand[row, int(np.argmax(vals[row]))])

    # -- leaves ----------------------------------------------------------------------------------
    def leaf(self, d: Domain) -> tuple[str, np.ndarray | None]:
        """Decide a fully split subdomain exactly: ``("verified", None)``,
        ``("counterexample", x)`` or ``("unknown", None)``."""
        from scipy.optimize import linprog

        self.stats["leaf_lps"] += 1
        if self.plan.pool_layers or self._stop():      # past the time limit: no more solves
            return "unknown", None
        net, region, splits = self.cnet.network, self.region, d.splits
        n = region.size
        l, _ = self._clamped(splits)
        M, v = np.eye(n), np.zeros(n)
        G, g = [], []                        # rows G x ≤ g
        r = 0
        for layer, kind in zip(net.layers, self.plan.kinds):
            if kind in ("dense", "sparse"):
                M = np.asarray(layer.weight @ M)
                v = np.asarray(layer.weight @ v).ravel() + layer.bias
                continue
            a, b = self.offsets[r], self.offsets[r + 1]
            sgn = splits[a:b]
            for i in np.flatnonzero(sgn > 0):
                G.append(-M[i]), g.append(v[i])
            for i in np.flatnonzero(sgn < 0):
                G.append(M[i]), g.append(-v[i])
            active = (l[a:b] >= 0) | self.passthrough[a:b]
            M, v = M * active[:, None], v * active
            r += 1
        keep = np.isfinite(self.thrs[d.disjunct])
        C, thr = self.Cs[d.disjunct][keep], self.thrs[d.disjunct][keep]
        G = np.vstack(G + list(C @ M))
        g = np.concatenate([np.asarray(g), thr - C @ v])
        k = C.shape[0]
        bounds = list(zip(region.lo, region.hi))

        def solve(slack):
            rhs = g.copy()
            rhs[-k:] += slack * (1 + np.abs(rhs[-k:]))
            if self.rkind == "l1":       # variables [x, t]: t ≥ |x − c|, Σ t ≤ ε
                I = np.eye(n)
                A_ub = np.vstack([np.hstack([G, np.zeros((G.shape[0], n))]),
                                  np.hstack([I, -I]), np.hstack([-I, -I]),
                                  np.concatenate([np.zeros(n), np.ones(n)])[None]])
                b_ub = np.concatenate([rhs, region.center, -region.center, [region.eps]])
                res = linprog(np.zeros(2 * n), A_ub=A_ub, b_ub=b_ub,
                              bounds=bounds + [(0, None)] * n, method="highs")
                return res.status, (res.x[:n] if res.status == 0 else None)
            if self.rkind == "l2":
                return self._l2_leaf(G, rhs, region)
            if self.rkind == "l0":
                return self._l0_leaf(G, rhs, region)
            res = linprog(np.zeros(n), A_ub=G, b_ub=rhs, bounds=bounds, method="highs")
            return res.status, (res.x if res.status == 0 else None)

        status, x = solve(1e-6)
        if status == 2:                  # infeasible even with the rows relaxed
            return "verified", None
        if status != 0:
            return "unknown", None
        for cand in (x, solve(-1e-6)[1]):
            if cand is not None:
                cand = np.clip(cand, region.lo, region.hi)
                if self.check_point(cand):
                    return "counterexample", cand
        return "unknown", None

    @staticmethod
    def _l2_leaf(G: np.ndarray, rhs: np.ndarray, region) -> tuple[int, np.ndarray | None]:
        """An L2 leaf as a convex QP (HiGHS): the point of ``G x ≤ rhs`` within the box
        nearest the centre. Farther than the radius (with a relative allowance of 1e-7 for the
        solver's tolerances): status 2 (no point of the ball, as linprog's "infeasible");
        else status 0 and the nearest point (pulled into the ball), or 4 if undecided."""
        from ..backends import get_backend
        from ..problem import ProblemBuilder

        n, c = region.size, region.center
        b = ProblemBuilder("l2-leaf")
        x = b.add_vars("x", n, region.lo, region.hi)
        b.add_matrix_rows(G, x, -np.inf, rhs)
        b.add_quadratic(x, x, np.full(n, 2.0))
        b.set_cost(x, -2 * c)
        b.offset = float(c @ c)
        res = get_backend("highs").solve(b.build())
        if res.status == "infeasible":
            return 2, None
        if res.status != "optimal" or res.x is None:
            return 4, None
        eps2 = float(region.eps) ** 2
        if res.objective > eps2 * (1 + 1e-7) + 1e-12:
            return 2, None
        p = np.asarray(res.x[:n], dtype=np.float64)
        d = p - c
        norm = float(np.sqrt(d @ d))
        if norm > region.eps:
            p = c + d * (region.eps * (1 - 1e-12) / norm)
        return 0, p

    @staticmethod
    def _l0_leaf(G: np.ndarray, rhs: np.ndarray, region) -> tuple[int, np.ndarray | None]:
        """A k-pixel leaf as a small MILP (HiGHS): a point of ``G x ≤ rhs`` within the box
        that changes at most k pixels (a binary per free pixel). Status 2: none; 0 and the
        point (unchanged pixels exactly at the centre); 4 if undecided."""
        from ..backends import get_backend
        from ..problem import ProblemBuilder

        free = np.flatnonzero(region.hi > region.lo)
        c, lo, hi = region.center, region.lo, region.hi
        b = ProblemBuilder("l0-leaf")
        x = b.add_vars("x", region.size, lo, hi)
        z = b.add_vars("z", free.size, 0.0, 1.0, integer=True)
        b.add_matrix_rows(G, x, -np.inf, rhs)
        m = free.size
        if m:
            # x_i − c_i ≤ (hi_i − c_i) z_i and c_i − x_i ≤ (c_i − lo_i) z_i
            up = np.hstack([np.eye(m), -np.diag(hi[free] - c[free])])
            down = np.hstack([-np.eye(m), -np.diag(c[free] - lo[free])])
            cols = np.concatenate([x[free], z])
            b.add_matrix_rows(up, cols, -np.inf, -c[free])
            b.add_matrix_rows(down, cols, -np.inf, c[free])
            b.add_matrix_rows(np.ones((1, m)), z, -np.inf, float(region.k))
        res = get_backend("highs").solve(b.build())
        if res.status == "infeasible":
            return 2, None
        if res.x is None:
            return 4, None
        p = np.array(c, dtype=np.float64)
        if m:
            moved = np.asarray(res.x)[z] > 0.5
            p[free[moved]] = np.asarray(res.x)[x[free[moved]]]
        return 0, p

    # -- the search ------------------------------------------------------------------------------
    def _stop(self) -> str | None:
        if self.should_stop is not None and self.should_stop():
            return "interrupted"
        if self.deadline is not None and time.perf_counter() > self.deadline:
            return "time_limit"
        return None

    def _settle(self, domains: list[Domain], values, rows, A_rows, coefs, params) -> tuple:
        """Update the domains with new bounds; returns (open domains, counterexample or None)."""
        keep = [i for i in range(len(domains)) if values[i] <= 0]
        proved = values[values > 0]
        if proved.size:
            self.min_verified = min(self.min_verified, float(proved.min()))
        if not keep:
            return [], None
        points = minimizer(self.rkind, self.region, A_rows[keep])
        flagged = self.screen(points) if self.screen is not None else np.ones(len(keep), bool)
        for x in points[flagged]:
            if self.check_point(x):
                return [], x
        open_ = []
        for i, x in zip(keep, points):
            nd = self._with_params(domains[i], params, i, values[i])
            nd.point = x
            open_.append(nd)
        self.choose_branches(open_, [c[keep] for c in coefs])
        return open_, None

    def run(self, roots: list[Domain]) -> BabOutcome:
        """Branch and bound from the given (already bounded, branched) open domains."""
        opt = self.opt
        per_domain = self.N + 4 * sum(x.size for d in roots[:1] for g in (d.alphas, d.pools, d.betas)
                                      for x in g) + 300
        cap = max(1, int(opt.max_memory_mb * 1e6 / per_domain))
        heap: list = []
        stack: list = []

        def lowest() -> float:
            vals = ([heap[0][0]] if heap else []) + [d.value for d in stack + self.unknown_leaves]
            return min(vals) if vals else self.min_verified

        def stopped(why: str) -> BabOutcome:
            left = [entry[2] for entry in heap] + stack + self.unknown_leaves
            for d in left:
                d.point = None
            return BabOutcome(why, lowest(), frontier=Frontier(left, self.Cs, self.thrs))

        def push(d: Domain) -> BabOutcome | None:
            if d.branch < 0:
                status, x = self.leaf(d) if opt.leaf_lp else ("unknown", None)
                if status == "counterexample":
                    return BabOutcome("counterexample", d.value, x)
                if status == "unknown":
                    self.unknown_leaves.append(d)
                return None
            if len(heap) + len(stack) >= cap:
                stack.append(d)
            else:
                heapq.heappush(heap, (d.value, next(self.counter), d))
            return None

        for d in roots:
            out = push(d)
            if out is not None:
                return out
        half = self.B // 2
        batch_s = 0.0                # seconds of the latest batch (its attack included)
        while heap or stack:
            self.stats["max_queue"] = max(self.stats["max_queue"], len(heap) + len(stack))
            why = self._stop()
            if why is None and self.deadline is not None and (
                    time.perf_counter() + 0.5 * batch_s > self.deadline):
                why = "time_limit"   # the next batch would end well past the deadline
            if why:
                return stopped(why)
            t_batch = time.perf_counter()
            parents = []
            if stack:
                self.stats["depth_first_batches"] += 1
                while stack and len(parents) < half:
                    parents.append(stack.pop())
            while heap and len(parents) < half:
                parents.append(heapq.heappop(heap)[2])
            children = []
            for d in parents:
                for sign in (1, -1):
                    s = d.splits.copy()
                    s[d.branch] = sign
                    children.append(Domain(d.disjunct, d.value, s, d.alphas, d.pools, d.betas,
                                           -1, d.depth + 1))
                self.stats["max_depth"] = max(self.stats["max_depth"], d.depth + 1)
            self.stats["batches"] += 1
            open_, x = self._settle(children, *self.bound(children, opt.bab_steps))
            if x is not None:
                return BabOutcome("counterexample", lowest(), x)
            for d in open_:
                out = push(d)
                if out is not None:
                    return out
            if (open_ and self.attack is not None and opt.attack_every
                    and self.stats["batches"] % opt.attack_every == 0):
                worst = sorted(open_, key=lambda d: d.value)[: opt.attack_starts]
                x = self.attack(np.stack([d.point for d in worst]),
                                np.array([d.disjunct for d in worst]))
                if x is not None:
                    return BabOutcome("counterexample", lowest(), x)
            for d in open_:
                d.point = None          # only the current batch's points are attacked from
            batch_s = time.perf_counter() - t_batch
            if self.on_progress is not None:
                self.on_progress({"open": len(heap) + len(stack), "bound": lowest(), **self.stats})
        if self.unknown_leaves:
            return BabOutcome("unknown", min(d.value for d in self.unknown_leaves))
        return BabOutcome("verified", self.min_verified)
