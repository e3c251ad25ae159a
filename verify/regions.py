"""Input regions: the sets of images a query ranges over.

Every region is a subset of a per-pixel box ``[lo, hi]`` (always inside the valid pixel range
[0, 1], and with ``lo = hi`` = the image's value for pixels held fixed by a mask). On top of
the box a region may add a budget around its centre:

================  ===========================================  ==========================
region            set of images x                              exact in a MIP?
================  ===========================================  ==========================
:class:`Box`      lo ≤ x ≤ hi                                  yes
:class:`LinfBall` |x − c|∞ ≤ ε (a Box)                         yes
:class:`L1Ball`   Σ|x_i − c_i| ≤ ε                             yes (auxiliary columns)
:class:`L2Ball`   Σ(x_i − c_i)² ≤ ε²                           no: the MIP uses its box
:class:`L0Ball`   at most k pixels differ from c               yes (binary columns)
================  ===========================================  ==========================

:class:`PixelReveal` (the view of a debate's judge) is a finite set: each pixel shows its
value or 0, with at most k more shown than already revealed; exact in a MIP (binary columns).

Each region gives the exact minimum and maximum of any linear
function over itself (:meth:`Region.linear_bounds`) — the first-layer rule of interval
bounds and the concretisation step of symbolic bounds — and adds its budget to a problem
(:meth:`Region.encode`).
"""
from __future__ import annotations

import numpy as np

from .errors import InvalidInputError


def _as_flat(x, n: int | None = None, what: str = "image") -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).ravel()
    if n is not None and arr.size != n:
        raise InvalidInputError(f"{what} has {arr.size} values, expected {n}")
    return arr


class Region:
    """Base: the box ``[lo, hi]`` around ``center``. Subclasses add a budget."""

    exact_in_mip = True
    valid_range = (0.0, 1.0)    # every input value lies in this range (pixels)

    def __init__(self, center, lo=0.0, hi=1.0, free=None):
        self.center = _as_flat(center)
        n = self.center.size
        low, high = self.valid_range
        if np.any(self.center < low) or np.any(self.center > high) or not np.all(np.isfinite(self.center)):
            raise InvalidInputError(f"image values must lie in [{low:g}, {high:g}]")
        self.lo = np.clip(np.broadcast_to(np.asarray(lo, dtype=np.float64), (n,)), low, high).copy()
        self.hi = np.clip(np.broadcast_to(np.asarray(hi, dtype=np.float64), (n,)), low, high).copy()
        if free is not None:
            free = np.asarray(free, dtype=bool).ravel()
            if free.size != n:
                raise InvalidInputError(f"free mask has {free.size} entries, expected {n}")
            self.lo[~free], self.hi[~free] = self.center[~free], self.center[~free]
        if np.any(self.lo > self.hi):
            raise InvalidInputError("empty region: some pixel has lower bound above upper bound")

    @property
    def size(self) -> int:
        return self.center.size

    @property
    def free(self) -> np.ndarray:
        """Mask of pixels that may change."""
        return self.hi > self.lo

    def describe(self) -> str:
        return f"box ({int(self.free.sum())} free pixels)"

    # -- bounds of linear functions --------------------------------------------------------
    def linear_bounds(self, A, c=0.0) -> tuple[np.ndarray, np.ndarray]:
        """Min and max over the region of each row of ``A x + c`` (A: (m, n) dense or sparse)."""
        return self._box_bounds(A, c)

    def _box_bounds(self, A, c):
        A = _dense(A)
        pos, neg = np.maximum(A, 0), np.minimum(A, 0)
        lower = pos @ self.lo + neg @ self.hi + c
        upper = pos @ self.hi + neg @ self.lo + c
        return lower, upper

    def _deviation_gains(self, A):
        """Per row and pixel: the most ``A x`` can rise (up) and fall (down) by moving that
        pixel alone from the centre within its box; both ≥ 0."""
        A = _dense(A)
        to_hi, to_lo = self.hi - self.center, self.lo - self.center   # ≥ 0 and ≤ 0
        up = np.maximum(A * to_hi, A * to_lo)
        down = -np.minimum(A * to_hi, A * to_lo)
        return A, up, down

    # -- encoding --------------------------------------------------------------------------
    def encode(self, builder, input_cols: np.ndarray, free_idx: np.ndarray) -> dict:
        """Add the region's budget over the free pixels' columns. Returns named auxiliary
        column blocks (e.g. ``{"changed": cols}``) that objectives may reuse."""
        return {}

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """Random points of the region (some on its boundary), shape (count, n)."""
        x = rng.uniform(self.lo, self.hi, size=(count, self.size))
        corners = rng.random((count, self.size)) < 0.5
        x[: count // 4] = np.where(corners[: count // 4], self.lo, self.hi)
        return x


def _dense(A):
    return A.toarray() if hasattr(A, "toarray") else np.atleast_2d(np.asarray(A, dtype=np.float64))


class Box(Region):
    """Pixels independently in ``[lo, hi]`` (default: the full range [0, 1])."""


class InputBox(Region):
    """Inputs independently in ``[lo, hi]``, any finite real bounds (not only pixels): the
    input sets of VNN-LIB properties, for networks whose inputs are not images in [0, 1]."""

    valid_range = (-np.inf, np.inf)

    def __init__(self, lo, hi):
        lo, hi = _as_flat(lo, what="lower bounds"), _as_flat(hi, what="upper bounds")
        if lo.size != hi.size:
            raise InvalidInputError(f"{lo.size} lower bounds but {hi.size} upper bounds")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise InvalidInputError("input bounds must be finite")
        super().__init__((lo + hi) / 2, lo, hi)

    def describe(self) -> str:
        return f"input box ({int(self.free.sum())} of {self.size} inputs free)"


class _Ball(Region):
    """Base of the norm balls: the box ``center ± eps`` within [0, 1], plus the ball itself."""

    norm_name = ""

    def __init__(self, center, eps: float, free=None):
        if eps < 0:
            raise InvalidInputError(f"eps must be ≥ 0, got {eps}")
        c = _as_flat(center)
        super().__init__(c, c - eps, c + eps, free)
        self.eps = float(eps)

    def describe(self) -> str:
        return f"{self.norm_name} ball ε={self.eps}"


class LinfBall(_Ball):
    """The L∞ ball ``|x − c|∞ ≤ eps`` intersected with [0, 1]: a box."""

    norm_name = "L∞"


class L1Ball(_Ball):
    """``Σ|x_i − c_i| ≤ eps`` within the box. Exact bounds by a fractional knapsack
    (:func:`knapsack_gain`)."""

    norm_name = "L1"

    def linear_bounds(self, A, c=0.0):
        A = _dense(A)
        base = A @ self.center + c
        # moving pixel i costs |δ_i| and changes A x at rate |A_i|: greedy by rate
        caps_up = np.where(A >= 0, self.hi - self.center, self.center - self.lo)
        caps_down = np.where(A >= 0, self.center - self.lo, self.hi - self.center)
        rate = np.abs(A)
        return (base - knapsack_gain(rate, caps_down, self.eps),
                base + knapsack_gain(rate, caps_up, self.eps))

    def encode(self, builder, input_cols, free_idx):
        t = add_abs_deviation(builder, input_cols, self.center[free_idx], "region.l1_abs")
        builder.add_rows(np.zeros(t.size), t, np.ones(t.size), -np.inf, self.eps, count=1)
        return {"abs_change": t}

    def sample(self, rng, count):
        n = self.size
        delta = rng.laplace(size=(count, n)) * self.free
        norms = np.abs(delta).sum(axis=1, keepdims=True) + 1e-12
        delta *= self.eps * rng.random((count, 1)) / norms
        for k in range(min(count // 4, count)):        # all budget on one pixel
            delta[k] = 0
            i = rng.choice(np.flatnonzero(self.free)) if self.free.any() else 0
            delta[k, i] = self.eps * rng.choice([-1, 1])
        return np.clip(self.center + delta, self.lo, self.hi)


class L2Ball(_Ball):
    """``Σ(x_i − c_i)² ≤ eps²`` within the box.

    Linear bounds are exact (:func:`l2_box_gain`: the ball and the box together, not the
    looser of the two alone). In a MIP the region is represented by its box only — an outer
    approximation — so exact L2 questions are posed as a minimal-L2 objective instead.
    """

    exact_in_mip = False
    norm_name = "L2"

    def linear_bounds(self, A, c=0.0):
        A = _dense(A)
        base = A @ self.center + c
        caps_up = np.where(A >= 0, self.hi - self.center, self.center - self.lo)
        caps_down = np.where(A >= 0, self.center - self.lo, self.hi - self.center)
        rate = np.abs(A)
        return (base - l2_box_gain(rate, caps_down, self.eps)[0],
                base + l2_box_gain(rate, caps_up, self.eps)[0])

    def sample(self, rng, count):
        delta = rng.normal(size=(count, self.size)) * self.free
        delta *= self.eps * rng.random((count, 1)) ** (1 / 8) / (
            np.linalg.norm(delta, axis=1, keepdims=True) + 1e-12)
        return np.clip(self.center + delta, self.lo, self.hi)


#: The multiplier :func:`l2_box_gain` reports when every cap fits in the ball.
UNBOUNDED = 1e30


def _same(v):
    return v


def l2_box_gain(rate, cap, eps, xp=np, iterations: int | None = None, freeze=_same):
    """Per row (last axis): an upper bound, exact once converged, on ``max Σ rate_i·t_i`` with
    ``0 ≤ t_i ≤ cap_i`` and ``Σ t_i² ≤ eps²`` (``rate``, ``cap`` ≥ 0), and the multiplier
    ``λ`` used (:data:`UNBOUNDED` when every cap fits in the ball).

    How far a linear function ``aᵀx`` can fall over the L2 ball within the box is this with
    ``rate = |a|`` and ``cap_i`` the room pixel i has in the falling direction. Maths: for any
    ``λ > 0`` weak duality gives the bound ``D(λ) = Σ (rate_i t_i − t_i²/(2λ)) + eps²/(2λ)``
    with ``t_i = min(cap_i, λ·rate_i)`` (the maximiser of the Lagrangian with multiplier
    ``1/(2λ)``), equal to the maximum at the ``λ*`` where ``φ(λ) = Σ min(cap_i, λ·rate_i)²``
    reaches ``eps²``. ``λ*`` is found by the active-set iteration
    ``λ ← √((eps² − S) / R)`` (``S``: Σ cap² of the pixels saturated at ``λ``, ``R``: Σ rate²
    of the others) from ``λ₀ = eps / ‖rate‖``: it rises monotonically and is exact once no
    new pixel saturates (at most one step per pixel; ``iterations=None``: until then, numpy
    only; a fixed count in JAX, where an unconverged ``λ`` only loosens the bound, never
    unsound). ``xp``: the array module; ``freeze``: applied to ``λ`` (JAX passes
    ``lax.stop_gradient``: by the envelope theorem the gradient needs none through ``λ``).
    """
    rate = xp.asarray(rate)
    cap = xp.broadcast_to(xp.asarray(cap), rate.shape)
    eps2 = xp.asarray(eps) ** 2
    room = cap > 0
    total = xp.sum(xp.where(room, rate * rate, 0.0), axis=-1, keepdims=True)
    tiny = xp.finfo(rate.dtype).tiny
    lam = xp.sqrt(eps2 / xp.maximum(total, tiny))
    for _ in range(rate.shape[-1] + 1 if iterations is None else iterations):
        free = lam * rate < cap
        S = xp.sum(xp.where(free, 0.0, cap * cap), axis=-1, keepdims=True)
        R = xp.sum(xp.where(free, rate * rate, 0.0), axis=-1, keepdims=True)
        nxt = xp.where(R > 0, xp.sqrt(xp.maximum(eps2 - S, 0.0) / xp.where(R > 0, R, 1.0)),
                       UNBOUNDED)
        if iterations is None and np.array_equal(nxt, lam):
            break
        lam = nxt
    lam = xp.maximum(freeze(lam), tiny)
    t = xp.minimum(cap, lam * rate)
    gain = xp.sum(rate * t, axis=-1) + (eps2 - xp.sum(t * t, axis=-1)) * (0.5 / lam[..., 0])
    return xp.where(eps2 > 0, gain, 0.0), lam[..., 0]


def bisect_threshold(top, rises, iterations: int, xp=np):
    """Per row: bracket by bisection on ``[0, top]`` (``top``: shape (..., 1)) the threshold
    where the monotone test ``rises(θ)`` (True where the threshold must go higher) turns
    False. Returns ``(lo, hi)``: ``rises`` held at every ``lo`` it moved to, failed at every
    ``hi`` (the ends never tested stay 0 and ``top``). The knapsack's threshold, the L1
    projection's soft threshold and the attack's "few largest" all use it."""
    lo, hi = xp.zeros_like(top), top
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        up = rises(mid)
        lo, hi = xp.where(up, mid, lo), xp.where(up, hi, mid)
    return lo, hi


def knapsack_gain(rate, cap, budget, xp=np, iterations: int = 64, freeze=_same):
    """Per row (last axis): an upper bound, exact up to the bisection's resolution, on
    ``max Σ rate_i·t_i`` with ``0 ≤ t_i ≤ cap_i`` and ``Σ t_i ≤ budget`` (``rate``, ``cap``
    ≥ 0): how far ``aᵀx`` can fall over the L1 ball within the box (``rate = |a|``), and,
    with ``cap = 1`` and ``budget = k``, the sum of the ``k`` largest rates (the k-pixel ball).

    Maths: by LP duality the maximum is ``min over τ ≥ 0`` of ``budget·τ + Σ cap_i·(rate_i −
    τ)₊``, and every ``τ ≥ 0`` bounds it from above; the minimising ``τ*`` is the rate at
    which the caps of the faster pixels fill the budget (``h(τ) = Σ_{rate_i > τ} cap_i ≤
    budget``). ``iterations`` bisection steps on ``[0, max rate]`` keep ``h(τ) ≤ budget``
    at the upper end, whose dual value is returned: sound whatever the count, exact at
    convergence. ``xp``, ``freeze``: as in :func:`l2_box_gain`.
    """
    rate = xp.asarray(rate)
    cap = xp.broadcast_to(xp.asarray(cap), rate.shape)
    _, hi = bisect_threshold(
        xp.max(rate, axis=-1, keepdims=True),
        lambda t: xp.sum(xp.where(rate > t, cap, 0.0), axis=-1, keepdims=True) > budget,
        iterations, xp)
    tau = freeze(hi)
    return budget * tau[..., 0] + xp.sum(cap * xp.maximum(rate - tau, 0.0), axis=-1)


class L0Ball(Region):
    """At most ``k`` pixels differ from the centre; a changed pixel may take any value in its box.

    Bounds of a linear function: its value at the centre plus the ``k`` largest single-pixel
    gains (exact). In a MIP: one binary per free pixel marks it as changed, at most ``k`` set.
    """

    def __init__(self, center, k: int, lo=0.0, hi=1.0, free=None):
        if int(k) != k or k < 0:
            raise InvalidInputError(f"k (number of pixels) must be a non-negative integer, got {k}")
        super().__init__(center, lo, hi, free)
        self.k = int(k)

    def describe(self) -> str:
        return f"at most {self.k} changed pixels"

    def linear_bounds(self, A, c=0.0):
        A, up, down = self._deviation_gains(A)
        base = A @ self.center + c
        return base - _top_k_sum(down, self.k), base + _top_k_sum(up, self.k)

    def encode(self, builder, input_cols, free_idx):
        d = add_change_indicators(builder, input_cols, self.center[free_idx], self.lo[free_idx],
                                  self.hi[free_idx], "region.changed")
        if self.k < d.size:
            builder.add_rows(np.zeros(d.size), d, np.ones(d.size), -np.inf, self.k, count=1)
        return {"changed": d}

    def sample(self, rng, count):
        x = np.tile(self.center, (count, 1))
        free = np.flatnonzero(self.free)
        for row in x:
            pick = rng.choice(free, size=min(self.k, free.size), replace=False)
            row[pick] = np.where(rng.random(pick.size) < 0.5, self.lo[pick],
                                 rng.uniform(self.lo[pick], self.hi[pick]))
        return x


def _top_k_sum(gains: np.ndarray, k: int) -> np.ndarray:
    if k <= 0:
        return np.zeros(gains.shape[0])
    if k >= gains.shape[1]:
        return gains.sum(axis=1)
    return np.partition(gains, gains.shape[1] - k, axis=1)[:, -k:].sum(axis=1)


class PixelReveal(Region):
    """Reveal at most ``k`` more of an image's pixels: each pixel shows either its value or 0.

    The judge of a debate (:mod:`verify.tasks.evidence`) sees an image in which only a few
    pixels are *revealed*; every other pixel reads 0. This region is the set of such views of
    ``image``: the pixels in ``revealed`` show their values; of the other **non-zero** pixels
    (the candidates; a 0-valued pixel looks the same revealed or not) at most ``k`` more show
    theirs, the rest read 0. It is a finite set — ``x_i ∈ {0, v_i}`` — not a box: the centre
    is the view with nothing more revealed, and ``[lo, hi]`` (``lo`` = centre, ``hi`` = the
    image on the candidates) is only its hull.

    Bounds of a linear function ``a·x + c``: its value on the centre plus the ``k`` largest
    positive single-pixel gains ``a_i v_i`` (upper) or the ``k`` most negative (lower). This
    is exact: the extremes over the finite set are attained by revealing those pixels.

    In a MIP (:meth:`encode`): one binary ``r_i`` per candidate, ``x_i = v_i r_i`` and
    ``Σ r_i ≤ k``. Relaxed (``0 ≤ r_i ≤ 1``) that is ``0 ≤ x_i ≤ v_i``, ``Σ x_i / v_i ≤ k``: the
    LP the bound tightening of :mod:`verify.bounds` works on.
    """

    def __init__(self, image, k: int, revealed=()):
        image = _as_flat(image)
        if int(k) != k or k < 0:
            raise InvalidInputError(f"k (pixels to reveal) must be a non-negative integer, got {k}")
        n = image.size
        shown = np.zeros(n, dtype=bool)
        given = np.asarray(list(revealed)).ravel()
        if given.size and not (np.issubdtype(given.dtype, np.integer)
                               or (np.issubdtype(given.dtype, np.floating)
                                   and np.all(given == np.round(given)))):
            raise InvalidInputError(f"revealed pixels must be whole pixel indices, got {list(given)}")
        for i in given.astype(np.int64):
            if not 0 <= i < n:
                raise InvalidInputError(f"revealed pixel {i} is out of range 0..{n - 1}")
            if image[i] == 0:
                raise InvalidInputError(f"revealed pixel {i} has value 0: only non-zero pixels "
                                        "can be revealed")
            shown[i] = True
        center = np.where(shown, image, 0.0)
        candidates = (image != 0) & ~shown
        super().__init__(center, center, np.where(candidates, image, center))
        self.image = image
        self.k = int(k)
        self.revealed = np.flatnonzero(shown)

    @property
    def candidates(self) -> np.ndarray:
        """Indices of the pixels that may still be revealed (non-zero, not yet revealed)."""
        return np.flatnonzero(self.free)

    def describe(self) -> str:
        return (f"reveal at most {self.k} of {int(self.free.sum())} pixels"
                + (f" ({self.revealed.size} already revealed)" if self.revealed.size else ""))

    def view(self, pixels) -> np.ndarray:
        """The image the judge sees with ``pixels`` revealed on top of the already revealed
        ones (flat)."""
        x = self.center.copy()
        idx = np.asarray(list(pixels), dtype=np.int64)
        x[idx] = self.image[idx]
        return x

    def linear_bounds(self, A, c=0.0):
        A, up, down = self._deviation_gains(A)
        base = A @ self.center + c
        return base - _top_k_sum(down, self.k), base + _top_k_sum(up, self.k)

    def encode(self, builder, input_cols, free_idx):
        n = free_idx.size
        r = builder.add_vars("region.revealed", n, 0.0, 1.0, integer=True)
        rows = np.arange(n)
        # x_i − v_i r_i = 0
        builder.add_rows(np.r_[rows, rows], np.r_[input_cols, r],
                         np.r_[np.ones(n), -self.image[free_idx]], 0.0, 0.0, count=n)
        if self.k < n:
            builder.add_rows(np.zeros(n), r, np.ones(n), -np.inf, self.k, count=1)
        return {"revealed": r}

    def sample(self, rng, count):
        x = np.tile(self.center, (count, 1))
        cand = self.candidates
        for j, row in enumerate(x):
            size = min(self.k, cand.size) if j % 2 == 0 else rng.integers(0, min(self.k, cand.size) + 1)
            pick = rng.choice(cand, size=size, replace=False)
            row[pick] = self.image[pick]
        return x


def budget_region(center, eps: float | None = None, norm: str = "linf",
                  pixels: int | None = None) -> Region:
    """The region of a robustness budget: ``eps`` in ``norm`` (``linf``, ``l1``, ``l2``) or at
    most ``pixels`` changed pixels. Exactly one budget must be given."""
    if (eps is None) == (pixels is None):
        raise InvalidInputError("give exactly one budget: eps (with norm) or pixels")
    from .validate import check_eps
    check_eps(eps, norm)
    if pixels is not None:
        return L0Ball(center, pixels)
    kinds = {"linf": LinfBall, "l1": L1Ball, "l2": L2Ball}
    if norm not in kinds:
        raise InvalidInputError(f"norm must be one of {', '.join(kinds)} (or give pixels=K), got {norm!r}")
    return kinds[norm](center, eps)


# -- shared encodings of |x − c| and [x ≠ c], used by regions and objectives ----------------

def add_abs_deviation(builder, cols: np.ndarray, center: np.ndarray, name: str | None) -> np.ndarray:
    """Columns ``t_i ≥ |x_i − c_i|`` (two rows each); returns the t columns."""
    n = cols.size
    t = builder.add_vars(name, n, 0.0, np.inf)
    r = np.arange(n)
    # t - x ≥ -c  and  t + x ≥ c
    builder.add_rows(np.concatenate([r, r]), np.concatenate([t, cols]),
                     np.concatenate([np.ones(n), -np.ones(n)]), -center, np.inf, count=n)
    builder.add_rows(np.concatenate([r, r]), np.concatenate([t, cols]), np.ones(2 * n),
                     center, np.inf, count=n)
    return t


def add_change_indicators(builder, cols, center, lo, hi, name: str | None) -> np.ndarray:
    """Binary ``d_i`` with ``d_i = 0 ⇒ x_i = c_i``: ``c_i − (c_i − lo_i)·d_i ≤ x_i ≤ c_i + (hi_i − c_i)·d_i``."""
    n = cols.size
    d = builder.add_vars(name, n, 0.0, 1.0, integer=True)
    r = np.arange(n)
    # x - (hi - c) d ≤ c   and   x + (c - lo) d ≥ c
    builder.add_rows(np.concatenate([r, r]), np.concatenate([cols, d]),
                     np.concatenate([np.ones(n), -(hi - center)]), -np.inf, center, count=n)
    builder.add_rows(np.concatenate([r, r]), np.concatenate([cols, d]),
                     np.concatenate([np.ones(n), center - lo]), center, np.inf, count=n)
    return d
